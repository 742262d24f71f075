"""The checks behind ``manage.py imagekit_diagnose``: run them and get a report.

:func:`run_diagnose` returns a :class:`DiagnoseReport` (plain data);
:mod:`django_imagekit_storage.diagnose_output` turns it into text for a person or JSON for a
program. Nothing here prints, and no secret reaches the report: keys are described
only as set or missing with their ``public_``/``private_`` prefix, and every text that goes
into the report is scrubbed of the key values and of any URL's ``user:password@`` as a second
line of defence.
"""

from __future__ import annotations

import functools
import io
import os
import re
import secrets
import time
import urllib.error
import urllib.request
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import django
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation

from django_imagekit_storage.conf import OPTIONS, FoundValue, find_value, resolve_options
from django_imagekit_storage.exceptions import (
    ImageKitStorageError,
    InvalidImageError,
    MaxBytesError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from django.core.files.storage import Storage

__all__ = [
    "DIAGNOSTICS_FOLDER",
    "STEPS",
    "Detail",
    "DiagnoseReport",
    "Status",
    "StepResult",
    "run_diagnose",
]

Status = Literal["passed", "failed", "skipped"]

#: Where the round trip saves its file, relative to the storage's ``location``.
DIAGNOSTICS_FOLDER: Final = "imagekit-diagnostics"
#: ``(key, title)`` of every step, in the order they run.
STEPS: Final = (
    ("configuration", "Configuration"),
    ("backend", "Storage backend"),
    ("checks", "System checks"),
    ("images", "Image optimisation"),
    ("round_trip", "Storage round trip"),
)

_STORAGE_CLASS: Final = "django_imagekit_storage.storage.ImageKitStorage"
_CONNECTION_OPTIONS: Final = ("private_key", "public_key", "url_endpoint", "base_url")
# Settings shown with any user:password part masked.
_URL_SETTINGS: Final = ("url_endpoint", "base_url")
_CHECK_PREFIX: Final = "django_imagekit_storage."
#: Seconds the round trip waits for the delivery URL to answer.
_HTTP_TIMEOUT: Final = 10.0
# Key values shorter than this are not scrubbed from texts: replacing every "a" would
# garble the report, and a key that short is no secret worth the name.
_MIN_SECRET_LENGTH: Final = 6


@dataclass(frozen=True)
class Detail:
    """One ``label: value`` line under a step."""

    label: str
    value: str


@dataclass(frozen=True)
class StepResult:
    key: str
    title: str
    status: Status
    #: Why the step failed or was skipped; ``None`` when it passed.
    reason: str | None
    details: tuple[Detail, ...]
    duration_ms: float


@dataclass(frozen=True)
class DiagnoseReport:
    alias: str
    django_version: str
    library_version: str
    steps: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        """Whether every step that ran passed (skipped steps do not count against it)."""
        return all(step.status != "failed" for step in self.steps)

    def count(self, status: Status) -> int:
        return sum(step.status == status for step in self.steps)

    @property
    def failed_steps(self) -> tuple[StepResult, ...]:
        return tuple(step for step in self.steps if step.status == "failed")


class _FailStepError(Exception):
    """Ends a step as failed with ``reason`` (internal to this module)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _SkipStepError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Step:
    """The details a running step collects; its outcome comes from how it ends."""

    details: list[Detail] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, label: str, value: object) -> None:
        self.details.append(Detail(label, str(value)))

    def fail(self, reason: str) -> None:
        """Record a failure and keep going (the step fails when it ends)."""
        self.failures.append(reason)


@dataclass
class _Context:
    """What the steps learn and hand on to the later ones."""

    alias: str
    environ: Mapping[str, str]
    http_timeout: float = _HTTP_TIMEOUT
    secrets: set[str] = field(default_factory=set)
    storage: Storage | None = None
    is_imagekit: bool = False
    sample: bytes | None = None
    sample_extension: str = ".png"


def run_diagnose(
    alias: str = "default",
    *,
    skip_upload: bool = False,
    http_timeout: float = _HTTP_TIMEOUT,
) -> DiagnoseReport:
    """Run every step against the storage ``STORAGES[alias]`` and return the report.

    Later steps run when they still make sense after an earlier failure: the checks and
    the optimiser always run; the round trip needs an ``ImageKitStorage`` from the backend
    step. It never raises for a failing step; the failure is in the report.
    """
    from django_imagekit_storage import __version__

    # The same environment the storage reads its fallbacks from.
    context = _Context(alias=alias, environ=os.environ, http_timeout=http_timeout)
    _collect_secrets(context)
    runners: dict[str, Callable[[_Context, _Step], None]] = {
        "configuration": _configuration,
        "backend": _backend,
        "checks": _checks,
        "images": _images,
        "round_trip": _round_trip,
    }
    results = []
    for key, title in STEPS:
        if key == "round_trip" and skip_upload:
            results.append(StepResult(key, title, "skipped", "--skip-upload was given.", (), 0.0))
            continue
        results.append(_run_step(key, title, runners[key], context))
    return DiagnoseReport(
        alias=alias,
        django_version=django.get_version(),
        library_version=__version__,
        steps=tuple(results),
    )


def _run_step(
    key: str, title: str, runner: Callable[[_Context, _Step], None], context: _Context
) -> StepResult:
    step = _Step()
    status: Status = "passed"
    reason: str | None = None
    start = time.perf_counter()
    try:
        runner(context, step)
    except _FailStepError as failure:
        step.fail(failure.reason)
    except _SkipStepError as skip:
        status, reason = "skipped", skip.reason
    duration_ms = (time.perf_counter() - start) * 1000
    if step.failures:
        status, reason = "failed", " ".join(step.failures)
    scrub = _scrubber(context.secrets)
    return StepResult(
        key=key,
        title=title,
        status=status,
        reason=None if reason is None else scrub(reason),
        details=tuple(Detail(scrub(d.label), scrub(d.value)) for d in step.details),
        duration_ms=round(duration_ms, 1),
    )


# --- step 1: configuration ---------------------------------------------------------------


def _configuration(context: _Context, step: _Step) -> None:
    from django.conf import settings

    step.add("Django", django.get_version())
    step.add("DEBUG", settings.DEBUG)
    storages_setting = getattr(settings, "STORAGES", None)
    config = storages_setting.get(context.alias) if isinstance(storages_setting, dict) else None
    backend = config.get("BACKEND") if isinstance(config, dict) else None
    key = f"STORAGES[{context.alias!r}]"
    if config is None:
        step.add(key, "not defined")
        step.fail(f"{key} is not defined: add it to STORAGES (see --storage to pick an alias).")
    elif not isinstance(config, dict) or not isinstance(backend, str):
        step.add(key, "malformed")
        step.fail(f"{key} must be a dict with a 'BACKEND' dotted path.")
    else:
        step.add(f"{key}['BACKEND']", backend)

    _default_file_storage(step, storages_setting)

    options = _options_of(config)
    for name in _CONNECTION_OPTIONS:
        found = find_value(name, options, environ=context.environ)
        step.add(name, _describe_value(name, found, context.alias))

    if _names_imagekit(backend):
        try:
            resolve_options(options, environ=context.environ)
        except ImproperlyConfigured as error:
            step.fail(str(error))
        else:
            step.add("options", "valid")
    elif _imagekit_configured(options, context.environ):
        step.add("options", f"not checked: {key} does not use ImageKitStorage")


def _default_file_storage(step: _Step, storages_setting: object) -> None:
    from django.conf import settings

    if not settings.is_overridden("DEFAULT_FILE_STORAGE"):
        step.add("DEFAULT_FILE_STORAGE", "not set")
        return
    # On 4.2/5.0 reading it warns that it is deprecated; this command only reports it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        value = getattr(settings, "DEFAULT_FILE_STORAGE", None)
    default_backend = None
    if isinstance(storages_setting, dict) and isinstance(storages_setting.get("default"), dict):
        default_backend = storages_setting["default"].get("BACKEND")
    version = django.get_version()
    if django.VERSION >= (5, 1):
        step.add("DEFAULT_FILE_STORAGE", value)
        step.add(
            "DEFAULT_FILE_STORAGE on this Django",
            f"ignored: Django {version} reads only STORAGES; media goes to "
            f"STORAGES['default'] = {default_backend}",
        )
        if value != default_backend:
            step.fail(
                f"DEFAULT_FILE_STORAGE names {value} but Django >= 5.1 ignores it and uses "
                f"{default_backend}. Delete DEFAULT_FILE_STORAGE and set "
                "STORAGES['default']['BACKEND'] instead."
            )
    elif settings.is_overridden("STORAGES") and value == default_backend:
        # 4.2/5.0 copy STORAGES['default'] into DEFAULT_FILE_STORAGE themselves (a project
        # that sets both gets ImproperlyConfigured), so this is Django's copy.
        step.add(
            "DEFAULT_FILE_STORAGE",
            f"not set by the project (Django {version} mirrors STORAGES['default'] into it)",
        )
    else:
        step.add("DEFAULT_FILE_STORAGE", value)
        step.add(
            "DEFAULT_FILE_STORAGE on this Django",
            f"deprecated: Django {version} copies it into STORAGES['default'], but Django "
            "5.1 and later ignore it silently; move it to STORAGES['default']['BACKEND']",
        )


def _options_of(config: object) -> Mapping[str, object]:
    if isinstance(config, dict) and isinstance(config.get("OPTIONS"), dict):
        return config["OPTIONS"]  # type: ignore[no-any-return]
    return {}


def _describe_value(name: str, found: FoundValue, alias: str) -> str:
    if found.source == "default":
        if OPTIONS[name].required:
            return "missing"
        return "not set (ImageKit's cloud)" if name == "base_url" else "not set"
    if found.source == "OPTIONS":
        origin = f"STORAGES[{alias!r}]['OPTIONS']"
    elif found.source == "setting":
        origin = f"the {found.origin_name} setting"
    else:
        origin = f"the {found.origin_name} environment variable"
    if OPTIONS[name].secret:
        return f"set ({_key_prefix(found.value)}), from {origin}"
    return f"{_safe_url(found.value)}, from {origin}"


def _key_prefix(value: object) -> str:
    if not isinstance(value, str):
        return f"not a string but {type(value).__name__}"
    for prefix in ("private_", "public_"):
        if value.strip().startswith(prefix):
            return f"{prefix}..."
    return "no public_/private_ prefix"


def _safe_url(value: object) -> str:
    """A URL without any user:password part (a proxy URL may carry one)."""
    if not isinstance(value, str):
        return f"not a string but {type(value).__name__}"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.username is None and parts.password is None:
        return value
    netloc = f"***@{host or ''}" + (f":{port}" if port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _names_imagekit(backend: object) -> bool:
    """Whether a BACKEND dotted path is ``ImageKitStorage`` or a subclass (imports it)."""
    if not isinstance(backend, str):
        return False
    from django.utils.module_loading import import_string

    try:
        cls = import_string(backend)
    except (ImportError, ImproperlyConfigured):
        return False
    return isinstance(cls, type) and _is_imagekit_class(cls)


def _is_imagekit_class(cls: type) -> bool:
    # By name, as the checks do: another backend must not make us import storage.py.
    return any(_qualified(klass) == _STORAGE_CLASS for klass in cls.__mro__)


def _imagekit_configured(options: Mapping[str, object], environ: Mapping[str, str]) -> bool:
    return any(
        find_value(name, options, environ=environ).source != "default"
        for name in ("private_key", "url_endpoint")
    )


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _collect_secrets(context: _Context) -> None:
    """Every key value the configuration could hold, to scrub from the report's texts."""
    from django.conf import settings

    storages_setting = getattr(settings, "STORAGES", None)
    configs = storages_setting.values() if isinstance(storages_setting, dict) else ()
    for name, option in OPTIONS.items():
        if not option.secret:
            continue
        for config in (*configs, None):
            value = find_value(name, _options_of(config), environ=context.environ).value
            if isinstance(value, str) and len(value.strip()) >= _MIN_SECRET_LENGTH:
                context.secrets.add(value.strip())
                context.secrets.add(value)


# The user:password part of any URL, e.g. a delivery URL built on a url_endpoint that has one.
_URL_CREDENTIALS: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]+@")


