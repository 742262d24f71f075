"""The option table: every ``ImageKitStorage`` option, its fallbacks, default and validation.

The storage resolves its options here when it is created; the system checks and the
diagnose command read the same table without raising, so "unknown option" and "missing
key" mean one thing everywhere. Nothing is read from settings or the environment at
import time.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.conf import LazySettings

__all__ = [
    "OPTIONS",
    "SETTING_PREFIX",
    "FoundValue",
    "InvalidOptionValue",
    "Option",
    "StorageSettings",
    "closest_option",
    "find_value",
    "is_loopback_host",
    "looks_like_key",
    "reset_storages_on_setting_change",
    "resolve_options",
    "unknown_options",
    "validate_value",
]

SETTING_PREFIX: Final = "IMAGEKIT_"

#: Where a value came from, in order of precedence.
Source = Literal["OPTIONS", "setting", "environment", "default"]

# Hosts of ImageKit's cloud. Passing one of them to the SDK as ``base_url`` would send
# uploads to the API host, so they mean "the cloud" (``None``).
_CLOUD_API_HOSTS: Final = frozenset({"api.imagekit.io", "upload.imagekit.io"})

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Final = _Required()


@dataclass(frozen=True)
class Option:
    """One constructor keyword of ``ImageKitStorage``."""

    name: str
    #: ``_Required`` when the storage cannot work without a value.
    default: object
    #: The Django setting consulted when the option is not given.
    setting: str | None
    #: Whether the environment variable named like the setting is consulted last.
    env: bool
    #: Secrets are never shown, logged, or written into migrations.
    secret: bool
    #: ``(raw value, where it came from) -> value``; raises ``ImproperlyConfigured``.
    parse: Callable[[object, str], object] = field(repr=False)
    doc: str = field(repr=False, default="")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


# --- parsers: each takes the raw value and a phrase saying where it came from ---------


def _fail(origin: str, expected: str, value: object, hint: str = "") -> ImproperlyConfigured:
    message = f"{origin} must be {expected}, got {_shown(value)!r}."
    return ImproperlyConfigured(f"{message} {hint}".strip())


def looks_like_key(value: object) -> bool:
    """Whether ``value`` has the shape of an ImageKit API key (``private_...``/``public_...``)."""
    return isinstance(value, str) and value.strip().startswith(("private_", "public_"))


def _shown(value: object) -> object:
    # A key pasted into the wrong option (say url_endpoint) must not end up in a message,
    # nor the password of a URL.
    if looks_like_key(value):
        return _Hidden("a value that looks like an API key")
    if isinstance(value, str) and "@" in value:
        return re.sub(r"(?<=://)[^/?#@]*@", "***@", value)
    return value


class _Hidden(str):
    def __repr__(self) -> str:
        return str(self)


def _secret(value: object, origin: str) -> str:
    if not isinstance(value, str) or not value.strip():
        # Only the type: the value may be a real key.
        raise _fail(origin, "a non-empty string", _TypeName(type(value).__name__))
    return value.strip()


class _TypeName(str):
    def __repr__(self) -> str:
        return f"a value of type {self}"


def _optional_secret(value: object, origin: str) -> str | None:
    return None if value is None else _secret(value, origin)


def _http_url(value: object, origin: str) -> str:
    if not isinstance(value, str):
        raise _fail(origin, "a URL string", value)
    url = value.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        # "https://[bad" or "https://host:abc" would otherwise escape as a bare ValueError.
        raise _fail(origin, "an absolute http(s) URL", value) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise _fail(
            origin,
            "an absolute http(s) URL",
            value,
            "Write it with its scheme, e.g. 'https://ik.imagekit.io/your_imagekit_id'.",
        )
    if parts.query or parts.fragment:
        raise _fail(origin, "a URL without a query string or fragment", value)
    return url


def _base_url(value: object, origin: str) -> str | None:
    if value is None:
        return None
    url = _http_url(value, origin)
    parts = urlsplit(url)
    if parts.hostname in _CLOUD_API_HOSTS and parts.path in {"", "/"}:
        return None
    return url


def _location(value: object, origin: str) -> str:
    if not isinstance(value, str):
        raise _fail(origin, "a folder path string", value)
    location = value.replace("\\", "/").strip("/")
    segments = location.split("/") if location else []
    if any(segment in {"", ".", ".."} for segment in segments):
        raise _fail(
            origin,
            "a folder path without empty, '.' or '..' segments",
            value,
            "Write it like 'media/uploads'.",
        )
    return location


def _bool(value: object, origin: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _fail(origin, "True or False", value)


def _optional_bool(value: object, origin: str) -> bool | None:
    return None if value is None else _bool(value, origin)


def _number(value: object, origin: str) -> float:
    if isinstance(value, bool):
        raise _fail(origin, "a number", value)
    try:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
    except (ValueError, OverflowError):
        # OverflowError: an int too large for a float (10**400).
        pass
    raise _fail(origin, "a number", value)


def _positive_seconds(value: object, origin: str) -> float:
    seconds = _number(value, origin)
    if not 0 < seconds < float("inf"):
        raise _fail(origin, "a positive number of seconds", value)
    return seconds


def _whole(value: object, origin: str, minimum: int) -> int:
    number = _number(value, origin)
    # int() of nan or inf raises; they are simply not whole numbers.
    if not math.isfinite(number) or number != int(number) or number < minimum:
        raise _fail(origin, f"a whole number of at least {minimum}", value)
    return int(number)


def _url_expire(value: object, origin: str) -> int:
    return _whole(value, origin, 1)


def _max_retries(value: object, origin: str) -> int:
    return _whole(value, origin, 0)


def _tags(value: object, origin: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _fail(origin, "a list of tag strings", value)
    tags = tuple(value)
    for tag in tags:
        # Tags travel comma-joined on the wire.
        if not isinstance(tag, str) or not tag or "," in tag:
            raise _fail(origin, "a list of non-empty strings without commas", value)
    return tags


def _custom_metadata(value: object, origin: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _fail(origin, "a dict with string keys", value)
    return MappingProxyType(dict(value))


def _option(
    name: str,
    default: object,
    parse: Callable[[object, str], object],
    doc: str,
    *,
    setting: bool = True,
    env: bool = False,
    secret: bool = False,
) -> Option:
    return Option(
        name=name,
        default=default,
        setting=f"{SETTING_PREFIX}{name.upper()}" if setting else None,
        env=env,
        secret=secret,
        parse=parse,
        doc=doc,
    )


#: Every option ``ImageKitStorage`` accepts, in documentation order.
OPTIONS: Final[Mapping[str, Option]] = MappingProxyType(
    {
        option.name: option
        for option in (
            _option(
                "private_key",
                REQUIRED,
                _secret,
                "API key: HTTP Basic auth for the API and the signing key for signed URLs.",
                env=True,
                secret=True,
            ),
            _option(
                "public_key",
                None,
                _optional_secret,
                "Only for client-side upload helpers; the server never needs it.",
                env=True,
                secret=True,
            ),
            _option(
                "url_endpoint",
                REQUIRED,
                _http_url,
                "Delivery base, e.g. https://ik.imagekit.io/your_imagekit_id (a trailing '/' is ignored).",
                env=True,
            ),
            _option(
                "base_url",
                None,
                _base_url,
                "API base. None means ImageKit's cloud; set it for the stand-in server or a proxy. "
                "All API traffic, uploads included, goes there.",
                env=True,
            ),
            _option(
                "location",
                "",
                _location,
                "Folder prefix in the media library. Not part of stored names.",
            ),
            _option(
                "file_overwrite",
                False,
                _bool,
                "Replace a file saved under the same name instead of choosing another name.",
            ),
            _option(
                "use_unique_file_name",
                True,
                _bool,
                "Give every stored name a random suffix in ImageKit's form ('_' and 9 characters).",
            ),
            _option("private_files", False, _bool, "Upload files as private files."),
            _option(
                "signed_urls",
                None,
                _optional_bool,
                "url() returns signed, expiring URLs. Defaults to the value of private_files.",
            ),
            _option(
                "url_expire",
                3600,
                _url_expire,
                "Seconds a signed URL stays valid, at least.",
            ),
            _option(
                "timeout",
                10.0,
                _positive_seconds,
                "Deadline in seconds for one API call (search, details, delete), every attempt "
                "and wait included.",
            ),
            _option(
                "upload_timeout",
                25.0,
                _positive_seconds,
                "The same deadline for an upload or a download, which move whole files; it "
                "bounds a whole save() (with the exact mode's exists() searches).",
            ),
            _option(
                "max_retries",
                2,
                _max_retries,
                "Retries of a failed request (connection errors, timeouts, 408, 409, 429, 5xx).",
            ),
            _option("tags", (), _tags, "Tags put on every upload.", setting=False),
            _option(
                "custom_metadata",
                MappingProxyType({}),
                _custom_metadata,
                "Custom metadata put on every upload.",
                setting=False,
            ),
        )
    }
)


@dataclass(frozen=True)
class StorageSettings:
    """The resolved, validated options of one storage. Secrets stay out of ``repr``."""

    private_key: str = field(repr=False)
    public_key: str | None = field(repr=False)
    url_endpoint: str
    base_url: str | None
    location: str
    file_overwrite: bool
    use_unique_file_name: bool
    private_files: bool
    signed_urls: bool
    url_expire: int
    timeout: float
    upload_timeout: float
    max_retries: int
    tags: tuple[str, ...]
    custom_metadata: Mapping[str, object]


@dataclass(frozen=True)
class FoundValue:
    """A raw, unvalidated value and where it was found."""

    value: object
    source: Source
    #: The setting or environment variable it came from, if any.
    origin_name: str | None = None

    def __repr__(self) -> str:
        return f"FoundValue(source={self.source!r}, origin_name={self.origin_name!r})"


def _given(value: object) -> bool:
    # An empty string (a blank line in an env file) counts as not given.
    return value is not None and value != ""


def find_value(
    name: str,
    options: Mapping[str, object],
    *,
    settings: LazySettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> FoundValue:
    """Find the raw value of option ``name`` without validating it; never raises
    for a missing value (the checks and the diagnose command use this)."""
    option = OPTIONS[name]
    if settings is None:
        from django.conf import settings as django_settings

        settings = django_settings
    environ = os.environ if environ is None else environ

    if _given(options.get(name)):
        return FoundValue(options[name], "OPTIONS")
    if option.setting is not None:
        value = getattr(settings, option.setting, None)
        if _given(value):
            return FoundValue(value, "setting", option.setting)
        if option.env and _given(environ.get(option.setting)):
            return FoundValue(environ[option.setting], "environment", option.setting)
    return FoundValue(option.default, "default")


@dataclass(frozen=True)
class InvalidOptionValue:
    """A value the storage would refuse, found without raising (for the checks)."""

    name: str
    source: Source
    origin_name: str | None
    #: What is wrong and where the value came from; never a key's value.
    message: str


def validate_value(name: str, found: FoundValue) -> object:
    """Parse a value found by ``find_value`` exactly as the storage would. Returns the
    parsed value, or an ``InvalidOptionValue`` when the storage would refuse it; never
    raises. Defaults (``REQUIRED`` included) are returned as they are."""
    try:
        return _parse(name, found)
    except ImproperlyConfigured as error:
        return InvalidOptionValue(name, found.source, found.origin_name, str(error))


def _parse(name: str, found: FoundValue) -> object:
    # Defaults are trusted as they are (REQUIRED included: the callers report it).
    if found.source == "default":
        return found.value
    return OPTIONS[name].parse(found.value, _describe(found, name))


def closest_option(name: str) -> str | None:
    """The valid option name most like ``name``, for "did you mean" hints."""
    matches = difflib.get_close_matches(name, list(OPTIONS), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_options(names: Iterable[str]) -> list[tuple[str, str | None]]:
    """``(unknown name, closest valid name or None)`` for each name not in the table."""
    return [(name, closest_option(name)) for name in names if name not in OPTIONS]


def _describe(found: FoundValue, name: str) -> str:
    if found.source == "OPTIONS":
        return f"The '{name}' option"
    if found.source == "setting":
        return f"The {found.origin_name} setting"
    if found.source == "environment":
        return f"The {found.origin_name} environment variable"
    return f"The default of '{name}'"


def _missing_message(option: Option) -> str:
    return (
        f"ImageKitStorage needs '{option.name}'. Set it in STORAGES[<alias>]['OPTIONS']"
        f"['{option.name}'], or the {option.setting} setting, or the {option.setting} "
        "environment variable."
    )


def resolve_options(
    options: Mapping[str, Any],
    *,
    settings: LazySettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> StorageSettings:
    """Validate ``options`` (constructor keywords) and fill the rest from settings,
    the environment and defaults. Raises ``ImproperlyConfigured`` with a message that
    says what to change."""
    unknown = unknown_options(options)
    if unknown:
        descriptions = []
        for name, suggestion in unknown:
            hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
            descriptions.append(f"'{name}'{hint}")
        raise ImproperlyConfigured(
            f"ImageKitStorage got unknown option {', '.join(descriptions)}. "
            f"Valid options: {', '.join(OPTIONS)}."
        )

    values: dict[str, object] = {}
    for name, option in OPTIONS.items():
        found = find_value(name, options, settings=settings, environ=environ)
        if found.value is REQUIRED:
            raise ImproperlyConfigured(_missing_message(option))
        values[name] = _parse(name, found)

    if values["signed_urls"] is None:
        values["signed_urls"] = values["private_files"]
    return StorageSettings(**values)  # type: ignore[arg-type]


def reset_storages_on_setting_change(*, setting: str, **kwargs: object) -> None:
    """``setting_changed`` receiver: storages read ``IMAGEKIT_*`` settings when created,
    so drop the cached instances when one changes (Django does this only for
    ``STORAGES``, ``STATIC_ROOT`` and ``STATIC_URL``), closing those that have a
    ``close()``: a dropped storage's connection pool would otherwise be left to the
    garbage collector (a ``ResourceWarning`` per open socket)."""
    if not setting.startswith(SETTING_PREFIX):
        return
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.core.files.storage import default_storage, storages
    from django.utils.functional import empty

    dropped: dict[int, object] = {id(storage): storage for storage in _cached(storages)}
    # The same reset Django's own receiver does for STORAGES.
    cast("Any", storages)._storages = {}
    for lazy_storage in (default_storage, staticfiles_storage):
        wrapped = cast("Any", lazy_storage)._wrapped
        if wrapped is not empty:
            dropped.setdefault(id(wrapped), wrapped)
        cast("Any", lazy_storage)._wrapped = empty
    for storage in dropped.values():
        close = getattr(storage, "close", None)
        if callable(close):
            close()


def _cached(storages: object) -> list[object]:
    cache = getattr(storages, "_storages", None)
    return list(cache.values()) if isinstance(cache, dict) else []


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost`` or a loopback address)."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
