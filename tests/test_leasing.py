"""Lease services on both databases, without MQTT (Workflows 2, 3, 5, 15)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from rush import leasing
from rush.jobs import DerivativeRef, DerivativeRole, JobType
from rush.leasing import Dispatcher, JobResult, LeaseSettings
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Agent, Asset, AssetEvent, Derivative, Facts, Lease, Suggestion, Transcript
from rush.transitions import utcnow
from tests.agent_support import make_asset, make_assets, make_library, write_outputs


@pytest.fixture
def root(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    make_library(lib)
    return lib


def settings_for(root: Path, **kw: object) -> LeaseSettings:
    values: dict[str, object] = {"library_root": root, "default_quota": 4, "max_attempts": 2}
    values.update(kw)
    return LeaseSettings(**values)  # type: ignore[arg-type]


async def register(settings: LeaseSettings, agent_id: str = "a1", max_jobs: int = 4) -> None:
    await leasing.register_agent(agent_id, settings, client_id=agent_id, max_jobs=max_jobs)


def test_assign_params_caps_quota() -> None:
    s = LeaseSettings(default_quota=2)
    assert leasing.assign_params(s, requested_jobs=8, job_types=[])["quota"] == 2
    assert leasing.assign_params(s, requested_jobs=1, job_types=[])["quota"] == 1
    p = leasing.assign_params(s, requested_jobs=8, job_types=["transcription"], quota_limit=5)
    assert p["quota"] == 5 and p["priorities"] == ["transcription"]


def test_derivative_paths_must_stay_in_derived_dir() -> None:
    base = ".derived/u/v1"
    ok = DerivativeRef(role=DerivativeRole.PROXY, path=f"{base}/p.mp4", size=1)
    assert leasing.check_derivative_paths([ok], base) is None
    for bad in ("INBOX/x.mp4", ".derived/u/v2/p.mp4", f"{base}/../../../x", "/etc/passwd", base):
        ref = DerivativeRef(role=DerivativeRole.PROXY, path=bad, size=1)
        assert leasing.check_derivative_paths([ref], base) is not None, bad


def test_has_audio() -> None:
    assert leasing.has_audio(MediaKind.AUDIO, None)
    assert not leasing.has_audio(MediaKind.PHOTO, {"has_audio": True})
    assert leasing.has_audio(MediaKind.VIDEO, {"streams": [{"codec_type": "audio"}]})
    assert not leasing.has_audio(MediaKind.VIDEO, {"streams": [{"codec_type": "video"}]})


async def test_register_stores_agent(db: str, root: Path) -> None:
    s = settings_for(root, default_quota=2)
    params = await leasing.register_agent(
        "pi-1", s, client_id="c", hostname="pi", capabilities={"proxy": True}, max_jobs=3
    )
    assert params["quota"] == 2 and params["lease_ttl_s"] == s.ttl_s
    agent = await Agent.get(id="pi-1")
    assert agent.online and agent.hostname == "pi" and agent.capabilities == {"proxy": True}


async def test_claim_is_idempotent_and_exclusive(db: str, root: Path) -> None:
    s = settings_for(root)
    await register(s)
    asset = await make_asset(root, "a.mp4", sidecars=("xmp",))
    d = Dispatcher(s)
    spec = await d.claim("a1", "r1", ["process_for_review"])
    assert spec is not None and spec.asset_uuid == str(asset.id)
    assert spec.paths.main == "INBOX/a.mp4" and spec.paths.sidecars == ["INBOX/a.xmp"]
    assert spec.derived_dir == f".derived/{asset.id}/v1"
    # Redelivered claim (QoS 1): the same answer, even from a fresh dispatcher (server restart).
    assert await d.claim("a1", "r1", ["process_for_review"]) == spec
    assert await Dispatcher(s).claim("a1", "r1", ["process_for_review"]) == spec
    assert await Lease.all().count() == 1
    assert (await Asset.get(id=asset.id)).state is AssetState.PROCESSING_REVIEW
    assert await d.claim("a1", "r2", ["process_for_review"]) is None
    events = await AssetEvent.filter(asset_id=asset.id)
    assert [(e.from_state, e.to_state, e.trigger) for e in events] == [
        ("READY", "PROCESSING_REVIEW", "claim")
    ]


async def test_claim_skips_ineligible_and_unregistered(db: str, root: Path) -> None:
    s = settings_for(root)
    await register(s)
    failed = await make_asset(root, "f.mp4")
    missing = await make_asset(root, "m.mp4")
    await Asset.filter(id=failed.id).update(failed=True)
    await Asset.filter(id=missing.id).update(missing=True)
    await make_asset(root, "d.mp4", state=AssetState.DISCOVERED)
    d = Dispatcher(s)
    assert await d.claim("a1", "r1", ["process_for_review"]) is None
    await make_asset(root, "ok.mp4")
    assert await d.claim("nobody", "r2", ["process_for_review"]) is None
    assert await d.claim("a1", "r3", ["transcription"]) is None
    assert await d.claim("a1", "r4", ["process_for_review"]) is not None


async def test_quota_is_respected(db: str, root: Path) -> None:
    s = settings_for(root, default_quota=2)
    await register(s, max_jobs=8)
    await make_assets(root, 4)
    d = Dispatcher(s)
    got = [await d.claim("a1", f"r{i}", ["process_for_review"]) for i in range(4)]
    assert [g is not None for g in got] == [True, True, False, False]


async def test_quota_counts_again_once_leases_end(db: str, root: Path) -> None:
    """The in-memory lease count may be too high (a lease ended elsewhere): it is
    re-read before a claim is refused, never trusted to refuse on its own."""
    s = settings_for(root, default_quota=1)
    await register(s, max_jobs=1)
    await make_assets(root, 3)
    d = Dispatcher(s)
    first = await d.claim("a1", "r1", ["process_for_review"])
    assert first is not None
    assert await d.claim("a1", "r2", ["process_for_review"]) is None  # at quota
    verdict = await leasing.finish_job(
        "a1", first.job_id, first.lock_token, JobResult("released"), s
    )
    assert verdict.accepted
    again = await d.claim("a1", "r3", ["process_for_review"])
    assert again is not None and again.job_id != first.job_id
    assert await d.claim("a1", "r4", ["process_for_review"]) is None  # at quota again
    assert await Lease.filter(agent_id="a1", status="active").count() == 1


async def test_old_request_is_answered_again_from_the_database(db: str, root: Path) -> None:
    s = settings_for(root)
    await register(s)
    await make_assets(root, 3)
    d = Dispatcher(s, answers=1)  # remembers only the last answer whole
    first = await d.claim("a1", "r1", ["process_for_review"])
    second = await d.claim("a1", "r2", ["process_for_review"])
    assert first is not None and second is not None and first != second
    assert await d.claim("a1", "r1", ["process_for_review"]) == first  # redelivered
    assert await Lease.all().count() == 2


async def test_batch_conflict_rolls_back_and_serves_one_by_one(
    db: str, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A leftover active lease on a READY asset makes the batch INSERT fail on the
    unique `active_key`: nothing of the batch stays, and the claims are served one by
    one on the other assets."""
    s = settings_for(root, default_quota=8)
    await register(s, max_jobs=8)
    stuck, *others = await make_assets(root, 4)
    await Lease.create(
        asset_id=stuck.id,
        job_type=JobType.PROCESS_FOR_REVIEW,
        agent_id="ghost",
        lock_token="leftover",
        active_key=f"{stuck.id}:{JobType.PROCESS_FOR_REVIEW}",
        expires_at=utcnow() + timedelta(hours=1),
    )
    d = Dispatcher(s)
    got = await asyncio.gather(*(d.claim("a1", f"r{i}", ["process_for_review"]) for i in range(4)))
    granted = sorted(g.asset_uuid for g in got if g is not None)
    assert granted == sorted(str(a.id) for a in others)
    assert (await Asset.get(id=stuck.id)).state is AssetState.READY
    assert await AssetEvent.filter(asset_id=stuck.id).count() == 0
    assert await AssetEvent.filter(trigger="claim").count() == 3
    assert await Lease.filter(agent_id="a1").count() == 3
    assert "batch claim conflicted" in caplog.text


