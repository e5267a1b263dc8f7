"""The `hasher` actor of `rush serve`: full content hashes in the background.

Low priority by design (one file at a time, a thread at the lowest CPU priority, a rest
when nothing is left); `hashing.enabled = false` turns it off.  See rush.hashing.
"""

from __future__ import annotations

import asyncio
import logging

from rush.config import Config
from rush.hashing import Hasher

log = logging.getLogger(__name__)


class HasherActor:
    name = "hasher"

    def __init__(self, config: Config) -> None:
        self.config = config

    async def run(self) -> None:
        if not self.config.hashing.enabled:
            log.info("hashing.enabled is off: no full content hashes (no duplicates, no verify)")
            return
        hasher = Hasher(self.config)
        try:
            while True:
                run = await hasher.run_once()
                if run.hashed:
                    log.info("hasher: %d file(s) hashed (%d bytes)", run.hashed, run.bytes)
                if not run.hashed and not run.skipped:
                    await asyncio.sleep(self.config.hashing.interval_s)
        finally:
            hasher.close()
