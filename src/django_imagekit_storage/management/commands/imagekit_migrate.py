"""``manage.py imagekit_migrate --from ALIAS [--to ALIAS]``: copy referenced media, keeping names.

Thin: parses arguments, wires progress and Ctrl-C, prints the report. The work is in
``django_imagekit_storage.migration`` (see docs/migrating.md).
"""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_imagekit_storage.inventory import (
    InventoryError,
    count_referenced,
    discover_fields,
    get_storage,
)
from django_imagekit_storage.management.exit_status import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
)
from django_imagekit_storage.management.report_file import check_report_path, write_report
from django_imagekit_storage.migration import (
    DEFAULT_WORKERS,
    FileResult,
    MigrationError,
    MigrationReport,
    Outcome,
    migrate_files,
)
from django_imagekit_storage.progress import Progress, format_bytes

if TYPE_CHECKING:
    from types import FrameType


def _workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 1 <= number <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, got {number}")
    return number


def _plain(text: str) -> str:
    return text


class Command(BaseCommand):
    help = (
        "Copy every file referenced by a FileField/ImageField on the --to storage (default "
        "'default') from the --from storage, keeping each name exactly. Resumable: files "
        "already there with the same size are skipped. The source is never modified."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from",
            dest="source",
            required=True,
            metavar="ALIAS",
            help="STORAGES alias holding the files now (the old storage).",
        )
        parser.add_argument(
            "--to",
            dest="destination",
            default="default",
            metavar="ALIAS",
            help="STORAGES alias the fields use now, e.g. ImageKit (default: 'default').",
        )
        parser.add_argument(
            "--models",
            nargs="+",
            action="extend",  # repeated, it adds: "store" would drop the earlier models
            metavar="APP_LABEL.MODEL",
            help="Only these models (default: every installed model); repeatable.",
        )
        parser.add_argument(
            "--workers",
            type=_workers,
            default=DEFAULT_WORKERS,
            metavar="N",
            help=f"Files copied at once (default {DEFAULT_WORKERS}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be copied, with totals; copy nothing.",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="After copying, list the destination again and compare every size.",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="Replace a destination file whose size differs (default: report it as failed).",
        )
        parser.add_argument(
            "--report",
            metavar="FILE.json",
            help="Also write the full report as JSON to this file.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source_alias: str = options["source"]
        destination_alias: str = options["destination"]
        report_path: str | None = options["report"]
        verbosity: int = options["verbosity"]
        if source_alias == destination_alias:
            raise CommandError(
                "--from and --to name the same alias; --from is the old storage holding the files.",
                returncode=EXIT_USAGE,
            )
        check_report_path(report_path)
        try:
            source = get_storage(source_alias)
            destination = get_storage(destination_alias)
            fields, skipped = discover_fields(destination_alias, options["models"])
        except InventoryError as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from error
        if source is destination:
            raise CommandError(
                f"--from {source_alias!r} and --to {destination_alias!r} are the same storage.",
                returncode=EXIT_USAGE,
            )

        if verbosity >= 1:
            for ref in skipped:
                self.stdout.write(f"Skipping {ref.label}: on storage {ref.storage!r}.")
        if not fields:
            self.stdout.write(
                f"No FileField or ImageField uses storage {destination_alias!r}: nothing to copy."
            )
            if report_path is not None:
                empty = MigrationReport(
                    source=source_alias,
                    destination=destination_alias,
                    dry_run=options["dry_run"],
                    verify=options["verify"],
                    fields=[],
                    skipped_fields=skipped,
                    started_at=datetime.now(timezone.utc),
                )
                empty.finished_at = empty.started_at
                self._write_report(empty, report_path)
            return
        if verbosity >= 1:
            verb = "Checking" if options["dry_run"] else "Copying"
            self.stdout.write(
                f"{verb} files of {', '.join(ref.label for ref in fields)} "
                f"from {source_alias!r} to {destination_alias!r} "
                f"with {options['workers']} worker(s)."
            )

        progress = Progress(
            lambda text: self.stderr.write(text, style_func=_plain, ending=""),
            total=count_referenced(fields),
            tty=self.stderr.isatty(),
        )
        stop = threading.Event()

        def on_result(result: FileResult) -> None:
            if verbosity >= 1:
                progress.advance(
                    result.outcome.value, result.size, moved=result.outcome is Outcome.COPIED
                )

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()
            progress.interrupt_line()
            self.stderr.write(
                "Interrupted: scheduling no more files and letting the ones in flight finish "
                "(Ctrl-C again to abandon them).",
                style_func=_plain,
            )

        if verbosity >= 1:
            # Before the first file, one paginated listing: minutes on a big library.
            self.stderr.write(
                f"Listing the files {destination_alias!r} holds already...", style_func=_plain
            )
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_sigint) if in_main_thread else None
        try:
            report = migrate_files(
                source=source,
                destination=destination,
                fields=fields,
                source_alias=source_alias,
                destination_alias=destination_alias,
                skipped_fields=skipped,
                workers=options["workers"],
                dry_run=options["dry_run"],
                verify=options["verify"],
                overwrite=options["overwrite"],
                stop=stop,
                on_result=on_result,
            )
        except MigrationError as error:
            # Not one file's failure (those are in the report): the run itself stopped.
            raise CommandError(str(error), returncode=EXIT_FAILED) from error
        except KeyboardInterrupt:
            # Outside the copy loop (listing the destination, verifying): no report to give.
            raise CommandError(
                "Interrupted: run the same command again to continue where it stopped.",
                returncode=EXIT_INTERRUPTED,
            ) from None
        finally:
            if in_main_thread:
                # None: the previous handler was not installed from Python.
                signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if verbosity >= 1:
            progress.finish()
        self._summarise(report, verbosity)
        if report_path is not None:
            self._write_report(report, report_path)
        if report.interrupted:
            raise CommandError(
                "Interrupted: run the same command again to continue where it stopped.",
                returncode=EXIT_INTERRUPTED,
            )
        if report.failed:
            what = (
                "would fail (listed above)"
                if report.dry_run
                else "failed (listed above); run the same command again to retry them"
            )
            raise CommandError(f"{len(report.failed)} file(s) {what}.", returncode=EXIT_FAILED)

    def _write_report(self, report: MigrationReport, path: str) -> None:
        write_report(report, path)
        self.stdout.write(f"Report written to {path}.")

    def _summarise(self, report: MigrationReport, verbosity: int) -> None:
        out = self.stdout
        if report.dry_run and verbosity >= 1:
            for name, size in report.copied:
                out.write(f"Would copy {name} ({format_bytes(size)})")
        for result in report.missing:
            out.write(f"Missing at {report.source!r}: {result.name} (in {result.field})")
        for result in report.abandoned:
            out.write(f"Abandoned in flight (a re-run checks it): {result.name}")
        for result in report.failed:
            out.write(
                self.style.ERROR(f"Failed: {result.name} (in {result.field}): {result.error}")
            )
        copied = "Would copy" if report.dry_run else "Copied"
        lines = [
            f"{copied}: {len(report.copied)} file(s), {format_bytes(report.copied_bytes)}",
            (
                f"Already at {report.destination!r} with the same size: {report.present} "
                f"file(s), {format_bytes(report.present_bytes)}"
            ),
            f"Missing at {report.source!r}: {len(report.missing)}",
            f"Failed: {len(report.failed)}",
        ]
        if report.abandoned:
            lines.append(f"Abandoned in flight: {len(report.abandoned)}")
        if report.verify and not report.dry_run and not report.interrupted:
            lines.append(f"Verified on {report.destination!r}: {report.verified} file(s)")
        style = self.style.SUCCESS if report.ok else self.style.WARNING
        for line in lines:
            out.write(style(line))