async def test_concurrent_claims_never_double_lease(db: str, root: Path) -> None:
    s = settings_for(root, default_quota=64)
    for i in range(5):
        await register(s, f"a{i}", max_jobs=64)
    assets = await make_assets(root, 12)
    dispatchers = [Dispatcher(s) for _ in range(3)]  # separate caches race on the same rows

    async def claim(n: int) -> str | None:
        spec = await dispatchers[n % 3].claim(f"a{n % 5}", f"r{n}", ["process_for_review"])
        return spec.asset_uuid if spec else None

    got = [g for g in await asyncio.gather(*(claim(n) for n in range(30))) if g]
    assert sorted(got) == sorted(str(a.id) for a in assets)
    assert await Lease.all().count() == 12
    assert await AssetEvent.filter(trigger="claim").count() == 12


async def test_heartbeat_and_wrong_tokens(db: str, root: Path) -> None:
    s = settings_for(root)
    await register(s)
    await make_asset(root, "a.mp4")
    spec = await Dispatcher(s).claim("a1", "r1", ["process_for_review"])
    assert spec is not None
    before = await Lease.get(id=spec.job_id)
    assert (await leasing.heartbeat("a1", spec.job_id, spec.lock_token, 0.5, s)).accepted
    after = await Lease.get(id=spec.job_id)
    assert after.expires_at >= before.expires_at and after.progress == 0.5
    bad = "0" * 32
    assert not (await leasing.heartbeat("a1", spec.job_id, bad, 0.9, s)).accepted
    assert not (await leasing.heartbeat("a2", spec.job_id, spec.lock_token, 0.9, s)).accepted
    assert not (await leasing.heartbeat("a1", "not-a-uuid", spec.lock_token, 0.9, s)).accepted
    assert not (await leasing.store_facts("a1", spec.job_id, bad, {"x": 1})).accepted
    refs = write_outputs(root, spec)
    assert not (await leasing.store_derivatives("a1", spec.job_id, bad, refs)).accepted
    v = await leasing.finish_job("a1", spec.job_id, bad, JobResult("ok", derivatives=refs), s)
    assert not v.accepted
    assert (await Lease.get(id=spec.job_id)).progress == 0.5
    assert await Facts.all().count() == 0 and await Derivative.all().count() == 0
    assert (await Asset.get(id=spec.asset_uuid)).state is AssetState.PROCESSING_REVIEW


