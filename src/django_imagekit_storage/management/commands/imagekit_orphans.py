"""``manage.py imagekit_orphans``: list (and with ``--delete`` remove) files no row references.

Thin: parses arguments, asks for confirmation, prints the report. The work is in
``django_imagekit_storage.orphans`` (see docs/migrating.md).
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_imagekit_storage.inventory import (
    FieldRef,
    InventoryError,
    SkippedField,
    discover_fields,
    get_storage,
)
from django_imagekit_storage.management.exit_status import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
)
from django_imagekit_storage.management.report_file import check_report_path, write_report
from django_imagekit_storage.orphans import OrphanReport, delete_orphans, find_orphans
from django_imagekit_storage.progress import format_bytes

if TYPE_CHECKING:
    from collections.abc import Sequence

    from django.core.files.storage import Storage

#: A century: more than any file's age, and far from the limits of datetime arithmetic.
MAX_DAYS = 36500


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}") from None
    if not 0 <= days <= MAX_DAYS:  # also refuses NaN and infinity
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_DAYS} days, got {value}")
    return days


class Command(BaseCommand):
    help = (
        "List the files under the storage's location that no FileField/ImageField row on that "
        "storage references, with sizes and a total. --delete removes those older than "
        "--older-than days, after a confirmation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--alias",
            default="default",
            metavar="ALIAS",
            help="STORAGES alias to scan (default: 'default').",
        )
        parser.add_argument(
            "--delete",
            action="store_true",
            help="Delete the orphans older than --older-than (asks first unless --noinput).",
        )
        parser.add_argument(
            "--older-than",
            type=_days,
            default=1.0,
            metavar="DAYS",
            help="Only files created at least this many days ago may be deleted (default 1).",
        )
        parser.add_argument(
            "--exclude",
            nargs="+",
            action="extend",  # repeated, it adds: "store" would drop the earlier prefixes
            default=[],
            metavar="PREFIX",
            help="Ignore files whose name (relative to the location) starts with a prefix "
            "(several, or repeat the option).",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation before deleting.",
        )
        parser.add_argument(
            "--whole-library",
            action="store_true",
            help="Allow --delete when the storage has no location (its listing is the whole "
            "media library): only if no other project or environment uses the library.",
        )
        parser.add_argument(
            "--report", metavar="FILE.json", help="Also write the report as JSON to this file."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias: str = options["alias"]
        report_path: str | None = options["report"]
        check_report_path(report_path)
        try:
            storage = get_storage(alias)
            fields, skipped = discover_fields(alias)
        except InventoryError as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from error
        if not fields:
            if options["delete"]:
                raise CommandError(
                    f"No FileField or ImageField uses storage {alias!r}, so every file there "
                    "would look orphaned: refusing to delete. Check --alias and INSTALLED_APPS.",
                    returncode=EXIT_USAGE,
                )
            self.stderr.write(
                f"No FileField or ImageField uses storage {alias!r}: every file is listed."
            )
        location = getattr(getattr(storage, "settings", None), "location", None)
        if location == "":
            if options["delete"] and not options["whole_library"]:
                # Other projects or environments may keep files there that their own
                # databases reference: this one cannot see those rows.
                raise CommandError(
                    f"Storage {alias!r} has no location, so it would delete across the whole "
                    "media library, including files that other projects or environments "
                    "reference from their own databases: refusing. Give the storage a "
                    "location, or pass --whole-library if this project alone uses the library "
                    "(with --exclude for any folder it does not own).",
                    returncode=EXIT_USAGE,
                )
            self.stderr.write(
                f"Storage {alias!r} has no location: the whole media library is scanned, "
                "including files other projects put there.",
                style_func=self.style.WARNING,
            )

        report = find_orphans(
            storage,
            alias=alias,
            fields=fields,
            skipped_fields=skipped,
            min_age=timedelta(days=options["older_than"]),
            exclude=options["exclude"],
        )
        self._list(report, options["older_than"])
        if options["delete"]:
            try:
                self._delete(storage, report, fields, skipped, interactive=options["interactive"])
            except KeyboardInterrupt:
                # The file being deleted may or may not be gone; the others are as reported.
                report.interrupted = True
        if report_path is not None:
            write_report(report, report_path)
            self.stdout.write(f"Report written to {report_path}.")
        if report.interrupted:
            raise CommandError(
                f"Interrupted after deleting {len(report.deleted)} file(s) (listed above); "
                "run the same command again to continue.",
                returncode=EXIT_INTERRUPTED,
            )
        if report.delete_failed:
            raise CommandError(
                f"{len(report.delete_failed)} file(s) could not be deleted (listed above).",
                returncode=EXIT_FAILED,
            )

    def _list(self, report: OrphanReport, days: float) -> None:
        out = self.stdout
        for field in report.also_counted:
            out.write(f"Also counting references of {field} (its storage shares this one's class).")
        for orphan in report.orphans:
            mark = "delete" if orphan.deletable else f"keep ({orphan.kept_because})"
            created = orphan.created_at.strftime("%Y-%m-%d %H:%M") if orphan.created_at else "?"
            size = format_bytes(orphan.size) if orphan.size is not None else "?"
            out.write(f"{size:>10}  {created:16}  {orphan.name}  [{mark}]")
        out.write(
            f"Scanned {report.scanned} file(s) on {report.alias!r}; "
            f"{len(report.orphans)} orphan(s), {format_bytes(report.total_bytes)}; "
            f"{len(report.deletable)} older than {days:g} day(s) "
            f"({format_bytes(report.deletable_bytes)}) marked [delete]"
            + (f"; {report.excluded} excluded by prefix" if report.excluded else "")
            + "."
        )

    def _delete(
        self,
        storage: Storage,
        report: OrphanReport,
        fields: Sequence[FieldRef],
        skipped: Sequence[SkippedField],
        *,
        interactive: bool,
    ) -> None:
        if not report.deletable:
            self.stdout.write("Nothing to delete.")
            return
        if interactive:
            try:
                answer = input(
                    f"Delete {len(report.deletable)} file(s) "
                    f"({format_bytes(report.deletable_bytes)}) from {report.alias!r}? "
                    "This cannot be undone. Type 'yes' to continue: "
                )
            except EOFError:
                raise CommandError(
                    "Nothing deleted: no answer to the confirmation (standard input is closed). "
                    "In a script, pass --noinput to delete without asking.",
                    returncode=EXIT_USAGE,
                ) from None
            if answer.strip().lower() != "yes":
                self.stdout.write("Deletion cancelled: nothing deleted.")
                return
        delete_orphans(
            storage,
            report,
            fields=fields,
            skipped_fields=skipped,
            # As it happens: a trail of what is gone even if the run is cut short.
            on_deleted=lambda name: self.stdout.write(f"Deleted {name}"),
        )
        for name in report.now_referenced:
            self.stdout.write(f"Kept {name}: a row references it now.")
        for name in report.already_gone:
            self.stdout.write(f"Already gone: {name} (deleted since the listing).")
        for name, error in report.delete_failed:
            self.stdout.write(self.style.ERROR(f"Could not delete {name}: {error}"))
        self.stdout.write(
            self.style.SUCCESS(f"Deleted {len(report.deleted)} file(s) from {report.alias!r}.")
        )
