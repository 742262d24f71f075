"""What the database references and what a storage holds, for the migrate and orphans commands.

``discover_fields`` finds the ``FileField``/``ImageField`` columns whose storage is a given
``STORAGES`` alias; ``iter_referenced_names`` streams the distinct names they hold without
loading model instances. ``list_stored`` streams the files a storage holds: through
``ImageKitStorage.iter_files`` (one paginated listing) or, for any other Django storage, by
walking ``listdir``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils.functional import LazyObject, empty

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from datetime import datetime

    from django.core.files import File

__all__ = [
    "FieldRef",
    "InventoryError",
    "SkippedField",
    "StoredEntry",
    "alias_of",
    "count_referenced",
    "discover_fields",
    "field_storage",
    "get_storage",
    "has_native_listing",
    "iter_referenced_names",
    "list_stored",
    "referenced_among",
    "resolve_models",
    "same_backend",
]

# Rows read per database round trip when streaming names.
CHUNK_SIZE = 2000


class InventoryError(ImproperlyConfigured):
    """An alias or model label given on the command line does not exist."""


@dataclasses.dataclass(frozen=True)
class FieldRef:
    """A file column whose storage is the alias being worked on."""

    model: type[models.Model]
    field_name: str

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field_name}"

    @property
    def storage(self) -> object:
        """The storage instance this column uses right now."""
        return field_storage(cast("models.FileField", self.model._meta.get_field(self.field_name)))

    def names_queryset(self) -> models.QuerySet[models.Model, str]:
        """The distinct non-empty names in this column, unordered."""
        manager = self.model._base_manager
        names: models.QuerySet[models.Model, str] = (
            manager.exclude(**{f"{self.field_name}__isnull": True})
            .exclude(**{self.field_name: ""})
            .order_by()
            .values_list(self.field_name, flat=True)
            .distinct()
        )
        return names


@dataclasses.dataclass(frozen=True)
class SkippedField:
    """A file column on another storage: listed, never touched."""

    label: str
    #: The ``STORAGES`` alias of its storage, or the storage's class path if it has none.
    storage: str
    ref: FieldRef = dataclasses.field(compare=False, repr=False)
    #: Its storage's class and the target's share a backend class: it may share files.
    same_backend: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "storage": self.storage}


@dataclasses.dataclass(frozen=True)
class StoredEntry:
    """A file a storage holds, as the commands need it."""

    name: str
    size: int | None
    created_at: datetime | None
    #: The storage's own record of the file when it lists natively (``ImageKitStorage``:
    #: its ``FileInfo``, whose file id lets the orphans command delete exactly this file).
    info: object = dataclasses.field(default=None, compare=False, repr=False)


def get_storage(alias: str) -> Storage:
    """``storages[alias]`` with an error that lists the configured aliases."""
    from django.conf import settings

    configured = list(getattr(settings, "STORAGES", {}))
    if alias not in configured:
        raise InventoryError(
            f"No storage alias {alias!r} in settings.STORAGES; configured aliases: "
            f"{', '.join(repr(name) for name in configured) or 'none'}."
        )
    return storages[alias]


def _unwrap(storage: object) -> object:
    # default_storage and similar lazy wrappers: compare what they wrap.
    if isinstance(storage, LazyObject):
        if storage._wrapped is empty:
            storage._setup()
        return storage._wrapped
    return storage


def field_storage(field: models.FileField) -> object:
    """The storage instance a file field uses right now.

    A callable ``storage=`` is evaluated once at class creation; calling it again follows
    ``STORAGES`` changes (tests, settings overrides), as ``storages[alias]`` does.
    """
    callable_storage = getattr(field, "_storage_callable", None)
    if callable(callable_storage):
        return _unwrap(callable_storage())
    return _unwrap(field.storage)


def alias_of(storage: object) -> str:
    """The ``STORAGES`` alias whose instance is ``storage``, or its class path."""
    from django.conf import settings

    for alias in getattr(settings, "STORAGES", {}):
        if storages[alias] is storage:
            return str(alias)
    cls = type(storage)
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_models(labels: Sequence[str] | None) -> list[type[models.Model]]:
    """Installed concrete models, or the ``app_label.ModelName`` ones given."""
    if not labels:
        return [
            model
            for model in apps.get_models()
            if not model._meta.proxy and not model._meta.abstract
        ]
    resolved: list[type[models.Model]] = []
    for label in labels:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError) as error:
            raise InventoryError(
                f"Unknown model {label!r}: write it as app_label.ModelName ({error})."
            ) from error
        if model not in resolved:
            resolved.append(model)
    return resolved


def discover_fields(
    alias: str, model_labels: Sequence[str] | None = None
) -> tuple[list[FieldRef], list[SkippedField]]:
    """File columns on ``alias``'s storage, and the file columns on other storages."""
    target = get_storage(alias)
    matched: list[FieldRef] = []
    skipped: list[SkippedField] = []
    for model in resolve_models(model_labels):
        # Local fields only: an inherited column belongs to (and is read through) its parent.
        for field in model._meta.local_fields:
            if not isinstance(field, models.FileField):
                continue
            storage = field_storage(field)
            ref = FieldRef(model, field.name)
            if storage is target:
                matched.append(ref)
            else:
                same = same_backend(storage, target)
                skipped.append(SkippedField(ref.label, alias_of(storage), ref, same))
    return matched, skipped