async def test_result_ok_needs_files_on_server(db: str, root: Path) -> None:
    s = settings_for(root)
    await register(s)
    await make_assets(root, 2)
    d = Dispatcher(s)
    good = await d.claim("a1", "r1", ["process_for_review"])
    bad = await d.claim("a1", "r2", ["process_for_review"])
    assert good is not None and bad is not None
    refs = write_outputs(root, good)
    assert (await leasing.store_facts("a1", good.job_id, good.lock_token, {"fps": 25})).accepted
    assert (await leasing.store_derivatives("a1", good.job_id, good.lock_token, refs)).accepted
    v = await leasing.finish_job("a1", good.job_id, good.lock_token, JobResult("ok"), s)
    assert v.accepted
    asset = await Asset.get(id=good.asset_uuid)
    assert asset.state is AssetState.PROCESSED and asset.suggestions_status == "pending"
    assert asset.transcript_status == "none"  # no audio stream in the facts
    # A duplicate result (QoS 1) is acknowledged and changes nothing.
    again = await leasing.finish_job("a1", good.job_id, good.lock_token, JobResult("ok"), s)
    assert again.duplicate
    # Derivatives announced but absent on the server's disk: back to READY, attempt counted.
    refs2 = [
        DerivativeRef(role=DerivativeRole.PROXY, path=f"{bad.derived_dir}/p.mp4", size=10),
        DerivativeRef(role=DerivativeRole.THUMB, path=f"{bad.derived_dir}/t.jpg", size=10),
    ]
    v = await leasing.finish_job(
        "a1", bad.job_id, bad.lock_token, JobResult("ok", derivatives=refs2), s
    )
    asset = await Asset.get(id=bad.asset_uuid)
    assert asset.state is AssetState.READY and asset.attempts == 1
    assert "missing required derivatives" in (asset.last_error or "")


