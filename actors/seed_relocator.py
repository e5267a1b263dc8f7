"""The seedbox relocation inside `rush serve`: daily, and when the NVMe fills up.

`SeedRelocator` sleeps until `seedbox.run_at` (local time), runs one relocation, and
starts over.  `SeedSpaceWatch` (with `seedbox.trigger_free_percent` set) checks the NVMe's
free space every `trigger_check_s` and starts a run when it is under the threshold, at
most once per `trigger_cooldown_s` (a run that cannot free anything is not repeated every
check), like Unraid's Mover Tuning.  A run refused because another is going on (a manual
`rush seedbox run`) is simply skipped.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time as clock
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from pathlib import Path

from rush.config import Config
from rush.runlock import LockBusy
from rush.seedbox.service import cmd_seedbox_run, relocate

log = logging.getLogger(__name__)

__all__ = ["SeedRelocator", "SeedSpaceWatch", "cmd_seedbox_run", "free_percent", "next_run"]


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


def free_percent(path: Path) -> float | None:
    """Free space of the filesystem holding `path`, in percent (None: unreadable)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return 100 * usage.free / usage.total if usage.total else None


class SeedSpaceWatch:
    name = "seed_space_watch"

    def __init__(
        self,
        config: Config,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = clock.monotonic,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._monotonic = monotonic
        self.triggered = 0

    async def run(self) -> None:
        sb = self.config.seedbox
        last: float | None = None
        while True:
            await self._sleep(sb.trigger_check_s)
            threshold = sb.trigger_free_percent
            free = free_percent(sb.nvme_root)
            if threshold is None or free is None or free >= threshold:
                continue
            if last is not None and self._monotonic() - last < sb.trigger_cooldown_s:
                continue
            last = self._monotonic()
            self.triggered += 1
            log.warning(
                "NVMe %s has %.1f %% free, under trigger_free_percent %.1f %%: seedbox run",
                sb.nvme_root,
                free,
                threshold,
            )
            try:
                await relocate(self.config, dry_run=sb.dry_run)
            except LockBusy as exc:
                log.info("triggered seedbox run skipped: %s", exc)
