"""Agents against the real Mosquitto (RUSH_TEST_MQTT, a random topic prefix per test)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from integrations.agent_runtime import AgentRuntime
from integrations.mqtt.client import make_client
from rush.jobs import DerivativeRef, DerivativeRole, JobContext, JobOutput, JobSpec, JobType
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Agent, Asset, AssetEvent, Derivative, Lease, Transcript
from tests.agent_support import (
    TestProcessor,
    agents_running,
    make_asset,
    make_assets,
    make_config,
    make_library,
    new_prefix,
    server_actors,
    wait_until,
    write_outputs,
)

pytestmark = pytest.mark.mqtt


@pytest.fixture
def root(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    make_library(lib)
    return lib


async def all_in_state(state: AssetState, count: int) -> bool:
    return await Asset.filter(state=state).count() == count


async def assert_exactly_once(count: int) -> None:
    claims = Counter(e.asset_id for e in await AssetEvent.filter(trigger="claim"))
    done = Counter(e.asset_id for e in await AssetEvent.filter(trigger="processed"))
    assert len(claims) == count and set(claims.values()) == {1}
    assert len(done) == count and set(done.values()) == {1}
    leases = await Lease.all()
    assert len(leases) == count and {x.status for x in leases} == {"done"}
    assert len({x.asset_id for x in leases}) == count  # type: ignore[attr-defined]


async def test_twenty_agents_process_the_pool_exactly_once(db: str, root: Path) -> None:
    # Twenty agents and the server share one event loop here: a lease as long as a real
    # one, so that only a double claim (never a slow machine) can process an asset twice.
    config = make_config(root, prefix=new_prefix(), quota=2, max_jobs=2, ttl=60.0)
    await make_assets(root, 60)
    processors = [TestProcessor() for _ in range(20)]
    runtimes = [AgentRuntime(config, [p], agent_id=f"ag{i:02d}") for i, p in enumerate(processors)]
    async with server_actors(config), agents_running(runtimes):
        await wait_until(lambda: all_in_state(AssetState.PROCESSED, 60), limit_s=60)
    await assert_exactly_once(60)
    seen = [a for p in processors for a in p.seen]
    assert len(seen) == 60 and len(set(seen)) == 60
    assert sum(1 for p in processors if p.seen) > 1  # the work was actually shared
    agents = await Agent.all()
    assert len(agents) == 20 and all(a.params["quota"] == 2 for a in agents)


async def test_errors_attempts_and_release(db: str, root: Path) -> None:
    config = make_config(root, prefix=new_prefix(), max_attempts=2, grace=0.2)
    failing = await make_asset(root, "fail.mp4", instruction="fail")
    crashing = await make_asset(root, "crash.mp4", instruction="crash")
    runtime = AgentRuntime(config, [TestProcessor()], agent_id="solo")
    async with server_actors(config), agents_running([runtime]):
        await wait_until(lambda: _failed_count(2), limit_s=30)
        slow = await make_asset(root, "slow.mp4", instruction="sleep=30")
        await wait_until(lambda: all_in_state(AssetState.PROCESSING_REVIEW, 1), limit_s=30)
        runtime.stop()  # SIGTERM: the running job is released after the grace period
        await wait_until(lambda: _lease_status("released"), limit_s=20)
    for asset in (failing, crashing):
        a = await Asset.get(id=asset.id)
        assert a.state is AssetState.READY and a.failed and a.attempts == 2
    assert "asked to fail" in ((await Asset.get(id=failing.id)).last_error or "")
    assert "crashed" in ((await Asset.get(id=crashing.id)).last_error or "")
    s = await Asset.get(id=slow.id)
    assert s.state is AssetState.READY and s.attempts == 0 and not s.failed
    triggers = [e.trigger for e in await AssetEvent.filter(asset_id=slow.id).order_by("id")]
    assert triggers == ["claim", "released"]


async def _failed_count(n: int) -> bool:
    return await Asset.filter(failed=True).count() == n


async def _lease_status(status: str) -> bool:
    return await Lease.filter(status=status).exists()


async def raw_client(config: object) -> object:
    return make_client(config.mqtt)  # type: ignore[attr-defined]


async def test_malformed_payloads_never_stop_the_server(db: str, root: Path) -> None:
    prefix = new_prefix()
    config = make_config(root, prefix=prefix)
    await make_asset(root, "a.mp4")
    big = b"{" + b'"x":"' + b"a" * (config.mqtt.max_payload_bytes + 10) + b'"}'
    junk = [b"", b"not json", b"[1,2]", b"null", b"{}", b'{"request_id": 5}', big,
            b'{"request_id":"r","job_types":["nope"]}', b"\xff\xfe", b'{"lock_token": []}',
            b'{"client_id": {"a": 1}}', b'{"lock_token":"x","status":"ok"}']  # fmt: skip
    topics = [
        f"{prefix}/agents/evil/register",
        f"{prefix}/agents/evil/status",
        f"{prefix}/agents/evil/claim",
        f"{prefix}/agents/evil/jobs/not-a-uuid/heartbeat",
        f"{prefix}/agents/evil/jobs/00000000-0000-0000-0000-000000000000/facts",
        f"{prefix}/agents/evil/jobs/00000000-0000-0000-0000-000000000000/derivatives",
        f"{prefix}/agents/evil/jobs/00000000-0000-0000-0000-000000000000/result",
        f"{prefix}/cmd/scan",
        f"{prefix}/cmd/../../x",
    ]
    async with server_actors(config) as ctx:
        async with make_client(config.mqtt) as client:
            for topic in topics:
                for payload in junk:
                    await client.publish(topic, payload, qos=1)
            # A normal agent afterwards: registers, claims, gets the job done.
            runtime = AgentRuntime(config, [TestProcessor()], agent_id="good")
            async with agents_running([runtime]):
                await wait_until(lambda: all_in_state(AssetState.PROCESSED, 1), limit_s=30)
        assert ctx.messenger.stats.handler_errors == 0
    assert not await Agent.filter(id="evil").exists()
    assert await Lease.all().count() == 1


async def test_stale_and_wrong_tokens_over_mqtt(db: str, root: Path) -> None:
    prefix = new_prefix()
    config = make_config(root, prefix=prefix, ttl=30)
    asset = await make_asset(root, "a.mp4")
    async with server_actors(config), make_client(config.mqtt) as client:
        await client.subscribe(f"{prefix}/agents/hand/#", qos=1)
        await client.publish(
            f"{prefix}/agents/hand/register", orjson.dumps({"client_id": "hand"}), qos=1
        )
        await _next(client, f"{prefix}/agents/hand/config")
        claim = {"request_id": "r1", "job_types": ["process_for_review"]}
        await client.publish(f"{prefix}/agents/hand/claim", orjson.dumps(claim), qos=1)
        answer = orjson.loads(await _next(client, f"{prefix}/agents/hand/job"))
        job = answer["job"]
        assert answer["request_id"] == "r1" and job["asset_uuid"] == str(asset.id)
        # QoS 1 redelivery of the same claim: the same job, no second lease.
        await client.publish(f"{prefix}/agents/hand/claim", orjson.dumps(claim), qos=1)
        again = orjson.loads(await _next(client, f"{prefix}/agents/hand/job"))
        assert again == answer
        before = await Lease.get(id=job["job_id"])
        base = f"{prefix}/agents/hand/jobs/{job['job_id']}"
        wrong = "f" * 32
        for leaf, body in (
            ("heartbeat", {"lock_token": wrong, "progress": 0.9}),
            ("facts", {"lock_token": wrong, "facts": {"evil": True}}),
            ("derivatives", {"lock_token": wrong, "derivatives": []}),
        ):
            await client.publish(f"{base}/{leaf}", orjson.dumps(body), qos=1)
        await client.publish(
            f"{base}/result", orjson.dumps({"lock_token": wrong, "status": "ok"}), qos=1
        )
        ack = orjson.loads(await _next(client, f"{base}/ack"))
        assert ack["accepted"] is False
        # Another agent using the right token on a job it does not hold: refused too.
        body = {"lock_token": job["lock_token"], "status": "error", "error": "x"}
        await client.publish(
            f"{prefix}/agents/other/jobs/{job['job_id']}/result", orjson.dumps(body), qos=1
        )
        after = await Lease.get(id=job["job_id"])
        assert (after.status, after.progress, after.expires_at) == (
            "active",
            before.progress,
            before.expires_at,
        )
        assert (await Asset.get(id=asset.id)).state is AssetState.PROCESSING_REVIEW
        # The right token is still accepted.
        good = {"lock_token": job["lock_token"], "status": "released"}
        await client.publish(f"{base}/result", orjson.dumps(good), qos=1)
        assert orjson.loads(await _next(client, f"{base}/ack"))["accepted"] is True
    assert (await Asset.get(id=asset.id)).state is AssetState.READY


async def test_a_third_party_agent_is_served_despite_lenient_payloads(db: str, root: Path) -> None:
    """Unknown job types, a percentage as progress, extra derivative keys, a `{GUID}`."""
    prefix = new_prefix()
    config = make_config(root, prefix=prefix, ttl=30)
    asset = await make_asset(root, "a.mp4")
    agent = f"{prefix}/agents/other"
    async with server_actors(config), make_client(config.mqtt) as client:
        await client.subscribe(f"{agent}/#", qos=1)
        register = {"client_id": "other", "job_types": ["process_for_review", "upscale_8k"]}
        await client.publish(f"{agent}/register", orjson.dumps(register), qos=1)
        params = orjson.loads(await _next(client, f"{agent}/config"))
        assert params["priorities"] == ["process_for_review"]

        # Only unknown types: answered `job: null`, not left in silence.
        claim = {"request_id": "none-1", "job_types": ["upscale_8k"]}
        await client.publish(f"{agent}/claim", orjson.dumps(claim), qos=1)
        assert orjson.loads(await _next(client, f"{agent}/job")) == {
            "request_id": "none-1",
            "job": None,
        }
        guid = "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}"
        claim = {"request_id": guid, "job_types": ["upscale_8k", "process_for_review"]}
        await client.publish(f"{agent}/claim", orjson.dumps(claim), qos=1)
        answer = orjson.loads(await _next(client, f"{agent}/job"))
        assert answer["request_id"] == guid and answer["job"]["asset_uuid"] == str(asset.id)
        job = JobSpec.model_validate(answer["job"])
        token = job.lock_token
        base = f"{agent}/jobs/{job.job_id}"

        async def heartbeat(progress: float) -> Lease:
            before = await Lease.get(id=job.job_id)
            body = {"lock_token": token, "progress": progress}
            await client.publish(f"{base}/heartbeat", orjson.dumps(body), qos=1)

            async def extended() -> bool:
                lease = await Lease.get(id=job.job_id)
                return lease.heartbeat_at is not None and lease.heartbeat_at != before.heartbeat_at

            await wait_until(extended, limit_s=5)
            after = await Lease.get(id=job.job_id)
            assert after.expires_at > before.expires_at
            return after

        assert (await heartbeat(42)).progress == pytest.approx(0.42)  # a percentage
        assert (await heartbeat(0.5)).progress == pytest.approx(0.5)
        assert (await heartbeat(5000)).progress == pytest.approx(0.5)  # ignored, lease kept

        facts = {"lock_token": token, "facts": {"test": True, "has_audio": False}}
        await client.publish(f"{base}/facts", orjson.dumps(facts), qos=1)
        refs = [r.model_dump(mode="json") for r in write_outputs(root, job)]
        outside = [{**refs[0], "path": f".derived/{uuid.uuid4()}/v1/proxy.bin", "width": 1}]
        await client.publish(
            f"{base}/derivatives",
            orjson.dumps({"lock_token": token, "derivatives": outside}),
            qos=1,
        )
        extra = [{**r, "width": 1920, "height": 1080} for r in refs]
        await client.publish(
            f"{base}/derivatives", orjson.dumps({"lock_token": token, "derivatives": extra}), qos=1
        )
        await client.publish(
            f"{base}/result", orjson.dumps({"lock_token": token, "status": "ok"}), qos=1
        )
        ack = orjson.loads(await _next(client, f"{base}/ack"))
        assert ack["accepted"] is True, ack
    assert (await Asset.get(id=asset.id)).state is AssetState.PROCESSED
    stored = {d.rel_path for d in await Derivative.filter(asset_id=asset.id)}
    assert stored == {r["path"] for r in refs}  # the path check still refused `outside`


async def _next(client: object, topic: str, limit_s: float = 10.0) -> bytes:
    async def wait() -> bytes:
        async for message in client.messages:  # type: ignore[attr-defined]
            if message.topic.value == topic:
                return bytes(message.payload)
        raise AssertionError("stream ended")

    return await asyncio.wait_for(wait(), limit_s)


class LongTranscriber:
    """A transcription processor with an interview's worth of words (~1.5 MB of JSON)."""

    job_type = JobType.TRANSCRIPTION
    __test__ = False
    WORDS = 20_000

    def capabilities(self) -> dict[str, object]:
        return {"test": True}

    async def run(self, job: JobSpec, ctx: JobContext) -> JobOutput:
        words = [
            {"word": f"mot{i}", "start": i * 0.4, "end": i * 0.4 + 0.3, "conf": 0.9}
            for i in range(self.WORDS)
        ]
        transcript = {"language": "fr", "text": " ".join(w["word"] for w in words), "words": words}
        folder = ctx.library_root / job.derived_dir
        folder.mkdir(parents=True, exist_ok=True)
        body = orjson.dumps(transcript)
        (folder / "transcript.json").write_bytes(body)
        ref = DerivativeRef(
            role=DerivativeRole.TRANSCRIPT_JSON,
            path=f"{job.derived_dir}/transcript.json",
            size=len(body),
            mime="application/json",
        )
        return JobOutput(transcript=transcript, derivatives=[ref])


