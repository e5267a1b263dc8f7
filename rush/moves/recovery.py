"""Crash recovery: bring every interrupted group to exactly one complete location.

Why: an apply or purge may be SIGKILLed (power cut, OOM) at any step.  The journal
says which groups were in flight and where each file was going; the disk says where
each file is.  For each open group: roll forward when every file is safely at its
destination, else roll back; a file present at both places (a cross-filesystem copy
whose source was not removed yet, or two hard links of one inode) is compared by
SHA-256 before one copy is removed, and a copy that differs is never deleted.  Then
the database is made to agree with the disk.  Running it again changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from tortoise.exceptions import IntegrityError

from rush import events
from rush.actions import complete_interrupted_cleanups, configure
from rush.config import Config
from rush.layout import UnsafePath, path_to_db
from rush.lifecycle import AssetState, Trigger
from rush.media import Area
from rush.models import Asset, AssetEvent, Batch, FsAction, KeyValue
from rush.moves import journal
from rush.moves.apply import ApplyContext, BatchReport, finalize
from rush.moves.journal import Roots, tmp_name
from rush.moves.lock import LOCK_KEY, BatchBusy, acquire_lock, in_worker, release_lock
from rush.moves.plan import FileMove, PlanItem, area_of
from rush.moves.purge import complete_interrupted_purges
from rush.moves.xmp import ACTION as WRITE_XMP
from rush.moves.xmp import settle_interrupted
from rush.transitions import StaleState, transition, utcnow

log = logging.getLogger(__name__)
S = AssetState
ACTOR = "system:recovery"


class Where(StrEnum):
    SRC = "src"
    DST = "dst"
    BOTH_SAME = "both_same"  # identical content at both places (ours, mid-move)
    CONFLICT = "conflict"  # both exist and differ: the destination is not ours
    LOST = "lost"


def locate(src: Path, dst: Path) -> Where:
    s, d = os.path.lexists(src), os.path.lexists(dst)
    if s and not d:
        return Where.SRC
    if d and not s:
        return Where.DST
    if s and d:
        return Where.BOTH_SAME if journal.same_content(src, dst) else Where.CONFLICT
    return Where.LOST


def _existing_tmps(pairs: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    out = []
    for rel, p in pairs:
        t = tmp_name(p)
        if os.path.lexists(t):
            rel_dir = rel.rpartition("/")[0]
            name = path_to_db(t.name)
            out.append((f"{rel_dir}/{name}" if rel_dir else name, t))
    return out


def _checked_pairs(roots: Roots, pairs: list[tuple[str, str]]) -> list[tuple[Path, Path]]:
    return [(roots.checked(s), roots.checked(d)) for s, d in pairs]


def target_of_area(area: Area | None) -> AssetState | None:
    if area is Area.ARCHIVE:
        return S.ARCHIVED
    if area is Area.REJECTS:
        return S.REJECTED
    return None


async def queued_from_state(asset_id: uuid.UUID | str) -> AssetState | None:
    """The DECIDED_* state an asset had when it was taken into its batch."""
    ev = await AssetEvent.filter(asset_id=asset_id, to_state=S.MOVE_QUEUED).order_by("-id").first()
    return S(ev.from_state) if ev is not None else None


def item_from_journal(
    asset_id: uuid.UUID, state: AssetState, pairs: list[tuple[str, str]]
) -> PlanItem | None:
    """Rebuild a plan item from the journal (main file first) for recovery."""
    if not pairs:
        return None
    src_area = area_of(pairs[0][0])
    dst_area = area_of(pairs[0][1])
    target = target_of_area(dst_area)
    if src_area is None or dst_area is None or target is None:
        return None
    moves = [FileMove(s, d, sidecar=i > 0) for i, (s, d) in enumerate(pairs)]
    renamed = PurePosixPath(pairs[0][0]).name != PurePosixPath(pairs[0][1]).name
    return PlanItem(
        asset_id, state, target, src_area, dst_area, moves, "recovered" if renamed else None
    )


async def _recover_group(
    roots: Roots, asset: Asset, batch_id: uuid.UUID, bus: events.EventBus | None
) -> dict[str, Any]:
    """Settle one asset left MOVE_QUEUED by a dead batch."""
    pairs = [
        (str(s), str(d))
        for s, d in await FsAction.filter(batch_id=batch_id, asset_id=asset.id, action="move")
        .order_by("id")
        .values_list("src", "dst")
    ]
    from_state = await queued_from_state(asset.id)
    if from_state not in (S.DECIDED_KEEP, S.DECIDED_REJECT):
        from_state = S.DECIDED_KEEP if asset.decision == "KEEP" else S.DECIDED_REJECT
    # A symbolic link among the folders is refused before anything is touched.
    abs_pairs = await asyncio.to_thread(_checked_pairs, roots, pairs)
    # Temporary copies are ours and never the only copy: the source is removed last.
    rel_abs = [
        (r, a) for pr, pa in zip(pairs, abs_pairs, strict=True) for r, a in zip(pr, pa, strict=True)
    ]
    for rel_tmp, t in await asyncio.to_thread(_existing_tmps, rel_abs):
        row = await journal.record("delete", src=rel_tmp, batch_id=batch_id, asset_id=asset.id)
        await in_worker(journal.remove_file, t)
        await journal.finish([row.id])
        log.info("recovery removed temporary copy %s", t)
    where = [await asyncio.to_thread(locate, s, d) for s, d in abs_pairs]
    if Where.LOST in where:
        lost = [p[0] for p, w in zip(pairs, where, strict=True) if w is Where.LOST]
        log.error("asset %s: files not found at source nor destination: %s", asset.id, lost)
        return {"uuid": str(asset.id), "outcome": "lost", "files": lost}
    report = BatchReport(batch_id)
    ctx = ApplyContext(Config(), roots, batch_id, ACTOR, bus, report)
    item = item_from_journal(asset.id, from_state, pairs)
    forward = bool(pairs) and all(w in (Where.DST, Where.BOTH_SAME) for w in where)
    if forward and item is not None:
        for (s, _d), (asrc, _adst), w in zip(pairs, abs_pairs, where, strict=True):
            if w is Where.BOTH_SAME:
                row = await journal.record("delete", src=s, batch_id=batch_id, asset_id=asset.id)
                await in_worker(journal.remove_file, asrc)
                await in_worker(journal.fsync_dir, asrc.parent)
                await journal.finish([row.id])
        try:
            await finalize(ctx, [item])
            return {"uuid": str(asset.id), "outcome": "rolled_forward"}
        except (IntegrityError, StaleState) as exc:
            log.error("asset %s: database refused the new paths (%s); rolling back", asset.id, exc)
        # The duplicates are gone now: look again before moving anything back.
        where = [await asyncio.to_thread(locate, s, d) for s, d in abs_pairs]
    for (s, d), (asrc, adst), w in zip(pairs, abs_pairs, where, strict=True):
        if w is Where.DST:
            row = await journal.record(
                "rollback", src=d, dst=s, batch_id=batch_id, asset_id=asset.id
            )
            await in_worker(journal.move_file, adst, asrc)
            await in_worker(journal.fsync_dir, asrc.parent)
            await journal.finish([row.id])
        elif w is Where.BOTH_SAME:
            row = await journal.record("delete", src=d, batch_id=batch_id, asset_id=asset.id)
            await in_worker(journal.remove_file, adst)
            await in_worker(journal.fsync_dir, adst.parent)
            await journal.finish([row.id])
    await journal.finish_where("rolled_back", batch_id=batch_id, asset_id=asset.id, action="move")
    await journal.finish_where("done", batch_id=batch_id, asset_id=asset.id, action="rollback")
    await transition(
        asset.id,
        S.MOVE_QUEUED,
        from_state,
        Trigger.MOVE_FAILED,
        ACTOR,
        reason="batch interrupted; group rolled back by recovery",
        updates={"batch_id": None},
        extra_filter={"batch_id": batch_id},
        bus=bus,
    )
    return {"uuid": str(asset.id), "outcome": "rolled_back"}


async def recover(
    config: Config, *, bus: events.EventBus | None = None, holding: uuid.UUID | None = None
) -> dict[str, Any]:
    """Repair whatever a dead apply or purge left; returns what it did.  Idempotent.

    Works only under the batch lock: `holding` is the caller's batch when it already
    holds it (apply, purge: before touching any asset), else the lock is taken here.
    Does nothing while a live process holds the lock (it is not a crash).
    """
    if holding is None:
        own = uuid.uuid4()
        try:
            await acquire_lock(own, "recovery")
        except BatchBusy:
            held = await KeyValue.get_or_none(key=LOCK_KEY)
            return {"busy": True, "lock": held.value if held else {}}
        try:
            return await _recover(config, bus, exclude=own)
        finally:
            await release_lock(own)
    return await _recover(config, bus, exclude=holding)


#: Batch statuses that recovery must settle.
UNFINISHED = ("running", "interrupted")


async def _recover(
    config: Config, bus: events.EventBus | None, *, exclude: uuid.UUID
) -> dict[str, Any]:
    roots = Roots.from_config(config)
    outcome: dict[str, Any] = {"busy": False, "groups": [], "unlocked": 0, "purges": []}
    live = {
        uuid.UUID(str(b))
        for b in await Batch.filter(status__in=UNFINISHED).values_list("id", flat=True)
    }
    purge_batches = {
        uuid.UUID(str(b)) for b in await Batch.filter(kind="purge").values_list("id", flat=True)
    }
    stuck = await Asset.filter(batch_id__not_isnull=True).all()
    for asset in stuck:
        assert asset.batch_id is not None
        batch_id = uuid.UUID(str(asset.batch_id))
        if batch_id in purge_batches:
            continue  # finished below by complete_interrupted_purges
        if asset.state is S.MOVE_QUEUED:
            try:
                outcome["groups"].append(await _recover_group(roots, asset, batch_id, bus))
            except Exception as exc:  # one bad group must not stop start-up
                log.exception("recovery of %s failed", asset.id)
                outcome["groups"].append({"uuid": str(asset.id), "outcome": f"error: {exc}"})
        else:
            await Asset.filter(id=asset.id, batch_id=batch_id).update(batch_id=None)
            outcome["unlocked"] += 1
    # Directory creations: done if the folder is there, else void (nothing to undo).
    for row in await FsAction.filter(status="pending", action="mkdir"):
        try:
            exists = row.dst is not None and roots.path(row.dst).is_dir()
        except UnsafePath:
            exists = False
        await journal.finish([row.id], "done" if exists else "void")
    # XMP writes of `[apply] write_xmp`: done if the file is there, else void.
    for row in await FsAction.filter(status="pending", action=WRITE_XMP):
        await journal.finish([row.id], settle_interrupted(roots, row.dst))
    outcome["purges"] = await complete_interrupted_purges(config, bus=bus)
    outcome["cleanups"] = await complete_interrupted_cleanups(config)
    # Anything still pending belongs to a settled group (already reflected on disk).
    leftovers = await FsAction.filter(status="pending").count()
    settled = [*outcome["groups"], *outcome["purges"]]
    if leftovers and not any(
        str(g.get("outcome", "")).startswith(("lost", "error")) for g in settled
    ):
        await FsAction.filter(status="pending", action__in=["move", "rollback", "delete"]).update(
            status="void", done_at=utcnow()
        )
    settled_report = {"recovery": outcome["groups"][:1000]}
    for bid in live:
        # A batch stopped on purpose keeps "interrupted"; one that was running dies "crashed".
        await Batch.filter(id=bid, status="running").update(
            status="crashed", finished_at=utcnow(), report=settled_report
        )
        await Batch.filter(id=bid, status="interrupted").update(
            finished_at=utcnow(), report=settled_report
        )
    if outcome["groups"] or outcome["unlocked"] or live:
        log.warning(
            "recovery: %d group(s) settled, %d asset(s) unlocked, %d unfinished batch(es) closed",
            len(outcome["groups"]),
            outcome["unlocked"],
            len(live),
        )
    return outcome


async def startup(config: Config, *, bus: events.EventBus | None = None) -> dict[str, Any]:
    """What `rush serve` runs after opening the database and before any actor starts."""
    configure(config)
    outcome = await recover(config, bus=bus)
    if outcome.get("busy"):
        log.warning("a batch run holds the lock (%s): recovery skipped for now", outcome["lock"])
    return outcome
