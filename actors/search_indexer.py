"""Keeps the search index in step with the catalogue (rush/search.py).

Why polling `Asset.updated_at`: every writer of an asset row sets it (tags and
transcripts touch it), so one cheap indexed query finds what changed, whoever changed
it (scanner, batch apply, agents' results, the web UI), with no hook in each of them.
"""

from __future__ import annotations

import asyncio
import logging

from rush import search
from rush.config import Config

log = logging.getLogger(__name__)


class SearchIndexer:
    name = "search-indexer"

    def __init__(self, config: Config, interval_s: float = 3.0) -> None:
        self.config = config
        self.interval_s = interval_s

    async def run(self) -> None:
        while True:
            done = await search.index_changed()
            if done:
                log.debug("search index: %d asset(s) reindexed", done)
            await asyncio.sleep(self.interval_s)
