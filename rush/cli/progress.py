"""A terminal progress line on stderr for long batch runs (not a command)."""

from __future__ import annotations

import sys
from typing import TextIO


class TerminalProgress:
    """`progress(done, total, phase)` callback: a redrawn bar on a TTY, else 10 % steps."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self._last_decile = -1

    def __call__(self, done: int, total: int, phase: str) -> None:
        frac = done / total if total else 1.0
        if self.stream.isatty():
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{phase} [{bar}] {done}/{total} {frac:4.0%}{end}")
        else:
            decile = int(frac * 10)
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(f"{phase}: {done}/{total} ({frac:.0%})\n")
        self.stream.flush()
