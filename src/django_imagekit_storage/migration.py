"""Copy the files the database references from one storage to another, keeping every name.

The engine behind ``manage.py imagekit_migrate``. The destination is listed once into a
``name -> size`` map; each referenced name is then handled by a worker thread: a file
missing at the source is listed (not a failure), a file already at the destination with the
same size is skipped, anything else is streamed from the source and uploaded under exactly
its name. One failure never stops the run; the source is only ever read.

Stopping: setting the ``stop`` event stops scheduling and lets the uploads in flight finish;
a ``KeyboardInterrupt`` in the calling thread abandons them (their results are unknown, and
ImageKit never keeps half an upload, so the next run checks them again).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import queue
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File

from django_imagekit_storage.exceptions import ImageKitFileExistsError, ImageKitStorageError
from django_imagekit_storage.inventory import (
    FieldRef,
    SkippedField,
    has_native_listing,
    iter_referenced_names,
    list_stored,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from django.core.files.storage import Storage

__all__ = [
    "DEFAULT_WORKERS",
    "FileResult",
    "MigrationError",
    "MigrationReport",
    "Outcome",
    "migrate_files",
]

logger = logging.getLogger(__name__)

#: Threads copying at once unless told otherwise: uploads wait on the network, not the CPU,
#: but a small machine (and ImageKit's rate limits) are better served by a few.
DEFAULT_WORKERS = 4

_MISSING = object()


class MigrationError(Exception):
    """A file could not be placed at the destination under its exact name."""


class Outcome(str, enum.Enum):
    COPIED = "copied"
    PRESENT = "present"  # already at the destination with the same size
    WOULD_COPY = "would_copy"  # --dry-run
    MISSING = "missing"  # referenced, but not at the source
    FAILED = "failed"
    ABANDONED = "abandoned"  # in flight when the run was interrupted: state unknown


@dataclasses.dataclass(frozen=True)
class FileResult:
    name: str
    field: str
    outcome: Outcome
    size: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "field": self.field}
        if self.size is not None:
            data["size"] = self.size
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclasses.dataclass
class MigrationReport:
    source: str
    destination: str
    dry_run: bool
    verify: bool
    fields: list[str]
    skipped_fields: list[SkippedField]
    started_at: datetime
    finished_at: datetime | None = None
    interrupted: bool = False
    #: Name and size of each file copied (or that would be, with ``dry_run``).
    copied: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    present: int = 0
    present_bytes: int = 0
    missing: list[FileResult] = dataclasses.field(default_factory=list)
    failed: list[FileResult] = dataclasses.field(default_factory=list)
    abandoned: list[FileResult] = dataclasses.field(default_factory=list)
    verified: int = 0

    @property
    def copied_bytes(self) -> int:
        return sum(size for _, size in self.copied)

    @property
    def referenced(self) -> int:
        """Distinct names handled (not counting those never scheduled after a stop)."""
        return (
            len(self.copied)
            + self.present
            + len(self.missing)
            + len(self.failed)
            + len(self.abandoned)
        )

    @property
    def ok(self) -> bool:
        """No failure and not interrupted (missing source files do not count)."""
        return not self.failed and not self.interrupted

    def add(self, result: FileResult) -> None:
        if result.outcome in {Outcome.COPIED, Outcome.WOULD_COPY}:
            self.copied.append((result.name, result.size or 0))
        elif result.outcome is Outcome.PRESENT:
            self.present += 1
            self.present_bytes += result.size or 0
        elif result.outcome is Outcome.MISSING:
            self.missing.append(result)
        elif result.outcome is Outcome.ABANDONED:
            self.abandoned.append(result)
        else:
            self.failed.append(result)

    def to_dict(self) -> dict[str, Any]:
        """The ``--report`` JSON document (see docs/migrating.md)."""
        key = "would_copy" if self.dry_run else "copied"
        return {
            "command": "imagekit_migrate",
            "source": self.source,
            "destination": self.destination,
            "dry_run": self.dry_run,
            "verify": self.verify,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "interrupted": self.interrupted,
            "fields": self.fields,
            "skipped_fields": [field.to_dict() for field in self.skipped_fields],
            "totals": {
                "referenced": self.referenced,
                key: len(self.copied),
                f"{key}_bytes": self.copied_bytes,
                "present": self.present,
                "present_bytes": self.present_bytes,
                "missing": len(self.missing),
                "failed": len(self.failed),
                "abandoned": len(self.abandoned),
                "verified": self.verified,
            },
            key: [{"name": name, "size": size} for name, size in self.copied],
            "missing": [result.to_dict() for result in self.missing],
            "failed": [result.to_dict() for result in self.failed],
            "abandoned": [result.to_dict() for result in self.abandoned],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


class _ExactSaver(Protocol):
    def save_exact(self, name: str, content: File[Any], *, overwrite: bool = False) -> object: ...


def _unstorable(destination: Storage, name: str) -> str | None:
    """Why ``destination`` cannot hold ``name`` exactly (so the row would break), if it can't."""
    from django_imagekit_storage.storage import ImageKitStorage, clean_file_name

    if not isinstance(destination, ImageKitStorage):
        return None
    try:
        # The storage's own rule, so the two cannot drift apart.
        stored = clean_file_name(name)
    except SuspiciousFileOperation as error:
        return f"ImageKitStorage refuses this name ({error}); rename the file and its rows first"
    if stored == name:
        return None
    return (
        f"ImageKit would store this name as {stored!r} (it keeps only ASCII letters, digits, "
        "'.', '_' and '-', and no empty folders), so the row would no longer find it; "
        "rename the file and its rows first"
    )