async def test_a_transcript_too_long_for_one_message_arrives_whole(db: str, root: Path) -> None:
    config = make_config(root, prefix=new_prefix())
    config.secondary.transcription = True
    config.agent.job_types = ["transcription"]
    asset = await make_asset(
        root, "interview.wav", kind=MediaKind.AUDIO, state=AssetState.PROCESSED
    )
    await Asset.filter(id=asset.id).update(transcript_status="pending")
    runtime = AgentRuntime(config, [LongTranscriber()], agent_id="scribe")

    async def done() -> bool:
        return (await Asset.get(id=asset.id)).transcript_status == "done"

    async with server_actors(config), agents_running([runtime]):
        await wait_until(done, limit_s=30)
    transcript = await Transcript.get(asset_id=asset.id)
    assert len(transcript.words) == LongTranscriber.WORDS and transcript.language == "fr"
    assert transcript.text.startswith("mot0 mot1 ") and transcript.text.endswith(" mot19999")
    assert len(orjson.dumps(transcript.words)) > config.mqtt.max_payload_bytes
    lease = await Lease.get(asset_id=asset.id, job_type="transcription")
    assert lease.status == "done"


def test_job_paths_follow_the_agents_archive_and_rejects_mounts(tmp_path: Path) -> None:
    """A reprocessed ARCHIVED asset says `ARCHIVE/…`; when the server keeps ARCHIVE on
    another volume, the agent finds it at its own `agent.archive_mount`."""
    from integrations.agent_runtime import _Context
    from rush.layout import UnsafePath
    from tests.media_helpers import make_job

    lib, archive = tmp_path / "lib", tmp_path / "vol2" / "ARCHIVE"
    job = make_job(MediaKind.VIDEO, "ARCHIVE/2024/a.mp4")
    ctx = _Context(None, job, lib, {"ARCHIVE": archive})  # type: ignore[arg-type]
    assert ctx.abs_path(job.paths.main) == archive / "2024" / "a.mp4"
    assert ctx.abs_path("REJECTS/b.mp4") == lib / "REJECTS" / "b.mp4"
    assert ctx.abs_path(job.derived_dir) == lib / job.derived_dir
    with pytest.raises(UnsafePath):
        ctx.abs_path("ARCHIVE/../../etc/passwd")


