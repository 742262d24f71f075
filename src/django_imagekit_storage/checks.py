"""System checks: every silent ``STORAGES`` misconfiguration becomes a line in ``manage.py check``.

The checks read settings and the environment through the option table (``conf``) and never
raise, print, touch the network, or import ``storage``/``client`` (a backend is recognised by
its dotted path, or by importing the project's own backend class and reading its MRO). No
message contains a key's value: at most whether it is set and its ``private_``/``public_``
prefix. Registered by ``ImageKitStorageConfig.ready()``; documented in ``docs/checks.md``.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import django
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_imagekit_storage import conf

__all__ = ["BACKEND", "TAG", "check_deploy", "check_storages"]

#: ``manage.py check --tag imagekit_storage`` runs only these checks.
TAG: Final = "imagekit_storage"
#: The backend's canonical dotted path.
BACKEND: Final = "django_imagekit_storage.storage.ImageKitStorage"
_PACKAGE: Final = "django_imagekit_storage"
# Matched as strings: recognising the documented paths must not import the storage.
_DOCUMENTED_PATHS: Final = frozenset({BACKEND, f"{_PACKAGE}.ImageKitStorage"})

_DEFAULT_ALIAS: Final = "default"
_STATICFILES_ALIAS: Final = "staticfiles"
_FILE_SYSTEM_STORAGE: Final = "django.core.files.storage.FileSystemStorage"
_STATICFILES_STORAGE: Final = "django.contrib.staticfiles.storage.StaticFilesStorage"
_MASK: Final = "***"

# What a correct value looks like, for hints.
_EXAMPLES: Final[Mapping[str, str]] = {
    "private_key": "the private API key from ImageKit's dashboard (Developer options), a string",
    "public_key": "the public API key from ImageKit's dashboard, a string, or None",
    "url_endpoint": "'https://ik.imagekit.io/your_imagekit_id'",
    "base_url": "None (ImageKit's cloud), or e.g. 'http://127.0.0.1:8000' for the stand-in server",
    "location": "a folder like 'media/uploads'",
    "file_overwrite": "True or False",
    "use_unique_file_name": "True or False",
    "private_files": "True or False",
    "signed_urls": "True or False (or None to follow private_files)",
    "url_expire": "a whole number of seconds, e.g. 3600",
    "timeout": "a positive number of seconds, e.g. 10",
    "upload_timeout": "a positive number of seconds, e.g. 25",
    "max_retries": "a whole number, e.g. 2",
    "tags": "a list of strings without commas, e.g. ['product']",
    "custom_metadata": "a dict with string keys, e.g. {'team': 'web'}",
}


# --- recognising the backend ------------------------------------------------------------


def _is_our_class(obj: object) -> bool:
    """Whether ``obj`` is ``ImageKitStorage`` or a subclass, by module and qualname."""
    mro = obj.__mro__ if isinstance(obj, type) else ()
    return any(f"{klass.__module__}.{klass.__qualname__}" == BACKEND for klass in mro)


@dataclass(frozen=True)
class _Backend:
    ours: bool
    #: The imported class, for a backend outside this package (a project's subclass).
    cls: type | None = None
    #: Why a path inside this package is wrong (E004).
    problem: str | None = None


def _backend(path: object) -> _Backend:
    if not isinstance(path, str):
        return _Backend(ours=_is_our_class(path))
    if path in _DOCUMENTED_PATHS:
        return _Backend(ours=True)
    if path.strip() in _DOCUMENTED_PATHS:
        # Django's import_string does not strip.
        return _Backend(ours=True, problem="it has spaces around the dotted path")
    if path == _PACKAGE or path.startswith(f"{_PACKAGE}."):
        # Our own namespace: a path here that is not documented is a typo, and importing
        # it could import the storage (and the SDK) or fail.
        return _Backend(ours=True, problem=f"{_PACKAGE} defines no such backend")
    if path.startswith("django."):
        return _Backend(ours=False)
    try:
        obj = import_string(path)
    except (ImportError, ImproperlyConfigured):
        # Not ours to report: Django says so when the storage is first used.
        return _Backend(ours=False)
    if _is_our_class(obj):
        return _Backend(ours=True, cls=obj if isinstance(obj, type) else None)
    return _Backend(ours=False)


def _names_our_backend(value: object) -> bool:
    return _backend(value).ours


def _subclass_options(cls: type | None) -> set[str]:
    """Keyword names a project's subclass adds to ``ImageKitStorage.__init__``."""
    names: set[str] = set()
    if cls is None:
        return names
    for klass in cls.__mro__:
        if f"{klass.__module__}.{klass.__qualname__}" == BACKEND:
            break
        init = vars(klass).get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(
            parameter.name
            for parameter in parameters
            if parameter.kind in {parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY}
        )
    names.discard("self")
    return names