def _save_exact(
    destination: Storage, name: str, content: File[Any], *, overwrite: bool
) -> int | None:
    """Store ``content`` under exactly ``name``; the size the destination reports, if it does."""
    if has_native_listing(destination):
        info = cast("_ExactSaver", destination).save_exact(name, content, overwrite=overwrite)
        stored = getattr(info, "name", name)
        if stored != name:
            raise MigrationError(
                f"the destination stored {name!r} as {stored!r}; rows still say {name!r}"
            )
        stored_size = getattr(info, "size", None)
        return stored_size if isinstance(stored_size, int) else None
    # Any other Django storage: refuse to let it pick an alternative name.
    if destination.exists(name):
        if not overwrite:
            raise FileExistsError(f"{name!r} already exists at the destination")
        destination.delete(name)
    stored = destination.save(name, content)
    if stored != name:
        raise MigrationError(
            f"the destination stored {name!r} as {stored!r} (another file took the name "
            f"meanwhile?); {stored!r} is a stray copy you may delete"
        )
    return None  # Storage.save() does not say; --verify compares sizes


def _describe(error: Exception, source_size: int, dest_size: object) -> str:
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, (ImageKitFileExistsError, FileExistsError)):
        there = "of unknown size" if dest_size is None else f"of {dest_size} bytes"
        text += (
            f" (the destination holds a different file {there}; the source has "
            f"{source_size} bytes: delete one of them or re-run with --overwrite)"
        )
    return text