async def test_server_start_forgets_stale_presence(tmp_path: Path, root: Path) -> None:
    """`online` left in the database by a previous run is not trusted: after the start an
    agent is online only if the broker says so (its retained status)."""
    from rush.server import run_server
    from rush.storage import close_db, init_db
    from tests.conftest import free_port

    prefix = new_prefix()
    config = make_config(root, prefix=prefix).model_copy(update={"data_dir": tmp_path / "data"})
    config.web.port = free_port()
    config.data_dir.mkdir()
    await init_db(config.database_url())
    try:
        await Agent.create(id="gone", online=True)
        await Agent.create(id="alive", online=True)
    finally:
        await close_db()
    retained = f"{prefix}/agents/alive/status"

    async def publish_status(payload: bytes) -> None:
        async with make_client(config.mqtt) as client:
            await client.publish(retained, payload, qos=1, retain=True)

    await publish_status(b"online")
    seen: dict[str, bool] = {}

    def hook(supervisor: Any) -> None:
        async def watch() -> None:
            try:
                for _ in range(200):
                    seen.update({a.id: a.online for a in await Agent.all()})
                    if seen == {"gone": False, "alive": True}:
                        return
                    await asyncio.sleep(0.05)
            finally:
                supervisor.stop()

        asyncio.get_running_loop().create_task(watch())

    try:
        await asyncio.wait_for(run_server(config, supervisor_hook=hook), 30)
    finally:
        await publish_status(b"")  # clear the retained status
    assert seen == {"gone": False, "alive": True}


