"""One log file per seedbox job, rotated daily, kept `log_retention_days` (docs/contract.md §8.5).

A hand-written handler rather than TimedRotatingFileHandler because the clock must be
injectable: the rotation test (C-05) walks through days without waiting for them.
Files: `<job>.log` (today) and `<job>.log.YYYY-MM-DD` (earlier days).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_ROTATED = re.compile(r"\.log\.(\d{4}-\d{2}-\d{2})$")


class DailyRotatingHandler(logging.Handler):
    """Write `<dir>/<job>.log`; on the first record of a new day, rotate and prune."""

    def __init__(
        self,
        log_dir: Path,
        job: str,
        retention_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.job = job
        self.retention_days = retention_days
        self.clock = clock
        self.path = log_dir / f"{job}.log"
        self._day: date | None = None
        self.setFormatter(logging.Formatter(FORMAT))

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock()).date()

    def _current_file_day(self) -> date | None:
        if self._day is not None:
            return self._day
        try:
            return datetime.fromtimestamp(self.path.stat().st_mtime).date()
        except FileNotFoundError:
            return None

    def rollover_if_needed(self) -> None:
        """Rename yesterday's file and delete files older than the retention."""
        today = self._today()
        day = self._current_file_day()
        if day is not None and day < today and self.path.exists():
            target = self.log_dir / f"{self.job}.log.{day.isoformat()}"
            if target.exists():
                # Same day rotated twice (clock went back): append instead of clobbering.
                with target.open("ab") as out:
                    out.write(self.path.read_bytes())
                self.path.unlink()
            else:
                os.rename(self.path, target)
        self._day = today
        self.prune(today)

    def prune(self, today: date) -> None:
        oldest = today - timedelta(days=self.retention_days)
        for path in self.log_dir.glob(f"{self.job}.log.*"):
            match = _ROTATED.search(path.name)
            if match and date.fromisoformat(match.group(1)) < oldest:
                path.unlink(missing_ok=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.acquire()
            try:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                if self._day != self._today():
                    self.rollover_if_needed()
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(self.format(record) + "\n")
            finally:
                self.release()
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def job_log(
    log_dir: Path,
    job: str,
    retention_days: int,
    clock: Callable[[], float] = time.time,
    logger_name: str = "rush.seedbox",
) -> Iterator[DailyRotatingHandler]:
    """Send the seedbox loggers to the job's own file for the duration of the block."""
    handler = DailyRotatingHandler(log_dir, job, retention_days, clock)
    handler.setLevel(logging.INFO)
    targets = [logging.getLogger(logger_name), logging.getLogger("integrations.qbittorrent")]
    saved = [(lg, lg.level) for lg in targets]
    for lg in targets:
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
        handler.close()