async def test_result_ok_without_facts_is_an_error(db: str, root: Path) -> None:
    """PROCESSED means facts stored: an agent that never sent them does not get there."""
    s = settings_for(root)
    await register(s)
    await make_assets(root, 1)
    d = Dispatcher(s)
    job = await d.claim("a1", "r1", ["process_for_review"])
    assert job is not None
    refs = write_outputs(root, job)
    assert (await leasing.store_derivatives("a1", job.job_id, job.lock_token, refs)).accepted
    v = await leasing.finish_job("a1", job.job_id, job.lock_token, JobResult("ok"), s)
    assert v.accepted and "no facts" in v.reason
    asset = await Asset.get(id=job.asset_uuid)
    assert asset.state is AssetState.READY and asset.attempts == 1
    assert "no facts were stored" in (asset.last_error or "")
    # Facts carried in the result itself are enough.
    again = await d.claim("a1", "r2", ["process_for_review"])
    assert again is not None and again.asset_uuid == job.asset_uuid
    refs = write_outputs(root, again)
    result = JobResult("ok", facts={"fps": 25}, derivatives=refs)
    assert (await leasing.finish_job("a1", again.job_id, again.lock_token, result, s)).accepted
    assert (await Asset.get(id=job.asset_uuid)).state is AssetState.PROCESSED


async def test_derivatives_outside_derived_dir_refused(db: str, root: Path) -> None:
    s = settings_for(root)
    await register(s)
    await make_asset(root, "a.mp4")
    spec = await Dispatcher(s).claim("a1", "r1", ["process_for_review"])
    assert spec is not None
    hostile = [DerivativeRef(role=DerivativeRole.PROXY, path="INBOX/a.mp4", size=3)]
    v = await leasing.store_derivatives("a1", spec.job_id, spec.lock_token, hostile)
    assert not v.accepted and await Derivative.all().count() == 0


async def test_expiry_counts_attempts_then_fails(db: str, root: Path) -> None:
    s = settings_for(root, max_attempts=2)
    await register(s)
    asset = await make_asset(root, "a.mp4")
    d = Dispatcher(s)
    for n in range(2):
        spec = await d.claim("a1", f"r{n}", ["process_for_review"])
        assert spec is not None
        later = utcnow() + timedelta(seconds=s.ttl_s + 1)
        assert await leasing.expire_leases(s, now=later) == 1
        # The old token is dead: a late result changes nothing.
        v = await leasing.finish_job("a1", spec.job_id, spec.lock_token, JobResult("ok"), s)
        assert not v.accepted
    asset = await Asset.get(id=asset.id)
    assert asset.state is AssetState.READY and asset.attempts == 2 and asset.failed
    assert "expired" in (asset.last_error or "")
    assert await d.claim("a1", "r9", ["process_for_review"]) is None
    triggers = [e.trigger for e in await AssetEvent.filter(asset_id=asset.id).order_by("id")]
    assert triggers == ["claim", "lease_expired", "claim", "lease_expired"]


async def test_release_counts_no_attempt(db: str, root: Path) -> None:
    s = settings_for(root)
    await register(s)
    asset = await make_asset(root, "a.mp4")
    spec = await Dispatcher(s).claim("a1", "r1", ["process_for_review"])
    assert spec is not None
    v = await leasing.finish_job("a1", spec.job_id, spec.lock_token, JobResult("released"), s)
    assert v.accepted
    asset = await Asset.get(id=asset.id)
    assert asset.state is AssetState.READY and asset.attempts == 0 and not asset.failed
    assert (await Lease.get(id=spec.job_id)).status == "released"


