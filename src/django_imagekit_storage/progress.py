"""Progress output for long commands: a redrawn bar on a terminal, periodic lines otherwise."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Progress", "format_bytes", "format_duration"]


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """Counts files and bytes as they finish and shows rate and ETA.

    ``write`` receives text without an added newline. On a terminal the line is redrawn at most
    every ``redraw`` seconds; otherwise a full line is written every ``interval`` seconds.
    ``total`` is an estimate (distinct names per column, summed), so the ETA is too.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        total: int | None,
        tty: bool,
        interval: float = 10.0,
        redraw: float = 0.1,
        width: int = 24,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self.total = total
        self._tty = tty
        self._interval = redraw if tty else interval
        self._width = width
        self._clock = clock
        self._started = clock()
        self._last = self._started
        self.files = 0
        self.bytes = 0
        self.counts: dict[str, int] = {}
        self._drawn = False

    def advance(self, outcome: str, size: int | None = None, *, moved: bool = True) -> None:
        """One file finished; ``moved`` says whether its bytes were transferred."""
        self.files += 1
        if moved and size:
            self.bytes += size
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._show()

    def line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        total = None if self.total is None else max(self.total, self.files)
        done = f"{self.files}/{total} files" if total else f"{self.files} files"
        rate = f"{format_bytes(self.bytes / elapsed)}/s"
        parts = [done, format_bytes(self.bytes), rate]
        if total and self.files:
            remaining = (total - self.files) * elapsed / self.files
            parts.append(f"ETA {format_duration(remaining)}")
        counts = ", ".join(f"{key} {value}" for key, value in sorted(self.counts.items()))
        text = "  ".join(parts) + (f"  ({counts})" if counts else "")
        if not self._tty:
            return text
        fraction = self.files / total if total else 0.0
        filled = int(self._width * fraction)
        bar = "#" * filled + "-" * (self._width - filled)
        return f"[{bar}] {fraction:4.0%} {text}"

    def _show(self) -> None:
        if self._tty:
            # \r and clear-to-end: redraw in place.
            self._write(f"\r{self.line()}\x1b[K")
            self._drawn = True
        else:
            self._write(self.line() + "\n")

    def finish(self) -> None:
        """Show the final state (ending the terminal line)."""
        self._show()
        if self._tty:
            self._write("\n")

    def interrupt_line(self) -> None:
        """End a redrawn bar so a message can follow on its own line."""
        if self._tty and self._drawn:
            self._write("\n")
            self._drawn = False
