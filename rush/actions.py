"""Human actions on one asset that never move a file: reopen, reprocess, retry.

Why here: each is an explicit human action (Workflows 8 and 9), a single conditional
transition that refuses an asset held by a batch (`batch_id` set) so it can never race
an apply or a purge.  `cleanup_superseded_derivatives` is the one deletion here, strictly
inside `.derived/{uuid}/`, journaled like every other filesystem action.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path

from tortoise.transactions import in_transaction

from rush import events
from rush.config import Config
from rush.layout import UnsafePath
from rush.lease_fencing import supersede_leases
from rush.lifecycle import DECISION_OF_STATE, REPROCESSABLE, AssetState, Trigger, decided_state
from rush.media import DERIVED_DIR
from rush.models import Asset, AssetEvent, Derivative, FsAction, Suggestion, Transcript
from rush.moves import journal
from rush.moves.journal import Roots
from rush.transitions import AssetNotFound, StaleState, transition, utcnow

log = logging.getLogger(__name__)
S = AssetState
SYSTEM = "system"
RESTORE_REASON = "decision restored after reprocess"


class ActionRefused(Exception):
    """The asset is not in a state that allows this action; nothing changed."""


def _name(asset: Asset) -> str:
    """Messages name the file, not the UUID."""
    return str(asset.rel_path).rsplit("/", 1)[-1] or str(asset.id)


async def _get(asset_id: uuid.UUID | str) -> Asset:
    asset = await Asset.get_or_none(id=asset_id)
    if asset is None:
        raise AssetNotFound(asset_id)
    return asset


async def reopen(
    asset_id: uuid.UUID | str, actor: str, *, bus: events.EventBus | None = None
) -> AssetState:
    """ARCHIVED/REJECTED -> DECISION_PENDING for a new decision; nothing moves now."""
    asset = await _get(asset_id)
    if asset.state not in (S.ARCHIVED, S.REJECTED):
        raise ActionRefused(
            f"{_name(asset)} is {asset.state}; only ARCHIVED or REJECTED assets reopen"
        )
    if asset.batch_id is not None:
        raise ActionRefused(f"{_name(asset)} is held by batch {asset.batch_id}")
    await transition(
        asset.id,
        asset.state,
        S.DECISION_PENDING,
        Trigger.REOPEN,
        actor,
        extra_filter={"batch_id": None},
        bus=bus,
    )
    return S.DECISION_PENDING


async def reprocess(
    asset_id: uuid.UUID | str, actor: str, *, bus: events.EventBus | None = None
) -> int:
    """Version bump and back to READY; the decision and the location are kept.

    Old-version suggestions (not accepted) and transcripts are dropped; old facts stay
    as history (everything reads the current version's); old derivative folders are
    removed by `cleanup_superseded_derivatives` once the new version is PROCESSED.
    Returns the new version.
    """
    asset = await _get(asset_id)
    if asset.state not in REPROCESSABLE:
        raise ActionRefused(f"{_name(asset)} is {asset.state}; it cannot be reprocessed now")
    if asset.batch_id is not None:
        raise ActionRefused(f"{_name(asset)} is held by batch {asset.batch_id}")
    old = asset.version
    decision = DECISION_OF_STATE.get(asset.state, asset.decision)
    async with in_transaction():
        await transition(
            asset.id,
            asset.state,
            S.READY,
            Trigger.REPROCESS,
            actor,
            updates={
                "version": old + 1,
                "decision": decision,
                "transcript_status": "none",
                "suggestions_status": "none",
                "attempts": 0,
                "failed": False,
                "last_error": None,
            },
            extra_filter={"batch_id": None, "version": old},
            bus=bus,
        )
        await Suggestion.filter(asset_id=asset.id, version__lte=old, accepted=False).delete()
        await Transcript.filter(asset_id=asset.id, version__lte=old).delete()
        # A transcription or suggestion still running on the old version is fenced off.
        await supersede_leases(asset.id, old, reason=f"superseded by reprocess (v{old + 1})")
    return old + 1


async def restore_decision_after_processing(
    asset_id: uuid.UUID | str, *, bus: events.EventBus | None = None
) -> AssetState | None:
    """Give a reprocessed asset its standing decision back once it is PROCESSED again.

    For the result intake to call after PROCESSING_REVIEW -> PROCESSED.  Acts only when
    the last REPROCESS started from a decided state: PROCESSED -> DECIDED_* by `system`;
    if the file already lies in its decision's area (it was ARCHIVED/REJECTED) the no-op
    path of batch apply brings it straight back: DECIDED_* -> MOVE_QUEUED -> ARCHIVED or
    REJECTED, with no file moved.  Returns the state reached, or None when nothing applied.
    """
    asset = await _get(asset_id)
    if asset.state is not S.PROCESSED or asset.batch_id is not None:
        return None
    ev = (
        await AssetEvent.filter(asset_id=asset.id, trigger=Trigger.REPROCESS)
        .order_by("-id")
        .first()
    )
    if ev is None:
        return None
    # A decision taken later, or a change of the file's bytes since (its decision was
    # about other content), means there is nothing to restore.
    later_decision = await AssetEvent.filter(
        asset_id=asset.id,
        id__gt=ev.id,
        trigger__in=[Trigger.DECIDE_KEEP, Trigger.DECIDE_REJECT, Trigger.CONTENT_CHANGED],
    ).exists()
    decision = DECISION_OF_STATE.get(S(ev.from_state))
    if decision is None or later_decision:
        return None
    decided = decided_state(decision)
    trigger = Trigger.DECIDE_KEEP if decision == "KEEP" else Trigger.DECIDE_REJECT
    await transition(
        asset.id, S.PROCESSED, decided, trigger, SYSTEM, reason=RESTORE_REASON,
        extra_filter={"batch_id": None}, bus=bus,
    )  # fmt: skip
    if S(ev.from_state) not in (S.ARCHIVED, S.REJECTED):
        return decided
    target = S.ARCHIVED if decision == "KEEP" else S.REJECTED
    area = "ARCHIVE" if decision == "KEEP" else "REJECTS"
    if not asset.rel_path.startswith(area + "/"):
        return decided  # not where its decision wants it: the next batch apply moves it
    try:
        # One transaction: the asset is never left MOVE_QUEUED outside a batch.
        async with in_transaction():
            await transition(
                asset.id, decided, S.MOVE_QUEUED, Trigger.QUEUE_MOVE, SYSTEM,
                reason=RESTORE_REASON, extra_filter={"batch_id": None}, bus=bus,
            )  # fmt: skip
            await transition(
                asset.id, S.MOVE_QUEUED, target, Trigger.MOVE_DONE, SYSTEM,
                reason=RESTORE_REASON + " (already in place, no file moved)",
                extra_filter={"batch_id": None}, bus=bus,
            )  # fmt: skip
    except StaleState:
        return decided  # a batch apply took it meanwhile: it brings it back the same way
    return target


_VERSION_DIR = re.compile(r"^v(\d+)$")


def _superseded_dirs(root: Path, current: int) -> list[str]:
    try:
        names = sorted(p.name for p in root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        m = _VERSION_DIR.match(name)
        if m and int(m.group(1)) < current:
            out.append(name)
    return out


_configured: list[Config] = []


def configure(config: Config) -> None:
    """Remember the server config so callers of the cleanup need only the asset id."""
    _configured[:] = [config]


async def cleanup_superseded_derivatives(
    asset_id: uuid.UUID | str, config: Config | None = None
) -> list[str]:
    """Delete `.derived/{uuid}/v{old}/` folders (journaled), strictly inside `.derived/{uuid}/`.

    Called by the result intake once the new version is PROCESSED; returns what it removed.
    Without `config`, uses the one given to `configure` (done by the server at start-up).
    """
    if config is None:
        if not _configured:
            raise RuntimeError("rush.actions.configure(config) was not called")
        config = _configured[0]
    asset = await _get(asset_id)
    aid = str(uuid.UUID(str(asset.id)))
    roots = Roots.from_config(config)
    container = roots.path(f"{DERIVED_DIR}/{aid}")
    if container.is_symlink():
        raise UnsafePath(f"{container} is a symbolic link; refusing to delete through it")
    removed: list[str] = []
    for name in await asyncio.to_thread(_superseded_dirs, container, asset.version):
        rel = f"{DERIVED_DIR}/{aid}/{name}"
        row = await journal.record("rmtree", src=rel, asset_id=asset.id)
        try:
            await asyncio.to_thread(journal.remove_tree_inside, roots.path(rel), container)
        except (UnsafePath, OSError) as exc:
            log.warning("not removing %s: %s", rel, exc)
            await journal.finish([row.id], "failed", str(exc))
            continue
        await journal.finish([row.id])
        removed.append(rel)
    await Derivative.filter(asset_id=asset.id, version__lt=asset.version).delete()
    return removed


async def complete_interrupted_cleanups(config: Config) -> list[str]:
    """Finish derivative cleanups a crash interrupted (pending `rmtree` outside purges)."""
    roots = Roots.from_config(config)
    done: list[str] = []
    for row in await FsAction.filter(status="pending", action="rmtree", batch_id=None):
        rel = row.src or ""
        parts = rel.split("/")
        try:
            if len(parts) != 3 or parts[0] != DERIVED_DIR or not _VERSION_DIR.match(parts[2]):
                raise UnsafePath(f"{rel!r} is not a derived version folder")
            uuid.UUID(parts[1])
            container = roots.path(f"{DERIVED_DIR}/{parts[1]}")
            await asyncio.to_thread(journal.remove_tree_inside, roots.path(rel), container)
        except (UnsafePath, ValueError, OSError) as exc:
            await journal.finish([row.id], "failed", str(exc))
            continue
        await journal.finish([row.id])
        done.append(rel)
    return done


async def retry_failed(asset_id: uuid.UUID | str, actor: str) -> bool:
    """Clear the failed flag so the asset is claimable again; True if it was failed."""
    await _get(asset_id)
    changed = await Asset.filter(id=asset_id, failed=True).update(
        failed=False, attempts=0, last_error=None, updated_at=utcnow()
    )
    if changed:
        log.info("asset %s: failed flag cleared by %s", asset_id, actor)
    return bool(changed)


__all__ = [
    "ActionRefused",
    "StaleState",
    "cleanup_superseded_derivatives",
    "reopen",
    "reprocess",
    "restore_decision_after_processing",
    "retry_failed",
]