# --- reading STORAGES --------------------------------------------------------------------


@dataclass
class _Alias:
    """A ``STORAGES`` alias that uses ImageKitStorage and is well formed."""

    name: str
    # Keys unchecked: a non-string key is an E003 of its own.
    options: dict[object, object]
    backend: _Backend
    found: dict[str, conf.FoundValue] = field(default_factory=dict)
    parsed: dict[str, object] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"STORAGES[{self.name!r}]"


def _backend_text(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    return f"a {type(value).__name__}"


def _storages_snippet(default: str, options: str = "") -> str:
    staticfiles = _current_backend(_STATICFILES_ALIAS) or _STATICFILES_STORAGE
    options = f', "OPTIONS": {options}' if options else ""
    return (
        f'STORAGES = {{"default": {{"BACKEND": "{default}"{options}}}, '
        f'"staticfiles": {{"BACKEND": "{staticfiles}"}}}}'
    )


def _current_backend(alias: str) -> str | None:
    storages = getattr(settings, "STORAGES", None)
    if not isinstance(storages, Mapping):
        return None
    config = storages.get(alias)
    backend = config.get("BACKEND") if isinstance(config, Mapping) else None
    return backend if isinstance(backend, str) else None


def _where_media_goes() -> str:
    backend = _current_backend(_DEFAULT_ALIAS)
    if backend is None:
        return "nowhere: STORAGES has no usable 'default' alias"
    if backend == _FILE_SYSTEM_STORAGE:
        return f"{backend!r} (the local disk under MEDIA_ROOT)"
    return repr(backend)


def _malformed(ref: str, problem: str, hint: str) -> checks.CheckMessage:
    return checks.Error(
        f"{ref} names ImageKitStorage but is malformed: {problem}.",
        hint=hint,
        id=f"{_PACKAGE}.E004",
    )


def _read_alias(name: str, config: object) -> tuple[_Alias | None, bool, list[checks.CheckMessage]]:
    """``(well-formed alias or None, whether it names our backend, E004 messages)``."""
    ref = f"STORAGES[{name!r}]"
    snippet = f'{ref} = {{"BACKEND": "{BACKEND}", "OPTIONS": {{...}}}}'
    if not isinstance(config, Mapping):
        if not _names_our_backend(config):
            return None, False, []
        return (
            None,
            True,
            [_malformed(ref, f"it is {_backend_text(config)}, not a dict", f"Write {snippet}.")],
        )

    if "BACKEND" not in config:
        misspelt = [
            key
            for key in config
            if isinstance(key, str)
            and difflib.get_close_matches(key.upper().strip(), ["BACKEND"], cutoff=0.8)
            and _names_our_backend(config[key])
        ]
        options = config.get("OPTIONS")
        has_our_options = isinstance(options, Mapping) and any(
            key in options for key in ("private_key", "url_endpoint")
        )
        if not misspelt and not has_our_options:
            return None, False, []
        found = f" (found {misspelt[0]!r}: Django reads only 'BACKEND')" if misspelt else ""
        return (
            None,
            True,
            [_malformed(ref, f"it has no 'BACKEND' key{found}", f"Write {snippet}.")],
        )

    backend = _backend(config["BACKEND"])
    if not backend.ours:
        return None, False, []
    messages: list[checks.CheckMessage] = []
    if not isinstance(config["BACKEND"], str):
        messages.append(
            _malformed(
                ref,
                f"'BACKEND' is {_backend_text(config['BACKEND'])}, not a dotted path string",
                f'Write {ref}["BACKEND"] = "{BACKEND}".',
            )
        )
    elif backend.problem:
        messages.append(
            _malformed(
                ref,
                f"'BACKEND' is {config['BACKEND']!r}, but {backend.problem}",
                f'Write {ref}["BACKEND"] = "{BACKEND}".',
            )
        )
    options = config.get("OPTIONS", {})
    if not isinstance(options, Mapping):
        messages.append(
            _malformed(
                ref,
                f"'OPTIONS' is {_backend_text(options)}, not a dict",
                f'Write {ref}["OPTIONS"] = {{"location": "media", ...}} (or leave it out).',
            )
        )
    extra = [key for key in config if key not in {"BACKEND", "OPTIONS"}]
    if extra:
        messages.append(
            _malformed(
                ref,
                f"Django ignores its key {extra[0]!r} (only 'BACKEND' and 'OPTIONS' are read)",
                f"Move what it holds into {ref}['OPTIONS'], or remove it.",
            )
        )
    if messages:
        return None, True, messages
    return _Alias(name=name, options=dict(options), backend=backend), True, []


# --- per-alias checks --------------------------------------------------------------------


def _where(alias: _Alias, name: str) -> str:
    found = alias.found[name]
    if found.source == "OPTIONS":
        return f"{alias.ref}['OPTIONS'][{name!r}]"
    if found.source == "setting":
        return f"the {found.origin_name} setting"
    if found.source == "environment":
        return f"the {found.origin_name} environment variable"
    return "the default"


def _suggestion(name: str) -> str | None:
    lowered = name.lower().strip()
    for candidate in (lowered, lowered.removeprefix(conf.SETTING_PREFIX.lower())):
        if candidate in conf.OPTIONS:
            return candidate
    return conf.closest_option(lowered)


def _check_unknown_options(alias: _Alias) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    accepted = _subclass_options(alias.backend.cls)
    for key in alias.options:
        if isinstance(key, str) and (key in conf.OPTIONS or key in accepted):
            continue
        suggestion = _suggestion(key) if isinstance(key, str) else None
        if suggestion:
            hint = f"Rename it to {suggestion!r} in {alias.ref}['OPTIONS']."
        else:
            hint = f"Remove it. Valid options: {', '.join(conf.OPTIONS)}."
        messages.append(
            checks.Error(
                f"{alias.ref}['OPTIONS'] has {key!r}, which ImageKitStorage does not accept: "
                "the storage would refuse to start.",
                hint=hint,
                id=f"{_PACKAGE}.E003",
            )
        )
    return messages


def _missing(alias: _Alias, name: str, what: str, check_id: str) -> checks.CheckMessage:
    setting = conf.OPTIONS[name].setting
    return checks.Error(
        f"{alias.ref} uses ImageKitStorage, but no {what} is set: not in "
        f"{alias.ref}['OPTIONS'][{name!r}], the {setting} setting, or the {setting} "
        "environment variable.",
        hint=(
            f"Set {setting} in the environment (read it in settings.py, or let the storage "
            f"read it), or add {alias.ref}['OPTIONS'][{name!r}]: {_EXAMPLES[name]}."
        ),
        id=f"{_PACKAGE}.{check_id}",
    )


def _check_values(alias: _Alias) -> list[checks.CheckMessage]:
    """E001, E002 (missing) and E005 (refused); fills ``alias.found`` and ``alias.parsed``."""
    messages: list[checks.CheckMessage] = []
    known = {
        key: value
        for key, value in alias.options.items()
        if isinstance(key, str) and key in conf.OPTIONS
    }
    for name in conf.OPTIONS:
        alias.found[name] = found = conf.find_value(name, known)
        if found.value is conf.REQUIRED:
            what, check_id = (
                ("private key", "E001") if name == "private_key" else ("URL endpoint", "E002")
            )
            messages.append(_missing(alias, name, what, check_id))
            continue
        parsed = conf.validate_value(name, found)
        if isinstance(parsed, conf.InvalidOptionValue):
            messages.append(
                checks.Error(
                    f"{alias.ref} uses ImageKitStorage, which would refuse a value: "
                    f"{parsed.message}",
                    hint=f"Fix {_where(alias, name)}: {_EXAMPLES[name]}.",
                    id=f"{_PACKAGE}.E005",
                )
            )
            continue
        alias.parsed[name] = parsed
    return messages


def _check_keys(alias: _Alias) -> list[checks.CheckMessage]:
    """W003: keys swapped or pasted into the wrong place (only their prefix is named)."""
    messages: list[checks.CheckMessage] = []
    for name, wrong_prefix, right_prefix in (
        ("private_key", "public_", "private_"),
        ("public_key", "private_", "public_"),
    ):
        value = alias.found[name].value
        if isinstance(value, str) and value.strip().startswith(wrong_prefix):
            setting = conf.OPTIONS[name].setting
            messages.append(
                checks.Warning(
                    f"{alias.ref}: the {name.replace('_', ' ')} from {_where(alias, name)} starts "
                    f"with {wrong_prefix!r}: the private and public keys look swapped.",
                    hint=(
                        f"{name} (or {setting}) takes the key that starts with {right_prefix!r}; "
                        "copy both from ImageKit's dashboard (Developer options). The server "
                        "never needs the public key."
                    ),
                    id=f"{_PACKAGE}.W003",
                )
            )
    return messages


def _display_url(url: str) -> str:
    # Never echo a password given in a URL.
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def _check_url_endpoint(alias: _Alias) -> list[checks.CheckMessage]:
    """W004: a delivery URL the storage accepts but browsers should not get."""
    url = alias.parsed.get("url_endpoint")
    if not isinstance(url, str):
        return []
    parts = urlsplit(url)
    problem = None
    if parts.username is not None or parts.password is not None:
        problem = "contains a user name or password, and delivery URLs are public"
    elif parts.scheme != "https" and not conf.is_loopback_host(parts.hostname):
        problem = (
            f"uses {parts.scheme}:// for the host {parts.hostname!r}: image URLs would travel "
            "unencrypted, and browsers block or rewrite them on HTTPS pages (mixed content)"
        )
    if problem is None:
        return []
    return [
        checks.Warning(
            f"{alias.ref}: the URL endpoint {_display_url(url)!r} from {_where(alias, 'url_endpoint')} "
            f"{problem}.",
            hint=(
                "Use the https:// URL endpoint from ImageKit's dashboard, e.g. "
                "'https://ik.imagekit.io/your_imagekit_id', without a query or fragment "
                "(http:// only for a loopback host such as the stand-in server)."
            ),
            id=f"{_PACKAGE}.W004",
        )
    ]


def _check_staticfiles(alias: _Alias) -> list[checks.CheckMessage]:
    """W005: collectstatic would store names that {% static %} never asks for."""
    if alias.name != _STATICFILES_ALIAS or alias.parsed.get("use_unique_file_name") is not True:
        return []
    return [
        checks.Warning(
            f"{alias.ref} uses ImageKitStorage with unique file names (use_unique_file_name "
            f"from {_where(alias, 'use_unique_file_name')} is True): collectstatic would store "
            "'css/app.css' as 'css/app_Ab3dE9xQz.css', and {% static 'css/app.css' %} would "
            "point at a file that does not exist.",
            hint=(
                f'Add "use_unique_file_name": False to {alias.ref}["OPTIONS"], and '
                '"file_overwrite": True so that collectstatic replaces changed files under '
                "their own names."
            ),
            id=f"{_PACKAGE}.W005",
        )
    ]


def _check_private_files(alias: _Alias) -> list[checks.CheckMessage]:
    """W006: private files behind unsigned URLs never load."""
    if (
        alias.parsed.get("private_files") is not True
        or alias.parsed.get("signed_urls") is not False
    ):
        return []
    return [
        checks.Warning(
            f"{alias.ref} uploads private files (private_files from "
            f"{_where(alias, 'private_files')}) but signed_urls is False (from "
            f"{_where(alias, 'signed_urls')}): ImageKit refuses unsigned URLs of private "
            "files, so they would not load.",
            hint=(
                f"Remove signed_urls (it follows private_files), or set "
                f"{alias.ref}['OPTIONS']['signed_urls'] = True."
            ),
            id=f"{_PACKAGE}.W006",
        )
    ]


def _local_address(host: str | None) -> bool:
    if conf.is_loopback_host(host):
        return True
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return address.is_private or address.is_unspecified or address.is_link_local


def _check_local_hosts(alias: _Alias) -> list[checks.CheckMessage]:
    """W007 (deploy): the stand-in server's address left in production settings."""
    messages: list[checks.CheckMessage] = []
    for name, consequence, fix in (
        (
            "base_url",
            "uploads and every API call would go there instead of ImageKit",
            (
                "Unset base_url in production settings (None means ImageKit's cloud); keep "
                "it only in test or development settings."
            ),
        ),
        (
            "url_endpoint",
            "your users' browsers cannot load images from it",
            (
                "Use the URL endpoint from ImageKit's dashboard, e.g. "
                "'https://ik.imagekit.io/your_imagekit_id'."
            ),
        ),
    ):
        url = alias.parsed.get(name)
        if not isinstance(url, str):
            continue
        host = urlsplit(url).hostname
        if _local_address(host):
            messages.append(
                checks.Warning(
                    f"{alias.ref}: {name} from {_where(alias, name)} points at {host!r}, a "
                    f"loopback or private address (the test stand-in server?): {consequence}.",
                    hint=fix,
                    id=f"{_PACKAGE}.W007",
                )
            )
    return messages


# --- project-wide checks -----------------------------------------------------------------


def _user_set_default_file_storage() -> tuple[bool, object]:
    """``(whether the project set DEFAULT_FILE_STORAGE, its value)``, without the
    deprecation warning that reading ``settings.DEFAULT_FILE_STORAGE`` emits on 4.2/5.0."""
    if not settings.is_overridden("DEFAULT_FILE_STORAGE"):
        return False, None
    if django.VERSION >= (5, 1):
        value = getattr(settings, "DEFAULT_FILE_STORAGE", None)
        return value is not None, value
    return _user_set_default_file_storage_before_5_1()


def _user_set_default_file_storage_before_5_1() -> tuple[bool, object]:
    # On 4.2/5.0 every override of STORAGES (override_settings, pytest-django's `settings`)
    # also writes STORAGES["default"]["BACKEND"] into DEFAULT_FILE_STORAGE of its layer, and
    # is_overridden() counts that. Walk the layers to find a value the project itself set;
    # the layers' own attributes are read directly, which emits no deprecation warning.
    from django.conf import UserSettingsHolder

    layer: Any = getattr(settings, "_wrapped", None)
    while isinstance(layer, UserSettingsHolder):
        own = vars(layer)
        if "DEFAULT_FILE_STORAGE" in getattr(layer, "_deleted", ()):
            return False, None
        if "DEFAULT_FILE_STORAGE" in own:
            value = own["DEFAULT_FILE_STORAGE"]
            storages = own.get("STORAGES")
            mirrored = isinstance(storages, Mapping) and value == (
                (storages.get(_DEFAULT_ALIAS) or {}).get("BACKEND")
            )
            if not mirrored:
                return True, value
        layer = layer.default_settings
    is_overridden = getattr(layer, "is_overridden", None)
    if callable(is_overridden) and is_overridden("DEFAULT_FILE_STORAGE"):
        return True, getattr(layer, "DEFAULT_FILE_STORAGE", None)
    return False, None


def _check_default_file_storage() -> tuple[list[checks.CheckMessage], bool]:
    """W001, and whether DEFAULT_FILE_STORAGE names ImageKitStorage."""
    is_set, value = _user_set_default_file_storage()
    if not is_set:
        return [], False
    version = ".".join(str(part) for part in django.VERSION[:2])
    backend = value.strip() if isinstance(value, str) else "path.to.YourStorage"
    snippet = _storages_snippet(backend)
    if django.VERSION >= (5, 1):
        current = _current_backend(_DEFAULT_ALIAS)
        if current == backend:
            message = (
                f"DEFAULT_FILE_STORAGE is set to {_backend_text(value)}, but Django {version} "
                "ignores it; STORAGES['default'] already uses the same backend."
            )
            hint = "Delete the DEFAULT_FILE_STORAGE setting."
        else:
            message = (
                f"DEFAULT_FILE_STORAGE is set to {_backend_text(value)}, but Django {version} "
                f"ignores it: STORAGES['default'] uses {_where_media_goes()}, so media goes "
                "there instead."
            )
            hint = (
                f"Delete DEFAULT_FILE_STORAGE and name the backend in STORAGES (it replaces "
                f"Django's default dict, so keep the 'staticfiles' alias): {snippet}"
            )
    else:
        message = (
            f"DEFAULT_FILE_STORAGE is set to {_backend_text(value)}: deprecated. Django "
            f"{version} still copies it into STORAGES['default'], but Django 5.1 and later "
            f"ignore it, and media would silently go to {_FILE_SYSTEM_STORAGE!r} (the local "
            "disk)."
        )
        hint = (
            "Replace DEFAULT_FILE_STORAGE with STORAGES (both together are an error on "
            f"Django {version}; keep the 'staticfiles' alias): {snippet}"
        )
    return [checks.Warning(message, hint=hint, id=f"{_PACKAGE}.W001")], _names_our_backend(value)


def _configured_credentials() -> list[str]:
    where = []
    for name in ("private_key", "public_key", "url_endpoint"):
        found = conf.find_value(name, {})
        if found.source == "setting":
            where.append(f"the {found.origin_name} setting")
        elif found.source == "environment":
            where.append(f"the {found.origin_name} environment variable")
    return where


def _a_model_field_uses_imagekit() -> bool:
    """Whether a FileField was given an ImageKitStorage instance (``storage=...``)."""
    from django.apps import apps
    from django.db.models import FileField

    for model in apps.get_models():
        for model_field in model._meta.get_fields():
            if isinstance(model_field, FileField) and _is_our_class(type(model_field.storage)):
                return True
    return False


def _check_unused_credentials() -> list[checks.CheckMessage]:
    """W002: credentials are there, but nothing stores media with them."""
    where = _configured_credentials()
    if not where or _a_model_field_uses_imagekit():
        return []
    return [
        checks.Warning(
            f"ImageKit is configured ({', '.join(where)}) but no STORAGES alias uses "
            f"ImageKitStorage: media goes to {_where_media_goes()}.",
            hint=(
                "Name the backend in STORAGES: "
                f"{_storages_snippet(BACKEND)}. If these values are for something else, "
                f"silence this with SILENCED_SYSTEM_CHECKS = ['{_PACKAGE}.W002']."
            ),
            id=f"{_PACKAGE}.W002",
        )
    ]


# --- secrets -----------------------------------------------------------------------------


def _secret_values(configs: Iterable[object]) -> set[str]:
    """Every key value the project holds, to mask from messages whatever went wrong."""
    values: list[object] = []
    for config in configs:
        if not isinstance(config, Mapping):
            continue
        # Misspelt keys ("privat_key", "options") too: whatever holds something key-like.
        for options in config.values():
            if isinstance(options, Mapping):
                values.extend(
                    value
                    for key, value in options.items()
                    if "key" in str(key).lower() or conf.looks_like_key(value)
                )
    values.extend(conf.find_value(name, {}).value for name in ("private_key", "public_key"))
    strings = [value for value in values if isinstance(value, str)]
    return {text for value in strings for text in (value, value.strip()) if len(text) >= 4}


def _masked(messages: list[checks.CheckMessage], secrets: set[str]) -> list[checks.CheckMessage]:
    # Longest first, so a key that contains another is masked whole.
    ordered = sorted(secrets, key=len, reverse=True)

    def mask(text: str | None) -> str | None:
        if text is None:
            return None
        for secret in ordered:
            text = text.replace(secret, _MASK)
        return text

    masked = []
    for message in messages:
        # A copy keeps the class (Error, Warning) that callers test with isinstance.
        clean = copy.copy(message)
        clean.msg = mask(message.msg) or ""
        clean.hint = mask(message.hint)
        masked.append(clean)
    return masked


# --- registered checks -------------------------------------------------------------------


def _read_storages() -> tuple[list[_Alias], bool, list[checks.CheckMessage], list[object]]:
    """``(well-formed aliases using ImageKitStorage, whether any alias names it,
    E004 messages, every alias config)``."""
    storages = getattr(settings, "STORAGES", None)
    if not isinstance(storages, Mapping):
        message = checks.Error(
            f"The STORAGES setting is {_backend_text(storages)}, not a dict: no storage, "
            "ImageKitStorage included, can be used.",
            hint=f"Write {_storages_snippet(BACKEND)}",
            id=f"{_PACKAGE}.E004",
        )
        return [], False, [message], []
    aliases: list[_Alias] = []
    named = False
    messages: list[checks.CheckMessage] = []
    for name, config in storages.items():
        alias, names_ours, problems = _read_alias(str(name), config)
        named = named or names_ours
        messages.extend(problems)
        if alias is not None:
            aliases.append(alias)
    return aliases, named, messages, list(storages.values())


def check_storages(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """E001-E005, W001-W006."""
    aliases, named, messages, configs = _read_storages()
    for alias in aliases:
        messages.extend(_check_unknown_options(alias))
        messages.extend(_check_values(alias))
        messages.extend(_check_keys(alias))
        messages.extend(_check_url_endpoint(alias))
        messages.extend(_check_staticfiles(alias))
        messages.extend(_check_private_files(alias))
    w001, default_file_storage_is_ours = _check_default_file_storage()
    messages.extend(w001)
    if not named and not default_file_storage_is_ours:
        messages.extend(_check_unused_credentials())
    return _masked(messages, _secret_values(configs))


def check_deploy(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """W007 (``check --deploy`` only)."""
    aliases, _named, _messages, configs = _read_storages()
    messages: list[checks.CheckMessage] = []
    for alias in aliases:
        # Fills alias.parsed; its own messages belong to check_storages.
        _check_values(alias)
        messages.extend(_check_local_hosts(alias))
    return _masked(messages, _secret_values(configs))