def _scrubber(values: set[str]) -> Callable[[str], str]:
    ordered = sorted(values, key=len, reverse=True)

    def scrub(text: str) -> str:
        for value in ordered:
            text = text.replace(value, "[hidden key]")
        return _URL_CREDENTIALS.sub(r"\1***@", text)

    return scrub


# --- step 2: the storage backend ---------------------------------------------------------

# What creating a storage from a broken STORAGES entry raises: Django's own errors, a
# missing BACKEND (KeyError), an entry that is not a dict (AttributeError), options the
# backend does not take (TypeError).
_CREATE_ERRORS: Final = (
    ImproperlyConfigured,
    ImportError,
    KeyError,
    AttributeError,
    TypeError,
    ValueError,
)


def _backend(context: _Context, step: _Step) -> None:
    from django.core.files.storage import default_storage, storages

    key = f"storages[{context.alias!r}]"
    try:
        storage = storages[context.alias]
    except _CREATE_ERRORS as error:
        step.add(key, f"cannot be created: {type(error).__name__}")
        step.fail(f"{key} cannot be created: {error}")
        storage = None
    else:
        step.add(key, _qualified(type(storage)))
    try:
        step.add("default_storage", _qualified(type(_lazy_target(default_storage))))
    except _CREATE_ERRORS as error:
        step.add("default_storage", f"cannot be created: {type(error).__name__}")
    if storage is None:
        return
    context.storage = storage
    context.is_imagekit = _is_imagekit_class(type(storage))
    if context.is_imagekit:
        _describe_settings(step, storage)
    else:
        step.fail(_not_imagekit(context, key, storage))


