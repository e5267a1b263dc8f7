"""The daily seedbox relocation inside `rush serve` (seed §2 "Daily qBittorrent").

Sleeps until `seedbox.run_at` (local time), runs one relocation, and starts over.  A run
refused because another is going on (a manual `rush seedbox run`) is simply skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta

from rush.config import Config
from rush.runlock import LockBusy
from rush.seedbox.service import cmd_seedbox_run, relocate

log = logging.getLogger(__name__)

__all__ = ["SeedRelocator", "cmd_seedbox_run", "next_run"]


def next_run(now: datetime, run_at: time) -> datetime:
    """The next moment at `run_at` (wall-clock) strictly after `now`."""
    candidate = now.replace(
        hour=run_at.hour, minute=run_at.minute, second=run_at.second, microsecond=0
    )
    if candidate <= now:
        candidate += timedelta(days=1)
    return candidate


class SeedRelocator:
    name = "seed_relocator"

    def __init__(
        self,
        config: Config,
        *,
        now: Callable[[], datetime] = datetime.now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._now = now
        self._sleep = sleep

    async def run(self) -> None:
        while True:
            now = self._now()
            due = next_run(now, self.config.seedbox.run_at)
            log.info("next seedbox relocation at %s", due.isoformat(timespec="minutes"))
            # Naive local times: `.timestamp()` applies the offset of each moment, so a
            # daylight-saving change between now and then is accounted for.
            await self._sleep(max(0.0, due.timestamp() - now.timestamp()))
            try:
                await relocate(self.config, dry_run=self.config.seedbox.dry_run)
            except LockBusy as exc:
                log.warning("daily seedbox run skipped: %s", exc)
