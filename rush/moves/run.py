"""A filesystem-changing run, apply or purge: one way in, one way out.

Why one `exclusive_run`: both runs must take the one batch lock, repair what a dead run
left (recovery) before touching an asset, record a `Batch` row, mark it "interrupted"
when stopped on purpose, let go of the lock whatever happens and publish the `batch`
event.  Written twice, the two copies drifted; written once, they cannot.

Why here and not in apply.py / purge.py: recovery needs `finalize` of apply and
`complete_interrupted_purges` of purge, and the run needs recovery.  With the runs above
recovery, every import in `rush.moves` points one way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rush import events
from rush.config import Config
from rush.fserrors import describe_os_error
from rush.layout import UnsafePath
from rush.lifecycle import AssetState
from rush.models import Asset, Batch
from rush.moves import journal
from rush.moves.apply import CHUNK, ApplyContext, BatchReport, apply_chunk, lock_assets, plan_apply
from rush.moves.journal import Roots
from rush.moves.lock import Progress, acquire_lock, release_lock
from rush.moves.purge import PurgeNotConfirmed, plan_purge, purge_one
from rush.moves.recovery import recover
from rush.transitions import StaleState, utcnow

log = logging.getLogger(__name__)
S = AssetState


def batch_event(kind: str, report: dict[str, Any]) -> dict[str, Any]:
    """The `batch` bus event (forwarded to MQTT `events/batch` for automations)."""
    counts = report.get("counts") or {}

    def count(name: str) -> int:
        value = counts.get(name, report.get(name, 0))
        return len(value) if isinstance(value, list) else int(value or 0)

    failed = report.get("failed") or []
    return {
        "kind": kind,
        "batch_id": str(report.get("batch_id", "")),
        "moved": count("moved") if kind == "apply" else count("purged"),
        "failed": count("failed"),
        "skipped": count("skipped"),
        "finished_at": utcnow().isoformat(),
        "errors": [str(f.get("reason", f)) if isinstance(f, dict) else str(f) for f in failed][:20],
    }


@dataclass
class Run:
    """The run in progress: its batch id, and the report the body hands back."""

    batch_id: uuid.UUID
    report: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def exclusive_run(
    config: Config,
    kind: str,
    actor: str,
    *,
    bus: events.EventBus | None = None,
) -> AsyncIterator[Run]:
    """Lock -> recover -> `Batch` row -> (the body) -> done -> release -> `batch` event.

    The body sets `run.report`; it is stored in the batch row and the event.  Cancelled
    (shutdown, SIGTERM, Ctrl-C): the row says "interrupted", not "crashed", and recovery
    settles the unfinished groups at the next start.  Any other error propagates with
    the row left "running" (recovery closes it as "crashed").  The lock is released in
    every case; the event is published only for a run that finished.
    """
    run = Run(uuid.uuid4())
    await acquire_lock(run.batch_id, kind)
    try:
        await recover(config, bus=bus, holding=run.batch_id)
        batch = await Batch.create(id=run.batch_id, kind=kind, actor=actor, status="running")
        yield run
        batch.status = "done"
        batch.finished_at = utcnow()
        batch.report = run.report
        await batch.save()
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.shield(
                Batch.filter(id=run.batch_id, status="running").update(status="interrupted")
            )
        raise
    finally:
        await release_lock(run.batch_id)
        journal.report_steps()
    (bus or events.bus).publish("batch", batch_event(kind, run.report))


async def run_apply(
    config: Config,
    actor: str,
    *,
    progress: Progress | None = None,
    bus: events.EventBus | None = None,
) -> BatchReport:
    """Apply every standing decision: move groups, update paths and states, report."""
    async with exclusive_run(config, "apply", actor, bus=bus) as run:
        report = BatchReport(run.batch_id)
        ctx = ApplyContext(config, Roots.from_config(config), run.batch_id, actor, bus, report)
        plan = await plan_apply(config)
        report.skipped.extend(s.to_dict() for s in plan.skipped)
        report.failed.extend(
            {"uuid": str(s.asset_id), "rel_path": s.rel_path, "reason": s.reason}
            for s in plan.refused
        )
        report.volume_errors = plan.volume_errors
        held = await lock_assets(ctx, plan)
        total = len(held)
        if progress:
            progress(0, total, "apply")
        for start in range(0, total, CHUNK):
            await apply_chunk(ctx, held[start : start + CHUNK])
            if progress:
                progress(min(total, start + CHUNK), total, "apply")
        run.report = report.to_dict()
    log.info(
        "batch %s: %d moved, %d no-op, %d skipped, %d failed",
        run.batch_id,
        len(report.moved),
        len(report.noop),
        len(report.skipped),
        len(report.failed),
    )
    return report


async def run_purge(
    config: Config,
    actor: str,
    *,
    confirm: bool,
    now: datetime | None = None,
    progress: Progress | None = None,
    bus: events.EventBus | None = None,
) -> dict[str, Any]:
    """Delete eligible REJECTED assets; refuses unless confirmed or `purge.auto` is on."""
    if not (confirm or config.purge.auto):
        raise PurgeNotConfirmed("purge is destructive: confirm it (--confirm) or enable purge.auto")
    roots = Roots.from_config(config)
    async with exclusive_run(config, "purge", actor, bus=bus) as run:
        batch_id = run.batch_id
        result: dict[str, Any] = {
            "batch_id": str(batch_id),
            "purged": [],
            "skipped": [],
            "failed": [],
        }
        run.report = result
        plan = await plan_purge(config, now)
        result["skipped"] = plan.skipped
        result["volume_errors"] = plan.volume_errors
        result["failed"].extend(
            {"uuid": str(c.id), "rel_path": c.rel_path, "reason": plan.volume_errors["REJECTS"]}
            for c in plan.refused
        )
        total = len(plan.eligible)
        for n, c in enumerate(plan.eligible, 1):
            held = await Asset.filter(id=c.id, state=S.REJECTED, batch_id=None).update(
                batch_id=batch_id, updated_at=utcnow()
            )
            if not held:
                result["skipped"].append({"uuid": str(c.id), "reason": "changed meanwhile"})
                continue
            try:
                await purge_one(roots, c, batch_id, actor, bus)
            except (OSError, UnsafePath, StaleState) as exc:
                reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
                log.error("purge of %s (%s) failed: %s", c.rel_path, c.id, reason)
                await journal.finish_where("failed", reason, batch_id=batch_id, asset_id=c.id)
                await Asset.filter(id=c.id, batch_id=batch_id).update(batch_id=None)
                result["failed"].append(
                    {"uuid": str(c.id), "rel_path": c.rel_path, "reason": reason}
                )
                continue
            result["purged"].append({"uuid": str(c.id), "rel_path": c.rel_path})
            if progress:
                progress(n, total, "purge")
    return result