def _describe_settings(step: _Step, storage: Storage) -> None:
    """The resolved values that decide where files go and how URLs look."""
    settings_ = getattr(storage, "settings", None)
    for attribute in ("url_endpoint", "base_url", "location", "private_files", "signed_urls"):
        if settings_ is None or not hasattr(settings_, attribute):
            continue
        value = getattr(settings_, attribute)
        if attribute == "base_url" and value is None:
            value = "ImageKit's cloud"
        elif attribute == "location" and not value:
            value = "(root of the media library)"
        step.add(attribute, _safe_url(value) if attribute in _URL_SETTINGS else value)


def _not_imagekit(context: _Context, key: str, storage: Storage) -> str:
    """Why a storage that is not ``ImageKitStorage`` fails the step."""
    where = _where_files_go(storage)
    if _imagekit_configured(_options_of(_storages_config(context.alias)), context.environ):
        return (
            f"ImageKit settings are present but {key} is {_qualified(type(storage))}: "
            f"media goes {where}, not to ImageKit. Set STORAGES[{context.alias!r}]['BACKEND'] "
            "to 'django_imagekit_storage.ImageKitStorage'."
        )
    return (
        f"{key} is {_qualified(type(storage))} (media goes {where}) and no ImageKit "
        "setting is present: there is no ImageKit storage to diagnose."
    )


