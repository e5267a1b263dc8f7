"""At start-up, queue the secondary jobs that never ran (`[secondary]` turned on after
assets were processed), in the background and in batches (rush/secondary.py)."""

from __future__ import annotations

import asyncio
import logging

from rush import secondary
from rush.config import Config

log = logging.getLogger(__name__)


class SecondaryBackfill:
    name = "secondary-backfill"

    def __init__(self, config: Config, delay_s: float = 10.0) -> None:
        self.config = config
        self.delay_s = delay_s

    async def run(self) -> None:
        await asyncio.sleep(self.delay_s)  # let the scanner and the dispatcher start first
        done = await secondary.backfill(
            self.config.transcription,
            transcription=self.config.secondary.transcription,
            suggest_tags=self.config.secondary.suggest_tags,
        )
        if any(done):
            log.info("queued %d transcription(s) and %d suggestion job(s) never run", *done)
        await asyncio.Event().wait()  # done; stay up so the supervisor does not restart it
