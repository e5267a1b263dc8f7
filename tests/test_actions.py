"""Reopen, reprocess (and the decision coming back), derivative cleanup, retry."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from rush import actions
from rush.actions import ActionRefused
from rush.lifecycle import AssetState, Trigger
from rush.models import Asset, AssetEvent, Derivative, Facts, FsAction, Suggestion, Transcript
from rush.transitions import transition
from tests.batch_helpers import make_asset, make_config, write

S = AssetState


async def processed_again(asset_id: uuid.UUID) -> None:
    """What an agent's valid result does after a reprocess: READY -> ... -> PROCESSED."""
    a = await Asset.get(id=asset_id)
    await transition(asset_id, S.READY, S.PROCESSING_REVIEW, Trigger.CLAIM, "agent:a1")
    await transition(asset_id, S.PROCESSING_REVIEW, S.PROCESSED, Trigger.PROCESSED, "agent:a1")
    await Facts.create(asset_id=asset_id, version=a.version, data={})


async def test_reopen_only_archived_or_rejected_and_moves_nothing(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_config(root, db)
    arch = await make_asset(root, "ARCHIVE/a.mp4", S.ARCHIVED)
    assert await actions.reopen(arch.id, "alice") is S.DECISION_PENDING
    a = await Asset.get(id=arch.id)
    assert (a.state, a.rel_path) == (S.DECISION_PENDING, "ARCHIVE/a.mp4")
    assert (root / "ARCHIVE/a.mp4").exists()
    ev = await AssetEvent.filter(asset_id=arch.id).order_by("-id").first()
    assert ev is not None and (ev.trigger, ev.actor) == ("reopen", "alice")
    decided = await make_asset(root, "INBOX/b.mp4", S.DECIDED_KEEP)
    with pytest.raises(ActionRefused):
        await actions.reopen(decided.id, "alice")
    rej = await make_asset(root, "REJECTS/c.mp4", S.REJECTED)
    await Asset.filter(id=rej.id).update(batch_id=uuid.uuid4())
    with pytest.raises(ActionRefused, match="held by batch"):
        await actions.reopen(rej.id, "alice")


async def test_reprocess_decided_keeps_decision_and_restores_it(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_config(root, db)
    a = await make_asset(root, "INBOX/d/clip.mp4", S.DECIDED_REJECT)
    await Suggestion.create(asset_id=a.id, version=1, tag="beach")
    await Suggestion.create(asset_id=a.id, version=1, tag="kept", accepted=True)
    await Transcript.create(asset_id=a.id, version=1, text="hello")
    await Asset.filter(id=a.id).update(transcript_status="done", suggestions_status="done")
    assert await actions.reprocess(a.id, "bob") == 2
    r = await Asset.get(id=a.id)
    assert (r.state, r.version, r.decision, r.rel_path) == (
        S.READY,
        2,
        "REJECT",
        "INBOX/d/clip.mp4",
    )
    assert (r.transcript_status, r.suggestions_status) == ("none", "none")
    assert await Transcript.filter(asset_id=a.id).count() == 0
    assert await Suggestion.filter(asset_id=a.id).values_list("tag", flat=True) == ["kept"]
    # Nothing to restore before processing is done.
    assert await actions.restore_decision_after_processing(a.id) is None
    await processed_again(a.id)
    assert await actions.restore_decision_after_processing(a.id) is S.DECIDED_REJECT
    ev = await AssetEvent.filter(asset_id=a.id).order_by("-id").first()
    assert ev is not None and (ev.actor, ev.reason) == ("system", actions.RESTORE_REASON)
    # Only once.
    assert await actions.restore_decision_after_processing(a.id) is None


async def test_reprocess_archived_comes_back_archived_in_place(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_config(root, db)
    a = await make_asset(root, "ARCHIVE/e/clip.mp4", S.ARCHIVED)
    await actions.reprocess(a.id, "carol")
    await processed_again(a.id)
    assert await actions.restore_decision_after_processing(a.id) is S.ARCHIVED
    r = await Asset.get(id=a.id)
    assert (r.state, r.rel_path, r.batch_id) == (S.ARCHIVED, "ARCHIVE/e/clip.mp4", None)
    assert (root / "ARCHIVE/e/clip.mp4").exists()


async def test_reprocess_from_processed_restores_nothing(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_config(root, db)
    a = await make_asset(root, "INBOX/f.mp4", S.PROCESSED)
    await actions.reprocess(a.id, "dan")
    await processed_again(a.id)
    assert await actions.restore_decision_after_processing(a.id) is None
    assert (await Asset.get(id=a.id)).state is S.PROCESSED


async def test_reprocess_refused_in_batch_or_queued_or_purged(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_config(root, db)
    held = await make_asset(root, "INBOX/g.mp4", S.DECIDED_KEEP)
    await Asset.filter(id=held.id).update(batch_id=uuid.uuid4())
    with pytest.raises(ActionRefused):
        await actions.reprocess(held.id, "eve")
    queued = await make_asset(root, "INBOX/h.mp4", S.DECIDED_KEEP)
    await transition(queued.id, S.DECIDED_KEEP, S.MOVE_QUEUED, Trigger.QUEUE_MOVE, "batch")
    with pytest.raises(ActionRefused):
        await actions.reprocess(queued.id, "eve")
    assert (await Asset.get(id=queued.id)).version == 1


async def test_cleanup_superseded_derivatives_only_old_versions_inside(
    db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await make_asset(root, "INBOX/i.mp4", S.PROCESSED)
    for v in (1, 2):
        write(root, f".derived/{a.id}/v{v}/proxy.mp4", b"p")
        await Derivative.create(
            asset_id=a.id, version=v, role="proxy", rel_path=f".derived/{a.id}/v{v}/proxy.mp4"
        )
    write(root, f".derived/{a.id}/notes.txt", b"not a version folder")
    other = tmp_path / "victim"
    other.mkdir()
    (other / "precious").write_text("x")
    (root / f".derived/{a.id}/v0").symlink_to(other)  # hostile: a link out of .derived
    await actions.reprocess(a.id, "fay")
    actions.configure(cfg)
    removed = await actions.cleanup_superseded_derivatives(a.id)
    assert removed == [f".derived/{a.id}/v1"]  # v0 refused (symlink), v2 is current
    assert (root / f".derived/{a.id}/v2/proxy.mp4").exists()
    assert (root / f".derived/{a.id}/notes.txt").exists()
    assert (other / "precious").exists()
    assert await Derivative.filter(asset_id=a.id).values_list("version", flat=True) == [2]
    rows = (
        await FsAction.filter(asset_id=a.id, action="rmtree")
        .order_by("id")
        .values_list("src", "status")
    )
    assert [tuple(r) for r in rows] == [
        (f".derived/{a.id}/v0", "failed"),
        (f".derived/{a.id}/v1", "done"),
    ]


async def test_retry_failed_clears_flags(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_config(root, db)
    a = await make_asset(root, "INBOX/j.mp4", S.PROCESSED)
    await Asset.filter(id=a.id).update(failed=True, attempts=3, last_error="ffmpeg died")
    assert await actions.retry_failed(a.id, "gus") is True
    r = await Asset.get(id=a.id)
    assert (r.failed, r.attempts, r.last_error) == (False, 0, None)
    assert await actions.retry_failed(a.id, "gus") is False
