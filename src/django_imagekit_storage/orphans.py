"""Files a storage holds that no database row references: the engine of ``imagekit_orphans``.

``find_orphans`` reads every referenced name (all ``FileField``/``ImageField`` columns on the
alias, plus, conservatively, those on other storages sharing its class, which may hold the
same files: see ``inventory.same_backend``; their names are placed relative to the scanned
storage's location) and streams the storage's listing against it. ``delete_orphans``
removes only files older than the cut-off, re-checking the database for each file right
before deleting it, so a row saved meanwhile keeps its file. On ``ImageKitStorage`` each
file is deleted by the file id the listing gave (``delete_file``): one request, no search,
and a file uploaded under the same name after the listing is another file, left alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.utils import timezone as django_timezone

from django_imagekit_storage.exceptions import ImageKitStorageError
from django_imagekit_storage.inventory import (
    CHUNK_SIZE,
    FieldRef,
    SkippedField,
    list_stored,
    referenced_among,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from django.core.files.storage import Storage

    from django_imagekit_storage.storage import FileInfo

__all__ = ["Orphan", "OrphanReport", "delete_orphans", "find_orphans"]

logger = logging.getLogger(__name__)

#: The default ``--older-than``: a file uploaded moments ago may have a row about to be saved.
DEFAULT_MIN_AGE = timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Orphan:
    name: str
    size: int | None
    created_at: datetime | None
    #: Old enough for ``--delete``; otherwise ``kept_because`` says why not.
    deletable: bool
    kept_because: str | None = None
    #: ImageKit's record of the listed file (its file id): what ``--delete`` deletes.
    file: FileInfo | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "size": self.size,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "deletable": self.deletable,
            "kept_because": self.kept_because,
        }


@dataclasses.dataclass
class OrphanReport:
    alias: str
    fields: list[str]
    #: Columns on other storages sharing its class whose names were counted as references too.
    also_counted: list[str]
    skipped_fields: list[SkippedField]
    min_age: timedelta
    exclude: list[str]
    started_at: datetime
    scanned: int = 0
    excluded: int = 0
    orphans: list[Orphan] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    #: Deletable orphans already deleted by someone else when their turn came (by file id:
    #: a file uploaded under the same name since the listing is another file, kept).
    already_gone: list[str] = dataclasses.field(default_factory=list)
    #: Deletable orphans a row started referencing after the listing: kept.
    now_referenced: list[str] = dataclasses.field(default_factory=list)
    delete_failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: ``--delete`` was stopped by Ctrl-C: ``deleted`` lists what is gone.
    interrupted: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(orphan.size or 0 for orphan in self.orphans)

    @property
    def deletable(self) -> list[Orphan]:
        return [orphan for orphan in self.orphans if orphan.deletable]

    @property
    def deletable_bytes(self) -> int:
        return sum(orphan.size or 0 for orphan in self.deletable)

    def to_dict(self) -> dict[str, Any]:
        """The ``--report`` JSON document (see docs/migrating.md)."""
        return {
            "command": "imagekit_orphans",
            "alias": self.alias,
            "started_at": self.started_at.isoformat(),
            "fields": self.fields,
            "also_counted": self.also_counted,
            "skipped_fields": [field.to_dict() for field in self.skipped_fields],
            "older_than_days": self.min_age / timedelta(days=1),
            "exclude": self.exclude,
            "interrupted": self.interrupted,
            "totals": {
                "scanned": self.scanned,
                "excluded": self.excluded,
                "orphans": len(self.orphans),
                "orphan_bytes": self.total_bytes,
                "deletable": len(self.deletable),
                "deletable_bytes": self.deletable_bytes,
                "deleted": len(self.deleted),
                "already_gone": len(self.already_gone),
                "now_referenced": len(self.now_referenced),
                "delete_failed": len(self.delete_failed),
            },
            "orphans": [orphan.to_dict() for orphan in self.orphans],
            "deleted": self.deleted,
            "already_gone": self.already_gone,
            "now_referenced": self.now_referenced,
            "delete_failed": [{"name": n, "error": e} for n, e in self.delete_failed],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def _aware(value: datetime | None) -> datetime | None:
    # FileSystemStorage answers naive local times when USE_TZ is off.
    if value is not None and django_timezone.is_naive(value):
        return django_timezone.make_aware(value)
    return value


def _storage_location(storage: object) -> str | None:
    """The folder ``storage`` keeps its names in, as ``a/b`` ("" for the root), if known."""
    from django_imagekit_storage.storage import ImageKitStorage

    if isinstance(storage, ImageKitStorage):
        location: object = storage.settings.location
    else:
        location = getattr(storage, "location", None)  # FileSystemStorage, S3Storage...
    if not isinstance(location, str):
        return None
    return location.replace("\\", "/").strip("/")


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _relative(path: str, folder: str) -> str | None:
    if not folder:
        return path
    return path[len(folder) + 1 :] if path.startswith(f"{folder}/") else None


@dataclasses.dataclass(frozen=True)
class _Column:
    """A column whose names count as references, and how its names map to the listing.

    A column of another alias names files relative to its own storage's location: with
    locations "media" (scanned) and "media/private" (the column's), its "a.pdf" is the
    listing's "private/a.pdf". With either location unknown, names are compared as they are.
    """

    ref: FieldRef
    #: The column's storage location and the scanned storage's, when both are known.
    locations: tuple[str, str] | None = None

    def to_listing(self, name: str) -> str | None:
        """``name`` as the scanned storage lists it, or None if it is outside that storage."""
        if self.locations is None:
            return name
        own, scanned = self.locations
        return _relative(_join(own, name), scanned)

    def from_listing(self, name: str) -> str | None:
        """A listed name as this column would hold it, or None if it cannot."""
        if self.locations is None:
            return name
        own, scanned = self.locations
        return _relative(_join(scanned, name), own)


def _reference_columns(
    storage: Storage, fields: Sequence[FieldRef], skipped: Sequence[SkippedField]
) -> list[_Column]:
    columns = [_Column(ref) for ref in fields]
    scanned = _storage_location(storage)
    for field in skipped:
        if field.same_backend:
            own = _storage_location(field.ref.storage)
            both = None if own is None or scanned is None else (own, scanned)
            columns.append(_Column(field.ref, both))
    return columns


def _referenced_names(columns: Sequence[_Column]) -> set[str]:
    """Every name the columns reference, as the scanned storage lists it (streamed rows)."""
    referenced: set[str] = set()
    for column in columns:
        for name in column.ref.names_queryset().iterator(chunk_size=CHUNK_SIZE):
            listed = column.to_listing(name)
            if listed is not None:
                referenced.add(listed)
    return referenced


def _referenced_now(columns: Sequence[_Column], names: Sequence[str]) -> set[str]:
    """Which listed ``names`` some row references at this moment."""
    found: set[str] = set()
    for column in columns:
        held = {own: name for name in names if (own := column.from_listing(name)) is not None}
        if held:
            found.update(held[hit] for hit in referenced_among([column.ref], list(held)))
    return found


def find_orphans(
    storage: Storage,
    *,
    alias: str,
    fields: Sequence[FieldRef],
    skipped_fields: Sequence[SkippedField] = (),
    min_age: timedelta = DEFAULT_MIN_AGE,
    exclude: Sequence[str] = (),
    now: datetime | None = None,
) -> OrphanReport:
    """List the files ``storage`` holds that no row references (nothing is deleted)."""
    if min_age < timedelta(0):
        raise ValueError(f"min_age must not be negative, got {min_age}")
    now = now or datetime.now(timezone.utc)
    report = OrphanReport(
        alias=alias,
        fields=[ref.label for ref in fields],
        also_counted=[field.label for field in skipped_fields if field.same_backend],
        skipped_fields=list(skipped_fields),
        min_age=min_age,
        exclude=list(exclude),
        started_at=now,
    )
    from django_imagekit_storage.storage import FileInfo

    referenced = _referenced_names(_reference_columns(storage, fields, skipped_fields))
    cutoff = now - min_age
    for entry in list_stored(storage, with_times=True):
        report.scanned += 1
        if entry.name in referenced:
            continue
        if any(entry.name.startswith(prefix) for prefix in exclude):
            report.excluded += 1
            continue
        created = _aware(entry.created_at)
        if created is None:
            kept: str | None = "its age is unknown"
        elif created > cutoff:
            kept = "newer than --older-than"
        else:
            kept = None
        info = entry.info if isinstance(entry.info, FileInfo) else None
        report.orphans.append(Orphan(entry.name, entry.size, created, kept is None, kept, info))
    return report


def delete_orphans(
    storage: Storage,
    report: OrphanReport,
    *,
    fields: Sequence[FieldRef],
    skipped_fields: Sequence[SkippedField] = (),
    on_deleted: Callable[[str], None] | None = None,
) -> None:
    """Delete ``report``'s deletable orphans, recording the outcome in ``report``.

    Each file is checked against the database again right before its delete, so a row saved
    at any point of the run keeps its file (one query per column and file: cheap next to the
    delete's own requests). On ``ImageKitStorage`` the listed file is deleted by its file id
    (one request, no search): a file uploaded under the same name since the listing is not
    touched, and one already gone is recorded in ``report.already_gone``. Other storages
    delete by name. One failed delete does not stop the others.
    """
    from django_imagekit_storage.storage import ImageKitStorage

    columns = _reference_columns(storage, fields, skipped_fields)
    for orphan in report.deletable:
        name = orphan.name
        if _referenced_now(columns, [name]):
            report.now_referenced.append(name)
            continue
        try:
            if orphan.file is not None and isinstance(storage, ImageKitStorage):
                deleted = storage.delete_file(orphan.file)
            else:
                storage.delete(name)
                deleted = True
        except (ImageKitStorageError, OSError) as error:
            logger.info("Deleting orphan %r failed: %s", name, error)
            report.delete_failed.append((name, f"{type(error).__name__}: {error}"))
            continue
        if not deleted:
            report.already_gone.append(name)
            continue
        report.deleted.append(name)
        if on_deleted is not None:
            on_deleted(name)
