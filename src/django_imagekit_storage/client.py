"""The one module that talks to ImageKit: upload, search, delete and download over the
``imagekitio`` 5 SDK, with our own retry loop, whole-call deadlines, and SDK errors mapped
to :mod:`django_imagekit_storage.exceptions`.

Why we own what the SDK would do for us:

- **Retries** (the SDK runs with ``max_retries=0``): the SDK retries uploads blindly and
  honours ``Retry-After`` for up to 60 s. We retry within a deadline, and resolve an
  "already exists" answer to a retried upload by checking the stored file.
- **Deadlines**: httpx timeouts are per socket operation, so a server trickling one byte
  a second never times out. Every socket read, write and connect goes through
  :class:`_DeadlineBackend`, which clamps it to the time left in the current call.
- **No environment**: the SDK reads ``IMAGEKIT_PRIVATE_KEY``, ``IMAGE_KIT_BASE_URL`` and
  ``IMAGE_KIT_CUSTOM_HEADERS`` when arguments are missing; we pass everything explicitly and
  reset what it may have taken from the environment anyway.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import functools
import inspect
import io
import ipaddress
import json
import logging
import math
import mimetypes
import random
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING, Any, Final, Literal, TypeVar, cast

import httpcore
import httpx
import imagekitio

from django_imagekit_storage.exceptions import (
    ImageKitAuthenticationError,
    ImageKitConnectionError,
    ImageKitFileExistsError,
    ImageKitResponseError,
    ImageKitStorageError,
    ImageKitTimeoutError,
)

if TYPE_CHECKING:
    import ssl

    from django.core.files import File

    from django_imagekit_storage.conf import StorageSettings

__all__ = ["ImageKitClient", "RemoteFile"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: ImageKit's cloud API host; uploads go to the upload host unless ``base_url`` is set.
_CLOUD_API: Final = "https://api.imagekit.io"
#: The page size of ``assets.list`` (ImageKit's maximum).
PAGE_SIZE: Final = 1000
#: Connecting never takes more than this, whatever the deadline (then we retry).
CONNECT_TIMEOUT: Final = 5.0
#: A ``Retry-After`` above this is not waited for, whatever the deadline.
MAX_RETRY_AFTER: Final = 60.0
# Socket writes are cut into pieces this big so each one is clamped to the deadline.
_WRITE_PIECE: Final = 64 * 1024
#: Upload arguments the client sets itself; ``extra`` (a storage's ``get_upload_options``)
#: may not override them. The storage refuses them too, before any request.
RESERVED_UPLOAD_ARGUMENTS: Final = frozenset(
    {
        "file",
        "file_name",
        "folder",
        "use_unique_file_name",
        "overwrite_file",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
    }
)
# An upload's own earlier attempt cannot have created the file before the call began;
# this much clock difference between us and ImageKit is tolerated.
_CLOCK_SKEW: Final = timedelta(minutes=5)
# Not worth retrying with less time than this left after the wait.
_MIN_ATTEMPT: Final = 0.05
_RETRYABLE_STATUSES: Final = frozenset({408, 409, 429})
_EXISTS_MARKER: Final = "already exists"


@dataclass(frozen=True)
class RemoteFile:
    """A file in the media library, as far as ImageKit told us."""

    #: Full media-library path without the leading "/" (location included).
    path: str
    file_id: str
    size: int | None
    #: Aware UTC datetimes, or None when ImageKit did not say.
    created_at: datetime | None
    updated_at: datetime | None
    is_private: bool
    url: str | None


# --- deadlines, enforced at the socket ------------------------------------------------


@dataclass(frozen=True)
class _Deadline:
    end: float  # time.monotonic()
    seconds: float  # the whole budget, for messages
    setting: str  # the option that sets it, for messages

    def remaining(self) -> float:
        return self.end - time.monotonic()


# The deadline of the call running in this thread (contextvars are per thread).
_CURRENT_DEADLINE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "django_imagekit_storage_deadline", default=None
)


@contextlib.contextmanager
def _deadline(budget: float, setting: str) -> Iterator[_Deadline]:
    """Run the block under a deadline ``budget`` seconds from now, or under the
    enclosing call's deadline if that ends sooner."""
    outer = _CURRENT_DEADLINE.get()
    deadline = _Deadline(time.monotonic() + budget, budget, setting)
    if outer is not None and outer.end < deadline.end:
        deadline = outer
    token = _CURRENT_DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT_DEADLINE.reset(token)


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = _CURRENT_DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline.remaining()
    if remaining <= 0:
        raise error(f"the {deadline.seconds:g} s deadline of this call has passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the call's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if len(buffer) <= _WRITE_PIECE:
            self._stream.write(buffer, _clamp(timeout, httpcore.WriteTimeout))
            return
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_PIECE):
            piece = bytes(view[start : start + _WRITE_PIECE])
            self._stream.write(piece, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(
            ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _clamp(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~100 ms: once per process, shared (it is thread-safe).
    return httpx.create_ssl_context()


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (same pool settings, same error mapping), on sockets that
    honour the deadline of the current call; optionally through an HTTP(S) proxy."""

    def __init__(self, proxy: str | None = None) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=_ssl_context(), limits=limits, proxy=proxy)
        # httpx has no public way to pass a network backend; guard the one attribute we
        # replace so an httpx that renamed it fails loudly instead of losing deadlines.
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise ImportError(
                "django-imagekit-storage does not support this httpx version "
                f"({httpx.__version__}): its transport has no connection pool to wrap."
            )
        pool_options: dict[str, Any] = {
            "ssl_context": _ssl_context(),
            "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry,
            "network_backend": _DeadlineBackend(),
        }
        if proxy is None:
            self._pool = httpcore.ConnectionPool(**pool_options)
            return
        settings = httpx.Proxy(proxy)
        if settings.url.scheme not in {"http", "https"}:
            return  # SOCKS: httpx's own pool; each read is still bounded by the attempt
        self._pool = httpcore.HTTPProxy(
            proxy_url=httpcore.URL(
                scheme=settings.url.raw_scheme,
                host=settings.url.raw_host,
                port=settings.url.port,
                target=settings.url.raw_path,
            ),
            proxy_auth=settings.raw_auth,
            proxy_headers=settings.headers.raw,
            proxy_ssl_context=settings.ssl_context,
            **pool_options,
        )


def _environment_proxies() -> dict[str, str | None]:
    """httpx mount patterns for the standard proxy variables (``HTTPS_PROXY``,
    ``NO_PROXY``, ...), as httpx itself reads them when it builds its own transport."""
    found = urllib.request.getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        url = found.get(scheme)
        if url:
            mounts[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    for host in (entry.strip() for entry in found.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
            continue
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and address.version == 6:
            mounts[f"all://[{host}]"] = None
        elif address is not None or host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


# --- defensive parsing ----------------------------------------------------------------


def _string(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _integer(data: Mapping[str, object], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _boolean(data: Mapping[str, object], key: str) -> bool | None:
    value = data.get(key)
    if isinstance(value, bool):
        return value
    if value in {"true", "false"}:
        return value == "true"
    return None


def _datetime(data: Mapping[str, object], key: str) -> datetime | None:
    value = data.get(key)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):  # fromisoformat accepts "Z" only from Python 3.11
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # ImageKit speaks UTC
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _strip_slash(path: str) -> str:
    return path.lstrip("/")


def _folder_path(folder: str) -> str:
    """``"media/a"`` -> ``"/media/a/"``, ``""`` -> ``"/"``: a folder as ImageKit writes it."""
    folder = folder.strip("/")
    return f"/{folder}/" if folder else "/"


def _split(path: str) -> tuple[str, str]:
    """``"media/a/b.jpg"`` -> ``("/media/a/", "b.jpg")``; the folder as ImageKit writes it."""
    folder, _, name = path.rpartition("/")
    return _folder_path(folder), name


def _name_search(path: str) -> tuple[dict[str, str], str]:
    """The ``assets.list`` query for the entries named as ``path`` in its folder (files
    and folders alike), and that name."""
    folder, file_name = _split(path)
    return {"path": folder, "search_query": f"name = {_quote(file_name)}"}, file_name


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _error_fields(body: object) -> tuple[str | None, str | None]:
    """ImageKit's ``message`` and ``help`` from an error body of any shape."""
    if isinstance(body, Mapping):
        message = body.get("message")
        help_text = body.get("help")
        return (
            message if isinstance(message, str) and message else None,
            help_text if isinstance(help_text, str) and help_text else None,
        )
    if isinstance(body, str) and body.strip():
        # Not JSON (a proxy's HTML page, say): a short excerpt still helps.
        return body.strip()[:200], None
    return None, None


def _retry_after(headers: httpx.Headers | None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            seconds = float(milliseconds) / 1000
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
        return max(seconds, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# --- failures and the retry loop ------------------------------------------------------


class _HTTPStatusError(Exception):
    """A non-2xx answer to a request made with httpx directly (downloads)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.status_code = response.status_code
        self.headers = response.headers
        try:
            self.body: object = json.loads(response.text)
        except ValueError:
            self.body = response.text


@dataclass
class _Failure:
    """What one failed attempt tells the retry loop."""

    error: Exception
    retryable: bool
    #: The request may have reached ImageKit (and been processed).
    maybe_processed: bool
    status_code: int | None = None
    message: str | None = None
    help: str | None = None
    retry_after: float | None = None
    timeout: bool = False

    def describe(self) -> str:
        if self.status_code is not None and self.retry_after is not None:
            return f"HTTP {self.status_code} (Retry-After {self.retry_after:g} s)"
        if self.status_code is not None:
            return f"HTTP {self.status_code}"
        return "a timeout" if self.timeout else "a connection error"


def _cause_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _never_sent(error: BaseException) -> bool:
    # A connection that was never made cannot have carried a request.
    return any(
        isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        for cause in _cause_chain(error)
    )


def _classify(error: Exception) -> _Failure:
    if isinstance(error, imagekitio.APIStatusError):
        status, headers, body = error.status_code, error.response.headers, error.body
    elif isinstance(error, _HTTPStatusError):
        status, headers, body = error.status_code, error.headers, error.body
    elif isinstance(error, imagekitio.APITimeoutError | httpx.TimeoutException):
        return _Failure(error, True, not _never_sent(error), timeout=True)
    elif isinstance(error, imagekitio.APIConnectionError | httpx.TransportError):
        return _Failure(error, True, not _never_sent(error))
    else:  # pragma: no cover - the loop passes only the types above
        raise TypeError(f"unexpected failure {type(error).__name__}")
    message, help_text = _error_fields(body)
    failure = _Failure(
        error,
        retryable=status in _RETRYABLE_STATUSES or status >= 500,
        # A 429 was refused before any work; anything else may have been done.
        maybe_processed=status != 429,
        status_code=status,
        message=message,
        help=help_text,
        retry_after=_retry_after(headers),
    )
    if _is_exists(failure):  # a 409 "already exists" is an answer, not a glitch
        failure.retryable = False
    return failure


@functools.cache
def _sdk_upload_arguments() -> frozenset[str]:
    from imagekitio.resources.files import FilesResource

    return frozenset(inspect.signature(FilesResource.upload).parameters) - {"self"}


def _is_exists(failure: _Failure) -> bool:
    return (
        failure.status_code in {400, 409}
        and failure.message is not None
        and _EXISTS_MARKER in failure.message.lower()
    )


@dataclass
class _Attempt:
    number: int
    #: Seconds this attempt may take (the rest of the deadline).
    timeout: float
    #: An earlier attempt of this call may have reached ImageKit.
    maybe_processed: bool


class ImageKitClient:
    """ImageKit's API for one storage. Thread-safe; creates its SDK client lazily, once."""

    #: Backoff before retry n (n = 0, 1, ...) is ``backoff_initial * 2**n`` seconds, at
    #: most ``backoff_max``, minus up to 25 % jitter. A wait that would not leave time for
    #: another attempt before the deadline ends the call with the last failure.
    backoff_initial: float = 0.5
    backoff_max: float = 8.0

    def __init__(
        self, settings: StorageSettings, *, _transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._transport_override = _transport
        self._lock = threading.Lock()
        self._sdk: imagekitio.ImageKit | None = None
        self._http: httpx.Client | None = None
        # Closes the connection pool if this client is dropped unclosed (Django forgets
        # cached storages without closing them): no socket is left to the GC.
        self._finalizer: weakref.finalize[[], ImageKitClient] | None = None

    def __repr__(self) -> str:
        return f"<ImageKitClient base_url={self.settings.base_url or _CLOUD_API!r}>"

    # --- the SDK client -----------------------------------------------------------------

    def _clients(self) -> tuple[imagekitio.ImageKit, httpx.Client]:
        sdk, http = self._sdk, self._http
        if sdk is not None and http is not None:
            return sdk, http
        with self._lock:
            if self._sdk is None or self._http is None:
                mounts: dict[str, httpx.BaseTransport | None] = {}
                if self._transport_override is None:
                    mounts = {
                        pattern: None if proxy is None else _DeadlineTransport(proxy)
                        for pattern, proxy in _environment_proxies().items()
                    }
                self._http = httpx.Client(
                    transport=self._transport_override or _DeadlineTransport(),
                    mounts=mounts,
                    timeout=httpx.Timeout(self.settings.upload_timeout, connect=CONNECT_TIMEOUT),
                    follow_redirects=True,
                )
                self._sdk = self._make_sdk(self._http)
                self._finalizer = weakref.finalize(self, self._http.close)
            return self._sdk, self._http

    def _make_sdk(self, http: httpx.Client) -> imagekitio.ImageKit:
        settings = self.settings
        sdk = imagekitio.ImageKit(
            private_key=settings.private_key,
            # The documented form; None would read OPTIONAL_IMAGEKIT_IGNORES_THIS.
            password="",
            # Never None: the SDK would read IMAGE_KIT_BASE_URL.
            base_url=settings.base_url or _CLOUD_API,
            webhook_secret="",
            timeout=httpx.Timeout(settings.upload_timeout, connect=CONNECT_TIMEOUT),
            max_retries=0,
            default_headers={},
            http_client=http,
        )
        # IMAGE_KIT_CUSTOM_HEADERS is merged in whatever we pass: drop it.
        sdk._custom_headers = {}
        # For the cloud, uploads must go to upload.imagekit.io, which the SDK does only
        # when it believes no base_url was given.
        sdk._base_url_overridden = settings.base_url is not None
        return sdk

    def close(self) -> None:
        """Release the connections. A later call creates a new SDK client."""
        with self._lock:
            sdk, self._sdk, self._http = self._sdk, None, None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if sdk is not None:
            sdk.close()

    @contextlib.contextmanager
    def deadline(self, setting: Literal["timeout", "upload_timeout"]) -> Iterator[None]:
        """Run several calls (a storage's ``save()``: a search, then an upload) under one
        deadline of ``setting`` seconds: each call inside ends by it, or by its own
        deadline if that comes first. Nested, the sooner deadline wins."""
        with _deadline(getattr(self.settings, setting), setting):
            yield

    # --- the retry loop -----------------------------------------------------------------

    def _run(
        self,
        operation: str,
        name: str,
        attempt_fn: Callable[[_Attempt], _T],
        *,
        can_retry: Callable[[], bool] = lambda: True,
    ) -> _T:
        """Call ``attempt_fn`` until it succeeds, a failure is final, the retries are used
        up, or the deadline passes: ``upload_timeout`` for an upload or a download (they
        carry a file), ``timeout`` for the rest. A call inside another one keeps the outer
        deadline if it is sooner."""
        setting = "upload_timeout" if operation in {"upload", "download"} else "timeout"
        with _deadline(getattr(self.settings, setting), setting) as deadline:
            return self._loop(operation, name, deadline, attempt_fn, can_retry)

    def _loop(
        self,
        operation: str,
        name: str,
        deadline: _Deadline,
        attempt_fn: Callable[[_Attempt], _T],
        can_retry: Callable[[], bool],
    ) -> _T:
        attempts = 1 + self.settings.max_retries
        maybe_processed = False
        last: _Failure | None = None
        for number in range(1, attempts + 1):
            remaining = deadline.remaining()
            if remaining <= 0:
                if last is not None and not last.timeout:
                    raise self._final(operation, name, last, number - 1) from self._cause(last)
                raise self._timeout(operation, name, deadline, number - 1)
            logger.debug(
                "ImageKit %s of %r: attempt %d of %d (%.2f s left)",
                operation,
                name,
                number,
                attempts,
                remaining,
            )
            attempt = _Attempt(number, remaining, maybe_processed)
            try:
                return attempt_fn(attempt)
            except (
                imagekitio.APIStatusError,
                imagekitio.APIConnectionError,
                httpx.TransportError,
                _HTTPStatusError,
            ) as exc:
                failure = _classify(exc)
            last = failure
            maybe_processed = maybe_processed or failure.maybe_processed
            if failure.timeout and deadline.remaining() <= 0:
                raise self._timeout(operation, name, deadline, number) from self._cause(failure)
            if not failure.retryable or number == attempts:
                raise self._final(operation, name, failure, number) from self._cause(failure)
            delay = self._delay(number - 1, failure)
            if delay + _MIN_ATTEMPT >= deadline.remaining():
                # No time for the wait and another attempt: ImageKit's last answer is
                # more useful than a bare timeout.
                logger.warning(
                    "ImageKit %s of %r: %s, and waiting %.2f s to retry would pass the "
                    "%g s deadline; giving up",
                    operation,
                    name,
                    failure.describe(),
                    delay,
                    deadline.seconds,
                )
                raise self._final(operation, name, failure, number) from self._cause(failure)
            if not can_retry():
                logger.warning(
                    "ImageKit %s of %r: %s, and the content cannot be read again to retry",
                    operation,
                    name,
                    failure.describe(),
                )
                raise self._final(operation, name, failure, number) from self._cause(failure)
            logger.warning(
                "ImageKit %s of %r: attempt %d of %d got %s; retrying in %.2f s",
                operation,
                name,
                number,
                attempts,
                failure.describe(),
                delay,
            )
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, retry: int, failure: _Failure) -> float:
        """Seconds to wait before retry number ``retry`` (0-based): the server's
        ``Retry-After`` if it gave one (infinite above ``MAX_RETRY_AFTER``), else
        exponential backoff with jitter."""
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= MAX_RETRY_AFTER else math.inf
        backoff = min(self.backoff_max, self.backoff_initial * 2.0**retry)
        return backoff * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not a secret

    def _cause(self, failure: _Failure) -> Exception | None:
        """The SDK's error, to chain to ours, unless it repeats the key (its message
        quotes ImageKit's answer): a traceback would print it where ours is redacted."""
        error = failure.error
        key = self.settings.private_key
        if key in str(error) or key in repr(getattr(error, "body", None)):
            return None
        return error

    def _redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        return text.replace(self.settings.private_key, "[private key]")

    def _final(
        self, operation: str, name: str, failure: _Failure, attempts: int
    ) -> ImageKitStorageError:
        message, help_text = self._redact(failure.message), self._redact(failure.help)
        fields: dict[str, Any] = {
            "operation": operation,
            "name": name,
            "status_code": failure.status_code,
            "message": message,
            "help": help_text,
        }
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        status = failure.status_code
        error: ImageKitStorageError
        if failure.timeout:
            error = ImageKitTimeoutError(
                f"ImageKit did not answer in time ({tries}); check the network or raise "
                "timeout/upload_timeout",
                **fields,
            )
        elif status is None:
            error = ImageKitConnectionError(
                f"could not reach ImageKit ({tries}); check the network and base_url",
                **fields,
            )
        elif status in {401, 403} and operation == "download":
            error = ImageKitAuthenticationError(
                "ImageKit refused the delivery URL; a private file needs a signed URL",
                **fields,
            )
        elif status in {401, 403}:
            error = ImageKitAuthenticationError(
                "ImageKit refused the private key; check private_key (IMAGEKIT_PRIVATE_KEY)",
                **fields,
            )
        elif _is_exists(failure):
            error = ImageKitFileExistsError("the path is taken and overwriting is off", **fields)
        else:
            error = ImageKitStorageError(f"ImageKit answered with an error ({tries})", **fields)
        # "Exists" is an answer the storage acts on (it picks another name), not a failure.
        level = logging.INFO if isinstance(error, ImageKitFileExistsError) else logging.ERROR
        logger.log(level, "%s", error)
        return error

    def _timeout(
        self, operation: str, name: str, deadline: _Deadline, attempts: int
    ) -> ImageKitTimeoutError:
        error = ImageKitTimeoutError(
            f"did not finish within its {deadline.seconds:g} s deadline ({attempts} "
            f"attempt{'s' if attempts != 1 else ''}); raise {deadline.setting} if ImageKit is slow "
            "from here",
            operation=operation,
            name=name,
        )
        logger.error("%s", error)
        return error

    def _response_error(self, operation: str, name: str, problem: str) -> ImageKitResponseError:
        error = ImageKitResponseError(
            f"ImageKit's answer cannot be used: {problem}", operation=operation, name=name
        )
        logger.error("%s", error)
        return error

    @staticmethod
    def _timeout_for(attempt: _Attempt) -> httpx.Timeout:
        return httpx.Timeout(attempt.timeout, connect=min(CONNECT_TIMEOUT, attempt.timeout))

    def _json(self, raw: imagekitio.APIResponse[Any], operation: str, name: str) -> object:
        try:
            return json.loads(raw.http_response.content)
        except ValueError as error:
            raise self._response_error(operation, name, "not JSON") from error

    # --- parsing ----------------------------------------------------------------------

    def _remote_file(
        self,
        data: Mapping[str, object],
        *,
        operation: str,
        name: str,
        fallback_path: str | None = None,
        fallback_private: bool = False,
    ) -> RemoteFile | None:
        file_path = _string(data, "filePath")
        if file_path is None and fallback_path is not None:
            logger.warning(
                "ImageKit %s of %r: the answer has no usable filePath; assuming %r",
                operation,
                name,
                fallback_path,
            )
            file_path = fallback_path
        file_id = _string(data, "fileId")
        if file_path is None or file_id is None:
            return None
        if "size" in data and _integer(data, "size") is None:
            logger.warning(
                "ImageKit %s of %r: ignoring an unusable size %r",
                operation,
                name,
                data.get("size"),
            )
        private = _boolean(data, "isPrivateFile")
        return RemoteFile(
            path=_strip_slash(file_path),
            file_id=file_id,
            size=_integer(data, "size"),
            created_at=_datetime(data, "createdAt"),
            updated_at=_datetime(data, "updatedAt"),
            is_private=fallback_private if private is None else private,
            url=_string(data, "url"),
        )

    # --- upload -------------------------------------------------------------------------

    def upload(
        self,
        content: File[Any],
        *,
        path: str,
        overwrite: bool,
        is_private: bool,
        tags: Sequence[str] = (),
        custom_metadata: Mapping[str, object] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> RemoteFile:
        """Upload ``content`` to exactly ``path`` (no unique suffix), streamed.

        An "already exists" answer to a retry of an attempt that may have reached ImageKit
        is our own earlier attempt when the stored file has our size and was not created
        before this call began: it is returned. Otherwise the path is taken:
        :class:`ImageKitFileExistsError`. ``extra`` (from ``get_upload_options``) adds SDK
        upload arguments; unknown names and the ones this method sets raise ``TypeError``.
        """
        operation = "upload"
        folder, file_name = _split(path)
        if not file_name:
            raise ValueError(f"Cannot upload to {path!r}: the path has no file name.")
        fileobj, size = self._readable(content, path)
        content_type = getattr(content, "content_type", None)
        if not isinstance(content_type, str) or not content_type:
            content_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        kwargs: dict[str, Any] = {
            "file_name": file_name,
            "folder": folder,
            "use_unique_file_name": False,
            "overwrite_file": overwrite,
        }
        # Only fields that carry information: each one more multipart part costs socket
        # writes on every upload. "false" is ImageKit's default for a new file; when
        # replacing one it is still said, so a private file never stays private by
        # omission. The answer's isPrivateFile (sent only if asked for in responseFields)
        # would only repeat what we sent, so it is not asked for: the parser uses ours.
        if is_private or overwrite:
            kwargs["is_private_file"] = is_private
        if tags:
            kwargs["tags"] = list(tags)
        if custom_metadata:
            kwargs["custom_metadata"] = dict(custom_metadata)
        kwargs.update(self._upload_extra(extra))
        # ``extra`` may set the privacy itself (a direct client call): what is sent counts.
        sent_private = kwargs.get("is_private_file", False)
        if isinstance(sent_private, bool):
            is_private = sent_private
        sdk = self._clients()[0]
        started = time.monotonic()
        began = datetime.now(timezone.utc)

        def attempt(attempt: _Attempt) -> RemoteFile:
            if attempt.number > 1:
                fileobj.seek(0)
            try:
                raw = sdk.files.with_raw_response.upload(
                    file=(file_name, fileobj, content_type),
                    timeout=self._timeout_for(attempt),
                    **kwargs,
                )
            except imagekitio.APIStatusError as error:
                failure = _classify(error)
                if _is_exists(failure) and attempt.maybe_processed and not overwrite:
                    ours = self._our_earlier_upload(path, size, began)
                    if ours is not None:
                        return ours
                raise
            return self._parse_upload(raw, path, is_private)

        def can_retry() -> bool:
            try:
                return bool(fileobj.seekable()) if hasattr(fileobj, "seekable") else True
            except (OSError, ValueError):
                return False

        remote = self._run(operation, path, attempt, can_retry=can_retry)
        # DEBUG: the storage logs the one INFO line per upload (and per delete).
        logger.debug(
            "ImageKit upload of %r: %s bytes in %d ms",
            remote.path,
            remote.size if remote.size is not None else size,
            (time.monotonic() - started) * 1000,
        )
        return remote

    def _readable(self, content: File[Any], path: str) -> tuple[IO[bytes], int | None]:
        """A binary file object for the SDK's tuple form, and its size if known."""
        if getattr(content, "closed", False):
            raise ValueError(
                f"Cannot upload {path!r}: the file is closed. Open it (or pass its bytes in a "
                "ContentFile) before saving."
            )
        inner = getattr(content, "file", content)
        if isinstance(inner, io.TextIOBase):
            # httpx refuses text; text content is small, so encoding it whole is fine.
            if content.seekable():
                content.seek(0)
            text = content.read()
            data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
            return io.BytesIO(data), len(data)
        fileobj = cast("IO[bytes]", content)  # a Django File reads like its binary file
        size: int | None
        try:
            position = fileobj.tell()
            size = fileobj.seek(0, io.SEEK_END)
            fileobj.seek(position)
        except (AttributeError, OSError, ValueError):
            size = None
        return fileobj, size

    def _upload_extra(self, extra: Mapping[str, object] | None) -> dict[str, object]:
        if not extra:
            return {}
        accepted = _sdk_upload_arguments()
        problems = []
        for key in extra:
            if key in RESERVED_UPLOAD_ARGUMENTS:
                problems.append(f"{key!r} is set by the storage itself")
            elif key not in accepted:
                problems.append(f"{key!r} is not an argument of the SDK's files.upload")
        if problems:
            raise TypeError(
                "Invalid upload options from get_upload_options(): "
                + "; ".join(problems)
                + f". Valid: {', '.join(sorted(accepted - RESERVED_UPLOAD_ARGUMENTS))}."
            )
        return dict(extra)

    def _parse_upload(
        self, raw: imagekitio.APIResponse[Any], path: str, is_private: bool
    ) -> RemoteFile:
        data = self._json(raw, "upload", path)
        if not isinstance(data, Mapping):
            raise self._response_error(
                "upload", path, f"expected an object, got {type(data).__name__}"
            )
        remote = self._remote_file(
            data, operation="upload", name=path, fallback_path=path, fallback_private=is_private
        )
        if remote is not None:
            return remote
        # Stored, but without a usable fileId: look it up rather than fail a good upload.
        logger.warning("ImageKit upload of %r: the answer has no fileId; searching for it", path)
        found = self.find(path)
        if found is None:
            raise self._response_error(
                "upload", path, "no fileId in the answer and the file is not found by search"
            )
        return found

    def _our_earlier_upload(
        self, path: str, size: int | None, began: datetime
    ) -> RemoteFile | None:
        """The file at ``path`` if it can be our own earlier attempt: same size, and not
        created long before this call began (allowing for clock skew)."""
        found = self.find(path)
        too_old = (
            found is not None
            and found.created_at is not None
            and found.created_at < began - _CLOCK_SKEW
        )
        if found is not None and size is not None and found.size == size and not too_old:
            logger.warning(
                "ImageKit upload of %r: an earlier attempt was stored although its answer "
                "was lost (same size, %d bytes); using it",
                path,
                size,
            )
            return found
        logger.info(
            "ImageKit upload of %r: the file already there is not ours (size %s, ours %s)",
            path,
            found.size if found is not None else None,
            size,
        )
        return None

    # --- search -------------------------------------------------------------------------

    def _pages(
        self, operation: str, name: str, query: Mapping[str, Any]
    ) -> Iterator[list[Mapping[str, object]]]:
        """Every page of an ``assets.list`` search, each request with its own deadline
        (or the caller's, if tighter)."""
        sdk = self._clients()[0]
        skip = 0
        while True:

            def attempt(
                attempt: _Attempt, skip: int = skip
            ) -> tuple[list[Mapping[str, object]], int]:
                raw = sdk.assets.with_raw_response.list(
                    skip=skip, limit=PAGE_SIZE, timeout=self._timeout_for(attempt), **query
                )
                data = self._json(raw, operation, name)
                if not isinstance(data, list):
                    raise self._response_error(
                        operation, name, f"expected a list, got {type(data).__name__}"
                    )
                items = [item for item in data if isinstance(item, Mapping)]
                if len(items) != len(data):
                    logger.warning(
                        "ImageKit %s of %r: skipped %d entries that are not objects",
                        operation,
                        name,
                        len(data) - len(items),
                    )
                return items, len(data)

            page, sent = self._run(operation, name, attempt)
            yield page
            # Entries sent, not entries kept: a full page with a skipped one is still full.
            if sent < PAGE_SIZE:
                return
            skip += PAGE_SIZE

    def _files_in(
        self, operation: str, name: str, query: Mapping[str, Any]
    ) -> Iterator[RemoteFile]:
        for page in self._pages(operation, name, query):
            for item in page:
                if item.get("type") == "folder":
                    continue
                remote = self._remote_file(item, operation=operation, name=name)
                if remote is None:
                    logger.warning(
                        "ImageKit %s of %r: skipped an entry without filePath or fileId",
                        operation,
                        name,
                    )
                    continue
                yield remote

    def find(self, path: str) -> RemoteFile | None:
        """The file stored at exactly ``path``, or None. One search request (more only
        if ImageKit pages the answer), all pages within one ``timeout`` deadline."""
        query, _ = _name_search(path)
        with self.deadline("timeout"):
            for remote in self._files_in("search", path, query):
                if remote.path == path:
                    return remote
        return None

    def exists(self, path: str) -> bool:
        """Whether a file or a folder is at exactly ``path``: the one search of
        :meth:`find` (ImageKit's ``name`` search matches folders as well as files), so a
        folder costs no extra request."""
        query, file_name = _name_search(path)
        with self.deadline("timeout"):
            for page in self._pages("search", path, query):
                for item in page:
                    if item.get("type") == "folder":
                        # folderPath is the folder's full path; name alone is its leaf,
                        # and the search is already scoped to the parent folder.
                        folder_path = _string(item, "folderPath")
                        found = (
                            folder_path.strip("/") == path
                            if folder_path is not None
                            else _string(item, "name") == file_name
                        )
                        if found:
                            return True
                        continue
                    remote = self._remote_file(item, operation="search", name=path)
                    if remote is not None and remote.path == path:
                        return True
        return False

    def list_files(self, folder: str, *, recursive: bool) -> Iterator[RemoteFile]:
        """Every file in ``folder`` ("" = the root), in its subfolders too if
        ``recursive``. Paginated; each page request has its own ``timeout`` deadline."""
        folder = folder.strip("/")
        prefix = _folder_path(folder)
        query: dict[str, Any]
        if recursive:
            query = {"search_query": f"path : {_quote(prefix)}"}
        else:
            query = {"path": prefix, "type": "file"}
        for remote in self._files_in("list", folder, query):
            inside = remote.path.startswith(prefix[1:]) if folder else True
            if inside and (recursive or "/" not in remote.path[len(prefix) - 1 :]):
                yield remote

    def list_folders(self, folder: str) -> Iterator[str]:
        """Names of the direct subfolders of ``folder`` ("" = the root)."""
        folder = folder.strip("/")
        prefix = _folder_path(folder)
        for page in self._pages("list", folder, {"path": prefix, "type": "folder"}):
            for item in page:
                if item.get("type") not in {None, "folder"}:
                    continue
                folder_path = _string(item, "folderPath")
                name = _string(item, "name")
                if folder_path is not None:
                    parent, _, leaf = folder_path.rstrip("/").rpartition("/")
                    if f"{parent}/" != prefix:
                        continue
                    name = leaf
                if not name or "/" in name:
                    logger.warning(
                        "ImageKit list of %r: skipped a folder entry without a usable name",
                        folder,
                    )
                    continue
                yield name

    # --- delete -------------------------------------------------------------------------

    def delete(self, file_id: str, *, path: str) -> bool:
        """Delete the file: True if it was deleted, False if it was already gone (404,
        not an error). ``path`` is for logs and errors only: the id is what is deleted."""
        sdk = self._clients()[0]
        started = time.monotonic()

        def attempt(attempt: _Attempt) -> bool:
            try:
                sdk.files.with_raw_response.delete(file_id, timeout=self._timeout_for(attempt))
            except imagekitio.NotFoundError:
                return False
            return True

        deleted = self._run("delete", path, attempt)
        logger.debug(
            "ImageKit delete of %r: %s in %d ms",
            path,
            "deleted" if deleted else "already gone",
            (time.monotonic() - started) * 1000,
        )
        return deleted

    # --- download -----------------------------------------------------------------------

    def download(self, url: str, into: IO[bytes], *, path: str) -> int:
        """Stream the delivery ``url`` into ``into``; the number of bytes written.
        :class:`FileNotFoundError` on 404. A retry starts ``into`` over."""
        http = self._clients()[1]
        try:
            start: int | None = into.tell()
        except (AttributeError, OSError, ValueError):
            start = None  # not seekable: one attempt only
        started = time.monotonic()

        def attempt(attempt: _Attempt) -> int:
            if attempt.number > 1 and start is not None:
                into.seek(start)
                into.truncate()
            written = 0
            try:
                # No Authorization header: delivery URLs are public or signed.
                with http.stream("GET", url, timeout=self._timeout_for(attempt)) as response:
                    if response.status_code == 404:
                        raise FileNotFoundError(f"No file at {path!r} on ImageKit (HTTP 404).")
                    if response.status_code >= 400:
                        response.read()
                        raise _HTTPStatusError(response)
                    for chunk in response.iter_bytes():
                        into.write(chunk)
                        written += len(chunk)
            # Answers no retry can fix; the SDK maps such errors itself for API calls.
            except httpx.DecodingError as error:
                raise self._response_error(
                    "download", path, f"the delivered bytes cannot be decoded ({error})"
                ) from error
            except httpx.TooManyRedirects as error:
                raise self._response_error(
                    "download", path, "the delivery URL redirects too many times"
                ) from error
            return written

        def can_retry() -> bool:
            # SpooledTemporaryFile has no seekable() before Python 3.11; tell() worked.
            seekable = getattr(into, "seekable", None)
            try:
                return start is not None and (not callable(seekable) or bool(seekable()))
            except (OSError, ValueError):
                return False

        written = self._run("download", path, attempt, can_retry=can_retry)
        logger.info(
            "ImageKit download of %r: %d bytes in %d ms",
            path,
            written,
            (time.monotonic() - started) * 1000,
        )
        return written
