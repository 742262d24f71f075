"""Files a storage holds that no database row references: the engine of ``imagekit_orphans``.

``find_orphans`` reads every referenced name (all ``FileField``/``ImageField`` columns on the
alias, plus, conservatively, those on other storages of the same class, which may share the
same files) and streams the storage's listing against it. ``delete_orphans`` removes only
files older than the cut-off, re-checking the database for each batch right before deleting,
so a row saved meanwhile keeps its file.
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
    FieldRef,
    SkippedField,
    iter_referenced_names,
    list_stored,
    referenced_among,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from django.core.files.storage import Storage

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
    #: Columns on other storages of the same class whose names were counted as references too.
    also_counted: list[str]
    skipped_fields: list[SkippedField]
    min_age: timedelta
    exclude: list[str]
    started_at: datetime
    scanned: int = 0
    excluded: int = 0
    orphans: list[Orphan] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    #: Deletable orphans a row started referencing after the listing: kept.
    now_referenced: list[str] = dataclasses.field(default_factory=list)
    delete_failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)

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
            "totals": {
                "scanned": self.scanned,
                "excluded": self.excluded,
                "orphans": len(self.orphans),
                "orphan_bytes": self.total_bytes,
                "deletable": len(self.deletable),
                "deletable_bytes": self.deletable_bytes,
                "deleted": len(self.deleted),
                "now_referenced": len(self.now_referenced),
                "delete_failed": len(self.delete_failed),
            },
            "orphans": [orphan.to_dict() for orphan in self.orphans],
            "deleted": self.deleted,
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


def _reference_fields(
    fields: Sequence[FieldRef], skipped: Sequence[SkippedField]
) -> list[FieldRef]:
    return [*fields, *(field.ref for field in skipped if field.same_backend)]


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
    referenced = {
        name for name, _ in iter_referenced_names(_reference_fields(fields, skipped_fields))
    }
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
        report.orphans.append(Orphan(entry.name, entry.size, created, kept is None, kept))
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

    Each batch is checked against the database again first; one failed delete does not stop
    the others.
    """
    reference_fields = _reference_fields(fields, skipped_fields)
    candidates = [orphan.name for orphan in report.deletable]
    batch_size = 200
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start : start + batch_size]
        now_referenced = referenced_among(reference_fields, batch)
        for name in batch:
            if name in now_referenced:
                report.now_referenced.append(name)
                continue
            try:
                storage.delete(name)
            except (ImageKitStorageError, OSError) as error:
                logger.info("Deleting orphan %r failed: %s", name, error)
                report.delete_failed.append((name, f"{type(error).__name__}: {error}"))
                continue
            report.deleted.append(name)
            if on_deleted is not None:
                on_deleted(name)