def _lazy_target(lazy: Any) -> object:
    """The object behind a Django ``LazyObject`` such as ``default_storage``."""
    from django.utils.functional import empty

    if lazy._wrapped is empty:
        lazy._setup()
    return lazy._wrapped


def _storages_config(alias: str) -> object:
    from django.conf import settings

    storages_setting = getattr(settings, "STORAGES", None)
    return storages_setting.get(alias) if isinstance(storages_setting, dict) else None


def _where_files_go(storage: Storage) -> str:
    from django.core.files.storage import FileSystemStorage, InMemoryStorage

    if isinstance(storage, FileSystemStorage):
        return f"to local disk at {storage.location}"
    if isinstance(storage, InMemoryStorage):
        return "into memory, lost when the process ends"
    return f"wherever {type(storage).__name__} puts it"


# --- step 3: system checks ---------------------------------------------------------------


def _checks(context: _Context, step: _Step) -> None:
    from django.core.checks import WARNING, run_checks

    messages = [
        message
        for message in run_checks()
        if isinstance(message.id, str) and message.id.startswith(_CHECK_PREFIX)
    ]
    shown = [message for message in messages if not message.is_silenced()]
    silenced = len(messages) - len(shown)
    if not shown:
        step.add("messages", "none from django_imagekit_storage")
    for message in shown:
        text = f"{message.msg}"
        if message.hint:
            text += f" HINT: {message.hint}"
        step.add(message.id or "check", text)
    if silenced:
        step.add("silenced", f"{silenced} (SILENCED_SYSTEM_CHECKS)")
    serious = [message for message in shown if message.level >= WARNING]
    if serious:
        ids = ", ".join(sorted({message.id or "?" for message in serious}))
        step.fail(f"`manage.py check` reports {ids}: fix them as the hints say.")


