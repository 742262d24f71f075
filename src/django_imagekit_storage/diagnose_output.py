"""How a :class:`~django_imagekit_storage.diagnose.DiagnoseReport` is shown.

Text for a person (one line per step, its details beneath; Unicode or plain-ASCII markers;
colour only on a terminal) and a JSON document for a program, plus the helpers that pick
markers and colour for an output stream and keep any text writable to it (a legacy Windows
code page such as cp1252 or cp437 included). Nothing here runs a step or prints.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from django_imagekit_storage.diagnose import DiagnoseReport, Status

__all__ = [
    "JSON_SCHEMA_VERSION",
    "encodable",
    "render_text",
    "report_to_dict",
    "stream_supports",
    "stream_wants_colour",
    "unicode_marks",
]

#: Bumped when a key of :func:`report_to_dict`'s document changes meaning or goes away.
JSON_SCHEMA_VERSION: Final = 1

_UNICODE_MARKS: Final = {"passed": "\u2713", "failed": "\u2717", "skipped": "\u2013"}
_ASCII_MARKS: Final = {"passed": "[ok]", "failed": "[FAIL]", "skipped": "[skip]"}
_COLOURS: Final = {"passed": "\x1b[32m", "failed": "\x1b[31;1m", "skipped": "\x1b[33m"}
_RESET: Final = "\x1b[0m"


def report_to_dict(report: DiagnoseReport) -> dict[str, object]:
    """The ``--json`` document (schema in docs/diagnose.md)."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "ok": report.ok,
        "alias": report.alias,
        "django_version": report.django_version,
        "library_version": report.library_version,
        "summary": {status: report.count(status) for status in ("passed", "failed", "skipped")},
        "steps": [
            {
                "key": step.key,
                "title": step.title,
                "status": step.status,
                "reason": step.reason,
                "duration_ms": step.duration_ms,
                "details": [{"label": d.label, "value": d.value} for d in step.details],
            }
            for step in report.steps
        ],
    }


def render_text(report: DiagnoseReport, *, unicode: bool = True, colour: bool = False) -> str:
    """The report as lines for a person: one line per step, its details beneath.

    ``unicode=False`` uses plain-ASCII markers; other characters (a file name, ImageKit's
    message) are left as they are: :func:`encodable` makes the text safe for a stream."""
    marks = _UNICODE_MARKS if unicode else _ASCII_MARKS
    width = max(len(mark) for mark in marks.values())
    title_width = max(len(step.title) for step in report.steps) if report.steps else 0

    def paint(status: Status, text: str) -> str:
        return f"{_COLOURS[status]}{text}{_RESET}" if colour else text

    heading = (
        f"ImageKit diagnostics for STORAGES[{report.alias!r}] "
        f"(django-imagekit-storage {report.library_version}, Django {report.django_version})"
    )
    lines = [heading, ""]
    for step in report.steps:
        mark = marks[step.status].ljust(width)
        timing = f"{step.duration_ms:8.1f} ms" if step.status != "skipped" else ""
        lines.append(
            f"{paint(step.status, f'{mark} {step.status:<7}')} "
            f"{step.title:<{title_width}} {timing}".rstrip()
        )
        lines.extend(f"    {detail.label}: {detail.value}" for detail in step.details)
        if step.reason:
            label = "why" if step.status == "failed" else "note"
            lines.append(f"    {paint(step.status, label)}: {step.reason}")
    summary = ", ".join(
        f"{report.count(status)} {status}" for status in ("passed", "failed", "skipped")
    )
    verdict = "all good" if report.ok else "see the failed steps above"
    lines += ["", f"Result: {summary}: {verdict}."]
    return "\n".join(lines) + "\n"


def _ascii(text: str) -> str:
    return text.encode("ascii", errors="backslashreplace").decode("ascii")


def encodable(text: str, stream: object) -> str:
    """``text`` with what ``stream``'s encoding cannot encode written as escapes, so that
    writing it can never raise ``UnicodeEncodeError``."""
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return text
    try:
        return text.encode(encoding, errors="backslashreplace").decode(encoding)
    except LookupError:
        return _ascii(text)


def stream_supports(stream: object, text: str) -> bool:
    """Whether ``stream``'s encoding can encode ``text`` (no encoding: a text buffer)."""
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return True
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def stream_wants_colour(stream: object, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal that shows it, and never when ``NO_COLOR`` is set
    (https://no-color.org)."""
    environ = os.environ if environ is None else environ
    if environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        terminal = bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False
    if terminal and sys.platform == "win32":
        # A legacy Windows console prints escape codes as text; Django knows which do not.
        from django.core.management.color import supports_color

        return supports_color()
    return terminal


def unicode_marks() -> Sequence[str]:
    """The markers :func:`render_text` uses with ``unicode=True``."""
    return tuple(_UNICODE_MARKS.values())
