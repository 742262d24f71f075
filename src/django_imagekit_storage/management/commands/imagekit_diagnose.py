"""``manage.py imagekit_diagnose``: is this project's media really going to ImageKit?

Thin on purpose: it parses the arguments, runs :func:`django_imagekit_storage.diagnose.
run_diagnose` and shows its report with :mod:`django_imagekit_storage.diagnose_output`. Exit status 0 when every step passed; otherwise it
raises ``CommandError`` with ``returncode=1``, which ``manage.py`` turns into exit status 1
and ``call_command`` lets through to the caller.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_imagekit_storage.diagnose import run_diagnose
from django_imagekit_storage.diagnose_output import (
    encodable,
    render_text,
    report_to_dict,
    stream_supports,
    stream_wants_colour,
    unicode_marks,
)


class Command(BaseCommand):
    help = (
        "Check that media goes to ImageKit: configuration, storage backend, system checks, "
        "image optimisation and a save/read/delete round trip. Exit status 1 if a step fails."
    )
    # This command reports the checks itself: an error there must not stop it from running.
    requires_system_checks: list[str] = []  # noqa: RUF012 (Django's own annotation)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--storage",
            default="default",
            metavar="ALIAS",
            help="The STORAGES alias to diagnose (default: 'default').",
        )
        parser.add_argument(
            "--skip-upload",
            action="store_true",
            help="Skip the round trip that saves, reads and deletes a small file.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON document instead of the text report.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = run_diagnose(options["storage"], skip_upload=options["skip_upload"])
        stream = self.stdout._out
        if options["json"]:
            self.stdout.write(json.dumps(report_to_dict(report), indent=2, ensure_ascii=True))
        else:
            colour = not options["no_color"] and (
                options["force_color"] or stream_wants_colour(stream, os.environ)
            )
            unicode = stream_supports(stream, "".join(unicode_marks()))
            text = encodable(render_text(report, unicode=unicode, colour=colour), stream)
            self.stdout.write(text, ending="")
        if not report.ok:
            failed = ", ".join(step.title for step in report.failed_steps)
            raise CommandError(
                f"{len(report.failed_steps)} of {len(report.steps)} steps failed: {failed}.",
                returncode=1,
            )
