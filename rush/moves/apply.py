"""Batch apply (docs/contract.md §9, workflow 7): the only code that moves media, journaled and crash-safe.

Why this shape: a group (main file + sidecars) must end up complete in exactly one
place whatever happens.  Each chunk of groups is journaled before any file moves; the
files move; the folders are fsynced; then one database transaction records the new
paths and states.  A failed group is rolled back at once (journaled).  A crash at any
point is repaired by `recover()` (rush/moves/recovery.py), which reads the journal,
looks at the disk and records a rolled-forward group through `finalize` here.  The run
itself (lock, recovery, batch row, event) is `run_apply` in rush/moves/run.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from rush import events
from rush.config import Config
from rush.fserrors import describe_os_error
from rush.layout import UnsafePath, path_to_db
from rush.lifecycle import AssetState, Trigger
from rush.media import Area
from rush.models import Asset, Facts, FsAction, Lease, PathChange, Sidecar
from rush.moves import journal
from rush.moves.journal import Roots
from rush.moves.lock import in_worker
from rush.moves.plan import (
    AssetSnapshot,
    BatchPlan,
    PlanItem,
    destination_dirs,
    plan_batch_moves,
)
from rush.moves.xmp import write_archive_xmps
from rush.transitions import StaleState, transition, transition_many, utcnow
from rush.volumes import check_volumes

log = logging.getLogger(__name__)

S = AssetState
#: Groups per journaled chunk.
CHUNK = 200
_IN = 500


@dataclass
class BatchReport:
    batch_id: uuid.UUID
    moved: list[dict[str, Any]] = field(default_factory=list)
    noop: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: `[apply] write_xmp`: one entry per archived original (written, exists, failed).
    xmp: list[dict[str, Any]] = field(default_factory=list)
    #: Area -> why nothing was moved there (missing or foreign volume marker).
    volume_errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        extra = {"xmp": self.xmp} if self.xmp else {}
        return {
            **extra,
            "batch_id": str(self.batch_id),
            "volume_errors": self.volume_errors,
            "counts": {
                "moved": len(self.moved),
                "noop": len(self.noop),
                "skipped": len(self.skipped),
                "failed": len(self.failed),
            },
            "moved": self.moved,
            "noop": self.noop,
            "skipped": self.skipped,
            "failed": self.failed,
        }


# --- planning ----------------------------------------------------------------------


def chunks(seq: Sequence[Any], size: int = _IN) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


async def snapshots(
    states: Iterable[AssetState] = (S.DECIDED_KEEP, S.DECIDED_REJECT),
) -> list[AssetSnapshot]:
    """Read what the planner needs about every decided asset, in a few bulk queries."""
    rows = await Asset.filter(state__in=list(states)).values(
        "id", "rel_path", "state", "version", "batch_id", "missing"
    )
    ids = [r["id"] for r in rows]
    facts: set[tuple[str, int]] = set()
    sidecars: dict[str, list[str]] = {}
    for part in chunks(ids):
        for aid, version in await Facts.filter(asset_id__in=list(part)).values_list(
            "asset_id", "version"
        ):
            facts.add((str(aid), int(version)))
        for aid, rel in await Sidecar.filter(asset_id__in=list(part), missing=False).values_list(
            "asset_id", "rel_path"
        ):
            sidecars.setdefault(str(aid), []).append(str(rel))
    return [
        AssetSnapshot(
            id=r["id"] if isinstance(r["id"], uuid.UUID) else uuid.UUID(str(r["id"])),
            rel_path=r["rel_path"],
            state=S(r["state"]),
            processed=(str(r["id"]), int(r["version"])) in facts,
            batch_id=r["batch_id"],
            missing=bool(r["missing"]),
            sidecars=tuple(sorted(sidecars.get(str(r["id"]), []))),
        )
        for r in rows
    ]


def _list_dirs(roots: Roots, dirs: Iterable[str]) -> list[str]:
    out: list[str] = []
    for d in dirs:
        try:
            names = os.listdir(roots.path(d))
        except (FileNotFoundError, NotADirectoryError, UnsafePath):
            continue
        out.extend(f"{d}/{path_to_db(n)}" for n in names)  # the form the database uses
    return out


async def existing_destination_names(roots: Roots, snaps: list[AssetSnapshot]) -> list[str]:
    """Every path already used at the destinations: the disk listing and the database."""
    dirs = destination_dirs(snaps)
    names = await asyncio.to_thread(_list_dirs, roots, sorted(dirs))
    areas = [Area.ARCHIVE, Area.REJECTS]
    names.extend(
        str(k)
        for k in await Asset.filter(area__in=areas, path_key__not_isnull=True).values_list(
            "path_key", flat=True
        )
    )
    for prefix in ("ARCHIVE/", "REJECTS/"):
        names.extend(
            str(p)
            for p in await Sidecar.filter(rel_path__startswith=prefix).values_list(
                "rel_path", flat=True
            )
        )
    return names


async def plan_apply(config: Config) -> BatchPlan:
    """Dry run: what `run_apply` would do now; touches nothing."""
    roots = Roots.from_config(config)
    snaps = await snapshots()
    plan = plan_batch_moves(snaps, await existing_destination_names(roots, snaps))
    needed = {it.dst_area.value for it in plan.moves}
    plan.refuse_destinations(await asyncio.to_thread(check_volumes, config, needed))
    return plan


# --- executing ---------------------------------------------------------------------


def _mkdirs(paths: list[Path]) -> None:
    for p in paths:
        p.mkdir(parents=True, exist_ok=True)
        journal.step("mkdir")
        journal.fsync_dir(p.parent)


@dataclass
class _Moved:
    """What happened to one group: files moved, the error that stopped it, and whether
    the disk is in a known state (False: a file was left at both places)."""

    done: int
    error: str | None = None
    settled: bool = True


def _move_groups(
    groups: list[list[tuple[Path, Path]]], stop: threading.Event | None = None
) -> list[_Moved]:
    """Move each group in turn; stop a group at its first error (the rest stays put).

    With `stop` set, no further group is started (a started group is finished), so a
    cancelled apply leaves whole groups for recovery.  Folders are fsynced before
    returning so the database is only told about renames that are on disk.
    """
    results: list[_Moved] = []
    touched: set[Path] = set()
    for pairs in groups:
        if stop is not None and stop.is_set():
            break
        done = 0
        error: str | None = None
        settled = True
        for src, dst in pairs:
            try:
                journal.move_file(src, dst)
            except OSError as exc:
                error = describe_os_error(exc, dst)
                settled = not isinstance(exc, journal.MoveNotUndone)
                break
            touched.add(src.parent)
            touched.add(dst.parent)
            done += 1
        results.append(_Moved(done, error, settled))
    for d in touched:
        try:
            journal.fsync_dir(d)
        except OSError:
            log.warning("cannot fsync folder %s", d)
    journal.step("fsync")
    return results


def _move_back(pairs: list[tuple[Path, Path]]) -> str | None:
    """Undo moves (dst -> src); returns the first error, if any."""
    for dst, src in pairs:
        try:
            journal.move_file(dst, src)
            journal.fsync_dir(src.parent)
            journal.fsync_dir(dst.parent)
        except OSError as exc:
            return describe_os_error(exc, src)
    return None


@dataclass
class ApplyContext:
    """What one apply (or recovery settling a group) works with."""

    config: Config
    roots: Roots
    batch_id: uuid.UUID
    actor: str
    bus: events.EventBus | None
    report: BatchReport


def _sql(conn: Any, query: str) -> str:
    """Placeholders of the backend: `?` for SQLite, `$n` for PostgreSQL."""
    if conn.capabilities.dialect == "postgres":
        n = 0

        def number(_: Any) -> str:
            nonlocal n
            n += 1
            return f"${n}"

        return re.sub(r"\?", number, query)
    return query


def _uid(conn: Any, value: uuid.UUID) -> Any:
    return value if conn.capabilities.dialect == "postgres" else str(value)


async def finalize(ctx: ApplyContext, items: list[PlanItem]) -> None:
    """One transaction: new paths, sidecars, path history, states, journal done.

    Why bulk statements: a 10,000-asset batch must not cost 30,000 round trips.  Paths
    are written with `executemany`, conditioned on the batch lock; the states change
    through `transition_many` (the bulk form of the one transition function).
    """
    if not items:
        return
    at = utcnow()
    async with in_transaction() as conn:
        moved = [it for it in items if it.moves]
        if moved:
            await conn.execute_many(
                _sql(
                    conn,
                    "UPDATE asset SET rel_path = ?, path_key = ?, area = ? "
                    "WHERE id = ? AND state = ? AND batch_id = ?",
                ),
                [
                    [
                        it.moves[0].dst,
                        it.moves[0].dst,
                        it.dst_area.value,
                        _uid(conn, it.asset_id),
                        S.MOVE_QUEUED.value,
                        _uid(conn, ctx.batch_id),
                    ]
                    for it in moved
                ],
            )
            side = [(it, m) for it in moved for m in it.moves if m.sidecar]
            if side:
                await conn.execute_many(
                    _sql(
                        conn, "UPDATE sidecar SET rel_path = ? WHERE asset_id = ? AND rel_path = ?"
                    ),
                    [[m.dst, _uid(conn, it.asset_id), m.src] for it, m in side],
                )
            # Verify every path update hit its row (the lock guarantees it; be sure anyway).
            ok = 0
            for part in chunks(moved):
                ok += await Asset.filter(
                    id__in=[it.asset_id for it in part],
                    batch_id=ctx.batch_id,
                    state=S.MOVE_QUEUED,
                    rel_path__in=[it.moves[0].dst for it in part],
                ).count()
            if ok != len(moved):
                raise StaleState(moved[0].asset_id, S.MOVE_QUEUED)
        for target in (S.ARCHIVED, S.REJECTED):
            ids = [it.asset_id for it in items if it.target is target]
            if not ids:
                continue
            done = await transition_many(
                ids,
                S.MOVE_QUEUED,
                target,
                Trigger.MOVE_DONE,
                ctx.actor,
                updates={"batch_id": None},
                at=at,
                bus=ctx.bus,
            )
            if len(done) != len(ids):
                raise StaleState(ids[0], S.MOVE_QUEUED)
        changes = [
            PathChange(
                asset_id=it.asset_id, old_path=m.src, new_path=m.dst, batch_id=ctx.batch_id, at=at
            )
            for it in moved
            for m in it.moves
        ]
        if changes:
            await PathChange.bulk_create(changes, batch_size=500)
        for part in chunks([it.asset_id for it in moved]):
            await journal.finish_where(
                "done", batch_id=ctx.batch_id, asset_id__in=list(part), action="move"
            )
    journal.step("finalize")
    for it in items:
        if it.moves:
            ctx.report.moved.append(
                {
                    "uuid": str(it.asset_id),
                    "to": str(it.target),
                    "path": it.moves[0].dst,
                    "renamed": it.renamed_base is not None,
                }
            )
        else:
            ctx.report.noop.append(str(it.asset_id))


async def _fail(ctx: ApplyContext, it: PlanItem, reason: str, moved: int) -> None:
    """Roll a group back (journaled) and return the asset to its DECIDED_* state."""
    back = list(reversed(it.moves[:moved]))
    if back:
        await journal.record_many(
            [
                FsAction(
                    action="rollback",
                    src=m.dst,
                    dst=m.src,
                    batch_id=ctx.batch_id,
                    asset_id=it.asset_id,
                )
                for m in back
            ]
        )
        error = await in_worker(
            _move_back, [(ctx.roots.path(m.dst), ctx.roots.path(m.src)) for m in back]
        )
        if error is not None:
            log.error("rollback of %s failed: %s; recovery will finish it", it.asset_id, error)
            ctx.report.failed.append(
                {
                    "uuid": str(it.asset_id),
                    "rel_path": it.moves[0].src,
                    "reason": f"{reason}; rollback incomplete ({error}): recovery needed",
                }
            )
            return
        await journal.finish_where(
            "done", batch_id=ctx.batch_id, asset_id=it.asset_id, action="rollback"
        )
    await journal.finish_where(
        "rolled_back", reason, batch_id=ctx.batch_id, asset_id=it.asset_id, action="move"
    )
    await transition(
        it.asset_id,
        S.MOVE_QUEUED,
        it.state,
        Trigger.MOVE_FAILED,
        ctx.actor,
        reason=reason,
        updates={"batch_id": None},
        extra_filter={"batch_id": ctx.batch_id},
        bus=ctx.bus,
    )
    ctx.report.failed.append(
        {"uuid": str(it.asset_id), "rel_path": it.moves[0].src, "reason": reason}
    )


def _refused(roots: Roots, items: list[PlanItem]) -> dict[uuid.UUID, str]:
    """Groups with a symbolic link among the folders of a source or destination."""
    out: dict[uuid.UUID, str] = {}
    for it in items:
        try:
            for m in it.moves:
                roots.checked(m.src)
                roots.checked(m.dst)
        except UnsafePath as exc:
            out[it.asset_id] = str(exc)
    return out


async def apply_chunk(ctx: ApplyContext, items: list[PlanItem]) -> None:
    roots = ctx.roots
    moving = [it for it in items if it.moves]
    refused = await asyncio.to_thread(_refused, roots, moving)
    for it in moving:
        if it.asset_id in refused:
            await _fail(ctx, it, refused[it.asset_id], 0)  # nothing was touched
    moving = [it for it in moving if it.asset_id not in refused]
    items = [it for it in items if it.asset_id not in refused]
    rows = [
        FsAction(action="move", src=m.src, dst=m.dst, batch_id=ctx.batch_id, asset_id=it.asset_id)
        for it in moving
        for m in it.moves
    ]
    dst_dirs = sorted({str(PurePosixPath(m.dst).parent) for it in moving for m in it.moves})
    missing_dirs = [d for d in dst_dirs if not roots.path(d).is_dir()]
    rows.extend(FsAction(action="mkdir", dst=d, batch_id=ctx.batch_id) for d in missing_dirs)
    await journal.record_many(rows)
    failed_dirs: dict[str, str] = {}  # folder -> why it could not be made, in words
    if missing_dirs:
        for d in missing_dirs:
            area_root = roots.path(d.split("/", 1)[0])
            if not area_root.is_dir():
                # Never create an area root: its volume is probably not mounted.
                failed_dirs[d] = f"destination volume {area_root} is not there (not mounted?)"
                await journal.finish_where("failed", failed_dirs[d], batch_id=ctx.batch_id, dst=d)
                continue
            try:
                await in_worker(_mkdirs, [roots.path(d)])
            except OSError as exc:
                failed_dirs[d] = f"cannot create folder {d}: {describe_os_error(exc)}"
                await journal.finish_where("failed", failed_dirs[d], batch_id=ctx.batch_id, dst=d)
        await journal.finish_where("done", batch_id=ctx.batch_id, action="mkdir")
    groups: list[list[tuple[Path, Path]]] = []
    for it in moving:
        if any(str(PurePosixPath(m.dst).parent) in failed_dirs for m in it.moves):
            groups.append([])  # marked failed below without touching a file
        else:
            groups.append([(roots.path(m.src), roots.path(m.dst)) for m in it.moves])
    stop = threading.Event()
    results = await in_worker(_move_groups, groups, stop, stop=stop)
    ok: list[PlanItem] = [it for it in items if not it.moves]
    for it, pairs, res in zip(moving, groups, results, strict=True):
        if not pairs:
            dirs = [str(PurePosixPath(m.dst).parent) for m in it.moves]
            await _fail(ctx, it, next(failed_dirs[d] for d in dirs if d in failed_dirs), 0)
        elif not res.settled:
            # A file is at both places: leave the group queued and its journal pending
            # for recovery, which compares both copies before removing one.
            log.error("move of %s not undone: %s; recovery will settle it", it.asset_id, res.error)
            ctx.report.failed.append(
                {
                    "uuid": str(it.asset_id),
                    "rel_path": it.moves[0].src,
                    "reason": f"{res.error}: recovery needed",
                }
            )
        elif res.error is not None:
            await _fail(ctx, it, res.error, res.done)
        else:
            ok.append(it)
    try:
        await finalize(ctx, ok)
    except (IntegrityError, StaleState) as exc:
        log.warning("chunk finalisation failed (%s); finalising one by one", exc)
        for it in ok:
            try:
                await finalize(ctx, [it])
            except (IntegrityError, StaleState) as one:
                await _fail(ctx, it, f"database refused the new path: {one}", len(it.moves))
    if ctx.config.apply.write_xmp:  # opt-in, journaled, ARCHIVE only (rush/moves/xmp.py)
        archived = [it.asset_id for it in ok if it.dst_area is Area.ARCHIVE]
        ctx.report.xmp.extend(await write_archive_xmps(ctx.roots, ctx.batch_id, archived))


async def _release_leased(ctx: ApplyContext, locked: list[Any]) -> list[Any]:
    """Leave out (and let go again) the assets an agent holds a lease on.

    Why after taking `batch_id`: from then on no new lease can be granted on them (every
    claim requires `batch_id` NULL), so the leases seen here are all there are.  A
    transcription reading a file must not see it moved under its feet; the asset is
    skipped with the reason and moves at the next apply."""
    held: dict[str, list[str]] = {}
    for part in chunks([str(i) for i in locked]):
        rows = await Lease.filter(asset_id__in=list(part), status="active").values_list(
            "asset_id", "job_type", "agent_id"
        )
        for asset_id, job_type, agent_id in rows:
            held.setdefault(str(asset_id), []).append(f"{job_type} on agent {agent_id}")
    if not held:
        return locked
    busy = [uuid.UUID(a) for a in held]
    for part in chunks(busy):
        await Asset.filter(id__in=list(part), batch_id=ctx.batch_id).update(
            batch_id=None, updated_at=utcnow()
        )
    for asset_id, jobs in held.items():
        ctx.report.skipped.append(
            {
                "uuid": asset_id,
                "reason": f"an agent is working on it ({', '.join(jobs)}); it moves at the "
                "next apply, once the job is over",
            }
        )
    return [i for i in locked if str(i) not in held]


async def lock_assets(ctx: ApplyContext, plan: BatchPlan) -> list[PlanItem]:
    """Set `batch_id` (conditional update) then MOVE_QUEUED; returns the items held."""
    held: list[PlanItem] = []
    by_id = {it.asset_id: it for it in plan.items}
    for state in (S.DECIDED_KEEP, S.DECIDED_REJECT):
        ids = [it.asset_id for it in plan.items if it.state is state]
        for part in chunks(ids):
            await Asset.filter(id__in=list(part), state=state, batch_id=None).update(
                batch_id=ctx.batch_id, updated_at=utcnow()
            )
        locked = []
        for part in chunks(ids):
            locked.extend(
                await Asset.filter(
                    id__in=list(part), state=state, batch_id=ctx.batch_id
                ).values_list("id", flat=True)
            )
        before = {str(i) for i in locked}
        locked = await _release_leased(ctx, locked)
        leased = before - {str(i) for i in locked}
        queued = await transition_many(
            [uuid.UUID(str(i)) for i in locked],
            state,
            S.MOVE_QUEUED,
            Trigger.QUEUE_MOVE,
            ctx.actor,
            bus=ctx.bus,
        )
        queued_set = {uuid.UUID(str(i)) for i in queued}
        for aid in ids:
            if aid in queued_set:
                held.append(by_id[aid])
            elif str(aid) not in leased:
                ctx.report.skipped.append(
                    {"uuid": str(aid), "reason": "changed or locked while the batch started"}
                )
        stray = [uuid.UUID(str(i)) for i in locked if uuid.UUID(str(i)) not in queued_set]
        if stray:
            await Asset.filter(id__in=stray, batch_id=ctx.batch_id).update(
                batch_id=None, updated_at=utcnow()
            )
    journal.step("queued")
    return held
