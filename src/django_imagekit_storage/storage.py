"""``ImageKitStorage``: Django's storage contract on ImageKit.io.

Talks to ImageKit only through ``client.py`` and builds URLs only through ``delivery.py``.
What lives here: option resolution, names (validation, ImageKit's sanitising, the three
naming modes), the small metadata cache, and the lazy download-on-read ``File``.

Naming modes (see docs/storage.md):

* default (``use_unique_file_name=True``): the library picks ``<stem>_<9 chars><ext>``
  itself, inside ``max_length``, and uploads that exact name with overwriting off. One
  request per save, and a retried upload cannot create a second file.
* ``file_overwrite=True``: the exact name, replacing what is there.
* neither: Django's alternative-name scheme over a truthful ``exists()``; the upload is
  sent with overwriting off, and an "already exists" answer picks another name.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
import re
import string
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, AnyStr, Final, TypeVar

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import File
from django.core.files.storage import Storage
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.deconstruct import deconstructible
from django.utils.text import get_valid_filename

from django_imagekit_storage.conf import OPTIONS, StorageSettings, resolve_options
from django_imagekit_storage.delivery import build_url
from django_imagekit_storage.exceptions import ImageKitFileExistsError, ImageKitStorageError

if TYPE_CHECKING:
    from datetime import datetime

    from django_imagekit_storage.client import ImageKitClient, RemoteFile

__all__ = ["FileInfo", "ImageKitFile", "ImageKitStorage"]

logger = logging.getLogger(__name__)

#: ImageKit's unique suffix: ``_`` and 9 characters before the extension.
SUFFIX_LENGTH: Final = 9
_SUFFIX_CHARS: Final = string.ascii_letters + string.digits

#: How many names are tried when ImageKit answers "already exists" to a fresh name.
_NAME_ATTEMPTS: Final = 5

#: Metadata of this many names is remembered (least recently used first out).
CACHE_SIZE: Final = 1024

#: Downloads stay in memory up to this size, then spill to a temporary file.
SPOOL_MAX_BYTES: Final = 4 * 1024 * 1024

# ``max_length`` of the ``save()`` in progress, for names picked again inside ``_save``.
_max_length: ContextVar[int | None] = ContextVar("imagekit_max_length", default=None)


@dataclass(frozen=True)
class FileInfo:
    """What ImageKit knows about one stored file."""

    #: Relative to ``location``, no leading ``/``: what ``save()`` returns.
    name: str
    size: int | None
    file_id: str
    #: Aware UTC datetimes, ``None`` when unknown.
    created_at: datetime | None
    updated_at: datetime | None
    is_private: bool


# --- names ---------------------------------------------------------------------------


# ImageKit's upload API keeps ASCII letters and digits, '.', '_' and '-' in a file name and
# turns every other character into '_'. (Other ImageKit APIs document Unicode letters too;
# ASCII is the reading under which the name uploaded is always the name stored.)
_UNSAFE_CHARS: Final = re.compile(r"[^A-Za-z0-9._-]")


def imagekit_file_name(name: str) -> str:
    """``name`` as ImageKit's upload API would store it: every character other than
    ASCII letters, digits, '.', '_' and '-' becomes '_'."""
    return _UNSAFE_CHARS.sub("_", name)


def _check_name(name: object) -> str:
    """A relative media-library path, normalised; ``SuspiciousFileOperation`` otherwise."""
    if name is None:
        raise ValueError("A file name is required, got None.")
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise TypeError(f"A file name must be a string, got {type(name).__name__}.")
    if "\x00" in name:
        raise SuspiciousFileOperation(f"File name {name!r} contains a NUL character.")
    if "\\" in name:
        raise SuspiciousFileOperation(
            f"File name {name!r} contains a backslash; use '/' to separate folders."
        )
    if name.startswith("/"):
        raise SuspiciousFileOperation(
            f"File name {name!r} is absolute; storage names are relative to 'location'."
        )
    parts = [part for part in name.split("/") if part not in {"", "."}]
    if ".." in parts:
        raise SuspiciousFileOperation(f"Detected path traversal attempt in {name!r}.")
    return "/".join(parts)


def _check_file_name(name: object) -> str:
    """``_check_name`` plus: it names a file (not empty, not only dots)."""
    checked = _check_name(name)
    base = checked.rpartition("/")[2]
    if not base.strip("."):
        raise SuspiciousFileOperation(f"Could not derive a file name from {name!r}.")
    return checked


def clean_file_name(name: object) -> str:
    """A checked name with ImageKit's sanitising applied to every segment, so the name
    that is uploaded is the name that is stored (``SuspiciousFileOperation`` for a name
    no method accepts)."""
    return "/".join(imagekit_file_name(part) for part in _check_file_name(name).split("/"))


def _split_ext(base: str) -> tuple[str, str]:
    # ImageKit puts its suffix before the last extension: photo_Ab3dE9xQz.jpg.
    stem, ext = posixpath.splitext(base)
    return stem, ext


def _random_suffix() -> str:
    return get_random_string(SUFFIX_LENGTH, allowed_chars=_SUFFIX_CHARS)


def _unique_name(name: str, max_length: int | None) -> str:
    """``dir/stem_XXXXXXXXX.ext`` within ``max_length``, truncating the stem if needed."""
    dir_name, _, base = name.rpartition("/")
    stem, ext = _split_ext(base)
    prefix = f"{dir_name}/" if dir_name else ""
    if max_length is not None:
        excess = len(prefix) + len(stem) + 1 + SUFFIX_LENGTH + len(ext) - max_length
        if excess > 0:
            stem = stem[:-excess] if excess < len(stem) else ""
            if not stem:
                raise SuspiciousFileOperation(
                    f"Storage can not fit a unique name for {name!r} in max_length="
                    f"{max_length}: ImageKitStorage reserves {SUFFIX_LENGTH + 1} characters "
                    "for its unique suffix. Allow a longer max_length on the field, or use "
                    "a shorter upload_to."
                )
    return f"{prefix}{stem}_{_random_suffix()}{ext}"


#: Django's alternative names add ``_`` and 7 random characters to the stem.
_DJANGO_SUFFIX_LENGTH: Final = 8


def _check_alternative_fits(name: str, max_length: int) -> None:
    """``SuspiciousFileOperation`` if no alternative name Django could make for ``name``
    (its stem cut to at least one character, plus its suffix) fits in ``max_length``."""
    dir_name, _, base = name.rpartition("/")
    _, ext = _split_ext(base)
    prefix = f"{dir_name}/" if dir_name else ""
    if len(prefix) + 1 + _DJANGO_SUFFIX_LENGTH + len(ext) > max_length:
        raise SuspiciousFileOperation(
            f"Storage can not find an available filename for {name!r}: it is longer than "
            f"max_length={max_length}, and no shortened name fits. Allow a longer "
            "max_length on the field, or use a shorter upload_to."
        )


# --- the lazy File -------------------------------------------------------------------


class ImageKitFile(File):  # type: ignore[type-arg]
    """A stored file, downloaded from its delivery URL on first read into a spooled
    temporary file (memory up to ``SPOOL_MAX_BYTES``, disk beyond).

    Mode ``"rb"`` reads bytes; ``"r"`` reads text decoded as UTF-8 with universal
    newlines, as ``FileSystemStorage`` does with ``open(path, "r")``."""

    def __init__(
        self, name: str, storage: ImageKitStorage, info: FileInfo | None, mode: str = "rb"
    ) -> None:
        # File.__init__ would touch self.file; set the fields directly.
        self.name = name
        self._path = name
        self.mode = _check_mode(mode)
        self._storage = storage
        self._info = info
        self._spool: IO[bytes] | None = None
        self._text: io.TextIOWrapper | None = None
        self._closed = False

    def _get_file(self) -> IO[Any]:
        if self._spool is None:
            if self._closed:
                raise ValueError(f"I/O operation on closed file {self.name!r}.")
            self._spool = self._storage._download(self._path, self._info)
        if "b" in self.mode:
            return self._spool
        if self._text is None:
            self._text = io.TextIOWrapper(self._spool, encoding="utf-8")
        return self._text

    def _set_file(self, value: IO[bytes] | None) -> None:
        self._drop_text()
        self._spool = value

    file = property(_get_file, _set_file)

    def _drop_text(self) -> None:
        # Detached, the text layer leaves the downloaded bytes open for another mode.
        if self._text is not None:
            text, self._text = self._text, None
            text.detach()

    @property
    def size(self) -> int:
        """In bytes, whatever the mode; known from the metadata without downloading."""
        if self._spool is None and self._info is not None and self._info.size is not None:
            return self._info.size
        self._get_file()
        assert self._spool is not None
        position = self._spool.tell()
        size = self._spool.seek(0, os.SEEK_END)
        self._spool.seek(position)
        return size

    @property
    def closed(self) -> bool:
        return self._closed

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> ImageKitFile:
        mode = _check_mode(mode or self.mode)
        self._drop_text()
        self.mode = mode
        self._closed = False
        if self._spool is not None:
            self._spool.seek(0)
        return self

    def close(self) -> None:
        self._closed = True
        self._drop_text()
        if self._spool is not None:
            spool, self._spool = self._spool, None
            spool.close()

    def __repr__(self) -> str:
        return f"<ImageKitFile: {self.name}>"


class _Spool(tempfile.SpooledTemporaryFile[bytes]):
    """Memory up to ``max_size``, then a temporary file."""

    # Python 3.10's has no seekable(), readable() or writable(): the client asks the
    # first before retrying a download, io.TextIOWrapper (mode "r") asks all three.
    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def __del__(self) -> None:
        # `storage.open(name).read()` without a close is common Django code: while the
        # bytes are in memory nothing leaks, so no ResourceWarning (3.11+ would warn).
        if not getattr(self, "_rolled", True):
            self.close()
        parent = getattr(super(), "__del__", None)
        if parent is not None:
            parent()


_READ_MODES: Final = frozenset({"rb", "br", "r", "rt", "tr"})


def _check_mode(mode: str) -> str:
    """``mode`` if it reads (binary or text); ``ValueError`` with what to do otherwise."""
    if mode not in _READ_MODES:
        raise ValueError(
            f"ImageKitStorage opens files for reading only ('rb' for bytes, 'r' for "
            f"UTF-8 text), not {mode!r}. Write new content with storage.save(name, content)."
        )
    return mode


# --- content -------------------------------------------------------------------------


def _check_content(content: File[Any], name: str | None) -> None:
    """Refuse, before any request, content that cannot be uploaded."""
    fileobj = getattr(content, "file", content)
    if getattr(fileobj, "closed", False) is True or getattr(content, "closed", False) is True:
        raise ValueError(f"Cannot save {name!r}: the file is closed. Open it first.")
    if _known_size(content) == 0:
        raise ValueError(f"Cannot save {name!r}: the content is empty.")


def _upload_content(content: File[AnyStr]) -> File[bytes]:
    """The content as a binary Django ``File`` rewound to its start. Text is encoded as
    UTF-8; binary content is passed through and streamed by the client."""
    fileobj = getattr(content, "file", content)
    if isinstance(fileobj, io.TextIOBase):
        if hasattr(fileobj, "seek") and _seekable(fileobj):
            fileobj.seek(0)
        # Text has to be encoded somewhere; it is rarely large.
        data = "".join(content.chunks()).encode()  # type: ignore[arg-type]
        return File(io.BytesIO(data), name=content.name)
    if _seekable(fileobj):
        content.seek(0)
    return content  # type: ignore[return-value]


def _seekable(fileobj: object) -> bool:
    seekable = getattr(fileobj, "seekable", None)
    if callable(seekable):
        return bool(seekable())
    return hasattr(fileobj, "seek")


def _known_size(content: File[Any]) -> int | None:
    try:
        size: object = content.size
    except (AttributeError, OSError, TypeError, ValueError):
        return None
    return size if isinstance(size, int) else None


# --- the storage ---------------------------------------------------------------------


class _MetadataCache:
    """A bounded, thread-safe map of full media-library path -> ``RemoteFile``."""

    def __init__(self, max_size: int = CACHE_SIZE) -> None:
        self._data: OrderedDict[str, RemoteFile] = OrderedDict()
        self._lock = threading.Lock()
        self._max_size = max_size

    def get(self, path: str) -> RemoteFile | None:
        with self._lock:
            remote = self._data.get(path)
            if remote is not None:
                self._data.move_to_end(path)
            return remote

    def put(self, path: str, remote: RemoteFile) -> None:
        with self._lock:
            self._data[path] = remote
            self._data.move_to_end(path)
            while len(self._data) > self._max_size:
                self._data.popitem(last=False)

    def pop(self, path: str) -> None:
        with self._lock:
            self._data.pop(path, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def after_fork(self) -> None:
        # A thread of the parent may have held the lock at the fork: it is never released.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


_T = TypeVar("_T")


def _without_secrets(klass: type[_T]) -> type[_T]:
    """Make ``deconstruct()`` leave the keys out, so no secret reaches a migration file
    (``@deconstructible`` replaces a ``deconstruct`` defined in the class body)."""
    recorded = klass.deconstruct  # type: ignore[attr-defined]

    def deconstruct(obj: _T) -> tuple[str, Sequence[Any], dict[str, Any]]:
        path, args, kwargs = recorded(obj)
        kwargs = {key: value for key, value in kwargs.items() if key not in _SECRET_OPTIONS}
        return path, args, kwargs

    deconstruct.__doc__ = recorded.__doc__
    klass.deconstruct = deconstruct  # type: ignore[attr-defined]
    return klass


_SECRET_OPTIONS: Final = frozenset(name for name, option in OPTIONS.items() if option.secret)


@_without_secrets
@deconstructible
class ImageKitStorage(Storage):
    """A Django storage keeping files in an ImageKit.io media library.

    Every option is a keyword argument (so ``STORAGES[alias]["OPTIONS"]`` sets it) and
    falls back to the ``IMAGEKIT_*`` setting, then the environment: see
    ``django_imagekit_storage.conf.OPTIONS``.
    """

    settings: StorageSettings

    def __init__(self, **options: Any) -> None:
        self.settings = resolve_options(options)
        self._client_instance: ImageKitClient | None = None
        self._client_lock = threading.Lock()
        self._cache = _MetadataCache()
        _LIVE_STORAGES.add(self)

    def __repr__(self) -> str:
        location = f" location={self.settings.location!r}" if self.settings.location else ""
        return f"<ImageKitStorage url_endpoint={self.settings.url_endpoint!r}{location}>"

    # --- plumbing --------------------------------------------------------------------

    @property
    def _client(self) -> ImageKitClient:
        client = self._client_instance
        if client is None:
            with self._client_lock:
                client = self._client_instance
                if client is None:
                    # Imported here: importing the storage does not import the SDK.
                    from django_imagekit_storage.client import ImageKitClient

                    client = self._client_instance = ImageKitClient(self.settings)
        return client

    def close(self) -> None:
        """Release the HTTP connections; the storage stays usable (a new client is made)."""
        with self._client_lock:
            client, self._client_instance = self._client_instance, None
        if client is not None:
            client.close()
        self._cache.clear()

    def _after_fork(self) -> None:
        """In a forked child: the parent's pooled connections are not ours to use (two
        processes on one socket mix their answers), so the next call makes a new client.
        New locks too: a thread of the parent may have held one at the fork."""
        self._client_instance = None
        self._client_lock = threading.Lock()
        self._cache.after_fork()

    def _full_path(self, name: str) -> str:
        location = self.settings.location
        if not name:
            return location
        return f"{location}/{name}" if location else name

    def _relative_name(self, path: str, fallback: str) -> str:
        location = self.settings.location
        path = path.lstrip("/")
        if not location:
            return path
        if path.startswith(f"{location}/"):
            return path[len(location) + 1 :]
        logger.warning(
            "ImageKit reported path %r outside location %r; keeping the requested name %r",
            path,
            location,
            fallback,
        )
        return fallback

    def _info(self, remote: RemoteFile, name: str) -> FileInfo:
        return FileInfo(
            name=self._relative_name(remote.path, name),
            size=remote.size,
            file_id=remote.file_id,
            created_at=remote.created_at,
            updated_at=remote.updated_at,
            is_private=remote.is_private,
        )

    def _remote(self, name: str, *, need_times: bool = False) -> RemoteFile | None:
        """Metadata for a checked name: from the cache when our own save put it there,
        else one search. Search results are not cached: another process may change the
        file, and ``exists()`` must stay truthful. An upload's answer carries no times,
        so ``need_times`` costs one search for a name cached from a save (then cached)."""
        path = self._full_path(name)
        cached = self._cache.get(path)
        if cached is not None and not (
            need_times and (cached.created_at is None or cached.updated_at is None)
        ):
            logger.debug("metadata of %r from the cache", path)
            return cached
        logger.debug("searching for %r", path)
        remote = self._client.find(path)
        if cached is not None:
            # Refresh (or forget) what our own save put there.
            if remote is None:
                self._cache.pop(path)
            else:
                self._cache.put(path, remote)
        return remote

    def _remote_with_times(self, name: str) -> RemoteFile:
        remote = self._remote(name, need_times=True)
        if remote is None:
            raise FileNotFoundError(f"No file named {name!r} in ImageKit.")
        return remote

    def _download(self, name: str, info: FileInfo | None) -> IO[bytes]:
        private = self.settings.private_files or (info is not None and info.is_private)
        url = self.url(name, expire=self.settings.url_expire if private else None)
        spool = _Spool(max_size=SPOOL_MAX_BYTES)
        started = time.monotonic()
        try:
            size = self._client.download(url, spool, path=self._full_path(name))
        except BaseException:
            spool.close()
            raise
        logger.debug(
            "downloaded %r (%d bytes) in %.0f ms",
            self._full_path(name),
            size,
            (time.monotonic() - started) * 1000,
        )
        spool.seek(0)
        return spool

    # --- names -----------------------------------------------------------------------

    def get_valid_name(self, name: str) -> str:
        """Django's rules, then ImageKit's (characters other than letters, digits, '.',
        '_' and '-' become '_'), so the name predicted is the name stored."""
        return imagekit_file_name(get_valid_filename(name))

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        name = clean_file_name(name)
        if self.settings.file_overwrite:
            return self._fit_exact(name, max_length)
        if self.settings.use_unique_file_name:
            return _unique_name(name, max_length)
        if max_length is not None and len(name) > max_length:
            # Django would search for this name before finding that no alternative fits.
            _check_alternative_fits(name, max_length)
        return super().get_available_name(name, max_length=max_length)

    @staticmethod
    def _fit_exact(name: str, max_length: int | None) -> str:
        if max_length is not None and len(name) > max_length:
            raise SuspiciousFileOperation(
                f"File name {name!r} is longer than max_length={max_length}; with "
                "file_overwrite the name is kept exactly, so it cannot be shortened."
            )
        return name

    def save(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        if isinstance(content, str | bytes | bytearray | memoryview):
            # Django would wrap it in a File that cannot be read; say what to do instead.
            raise TypeError(
                f"save() needs a File or a file object, not {type(content).__name__}: wrap "
                "the data in django.core.files.base.ContentFile(data, name=...)."
            )
        if name is None:
            name = getattr(content, "name", None)
            if name is None:
                # Django would fail later with a bare TypeError about NoneType.
                raise ValueError(
                    "save() needs a name: pass one, or give the content one "
                    "(ContentFile(data, name=...), File(fileobj, name=...))."
                )
        if not hasattr(content, "chunks"):
            content = File(content, name)
        # Before Django's save() picks a name (a search, in the exact mode).
        _check_content(content, name)
        # _save may have to pick another name; it needs the field's max_length for that.
        token = _max_length.set(max_length)
        try:
            # One deadline for the whole save: the exact mode's exists() searches and
            # every upload attempt, so a worker's save() never outlasts upload_timeout.
            with self._client.deadline("upload_timeout"):
                return super().save(name, content, max_length=max_length)
        finally:
            _max_length.reset(token)

    # --- Storage API -----------------------------------------------------------------

    def _open(self, name: str, mode: str = "rb") -> ImageKitFile:
        _check_mode(mode)
        name = _check_file_name(name)
        info = self.stat(name)
        if info is None:
            raise FileNotFoundError(f"No file named {name!r} in ImageKit.")
        return ImageKitFile(name, self, info, mode)

    def _save(self, name: str, content: File[Any]) -> str:
        name = clean_file_name(name)
        _check_content(content, name)
        upload = _upload_content(content)
        max_length = _max_length.get()
        options = self._checked_upload_options(name, content)
        overwrite = self.settings.file_overwrite
        for _attempt in range(_NAME_ATTEMPTS - 1):
            stored = self._upload_unless_taken(name, upload, overwrite=overwrite, **options)
            if stored is not None:
                return stored
            previous = name
            if self.settings.use_unique_file_name:
                name = _unique_name(_strip_suffix(name), max_length)
            else:
                # exists() now sees the file that took the name.
                name = self.get_available_name(name, max_length)
            logger.debug("%r was taken meanwhile; trying %r", previous, name)
        return self._upload(name, upload, overwrite=overwrite, **options)[0]

    def _upload_unless_taken(
        self, name: str, content: File[bytes], *, overwrite: bool, **options: Any
    ) -> str | None:
        """The stored name, or None when ImageKit says the name is taken (never with
        ``overwrite``: that error is raised)."""
        try:
            return self._upload(name, content, overwrite=overwrite, **options)[0]
        except ImageKitFileExistsError:
            if overwrite:
                raise
            return None

    def save_exact(self, name: str, content: File[Any], *, overwrite: bool = False) -> FileInfo:
        """Upload ``content`` under exactly ``name`` (no suffix, no alternative name).

        Raises ``ImageKitFileExistsError`` if the name is taken and ``overwrite`` is
        false. The name is checked like every other, and sanitised as ImageKit would."""
        name = clean_file_name(name)
        _check_content(content, name)
        upload = _upload_content(content)
        options = self._checked_upload_options(name, content)
        with self._client.deadline("upload_timeout"):
            stored, remote = self._upload(name, upload, overwrite=overwrite, **options)
        return self._info(remote, stored)

    def _upload(
        self, name: str, content: File[bytes], *, overwrite: bool, **options: Any
    ) -> tuple[str, RemoteFile]:
        """Upload to exactly ``name``; the name stored (relative) and what ImageKit said."""
        path = self._full_path(name)
        tags = options.pop("tags", self.settings.tags)
        custom_metadata = options.pop("custom_metadata", self.settings.custom_metadata)
        is_private = options.pop("is_private_file", self.settings.private_files)
        logger.debug("uploading %r (overwrite=%s)", path, overwrite)
        started = time.monotonic()
        remote = self._client.upload(
            content,
            path=path,
            overwrite=overwrite,
            is_private=bool(is_private),
            tags=tuple(tags),
            custom_metadata=dict(custom_metadata),
            extra=options or None,
        )
        elapsed = (time.monotonic() - started) * 1000
        stored = self._relative_name(remote.path, name)
        stored_path = self._full_path(stored)
        if stored_path != path:
            logger.warning("ImageKit stored %r as %r", path, stored_path)
            self._cache.pop(path)
        self._cache.put(stored_path, remote)
        size = remote.size if remote.size is not None else _known_size(content)
        logger.info("uploaded %s (%s bytes) in %.0f ms", stored_path, size, elapsed)
        return stored, remote

    def get_upload_options(self, name: str, content: File[Any]) -> dict[str, Any]:
        """Per-file keyword arguments for the SDK's ``files.upload`` (a subclass hook).

        ``tags``, ``custom_metadata`` and ``is_private_file`` replace the storage's
        options for this file; any other SDK upload argument (``description``,
        ``custom_coordinates``, ``extensions``...) is passed on. The name, folder and
        overwrite flags are the storage's own and cannot be set here."""
        return {}

    def _checked_upload_options(self, name: str, content: File[Any]) -> dict[str, Any]:
        options = self.get_upload_options(name, content)
        if not isinstance(options, Mapping):
            raise TypeError(
                f"get_upload_options() must return a dict, got {type(options).__name__}."
            )
        # The client's own list (imported here: importing the storage does not import the
        # SDK), so that every argument it sets is refused here alike, before any request.
        from django_imagekit_storage.client import RESERVED_UPLOAD_ARGUMENTS

        reserved = sorted(RESERVED_UPLOAD_ARGUMENTS.intersection(options))
        if reserved:
            raise ValueError(
                f"get_upload_options() returned {', '.join(reserved)}, which ImageKitStorage "
                "sets itself: leave it out (the name and overwriting follow the "
                "file_overwrite and use_unique_file_name options, the deadline upload_timeout)."
            )
        checked = dict(options)
        # Validated like the storage options of the same meaning.
        for key, option in (
            ("tags", "tags"),
            ("custom_metadata", "custom_metadata"),
            ("is_private_file", "private_files"),
        ):
            if key in checked:
                try:
                    checked[key] = OPTIONS[option].parse(
                        checked[key], f"get_upload_options()[{key!r}]"
                    )
                except ImproperlyConfigured as error:
                    raise ValueError(str(error)) from None
        return checked

    def delete(self, name: str | None) -> None:
        if not name:
            raise ValueError("The name must be given to delete a file.")
        name = _check_file_name(name)
        path = self._full_path(name)
        # One deadline for the search and the delete(s) together.
        with self._client.deadline("timeout"):
            entry = self._cache.get(path)
            remote = self._remote(name)
            if remote is None:
                logger.debug("delete of %r: no such file", path)
                return
            if self._delete_by_id(remote.file_id, path, remote.size) or remote is not entry:
                return
            # The id our own save cached is gone: the file was deleted (and maybe uploaded
            # again under this name) by someone else. Delete what the name holds now.
            logger.debug("delete of %r: the cached file id is stale; searching", path)
            remote = self._client.find(path)
            if remote is not None:
                self._delete_by_id(remote.file_id, path, remote.size)

    def delete_file(self, info: FileInfo) -> bool:
        """Delete exactly the file ``info`` describes (from ``stat()`` or ``iter_files()``),
        by its file id: one request, no search. True if it was deleted, False if it was
        already gone; a file uploaded under the same name since then is a different file
        (another id) and is left alone. Forgets the name's cached metadata."""
        if not isinstance(info, FileInfo):
            raise TypeError(
                f"delete_file() needs a FileInfo (from stat() or iter_files()), got "
                f"{type(info).__name__}; to delete by name, use delete(name)."
            )
        if not info.file_id:
            raise ValueError(f"Cannot delete {info.name!r}: its FileInfo has no file id.")
        path = self._full_path(_check_file_name(info.name))
        return self._delete_by_id(info.file_id, path, info.size)

    def _delete_by_id(self, file_id: str, path: str, size: int | None) -> bool:
        """Delete the file ``file_id`` and forget ``path``'s metadata: True if it was
        deleted, False if it was already gone."""
        started = time.monotonic()
        try:
            deleted = self._client.delete(file_id, path=path)
        finally:
            self._cache.pop(path)
        if deleted:
            logger.info(
                "deleted %s (%s bytes) in %.0f ms",
                path,
                size,
                (time.monotonic() - started) * 1000,
            )
        else:
            logger.debug("delete of %r: file id %s was already gone", path, file_id)
        return deleted

    def exists(self, name: str) -> bool:
        """Whether a file, or a folder, has this name: as ``FileSystemStorage`` answers
        for directories (ImageKit's folders are real, and ``listdir`` lists them). One
        search either way, none when the name is cached from our own save."""
        name = _check_file_name(name)
        if self._cache.get(self._full_path(name)) is not None:
            logger.debug("metadata of %r from the cache", self._full_path(name))
            return True
        return self._client.exists(self._full_path(name))

    def stat(self, name: str) -> FileInfo | None:
        """What ImageKit knows about ``name``: one search, or none when cached."""
        name = _check_file_name(name)
        remote = self._remote(name)
        return None if remote is None else self._info(remote, name)

    def size(self, name: str) -> int:
        name = _check_file_name(name)
        remote = self._remote(name)
        if remote is None:
            raise FileNotFoundError(f"No file named {name!r} in ImageKit.")
        if remote.size is None:
            raise ImageKitStorageError(
                "ImageKit did not report the file's size",
                operation="size",
                name=self._full_path(name),
            )
        return remote.size

    def get_created_time(self, name: str) -> datetime:
        name = _check_file_name(name)
        return self._datetime(self._remote_with_times(name).created_at, name, "created")

    def get_modified_time(self, name: str) -> datetime:
        name = _check_file_name(name)
        return self._datetime(self._remote_with_times(name).updated_at, name, "modified")

    def _datetime(self, value: datetime | None, name: str, what: str) -> datetime:
        if value is None:
            raise ImageKitStorageError(
                f"ImageKit did not report the {what} time",
                operation="stat",
                name=self._full_path(name),
            )
        if django_settings.USE_TZ:
            return value
        return timezone.make_naive(value, timezone.get_default_timezone())

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        folder = self._full_path(_check_name(path))
        directories = sorted(self._client.list_folders(folder))
        prefix = f"{folder}/" if folder else ""
        files = sorted(
            remote.path.lstrip("/").removeprefix(prefix)
            for remote in self._client.list_files(folder, recursive=False)
        )
        return directories, files

    def iter_files(self, prefix: str = "") -> Iterator[FileInfo]:
        """Every file under ``location``/``prefix`` (a folder), recursively, paginated."""
        folder = self._full_path(_check_name(prefix))
        for remote in self._client.list_files(folder, recursive=True):
            yield self._info(remote, remote.path.lstrip("/"))

    def url(
        self,
        name: str | None,
        *,
        transformation: Sequence[Mapping[str, object]] | None = None,
        expire: int | None = None,
    ) -> str:
        """The delivery URL of ``name``; never touches the network.

        Signed (``ik-t``/``ik-s``) when ``signed_urls`` is on or ``expire`` is given; a
        signed URL stays valid for at least ``expire`` (default ``url_expire``) seconds
        and is identical for every call within its signing window."""
        if not name:
            raise ValueError("The name must be given to build a URL.")
        settings = self.settings
        path = self._full_path(_check_name(name))
        if settings.signed_urls or expire is not None:
            return build_url(
                settings.url_endpoint,
                path,
                transformation=transformation,
                signed=True,
                private_key=settings.private_key,
                expire_seconds=settings.url_expire if expire is None else expire,
            )
        return build_url(settings.url_endpoint, path, transformation=transformation)


# Storages alive in this process, so that a forked child (gunicorn --preload, Celery
# prefork, multiprocessing) starts with its own connections.
_LIVE_STORAGES: Final[weakref.WeakSet[ImageKitStorage]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for storage in list(_LIVE_STORAGES):
        storage._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _strip_suffix(name: str) -> str:
    """``dir/stem_XXXXXXXXX.ext`` -> ``dir/stem.ext`` (for picking a fresh suffix)."""
    dir_name, _, base = name.rpartition("/")
    stem, ext = _split_ext(base)
    if len(stem) > SUFFIX_LENGTH + 1 and stem[-SUFFIX_LENGTH - 1] == "_":
        stem = stem[: -SUFFIX_LENGTH - 1]
    return f"{dir_name}/{stem}{ext}" if dir_name else f"{stem}{ext}"