async def test_secondary_jobs(db: str, root: Path) -> None:
    s = settings_for(root)
    await register(s)
    await make_asset(root, "a.wav", kind=MediaKind.AUDIO)
    d = Dispatcher(s)
    spec = await d.claim("a1", "r1", ["process_for_review"])
    assert spec is not None
    refs = write_outputs(root, spec)
    result = JobResult("ok", facts={"duration": 2.0}, derivatives=refs)
    assert (await leasing.finish_job("a1", spec.job_id, spec.lock_token, result, s)).accepted
    asset = await Asset.get(id=spec.asset_uuid)
    assert asset.state is AssetState.PROCESSED
    assert asset.transcript_status == "pending" and asset.suggestions_status == "pending"
    # suggest_tags waits for the transcription.
    assert await d.claim("a1", "s0", ["suggest_tags"]) is None
    tr = await d.claim("a1", "t1", ["transcription", "suggest_tags"])
    assert tr is not None and tr.type is JobType.TRANSCRIPTION
    assert (await Asset.get(id=asset.id)).transcript_status == "running"
    result = JobResult("ok", transcript={"language": "ko", "text": "안녕하세요", "words": []})
    assert (await leasing.finish_job("a1", tr.job_id, tr.lock_token, result, s)).accepted
    asset = await Asset.get(id=asset.id)
    assert asset.transcript_status == "done" and asset.state is AssetState.PROCESSED
    assert (await Transcript.get(asset_id=asset.id)).text == "안녕하세요"
    await Suggestion.create(asset_id=asset.id, version=1, tag="old")
    sg = await d.claim("a1", "s1", ["suggest_tags"])
    assert sg is not None and sg.inputs["transcript"] == "안녕하세요"
    assert sg.inputs["facts"] == {"duration": 2.0}
    result = JobResult("ok", suggestions=[{"tag": "greeting", "score": 0.9}])
    assert (await leasing.finish_job("a1", sg.job_id, sg.lock_token, result, s)).accepted
    asset = await Asset.get(id=asset.id)
    assert asset.suggestions_status == "done" and asset.state is AssetState.PROCESSED
    assert [x.tag for x in await Suggestion.filter(asset_id=asset.id)] == ["greeting"]
    events = await AssetEvent.filter(asset_id=asset.id).count()
    assert events == 2  # claim + processed: secondary jobs never transition


async def test_transcript_by_reference_is_read_from_the_servers_disk(db: str, root: Path) -> None:
    import orjson

    s = settings_for(root)
    await register(s)
    asset = await make_asset(root, "a.wav", kind=MediaKind.AUDIO, state=AssetState.PROCESSED)
    await Asset.filter(id=asset.id).update(transcript_status="pending")
    d = Dispatcher(s)

    async def attempt(request: str, ref: str, body: bytes | None) -> leasing.Verdict:
        job = await d.claim("a1", request, ["transcription"])
        assert job is not None and job.type is JobType.TRANSCRIPTION
        if body is not None:
            target = root / job.derived_dir / "transcript.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        ref = ref.format(dir=job.derived_dir)
        result = JobResult("ok", transcript={"language": "fr", "ref": ref})
        return await leasing.finish_job("a1", job.job_id, job.lock_token, result, s)

    # Outside the job's derived folder, missing (checked before any file is written), or
    # not a transcript: refused, recorded as the attempt's error, nothing stored.
    for n, (ref, body) in enumerate(
        [
            ("INBOX/a.wav", None),
            ("{dir}/../../../INBOX/a.wav", None),
            ("{dir}/transcript.json", None),
            ("{dir}/transcript.json", b"not json"),
            ("{dir}/transcript.json", b"[1, 2]"),
        ]
    ):
        await Asset.filter(id=asset.id).update(transcript_status="pending")
        verdict = await attempt(f"bad{n}", ref, body)
        assert verdict.accepted and verdict.reason, ref
        assert not await Transcript.filter(asset_id=asset.id).exists()
    await Asset.filter(id=asset.id).update(transcript_status="pending")
    words = [{"word": "bonjour", "start": 0.0, "end": 0.5}]
    body = orjson.dumps({"language": "fr", "text": "bonjour", "words": words})
    verdict = await attempt("good", "{dir}/transcript.json", body)
    assert verdict.accepted and not verdict.reason
    transcript = await Transcript.get(asset_id=asset.id)
    assert (transcript.text, transcript.words) == ("bonjour", words)
    assert (await Asset.get(id=asset.id)).transcript_status == "done"


def test_fit_result_sends_a_long_transcript_by_reference() -> None:
    from integrations.agent_runtime import fit_result
    from integrations.mqtt.payloads import ResultPayload

    ref = DerivativeRef(role=DerivativeRole.TRANSCRIPT_JSON, path=".derived/u/v1/t.json", size=9)
    words = [{"word": "x", "start": float(i)} for i in range(2000)]
    big = ResultPayload.model_validate(
        {
            "lock_token": "t" * 32,
            "status": "ok",
            "transcript": {"language": "fr", "text": "x " * 2000, "words": words},
            "derivatives": [ref],
        }
    )
    slim = fit_result(big, 8 * 1024)
    assert slim.transcript is not None and slim.transcript.ref == ref.path
    assert slim.transcript.words == [] and slim.transcript.language == "fr"
    assert len(slim.model_dump_json()) < 8 * 1024 and slim.derivatives == [ref]
    assert fit_result(big, 10 * 1024 * 1024) is big  # fits: unchanged
    no_file = big.model_copy(update={"derivatives": []})
    assert fit_result(no_file, 8 * 1024) is no_file  # nothing to point at: unchanged


