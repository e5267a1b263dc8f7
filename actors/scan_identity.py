"""The scanner's content-identity writes (docs/scanner.md, "Identity").

Kept apart from `actors.scanner` (the pass itself) so the identity rules' I/O sits in one
place: the sampled fingerprint of a file, the fingerprint every file gets before READY, a
missing asset giving up its path to a new file, and a reviewed asset whose bytes changed
going back to DISCOVERED with its decision kept aside.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from rush import events
from rush.config import Config
from rush.fingerprint import ALGO, FileChanged, sample_fingerprint
from rush.layout import UnsafePath, resolve
from rush.lease_fencing import supersede_leases
from rush.lifecycle import DECISION_OF_STATE, AssetState, Trigger
from rush.media import Area
from rush.models import Asset, Suggestion, Transcript
from rush.scanplan import DISCOVERED, MTIME_EPS, ContentChange, Known
from rush.transitions import AssetNotFound, StaleState, transition

log = logging.getLogger(__name__)


def _areas(config: Config) -> dict[str, Path]:
    lib = config.library
    out: dict[str, Path] = {}
    if lib.archive_root is not None:
        out[Area.ARCHIVE.value] = lib.archive_root
    if lib.rejects_root is not None:
        out[Area.REJECTS.value] = lib.rejects_root
    return out


def path_of(config: Config, rel: str) -> Path:
    return resolve(config.library.root, rel, _areas(config))


def sample_or_none(config: Config, rel: str) -> str | None:
    """The sampled fingerprint of a library file, or None (unreadable, or being written)."""
    try:
        return sample_fingerprint(path_of(config, rel))
    except (OSError, UnsafePath) as exc:
        log.info("cannot fingerprint %r now: %s", rel, exc)
        return None


#: Files fingerprinted at once: reads of a NAS share overlap their latency.
SAMPLE_THREADS = 4


def _sample_one(config: Config, k: Known) -> tuple[bool, str | None]:
    """(may become READY now, error to report) for one file; sets `k.sample`."""
    k.sample = None
    try:
        path = path_of(config, k.rel)
        st = os.stat(path)
        if st.st_size != k.size or abs(st.st_mtime - k.mtime) > MTIME_EPS:
            return False, None  # changed since the listing: the next pass sees it again
        k.sample = sample_fingerprint(path)
    except FileChanged:
        return False, None  # still being written: never a half fingerprint
    except (OSError, UnsafePath) as exc:
        # Unreadable (permissions): flagged, and READY as before (agents report it).
        return True, f"cannot fingerprint {k.rel!r}: {exc}"
    return True, None


def _sample_all(config: Config, ready: Sequence[Known]) -> tuple[list[Known], list[str]]:
    """Fingerprint the files about to become READY (worker threads)."""
    ok: list[Known] = []
    errors: list[str] = []
    with ThreadPoolExecutor(SAMPLE_THREADS, "rush-sample") as pool:
        for k, (fine, error) in zip(
            ready, pool.map(lambda k: _sample_one(config, k), ready), strict=True
        ):
            if error is not None:
                errors.append(error)
            if fine:
                ok.append(k)
    return ok, errors


async def sample_before_ready(
    sql: Any, config: Config, ready: list[Known], ts: str
) -> tuple[list[Known], list[str]]:
    """Record the sampled fingerprint of each asset about to become READY.

    Returns the assets that may become READY now (those whose file moved while it was
    read stay DISCOVERED until a later pass) and the errors to report.
    """
    # Always taken afresh: a fingerprint from an earlier pass may predate the last write.
    ok, errors = await asyncio.to_thread(_sample_all, config, ready)
    await sql.many(
        f"UPDATE asset SET sample_hash = ?, hash_algo = ?, updated_at = {ts}"
        " WHERE id = ? AND batch_id IS NULL",
        [(k.sample, ALGO if k.sample else None, k.id) for k in ok],
    )
    return ok, errors


async def displace(sql: Any, displaced: Sequence[Known], ts: str) -> None:
    """Missing assets give up the path a new file with other bytes now holds."""
    await sql.many(
        f"UPDATE asset SET path_key = NULL, updated_at = {ts} WHERE id = ? AND batch_id IS NULL",
        [(k.id,) for k in displaced],
    )
    for k in displaced:
        log.warning("asset %s stays missing: %r now holds other bytes (a new asset)", k.id, k.rel)


async def send_back_to_review(
    changes: Sequence[ContentChange], at: datetime, actor: str, bus: events.EventBus
) -> int:
    """Reviewed assets whose file changed in place: back to DISCOVERED, decision aside.

    The version is bumped (the old facts and derivatives describe other bytes), the
    standing decision moves to `previous_decision` (shown in review, never applied), and
    the history row says why.  Returns how many went back.
    """
    count = 0
    for c in changes:
        k = c.known
        row = await Asset.filter(id=k.id).values(
            "version", "decision", "previous_decision", "state"
        )
        if not row:
            continue
        old = int(row[0]["version"])
        state = AssetState(row[0]["state"])
        previous = DECISION_OF_STATE.get(state) or row[0]["decision"] or row[0]["previous_decision"]
        reason = (
            f"content changed on disk (size {k.size} -> {c.size}, sampled fingerprint "
            f"{(k.sample or 'none')[:12]} -> {(c.sample or 'unreadable')[:12]}): back to review"
            + (f"; the previous decision {previous} is shown, not applied" if previous else "")
        )
        try:
            async with in_transaction():
                await transition(
                    k.id,
                    state,
                    AssetState.DISCOVERED,
                    Trigger.CONTENT_CHANGED,
                    actor,
                    reason=reason,
                    updates={
                        "size": c.size,
                        "mtime": c.mtime,
                        "stable_scans": 1,
                        "missing": False,
                        "missing_since": None,
                        "version": old + 1,
                        "decision": None,
                        "previous_decision": previous,
                        "sample_hash": c.sample,
                        "hash_algo": ALGO if c.sample else None,
                        "content_hash": None,
                        "hashed_size": None,
                        "hashed_mtime": None,
                        "transcript_status": "none",
                        "suggestions_status": "none",
                        "attempts": 0,
                        "failed": False,
                        "last_error": None,
                    },
                    extra_filter={"batch_id": None, "version": old},
                    at=at,
                    bus=bus,
                )
                await Suggestion.filter(asset_id=k.id, version__lte=old, accepted=False).delete()
                await Transcript.filter(asset_id=k.id, version__lte=old).delete()
                await supersede_leases(k.id, old, reason=f"content changed on disk (v{old + 1})")
        except (StaleState, AssetNotFound) as exc:
            log.info("scanner: %s", exc)
            continue
        log.warning("asset %s (%r): %s", k.id, k.rel, reason)
        k.state, k.size, k.mtime, k.stable, k.missing = DISCOVERED, c.size, c.mtime, 1, False
        k.sample = c.sample
        count += 1
    return count
