"""The scheduled fixity check: `rush verify --archive` every `verify.interval_days`.

Off by default (`interval_days = 0`): re-reading a whole ARCHIVE is heavy on a NAS, so it
runs only when asked.  It reads only (rush.verify), at the lowest CPU priority, one file
at a time; its progress is kept in `kv.verify_progress` for the operations page, its last
report in `kv.last_verify` (Home Assistant sensor, Prometheus metric).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta

from rush.config import Config
from rush.models import KeyValue
from rush.transitions import utcnow
from rush.verify import PROGRESS_KEY, VerifyRefused, last_verify, run_verify

log = logging.getLogger(__name__)


def due(last_finished: str | None, interval_days: float, now: datetime) -> bool:
    """Whether a scheduled check is due (pure)."""
    if interval_days <= 0:
        return False
    if not last_finished:
        return True
    try:
        finished = datetime.fromisoformat(last_finished)
    except ValueError:
        return True
    return now - finished >= timedelta(days=interval_days)


class Verifier:
    name = "verifier"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._progress: tuple[int, int] = (0, 0)

    def _on_progress(self, done: int, total: int, _phase: str) -> None:
        self._progress = (done, total)

    async def _publish_progress(self, started: str) -> None:
        while True:
            done, total = self._progress
            await KeyValue.update_or_create(
                key=PROGRESS_KEY,
                defaults={"value": {"started_at": started, "done": done, "total": total}},
            )
            await asyncio.sleep(5)

    async def run_once(self) -> bool:
        """Run the check if it is due; True when it ran."""
        cfg = self.config.verify
        last = await last_verify()
        if not due(last.get("finished_at"), cfg.interval_days, utcnow()):
            return False
        stop = threading.Event()
        started = utcnow().isoformat()
        publisher = asyncio.create_task(self._publish_progress(started))
        try:
            report = await run_verify(
                self.config,
                archive_only=True,
                sample_pct=cfg.sample_pct,
                progress=self._on_progress,
                stop=stop,
            )
        except VerifyRefused as exc:
            log.warning("scheduled verify skipped: %s", exc)
            return False
        except asyncio.CancelledError:
            stop.set()
            raise
        finally:
            publisher.cancel()
            await KeyValue.filter(key=PROGRESS_KEY).delete()
        level = logging.ERROR if report.problems else logging.INFO
        log.log(
            level, "scheduled verify: %d checked, %d problem(s)", report.checked, report.problems
        )
        return True

    async def run(self) -> None:
        if self.config.verify.interval_days <= 0:
            log.info("verify.interval_days is 0: no scheduled fixity check (rush verify by hand)")
            return
        while True:
            await self.run_once()
            await asyncio.sleep(min(3600.0, self.config.verify.interval_days * 86400))
