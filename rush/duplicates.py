"""Exact duplicates: assets whose full content hash is the same (docs/web.md, "Duplicates").

Why: the same card dumped twice, or a shoot already in ARCHIVE dumped again, would be
reviewed and archived twice.  A duplicate group is every non-purged asset sharing one
full BLAKE3 hash (`asset.content_hash`, computed once by the hasher).  Exact bytes only:
near-duplicates are out of scope.  0-byte files all share one hash and are never called
duplicates.  Hardlinks and reflinked copies are two paths with the same bytes: a
duplicate, not an error.  Nothing here deletes or merges anything: the review shows the
other copies, and a human may reject a copy with one key ("reject as duplicate"), which
is an ordinary REJECT decision that keeps the first copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections

from rush.decisions import DECIDABLE, InvalidInput, NotFound, WrongState
from rush.lifecycle import AssetState, Trigger
from rush.models import Asset
from rush.transitions import AssetNotFound, StaleState, transition, utcnow

S = AssetState

#: SQL condition on `asset a`: it has at least one other live copy (library filter, badge).
DUPLICATE_CONDITION = (
    "(a.content_hash IS NOT NULL AND a.hashed_size > 0 AND EXISTS (SELECT 1 FROM asset d"
    " WHERE d.content_hash = a.content_hash AND d.id <> a.id AND d.hashed_size > 0"
    " AND d.state <> 'PURGED'))"
)


@dataclass(frozen=True, slots=True)
class Copy:
    id: uuid.UUID
    rel_path: str
    area: str
    state: str
    created_at: datetime


def first_copy(group: Iterable[Copy]) -> Copy:
    """The copy that is kept: the one recorded first (then by path), pure."""
    return min(group, key=lambda c: (c.created_at, c.rel_path, str(c.id)))


def describe(copy: Copy) -> str:
    """How the review names another copy of the asset on screen."""
    if copy.area == "ARCHIVE":
        return f"already in ARCHIVE as {copy.rel_path}"
    if copy.area == "REJECTS":
        return f"already rejected, in REJECTS as {copy.rel_path}"
    return f"also in INBOX at {copy.rel_path}"


async def group_of(asset: Asset) -> list[Copy]:
    """Every live copy with the asset's bytes (itself included), or [] if none other."""
    if not asset.content_hash or not asset.hashed_size:
        return []
    rows = (
        await Asset.filter(content_hash=asset.content_hash, hashed_size__gt=0)
        .exclude(state=S.PURGED)
        .values("id", "rel_path", "area", "state", "created_at")
    )
    copies = [
        Copy(
            r["id"] if isinstance(r["id"], uuid.UUID) else uuid.UUID(str(r["id"])),
            str(r["rel_path"]),
            str(r["area"]),
            str(r["state"]),
            r["created_at"],
        )
        for r in rows
    ]
    return copies if len(copies) > 1 else []


async def others_of(asset: Asset) -> list[tuple[Copy, str, bool]]:
    """The other copies of an asset: (copy, description, is it the copy that is kept)."""
    group = await group_of(asset)
    if not group:
        return []
    first = first_copy(group)
    return [
        (c, describe(c), c.id == first.id)
        for c in sorted(group, key=lambda c: (c.created_at, c.rel_path))
        if c.id != asset.id
    ]


async def duplicate_ids(ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these assets have another live copy (one query per page of the grid)."""
    if not ids:
        return set()
    conn = connections.get("default")
    pg = conn.capabilities.dialect == "postgres"
    marks = ", ".join(f"${i}" if pg else "?" for i in range(1, len(ids) + 1))
    values = [i if pg else str(i) for i in ids]
    rows = await conn.execute_query_dict(
        f"SELECT a.id FROM asset a WHERE a.id IN ({marks}) AND {DUPLICATE_CONDITION}", values
    )
    return {r["id"] if isinstance(r["id"], uuid.UUID) else uuid.UUID(str(r["id"])) for r in rows}


async def duplicate_count() -> int:
    """Extra copies in the library: for each group of identical files, all but one."""
    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        "SELECT COALESCE(SUM(n - 1), 0) AS extra FROM (SELECT COUNT(*) AS n FROM asset"
        " WHERE content_hash IS NOT NULL AND hashed_size > 0 AND state <> 'PURGED'"
        " GROUP BY content_hash HAVING COUNT(*) > 1) g"
    )
    return int(rows[0]["extra"] or 0) if rows else 0


async def reject_as_duplicate(asset_id: uuid.UUID | str, actor: str) -> Asset:
    """REJECT a copy of bytes the library already holds; the first copy is never rejected.

    An ordinary human decision (DECIDED_REJECT, applied by the next batch apply) whose
    history says which copy is kept.
    """
    asset = await Asset.get_or_none(id=asset_id)
    if asset is None:
        raise NotFound(f"no asset {asset_id}")
    group = await group_of(asset)
    if not group:
        raise InvalidInput(f"asset {asset.id} has no other copy with the same bytes")
    first = first_copy(group)
    if first.id == asset.id:
        raise WrongState(
            f"asset {asset.id} is the first copy of these bytes and is kept; reject "
            "another copy instead"
        )
    source = AssetState(asset.state)
    if source not in DECIDABLE or asset.batch_id is not None:
        raise WrongState(f"asset {asset.id} is {source}: it cannot be decided now")
    if source is S.DECIDED_REJECT:
        return asset
    now = utcnow()
    try:
        await transition(
            asset.id,
            source,
            S.DECIDED_REJECT,
            Trigger.DECIDE_REJECT,
            actor,
            reason=f"duplicate of {first.id} ({first.rel_path}), which is kept",
            updates={"decision": "REJECT", "decided_by": actor[:64], "decided_at": now},
            extra_filter={"batch_id": None},
            at=now,
        )
    except StaleState as exc:
        raise WrongState(f"asset {asset.id} changed meanwhile; reload and try again") from exc
    except AssetNotFound as exc:
        raise NotFound(str(exc)) from exc
    return await Asset.get(id=asset.id)