class _Pool:
    """Daemon worker threads: an interrupted run can leave without waiting for them."""

    def __init__(self, workers: int, work: Callable[[str, FieldRef], FileResult]) -> None:
        self._work = work
        self.tasks: queue.SimpleQueue[tuple[str, FieldRef] | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[FileResult] = queue.SimpleQueue()
        self.threads = [
            threading.Thread(target=self._run, name=f"imagekit-migrate-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while (task := self.tasks.get()) is not None:
            name, ref = task
            try:
                result = self._work(name, ref)
            except Exception as error:
                # Deliberately broad, the one place it is: the pool's boundary. The source
                # may be any Django storage, whose errors (botocore's ClientError, Google's,
                # Azure's...) share no narrower base; a narrower clause would let one file's
                # error end this thread instead of becoming that file's reported failure.
                # Nothing is lost: the type and message go to the report, the traceback to
                # the log.
                logger.debug("Copying %r failed", name, exc_info=True)
                result = FileResult(
                    name, ref.label, Outcome.FAILED, error=f"{type(error).__name__}: {error}"
                )
            self.results.put(result)

    def check_alive(self) -> None:
        """Raise if a thread ended early (a ``BaseException`` such as ``SystemExit`` escaped
        ``_work``): its file would never report, and the run would wait for it forever."""
        dead = [thread.name for thread in self.threads if not thread.is_alive()]
        if dead:
            raise MigrationError(
                f"Copy thread(s) {', '.join(dead)} stopped without finishing their file (see "
                "the error above); run the command again to continue where it stopped."
            )

    def drain_unstarted(self) -> list[tuple[str, FieldRef]]:
        unstarted: list[tuple[str, FieldRef]] = []
        while True:
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                return unstarted
            if task is not None:
                unstarted.append(task)

    def close(self, *, wait: bool) -> None:
        for _ in self.threads:
            self.tasks.put(None)
        if wait:
            for thread in self.threads:
                thread.join()


def migrate_files(
    *,
    source: Storage,
    destination: Storage,
    fields: Sequence[FieldRef],
    source_alias: str,
    destination_alias: str,
    skipped_fields: Sequence[SkippedField] = (),
    workers: int = DEFAULT_WORKERS,
    dry_run: bool = False,
    verify: bool = False,
    overwrite: bool = False,
    stop: threading.Event | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> MigrationReport:
    """Copy every file ``fields`` reference from ``source`` to ``destination``.

    ``on_result`` is called in the calling thread for each file as it finishes (progress,
    listings). Returns the report; never raises for a single file.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    stop = stop or threading.Event()
    report = MigrationReport(
        source=source_alias,
        destination=destination_alias,
        dry_run=dry_run,
        verify=verify,
        fields=[ref.label for ref in fields],
        skipped_fields=list(skipped_fields),
        started_at=datetime.now(timezone.utc),
    )
    # One listing of the destination instead of one search per file.
    present = {entry.name: entry.size for entry in list_stored(destination)}
    to_verify: list[tuple[str, str, int]] = []

    def work(name: str, ref: FieldRef) -> FileResult:
        size = _source_size(source, name)
        if size is None:
            return FileResult(name, ref.label, Outcome.MISSING)
        there = present.get(name, _MISSING)
        if there == size:
            return FileResult(name, ref.label, Outcome.PRESENT, size)
        problem = _unstorable(destination, name)
        if problem is not None:
            raise MigrationError(problem)
        if dry_run:
            if there is not _MISSING and not overwrite:
                # What the real run would do: refuse to replace a different file.
                error = FileExistsError(f"{name!r} already exists at the destination")
                raise MigrationError(_describe(error, size, there))
            return FileResult(name, ref.label, Outcome.WOULD_COPY, size)
        try:
            with source.open(name, "rb") as handle:
                stored = _save_exact(
                    destination, name, File(handle, name=name), overwrite=overwrite
                )
        except (ImageKitFileExistsError, FileExistsError) as error:
            # The name was taken after the listing (another run, a lost answer): look again.
            now = _destination_size(destination, name)
            if now == size:
                return FileResult(name, ref.label, Outcome.PRESENT, size)
            raise MigrationError(_describe(error, size, now)) from error
        if stored is not None and stored != size:
            # The stream ended early or the source changed while it was read.
            raise MigrationError(
                f"ImageKit stored {stored} bytes, the source has {size}: the file changed or "
                "its read was cut short; run the command again with --overwrite to replace it"
            )
        return FileResult(name, ref.label, Outcome.COPIED, size)

    def finished(result: FileResult) -> None:
        report.add(result)
        if verify and result.outcome in {Outcome.COPIED, Outcome.PRESENT}:
            to_verify.append((result.name, result.field, result.size or 0))
        if on_result is not None:
            on_result(result)

    pool = _Pool(workers, work)
    in_flight: dict[str, FieldRef] = {}
    names: Iterator[tuple[str, FieldRef]] = iter_referenced_names(fields)
    limit = workers * 2  # a little queued work keeps threads busy; memory stays bounded
    try:
        exhausted = False
        while True:
            while not exhausted and not stop.is_set() and len(in_flight) < limit:
                task = next(names, None)
                if task is None:
                    exhausted = True
                    break
                in_flight[task[0]] = task[1]
                pool.tasks.put(task)
            if stop.is_set():
                unstarted = pool.drain_unstarted()
                for name, _ in unstarted:
                    del in_flight[name]  # never started: the next run does them
                # A stop after the last name was scheduled interrupts nothing.
                report.interrupted = report.interrupted or not exhausted or bool(unstarted)
            if not in_flight:
                break
            try:
                result = pool.results.get(timeout=0.2)
            except queue.Empty:
                pool.check_alive()
                continue
            del in_flight[result.name]
            finished(result)
        pool.close(wait=True)
    except KeyboardInterrupt:
        report.interrupted = True
        for name, _ in pool.drain_unstarted():
            del in_flight[name]
        while True:  # results that arrived before the interrupt still count
            try:
                result = pool.results.get_nowait()
            except queue.Empty:
                break
            in_flight.pop(result.name, None)
            finished(result)
        for name, ref in in_flight.items():
            finished(FileResult(name, ref.label, Outcome.ABANDONED))
        pool.close(wait=False)
    except BaseException:
        # A database error reading names, a broken stdout in on_result: stop the workers.
        pool.drain_unstarted()
        pool.close(wait=False)
        raise
    if verify and not dry_run and not report.interrupted:
        _verify(destination, to_verify, report)
    report.finished_at = datetime.now(timezone.utc)
    return report


def _source_size(source: Storage, name: str) -> int | None:
    """The file's size at the source, or ``None`` if it is not there."""
    try:
        return source.size(name)
    except FileNotFoundError:
        return None
    except Exception:
        # Broad on purpose, and never swallowing: some backends raise their own error for a
        # missing file (django-storages' S3 raised botocore's ClientError), and a missing
        # file must be listed as missing, not failed. Unless the source confirms the file
        # is not there, the error goes on to the pool's boundary as this file's failure.
        if not source.exists(name):
            return None
        raise


def _destination_size(destination: Storage, name: str) -> int | None:
    """The size of the file ``destination`` holds under ``name`` now, if it can tell."""
    try:
        return destination.size(name)
    except (FileNotFoundError, ImageKitStorageError) as error:
        logger.debug("Size of %r at the destination unknown: %s", name, error)
        return None


def _verify(
    destination: Storage, expected: list[tuple[str, str, int]], report: MigrationReport
) -> None:
    """Compare each copied or skipped file's size with a fresh listing of the destination."""
    sizes: Mapping[str, int | None] = {entry.name: entry.size for entry in list_stored(destination)}
    for name, field, size in expected:
        found = sizes.get(name, _MISSING)
        if found is _MISSING:
            problem = "not found at the destination after copying"
        elif found != size:
            problem = f"the destination holds {found} bytes, the source {size}"
        else:
            report.verified += 1
            continue
        report.failed.append(
            FileResult(name, field, Outcome.FAILED, size, error=f"verify: {problem}")
        )