async def test_an_idle_agent_that_claims_stays_seen(db: str, root: Path) -> None:
    """An idle agent only claims (no heartbeats): its claims keep `last_seen` fresh, so
    the ops page does not call a live agent offline."""
    from datetime import timedelta

    from rush.transitions import utcnow

    prefix = new_prefix()
    config = make_config(root, prefix=prefix)
    agent = f"{prefix}/agents/idle"
    async with server_actors(config), make_client(config.mqtt) as client:
        await client.subscribe(f"{agent}/#", qos=1)
        await client.publish(f"{agent}/register", orjson.dumps({"client_id": "idle"}), qos=1)
        await _next(client, f"{agent}/config")
        long_ago = utcnow() - timedelta(minutes=10)
        await Agent.filter(id="idle").update(last_seen=long_ago)
        claim = {"request_id": "idle-1", "job_types": ["process_for_review"]}
        await client.publish(f"{agent}/claim", orjson.dumps(claim), qos=1)
        assert orjson.loads(await _next(client, f"{agent}/job"))["job"] is None
        seen = (await Agent.get(id="idle")).last_seen
        assert seen is not None and seen > utcnow() - timedelta(seconds=5)


async def test_a_lonely_agent_says_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No share mounted and no server on this prefix: the agent says both, early, instead
    of waiting in silence."""
    import integrations.agent_runtime as runtime_module

    monkeypatch.setattr(runtime_module, "NO_PARAMS_WARN_S", 0.5)
    prefix = new_prefix()
    config = make_config(tmp_path / "not-mounted", prefix=prefix)
    runtime = AgentRuntime(config, [TestProcessor()], agent_id="lonely")
    async with agents_running([runtime]):

        async def warned() -> bool:
            return "no parameters from the server" in caplog.text

        await wait_until(warned, limit_s=5)
    assert "will not claim until this is fixed" in caplog.text
    assert f"mqtt.prefix = '{prefix}'" in caplog.text
