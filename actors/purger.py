"""The purge policy actor: runs the purge at `purge.interval_s`, only if `purge.auto` is on.

Why an actor: an explicitly enabled policy is the one case where files are deleted
without a human at the keyboard (docs/contract.md §9, workflows 10 and 15).  Disabled (the default),
it returns at once and never deletes anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from rush import events
from rush.config import Config
from rush.moves.lock import BatchBusy
from rush.moves.run import run_purge
from rush.transitions import utcnow

log = logging.getLogger(__name__)
ACTOR = "policy:purge"


class Purger:
    name = "purger"

    def __init__(
        self,
        config: Config,
        *,
        bus: events.EventBus | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.bus = bus
        self.clock = clock
        self.sleep = sleep

    async def run_once(self) -> dict[str, Any] | None:
        """One policy pass; None when the policy is off or another run holds the lock."""
        if not self.config.purge.auto:
            return None
        try:
            result = await run_purge(
                self.config, ACTOR, confirm=False, now=self.clock(), bus=self.bus
            )
        except BatchBusy as exc:
            log.info("purge policy: %s; trying again next time", exc)
            return None
        if result["purged"] or result["failed"]:
            log.warning(
                "purge policy: %d asset(s) purged, %d failed",
                len(result["purged"]),
                len(result["failed"]),
            )
        return result

    async def run(self) -> None:
        if not self.config.purge.auto:
            log.info("purge.auto is off: nothing is ever purged without a confirmation")
            return
        while True:
            await self.run_once()
            await self.sleep(self.config.purge.interval_s)