# --- step 4: image optimisation ----------------------------------------------------------


def _images(context: _Context, step: _Step) -> None:
    try:
        from django_imagekit_storage.images import ImageSpec, optimize_image_variants
    except ImportError as error:
        raise _FailStepError(f"The image optimiser cannot be imported: {error}") from error

    source = _generated_image()
    step.add("input", f"generated JPEG, 960x720, {len(source):,} bytes")
    start = time.perf_counter()
    try:
        # ImageSpec itself refuses a format the installed Pillow cannot write.
        specs = {
            "main": ImageSpec(format="WEBP", max_size=640),
            "thumbnail": ImageSpec(format="WEBP", max_size=160),
        }
        variants = optimize_image_variants(source, specs)
    except (InvalidImageError, MaxBytesError, OSError, ValueError) as error:
        raise _FailStepError(f"optimize_image_variants failed: {error}") from error
    elapsed = (time.perf_counter() - start) * 1000
    for name, spec in specs.items():
        image = variants.get(name)
        if image is None:
            step.fail(f"optimize_image_variants returned no {name!r} variant.")
            continue
        step.add(
            name,
            f"{image.format} {image.width}x{image.height}, {len(image.data):,} bytes",
        )
        limit = spec.max_size if isinstance(spec.max_size, int) else None
        if image.format != "WEBP":
            step.fail(f"The {name} variant is {image.format}, not WEBP.")
        if limit is not None and max(image.width, image.height) > limit:
            step.fail(f"The {name} variant is larger than {limit} px.")
    step.add("time", f"{elapsed:.1f} ms for both variants from one decode")
    thumbnail = variants.get("thumbnail")
    if thumbnail is not None and not step.failures:
        context.sample, context.sample_extension = thumbnail.data, thumbnail.extension


@functools.lru_cache(maxsize=4)
def _generated_image(size: tuple[int, int] = (960, 720), format: str = "JPEG") -> bytes:
    """A photo-like test image: gradients in three channels, no file needed."""
    from PIL import Image

    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = red.transpose(Image.Transpose.ROTATE_90).resize(size)
    buffer = io.BytesIO()
    Image.merge("RGB", (red, green, blue)).save(buffer, format=format, quality=90)
    return buffer.getvalue()


# --- step 5: the round trip --------------------------------------------------------------


def _round_trip(context: _Context, step: _Step) -> None:
    """Save, read back, fetch and delete, one timed detail per storage call. Whatever fails
    after the save, the file is deleted."""
    storage = context.storage
    if storage is None or not context.is_imagekit:
        raise _SkipStepError("There is no ImageKitStorage to try (see the storage backend step).")
    if context.sample is None:
        data, extension = _generated_image((64, 48), "PNG"), ".png"
    else:
        data, extension = context.sample, context.sample_extension
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{DIAGNOSTICS_FOLDER}/roundtrip-{stamp}-{secrets.token_hex(3)}{extension}"
    step.add("file", f"{name} ({len(data):,} bytes)")
    saved = _save(storage, step, name, data)
    try:
        _read_back(storage, step, saved, data, context.http_timeout)
    finally:
        _delete(storage, step, saved)


