"""How far an import or export is, on stderr.

On a terminal: one line redrawn in place (\\r). Anywhere else (a pipe, a log file, CI): a
plain line at every tenth of the way, so a log gets about ten lines, not one per batch.
"""

from __future__ import annotations

from typing import TextIO

_WIDTH = 30


class Progress:
    """``total`` None: the end is not known yet (the rows of a file being read), so only a
    count is shown, on a terminal as it goes and elsewhere once at the end."""

    def __init__(self, label: str, total: int | None, out: TextIO, unit: str = "events") -> None:
        self._label = label
        self._total = total
        self._out = out
        self._unit = unit
        self._tty = out.isatty()
        self._done = 0
        self._tenths = -1  # the last tenth printed as a plain line

    def update(self, done: int) -> None:
        self._done = done
        if self._tty:
            self._draw()
        elif self._total is not None and self._tenth() > self._tenths:
            self._tenths = self._tenth()
            self._line()

    def finish(self) -> None:
        if self._tty:
            self._draw()
            self._out.write("\n")
        elif self._tenths < 10:
            self._line()
        self._out.flush()

    def _fraction(self) -> float:
        # The total was counted first: events added since may take the count past it.
        return min(self._done, self._total) / self._total if self._total else 1.0

    def _tenth(self) -> int:
        return int(10 * self._fraction())

    def _draw(self) -> None:
        if self._total is None:
            text = f"{self._label}: {self._done} {self._unit}"
        else:
            filled = int(_WIDTH * self._fraction())
            bar = "#" * filled + "." * (_WIDTH - filled)
            text = f"{self._label} [{bar}] {self._done}/{self._total} {self._unit}"
        self._out.write(f"\r{text}")
        self._out.flush()

    def _line(self) -> None:
        total = "" if self._total is None else f"/{self._total}"
        self._out.write(f"{self._label}: {self._done}{total} {self._unit}\n")
        self._out.flush()