def same_backend(one: object, other: object) -> bool:
    """Whether two storages may keep files in the same place: their classes share a backend
    class, a base below Django's ``Storage`` (``ImageKitStorage`` for a project's
    ``PublicMedia`` and ``PrivateMedia`` subclasses, ``FileSystemStorage``...)."""
    other_type = type(other)
    return any(
        base is not Storage and issubclass(base, Storage) and issubclass(other_type, base)
        for base in type(one).__mro__
    )


def iter_referenced_names(fields: Iterable[FieldRef]) -> Iterator[tuple[str, FieldRef]]:
    """Each distinct name once, with the first column that references it.

    Rows are streamed (``values_list`` + ``iterator``), so memory holds the names seen, never
    model instances.
    """
    seen: set[str] = set()
    for ref in fields:
        for name in ref.names_queryset().iterator(chunk_size=CHUNK_SIZE):
            if name in seen:
                continue
            seen.add(name)
            yield name, ref


def count_referenced(fields: Iterable[FieldRef]) -> int:
    """Distinct names per column, summed: an upper bound when columns share files."""
    return sum(ref.names_queryset().count() for ref in fields)


def referenced_among(fields: Sequence[FieldRef], names: Sequence[str]) -> set[str]:
    """Which of ``names`` some row references now (one query per column and batch)."""
    found: set[str] = set()
    for start in range(0, len(names), 500):
        batch = names[start : start + 500]
        for ref in fields:
            found.update(ref.names_queryset().filter(**{f"{ref.field_name}__in": batch}))
    return found


@runtime_checkable
class _Listing(Protocol):
    # ImageKitStorage's listing and exact-name upload (see storage.py).
    def iter_files(self, prefix: str = "") -> Iterator[_Info]: ...

    def save_exact(self, name: str, content: File[Any], *, overwrite: bool = False) -> _Info: ...


class _Info(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def created_at(self) -> datetime | None: ...


def has_native_listing(storage: object) -> bool:
    """Whether ``storage`` lists and uploads exactly by itself (``ImageKitStorage``)."""
    return isinstance(storage, _Listing)


def list_stored(storage: Storage, *, with_times: bool = False) -> Iterator[StoredEntry]:
    """Every file ``storage`` holds, recursively, with its size (and creation time if asked).

    ``ImageKitStorage`` answers with one paginated listing; other storages are walked with
    ``listdir`` (one ``size`` call per file, and ``get_created_time`` if ``with_times``).
    """
    if has_native_listing(storage):
        for info in cast("_Listing", storage).iter_files():
            yield StoredEntry(info.name, info.size, info.created_at, info)
        return
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            dirs, files = storage.listdir(folder)
        except FileNotFoundError:
            if folder:
                raise
            return  # a folder storage whose root was never created holds nothing
        prefix = f"{folder}/" if folder else ""
        pending.extend(f"{prefix}{name}" for name in sorted(dirs, reverse=True))
        for filename in sorted(files):
            name = f"{prefix}{filename}"
            created = _created_time(storage, name) if with_times else None
            yield StoredEntry(name, storage.size(name), created)


def _created_time(storage: Storage, name: str) -> datetime | None:
    try:
        return storage.get_created_time(name)
    except NotImplementedError:
        return None
