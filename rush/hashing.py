"""Full content hashes, computed once per content (docs/scanner.md, "Identity").

Why on the server: the hash must exist for every file, whichever agent processed it or
none, and an agent reads over the network; the server reads the NAS locally.  One file at
a time, in a thread of its own at the lowest CPU priority, so review and scans stay
responsive.  A file whose size or mtime moves while it is read gets no hash (tried again
later); a hash is recorded only if the row still describes the file that was read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rush.config import Config
from rush.fingerprint import ALGO, FileChanged, full_hash, sample_fingerprint
from rush.layout import UnsafePath
from rush.lifecycle import AssetState
from rush.models import Asset, Sidecar
from rush.transitions import utcnow
from rush.volumes import destination_roots

log = logging.getLogger(__name__)
S = AssetState
#: States whose file is stable and known: DISCOVERED may still be copied, PURGED is gone.
HASHABLE = [s for s in S if s not in (S.DISCOVERED, S.MOVE_QUEUED, S.PURGED)]


def library_path(config: Config, rel: str) -> Path:
    """Absolute path of a stored path, ARCHIVE/REJECTS on their own volumes if so."""
    from rush.layout import resolve

    return resolve(config.library.root, rel, destination_roots(config))


def lowest_priority() -> None:
    # Linux threads are tasks: this lowers only the hashing thread.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


@dataclass
class HashRun:
    hashed: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)


class Hasher:
    """Hashes the files that have no full hash yet; `run_once` does up to `limit`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = threading.Event()
        self._pool = ThreadPoolExecutor(1, "rush-hash", initializer=lowest_priority)
        #: Files that could not be hashed: passed over until nothing else is left.
        self._passed_over: set[str] = set()

    def close(self) -> None:
        self.stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _hash(self, rel: str) -> tuple[str, int, float] | None:
        loop = asyncio.get_running_loop()
        try:
            path = library_path(self.config, rel)
            return await loop.run_in_executor(self._pool, full_hash, path, self.stop)
        except FileChanged:
            log.info("hasher: %r changed while it was read; hashed again later", rel)
        except (OSError, UnsafePath) as exc:
            log.info("hasher: cannot read %r: %s", rel, exc)
        return None

    async def _sample(self, rel: str) -> str | None:
        loop = asyncio.get_running_loop()
        try:
            path = library_path(self.config, rel)
            return await loop.run_in_executor(self._pool, sample_fingerprint, path)
        except (OSError, UnsafePath):
            return None

    async def run_once(self, limit: int = 50) -> HashRun:
        run = HashRun()
        query = Asset.filter(
            content_hash=None,
            state__in=HASHABLE,
            missing=False,
            batch_id=None,
            path_key__not_isnull=True,
        )
        if self._passed_over:
            query = query.exclude(id__in=sorted(self._passed_over)[:5000])
        rows = (
            await query.order_by("created_at", "id")
            .limit(limit)
            .values_list("id", "rel_path", "size", "sample_hash")
        )
        if not rows:
            self._passed_over.clear()  # everything else is done: try those again
        for aid, rel, size, sample in rows:
            if self.stop.is_set():
                break
            got = await self._hash(rel)
            if got is None or got[1] != size:
                run.skipped.append(rel)
                self._passed_over.add(str(aid))
                continue
            digest, hsize, hmtime = got
            done = await Asset.filter(
                id=aid, rel_path=rel, size=hsize, content_hash=None, batch_id=None
            ).update(
                content_hash=digest,
                hash_algo=ALGO,
                hashed_size=hsize,
                hashed_mtime=hmtime,
                updated_at=utcnow(),
            )
            if done and sample is None:
                # Rows from before fingerprints: their sample too, so a later change in
                # place is told from a touch by content (docs/scanner.md, "Identity").
                got_sample = await self._sample(rel)
                if got_sample is not None:
                    await Asset.filter(id=aid, sample_hash=None, size=hsize).update(
                        sample_hash=got_sample, updated_at=utcnow()
                    )
            if done:
                run.hashed += 1
                run.bytes += hsize
            await self._sidecars(uuid.UUID(str(aid)))
        return run

    async def _sidecars(self, asset_id: uuid.UUID) -> None:
        for sid, rel, size in await Sidecar.filter(
            asset_id=asset_id, content_hash=None
        ).values_list("id", "rel_path", "size"):
            got = await self._hash(rel)
            if got is None or got[1] != size:
                continue
            await Sidecar.filter(id=sid, rel_path=rel, size=got[1]).update(
                content_hash=got[0], hash_algo=ALGO, hashed_size=got[1], hashed_mtime=got[2]
            )
