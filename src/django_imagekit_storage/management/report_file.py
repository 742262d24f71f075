"""The ``--report FILE.json`` option of the migrate and orphans commands.

Checked before any work, so a long run never ends on a report it cannot write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from django.core.management.base import CommandError

from django_imagekit_storage.management.exit_status import EXIT_FAILED, EXIT_USAGE

__all__ = ["check_report_path", "write_report"]


class _Report(Protocol):
    def write_json(self, path: str | Path) -> None: ...


def check_report_path(path: str | None) -> None:
    """Refuse, as a usage error, a report path that names a folder or lies in none."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise CommandError(
            f"--report: {path!r} is a folder; give a file name, e.g. {path.rstrip('/')}/report.json.",
            returncode=EXIT_USAGE,
        )
    if not target.resolve().parent.is_dir():
        raise CommandError(
            f"--report: the folder of {path!r} does not exist.", returncode=EXIT_USAGE
        )


def write_report(report: _Report, path: str) -> None:
    """Write the report, turning a failure into an error that says the run itself finished."""
    try:
        report.write_json(path)
    except OSError as error:
        raise CommandError(
            f"Could not write the report to {path!r} ({error}); the run itself finished "
            "as summarised above.",
            returncode=EXIT_FAILED,
        ) from error