async def test_secondary_error_and_expiry(db: str, root: Path) -> None:
    s = settings_for(root, max_attempts=1)
    await register(s)
    a = await make_asset(root, "a.wav", kind=MediaKind.AUDIO, state=AssetState.PROCESSED)
    b = await make_asset(root, "b.wav", kind=MediaKind.AUDIO, state=AssetState.PROCESSED)
    await Asset.filter(id__in=[a.id, b.id]).update(transcript_status="pending")
    d = Dispatcher(s)
    j1 = await d.claim("a1", "t1", ["transcription"])
    j2 = await d.claim("a1", "t2", ["transcription"])
    assert j1 is not None and j2 is not None
    await leasing.finish_job("a1", j1.job_id, j1.lock_token, JobResult("error", error="boom"), s)
    assert await leasing.expire_leases(s, now=utcnow() + timedelta(seconds=s.ttl_s + 1)) == 1
    statuses = {str(x.id): x.transcript_status for x in await Asset.all()}
    assert statuses[j1.asset_uuid] == "error" and statuses[j2.asset_uuid] == "error"
    assert all(x.state is AssetState.PROCESSED for x in await Asset.all())


async def test_transition_batch_moves_only_eligible(db: str, root: Path) -> None:
    from rush.lifecycle import Trigger
    from rush.transitions import transition_batch

    a = await make_asset(root, "a.mp4")
    b = await make_asset(root, "b.mp4")
    c = await make_asset(root, "c.mp4", state=AssetState.DISCOVERED)
    await Asset.filter(id=b.id).update(failed=True)
    moved = await transition_batch(
        [(a.id, "agent:x"), (b.id, "agent:y"), (c.id, "agent:z")],
        AssetState.READY,
        AssetState.PROCESSING_REVIEW,
        Trigger.CLAIM,
        extra_filter={"failed": False},
    )
    assert moved == [a.id]
    states = {x.id: x.state for x in await Asset.all()}
    assert states == {
        a.id: AssetState.PROCESSING_REVIEW,
        b.id: AssetState.READY,
        c.id: AssetState.DISCOVERED,
    }
    events = await AssetEvent.all()
    assert [(e.asset_id, e.actor, e.trigger) for e in events] == [(a.id, "agent:x", "claim")]
    again = await transition_batch(
        [(a.id, "agent:x")], AssetState.READY, AssetState.PROCESSING_REVIEW, Trigger.CLAIM
    )
    assert again == [] and await AssetEvent.all().count() == 1


async def test_reprocess_gives_the_decision_back_and_cleans_old_version(
    db: str, root: Path
) -> None:
    from rush import actions, decisions
    from rush.config import Config

    config = Config()
    config.library.root = root
    s = settings_for(root, config=config)
    await register(s)
    await make_assets(root, 1)
    d = Dispatcher(s)

    async def process(request_id: str) -> str:
        job = await d.claim("a1", request_id, ["process_for_review"])
        assert job is not None
        refs = write_outputs(root, job)
        await leasing.store_facts("a1", job.job_id, job.lock_token, {"fps": 25})
        await leasing.store_derivatives("a1", job.job_id, job.lock_token, refs)
        verdict = await leasing.finish_job("a1", job.job_id, job.lock_token, JobResult("ok"), s)
        assert verdict.accepted
        return job.asset_uuid

    asset_id = await process("r1")
    await decisions.decide(asset_id, "KEEP", "user:alice")
    assert await actions.reprocess(asset_id, "user:alice") == 2
    assert (root / ".derived" / asset_id / "v1").is_dir()
    await process("r2")
    asset = await Asset.get(id=asset_id)
    assert asset.state is AssetState.DECIDED_KEEP and asset.version == 2
    assert asset.decision == "KEEP"
    assert not (root / ".derived" / asset_id / "v1").exists()
    assert (root / ".derived" / asset_id / "v2").is_dir()