def _save(storage: Storage, step: _Step, name: str, data: bytes) -> str:
    from django.core.files.base import ContentFile

    with _timed(step, "save") as note:
        saved = storage.save(name, ContentFile(data, name=name))
        note(f"stored as {saved}")
    return saved


def _read_back(storage: Storage, step: _Step, saved: str, data: bytes, timeout: float) -> None:
    with _timed(step, "url") as note:
        url = storage.url(saved)
        note(url)
    with _timed(step, "exists") as note:
        if not storage.exists(saved):
            raise _FailStepError(f"exists({saved!r}) is False right after save().")
        note("True")
    with _timed(step, "size") as note:
        size = storage.size(saved)
        note(f"{size:,} bytes")
        if size != len(data):
            raise _FailStepError(f"size({saved!r}) is {size}, but {len(data)} bytes were saved.")
    with _timed(step, "open") as note:
        with storage.open(saved, "rb") as handle:
            read = handle.read()
        if read != data:
            raise _FailStepError(
                f"open({saved!r}) returned {len(read)} bytes that differ from the "
                f"{len(data)} bytes saved."
            )
        note(f"{len(read):,} bytes, identical")
    with _timed(step, "HTTP GET") as note:
        note(_fetch(url, data, timeout))


def _delete(storage: Storage, step: _Step, saved: str) -> None:
    """Delete the file and check it is gone. Runs after a failed read-back too, so it records
    its failure instead of raising over the one already on its way."""
    try:
        with _timed(step, "delete") as note:
            storage.delete(saved)
            note("done")
    except _FailStepError as failure:
        step.fail(f"{failure.reason} Delete {saved!r} by hand.")
        return
    try:
        with _timed(step, "exists after delete") as note:
            if storage.exists(saved):
                raise _FailStepError(f"exists({saved!r}) is still True after delete().")
            note("False")
    except _FailStepError as failure:
        step.fail(failure.reason)


def _fetch(url: str, data: bytes, timeout: float) -> str:
    if urlsplit(url).scheme not in {"http", "https"}:
        raise _FailStepError(f"url() returned {url!r}, which is not an http(s) URL.")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, headers={"User-Agent": "django-imagekit-storage imagekit_diagnose"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
            content_type = response.headers.get("Content-Type", "no content type")
            body = response.read()
    except urllib.error.HTTPError as error:
        raise _FailStepError(f"GET {url} answered HTTP {error.code} {error.reason}.") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise _FailStepError(f"GET {url} failed: {reason}.") from error
    # A CDN may re-encode (ImageKit's automatic format conversion): say so, do not fail.
    same = "identical bytes" if body == data else "bytes differ from the upload (CDN re-encoding?)"
    return f"HTTP {status}, {content_type}, {len(body):,} bytes, {same}"


_STORAGE_ERRORS: Final = (
    ImageKitStorageError,
    ImproperlyConfigured,
    SuspiciousFileOperation,
    OSError,  # FileNotFoundError, timeouts and connection errors
    ValueError,
    TypeError,  # a subclass's get_upload_options() returning the wrong thing
)


@contextmanager
def _timed(step: _Step, operation: str) -> Iterator[Callable[[str], None]]:
    """Time one storage call and record it as a detail; a storage error fails the step."""
    notes: list[str] = []
    start = time.perf_counter()
    try:
        yield notes.append
    except _FailStepError:
        step.add(operation, f"failed after {_ms(start)}")
        raise
    except _STORAGE_ERRORS as error:
        step.add(operation, f"failed after {_ms(start)}")
        raise _FailStepError(f"{operation} failed: {type(error).__name__}: {error}") from error
    step.add(operation, f"{'; '.join(notes) or 'done'} ({_ms(start)})")


def _ms(start: float) -> str:
    return f"{(time.perf_counter() - start) * 1000:.1f} ms"
