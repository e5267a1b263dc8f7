"""Reprocess fences secondary jobs: every lease and result carries the asset version.

A transcription leased before a reprocess must not finish afterwards and mark the new
version's transcript done with the old text; the asset never holds two active leases;
a batch apply never moves a file an agent is reading.  Both databases.
"""

from __future__ import annotations

from pathlib import Path

from rush import actions, leasing
from rush.jobs import JobType
from rush.leasing import Dispatcher, JobResult, LeaseSettings
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Asset, Lease, Transcript
from rush.moves.run import run_apply
from tests import batch_helpers
from tests.agent_support import make_asset, make_library, write_outputs

S = AssetState


async def _transcribing(root: Path, settings: LeaseSettings) -> tuple[Asset, Dispatcher]:
    await leasing.register_agent("ears", settings, client_id="ears", max_jobs=4)
    asset = await make_asset(root, "talk.wav", kind=MediaKind.AUDIO, state=S.PROCESSED)
    await Asset.filter(id=asset.id).update(transcript_status="pending", transcript_language="en")
    return asset, Dispatcher(settings)


async def test_a_transcription_from_before_a_reprocess_is_refused(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_library(root)
    s = LeaseSettings(library_root=root, default_quota=4, suggest_tags=False)
    asset, d = await _transcribing(root, s)
    old = await d.claim("ears", "t1", ["transcription"])
    assert old is not None and old.version == 1
    assert await actions.reprocess(asset.id, "alice") == 2
    # The old version's lease is over at once: one active lease per asset, never two.
    lease = await Lease.get(id=old.job_id)
    assert lease.status == "superseded" and lease.active_key is None
    main = await d.claim("ears", "m1", ["process_for_review"])
    assert main is not None and main.version == 2
    assert await Lease.filter(asset_id=asset.id, status="active").count() == 1
    stale = JobResult("ok", transcript={"language": "en", "text": "old words"})
    verdict = await leasing.finish_job("ears", old.job_id, old.lock_token, stale, s)
    assert not verdict.accepted and "reprocessed" in verdict.reason
    # The new version is processed; its transcription is pending, not "done" with v1 text.
    result = JobResult("ok", facts={"duration_s": 1.0}, derivatives=write_outputs(root, main))
    assert (await leasing.finish_job("ears", main.job_id, main.lock_token, result, s)).accepted
    a = await Asset.get(id=asset.id)
    assert (a.state, a.version, a.transcript_status) == (S.PROCESSED, 2, "pending")
    again = await leasing.finish_job("ears", old.job_id, old.lock_token, stale, s)
    assert not again.accepted  # a re-sent late result is refused as well
    assert not await Transcript.filter(asset_id=asset.id).exists()


async def test_a_result_for_another_version_than_its_lease_is_refused(
    db: str, tmp_path: Path
) -> None:
    """An asset reprocessed between the version check and the commit (or a lease not
    fenced, from an older server) still cannot take an old version's result."""
    root = tmp_path / "lib"
    make_library(root)
    s = LeaseSettings(library_root=root, default_quota=4, suggest_tags=False)
    asset, d = await _transcribing(root, s)
    job = await d.claim("ears", "t1", ["transcription"])
    assert job is not None
    wrong = JobResult("ok", transcript={"language": "en", "text": "x"}, version=7)
    assert not (await leasing.finish_job("ears", job.job_id, job.lock_token, wrong, s)).accepted
    # A version bump that did not go through reprocess (no fencing): still refused.
    await Asset.filter(id=asset.id).update(version=2, transcript_status="none")
    late = JobResult("ok", transcript={"language": "en", "text": "x"})
    verdict = await leasing.finish_job("ears", job.job_id, job.lock_token, late, s)
    assert not verdict.accepted and "version 1" in verdict.reason
    assert (await Asset.get(id=asset.id)).transcript_status == "none"
    assert (await Lease.get(id=job.job_id)).status == leasing.SUPERSEDED


async def test_apply_never_moves_a_file_an_agent_is_reading(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = batch_helpers.make_config(root, db)
    s = LeaseSettings(library_root=root, default_quota=4)
    await leasing.register_agent("ears", s, client_id="ears", max_jobs=4)
    busy = await batch_helpers.make_asset(root, "INBOX/2024/talk.mp4", S.DECIDED_KEEP)
    free = await batch_helpers.make_asset(root, "INBOX/2024/other.mp4", S.DECIDED_KEEP)
    await Asset.filter(id=busy.id).update(transcript_status="pending", transcript_language="en")
    job = await Dispatcher(s).claim("ears", "t1", [JobType.TRANSCRIPTION.value])
    assert job is not None and job.asset_uuid == str(busy.id)
    report = await run_apply(cfg, "alice")
    assert [m["uuid"] for m in report.moved] == [str(free.id)]
    skipped = {x["uuid"]: x["reason"] for x in report.skipped}
    assert "agent is working on it" in skipped[str(busy.id)]
    assert "ears" in skipped[str(busy.id)]
    b = await Asset.get(id=busy.id)
    assert (b.state, b.rel_path, b.batch_id) == (S.DECIDED_KEEP, "INBOX/2024/talk.mp4", None)
    assert (root / "INBOX/2024/talk.mp4").exists()
    # Once the job is over, the next apply moves it.
    done = JobResult("ok", transcript={"language": "en", "text": "hello"})
    assert (await leasing.finish_job("ears", job.job_id, job.lock_token, done, s)).accepted
    again = await run_apply(cfg, "alice")
    assert [m["uuid"] for m in again.moved] == [str(busy.id)]
