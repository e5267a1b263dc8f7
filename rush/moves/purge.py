"""Deferred purge of REJECTED assets (docs/contract.md §9, workflow 10): destructive, so confirmed and journaled.

Why: a purge frees space by deleting originals, sidecars and `.derived/{uuid}/` of
assets REJECTED for longer than `purge.after_days`.  It runs only when a human
confirms or when `purge.auto` is explicitly enabled; it never touches ARCHIVED or any
path outside REJECTS and `.derived/{uuid}/`; every deletion is journaled first and
a `PurgeAudit` row is kept for ever.  A second run, or one after a crash, completes
cleanly (a file already gone counts as deleted).  The run itself (lock, recovery,
batch row, event) is `run_purge` in rush/moves/run.py; `complete_interrupted_purges`
is what recovery calls.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from rush import events
from rush.config import Config
from rush.layout import UnsafePath, safe_relpath
from rush.lifecycle import AssetState, Trigger
from rush.media import DERIVED_DIR, Area
from rush.models import Asset, Batch, FsAction, PurgeAudit, Sidecar
from rush.moves import journal
from rush.moves.journal import Roots
from rush.moves.lock import in_worker
from rush.moves.plan import area_of
from rush.transitions import StaleState, transition, utcnow
from rush.volumes import check_volumes

log = logging.getLogger(__name__)
S = AssetState


class PurgeNotConfirmed(RuntimeError):
    """A destructive purge was asked without confirmation while `purge.auto` is off."""


@dataclass(frozen=True, slots=True)
class PurgeCandidate:
    id: uuid.UUID
    rel_path: str
    rejected_at: datetime
    sidecars: tuple[str, ...] = ()


@dataclass
class PurgePlan:
    eligible: list[PurgeCandidate] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    cutoff: datetime | None = None
    #: Area -> why nothing is deleted there (docs/batch.md, "Volume markers").
    volume_errors: dict[str, str] = field(default_factory=dict)
    refused: list[PurgeCandidate] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "eligible": [
                {
                    "uuid": str(c.id),
                    "rel_path": c.rel_path,
                    "rejected_at": c.rejected_at.isoformat(),
                    "sidecars": list(c.sidecars),
                }
                for c in self.eligible
            ],
            "skipped": self.skipped,
            "refused": [
                {"uuid": str(c.id), "rel_path": c.rel_path, "reason": self.volume_errors["REJECTS"]}
                for c in self.refused
            ],
            "volume_errors": dict(self.volume_errors),
        }


def purge_files(c: PurgeCandidate) -> list[str]:
    """Library-relative files a purge deletes; refuses anything outside REJECTS."""
    files = [c.rel_path, *c.sidecars]
    for f in files:
        safe_relpath(f)
        if area_of(f) is not Area.REJECTS:
            raise UnsafePath(f"{f!r} is not under REJECTS: a purge never touches it")
    return files


def select_purgeable(
    candidates: list[PurgeCandidate], now: datetime, after_days: int
) -> tuple[list[PurgeCandidate], list[dict[str, Any]], datetime]:
    """Pure policy: REJECTED for at least `after_days` days, and only REJECTS paths."""
    cutoff = now - timedelta(days=after_days)
    eligible: list[PurgeCandidate] = []
    skipped: list[dict[str, Any]] = []
    for c in sorted(candidates, key=lambda x: x.rel_path):
        if c.rejected_at > cutoff:
            continue
        try:
            purge_files(c)
        except UnsafePath as exc:
            skipped.append({"uuid": str(c.id), "rel_path": c.rel_path, "reason": str(exc)})
            continue
        eligible.append(c)
    return eligible, skipped, cutoff


async def candidates(**filters: Any) -> list[PurgeCandidate]:
    rows = await Asset.filter(state=S.REJECTED, **filters).values(
        "id", "rel_path", "state_changed_at"
    )
    sidecars: dict[str, list[str]] = {}
    ids = [r["id"] for r in rows]
    for start in range(0, len(ids), 500):
        for aid, rel in await Sidecar.filter(asset_id__in=ids[start : start + 500]).values_list(
            "asset_id", "rel_path"
        ):
            sidecars.setdefault(str(aid), []).append(str(rel))
    return [
        PurgeCandidate(
            uuid.UUID(str(r["id"])),
            r["rel_path"],
            r["state_changed_at"],
            tuple(sorted(sidecars.get(str(r["id"]), []))),
        )
        for r in rows
    ]


async def plan_purge(config: Config, now: datetime | None = None) -> PurgePlan:
    """Dry run: which REJECTED assets a purge would delete now."""
    eligible, skipped, cutoff = select_purgeable(
        await candidates(batch_id=None), now or utcnow(), config.purge.after_days
    )
    plan = PurgePlan(eligible, skipped, cutoff)
    if eligible:
        # An unmounted REJECTS is an empty folder: "already gone" must not become PURGED.
        problems = await asyncio.to_thread(check_volumes, config, [Area.REJECTS], verb="deleted")
        if problems:
            plan.volume_errors, plan.refused, plan.eligible = problems, eligible, []
    return plan


def _delete(
    roots: Roots, files: list[str], asset_id: uuid.UUID
) -> tuple[list[str], OSError | UnsafePath | None]:
    """Delete the files, then `.derived/{uuid}`; returns the files now gone and the error
    that stopped it, if any (a file already gone counts as deleted).

    A symbolic link among the folders is refused before anything is deleted.
    """
    paths = [roots.checked(f) for f in files]
    gone: list[str] = []
    dirs: set[Path] = set()
    error: OSError | UnsafePath | None = None
    try:
        for f, p in zip(files, paths, strict=True):
            journal.remove_file(p)
            gone.append(f)
            dirs.add(p.parent)
        container = roots.path(DERIVED_DIR)
        journal.remove_tree_inside(container / str(asset_id), container)
        dirs.add(container)
    except (OSError, UnsafePath) as exc:
        error = exc
    for d in dirs:
        try:
            if d.is_dir():
                journal.fsync_dir(d)
        except OSError as exc:
            log.warning("cannot fsync folder %s: %s", d, exc)
    return gone, error


async def purge_one(
    roots: Roots,
    c: PurgeCandidate,
    batch_id: uuid.UUID,
    actor: str,
    bus: events.EventBus | None,
) -> None:
    files = purge_files(c)
    derived = f"{DERIVED_DIR}/{c.id}"
    await journal.record_many(
        [
            *(FsAction(action="delete", src=f, batch_id=batch_id, asset_id=c.id) for f in files),
            FsAction(action="rmtree", src=derived, batch_id=batch_id, asset_id=c.id),
        ]
    )
    gone, error = await in_worker(_delete, roots, files, c.id)
    if error is not None:
        await _record_partial(c, batch_id, actor, gone, error)
        raise error
    async with in_transaction():
        asset = await Asset.get(id=c.id)
        await transition(
            c.id,
            S.REJECTED,
            S.PURGED,
            Trigger.PURGE,
            actor,
            updates={"path_key": None, "batch_id": None},
            extra_filter={"batch_id": batch_id},
            bus=bus,
        )
        await PurgeAudit.create(
            asset_id=c.id,
            rel_path=c.rel_path,
            kind=asset.kind,
            size=asset.size,
            files=[*files, derived + "/"],
            rejected_at=c.rejected_at,
            actor=actor,
            batch_id=batch_id,
        )
        await journal.finish_where("done", batch_id=batch_id, asset_id=c.id)
    journal.step("purged")


async def _record_partial(
    c: PurgeCandidate,
    batch_id: uuid.UUID,
    actor: str,
    gone: list[str],
    error: Exception,
) -> None:
    """A purge stopped part-way: the journal and the audit say which files are gone.

    The asset stays REJECTED (a later purge finishes it); the deletions that happened
    are `done` and audited, the rest `failed`.
    """
    async with in_transaction():
        if gone:
            await FsAction.filter(
                batch_id=batch_id, asset_id=c.id, action="delete", src__in=gone, status="pending"
            ).update(status="done", done_at=utcnow())
            asset = await Asset.get(id=c.id)
            await PurgeAudit.create(
                asset_id=c.id,
                rel_path=c.rel_path,
                kind=asset.kind,
                size=asset.size if c.rel_path in gone else 0,
                files=gone,
                rejected_at=c.rejected_at,
                actor=actor,
                batch_id=batch_id,
            )
        await journal.finish_where("failed", str(error), batch_id=batch_id, asset_id=c.id)


async def complete_interrupted_purges(
    config: Config, *, bus: events.EventBus | None = None
) -> list[dict[str, Any]]:
    """Finish purges a crash interrupted (the human had confirmed them); idempotent.

    Called by `recover` while it holds the batch lock.
    """
    roots = Roots.from_config(config)
    purge_batches = [
        uuid.UUID(str(b)) for b in await Batch.filter(kind="purge").values_list("id", flat=True)
    ]
    done: list[dict[str, Any]] = []
    if not purge_batches:
        return done
    stuck = await Asset.filter(batch_id__in=purge_batches).all()
    for asset in stuck:
        batch_id = uuid.UUID(str(asset.batch_id))
        started = await FsAction.filter(
            batch_id=batch_id, asset_id=asset.id, status="pending"
        ).exists()
        if asset.state is not S.REJECTED or not started:
            await Asset.filter(id=asset.id, batch_id=batch_id).update(batch_id=None)
            continue
        cands = await candidates(id=asset.id)
        try:
            await purge_one(roots, cands[0], batch_id, "system:recovery", bus)
        except (OSError, UnsafePath, StaleState) as exc:
            log.error("completing the purge of %s failed: %s", asset.id, exc)
            await journal.finish_where("failed", str(exc), batch_id=batch_id, asset_id=asset.id)
            await Asset.filter(id=asset.id, batch_id=batch_id).update(batch_id=None)
            done.append({"uuid": str(asset.id), "outcome": f"error: {exc}"})
            continue
        done.append({"uuid": str(asset.id), "outcome": "purge completed"})
    return done
