"""Agents in a real deployment, against the real Mosquitto (a random prefix per test).

Start order (the agent before the server, a server restart), settings that follow the
server (a restart with another TTL reaches running agents and their jobs in flight), and
capabilities (a photo-only agent is never handed a video).  Contract: docs/agents.md.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from integrations.agent_runtime import AgentRuntime
from integrations.mqtt.client import make_client
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Agent, Asset, AssetEvent, Lease
from tests.agent_support import (
    KindsProcessor,
    TestProcessor,
    agents_running,
    make_asset,
    make_config,
    make_library,
    new_prefix,
    server_actors,
    wait_until,
)
from tests.conftest import rush_env

pytestmark = pytest.mark.mqtt


@pytest.fixture
def root(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    make_library(lib)
    return lib


async def _processed(*assets: Asset) -> bool:
    ids = [a.id for a in assets]
    return await Asset.filter(id__in=ids, state=AssetState.PROCESSED).count() == len(ids)


async def _next(client: Any, topic: str, limit_s: float = 10.0) -> bytes:
    async with asyncio.timeout(limit_s):
        async for message in client.messages:
            if message.topic.value == topic and message.payload:
                return bytes(message.payload)
    raise AssertionError(f"nothing on {topic}")


# --- 1. start order -----------------------------------------------------------------


async def test_agent_started_before_the_server_registers_once_it_is_up(
    db: str, root: Path, tmp_path: Path
) -> None:
    """`rush agent` (a real subprocess) starts first, as systemd may start it on a NAS
    boot; `rush serve`'s MQTT side comes up after it, then restarts with the agent's
    registration gone.  The agent registers each time and its assets get processed."""
    prefix = new_prefix()
    config = make_config(root, prefix=prefix)
    first = await make_asset(root, "first.mp4")
    env = rush_env(
        RUSH_MQTT__HOST="127.0.0.1",
        RUSH_MQTT__PORT=str(config.mqtt.port),
        RUSH_MQTT__PREFIX=prefix,
        RUSH_AGENT__ID="early",
        RUSH_AGENT__LIBRARY_MOUNT=str(root),
        RUSH_AGENT__PROCESSORS="tests.agent_support:processors",
        RUSH_AGENT__JOB_TYPES='["process_for_review"]',
        RUSH_AGENT__IDLE_POLL_S="0.2",
    )
    workdir = tmp_path / "agent"
    workdir.mkdir()
    log_fd = os.open(workdir / "agent.log", os.O_WRONLY | os.O_CREAT, 0o600)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rush",
        "agent",
        env=env,
        cwd=workdir,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
    )
    os.close(log_fd)

    def agent_log() -> str:
        return (workdir / "agent.log").read_text(errors="replace")[-3000:]

    try:
        # The agent is connected (its retained `online`) and has sent its registration
        # into the void: nobody serves this prefix yet.
        async with make_client(config.mqtt) as client:
            await client.subscribe(f"{prefix}/agents/early/status", qos=1)
            assert await _next(client, f"{prefix}/agents/early/status", 60) == b"online"
        async with server_actors(config):
            await wait_until(lambda: _processed(first), limit_s=60)
        # The server restarts (here with the agent's registration lost meanwhile: a new
        # database, or `rush agents remove --force`): the agent registers again.
        await Agent.filter(id="early").delete()
        second = await make_asset(root, "second.mp4")
        async with server_actors(config):
            await wait_until(lambda: _processed(second), limit_s=60)
            assert await Agent.filter(id="early").exists(), agent_log()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{agent_log()}") from exc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await _clear_retained(config, f"{prefix}/agents/early/status")


async def _clear_retained(config: Any, *topics: str) -> None:
    async with make_client(config.mqtt) as client:
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)


async def test_a_claim_from_an_unknown_agent_asks_it_to_register(db: str, root: Path) -> None:
    """The server answers a claim from an agent it does not know with `reregister`."""
    prefix = new_prefix()
    config = make_config(root, prefix=prefix)
    agent = f"{prefix}/agents/stranger"
    async with server_actors(config), make_client(config.mqtt) as client:
        await client.subscribe(f"{agent}/job", qos=1)
        claim = {"request_id": "s-1", "job_types": ["process_for_review"]}
        await client.publish(f"{agent}/claim", orjson.dumps(claim), qos=1)
        answer = orjson.loads(await _next(client, f"{agent}/job"))
        assert answer["job"] is None and answer["reregister"] is True


# --- 2. settings follow the server ------------------------------------------------------


async def test_a_server_restarted_with_a_shorter_ttl_reaches_jobs_in_flight(
    db: str, root: Path
) -> None:
    """Server with ttl 60 s / heartbeat 30 s; a job runs that reports no progress; the
    server restarts with ttl 3 s / heartbeat 0.5 s.  The agent applies the new period at
    once, to the running job too: its lease never expires, no second claim happens."""
    prefix = new_prefix()
    slow = make_config(root, prefix=prefix, ttl=60, heartbeat=30, check=0.2)
    fast = make_config(root, prefix=prefix, ttl=3, heartbeat=0.5, check=0.2)
    asset = await make_asset(root, "quiet.mp4", instruction="quiet=9")
    runtime = AgentRuntime(slow, [TestProcessor()], agent_id="steady")
    async with agents_running([runtime]):
        async with server_actors(slow):
            await wait_until(lambda: Lease.filter(asset_id=asset.id).exists(), limit_s=30)
            assert runtime.params is not None and runtime.params.heartbeat_s == 30
        async with server_actors(fast):
            await wait_until(lambda: _processed(asset), limit_s=60)
        assert runtime.params is not None
        assert (runtime.params.heartbeat_s, runtime.params.lease_ttl_s) == (0.5, 3)
    triggers = [e.trigger for e in await AssetEvent.filter(asset_id=asset.id).order_by("id")]
    assert triggers == ["claim", "processed"]
    assert [x.status for x in await Lease.filter(asset_id=asset.id)] == ["done"]


async def test_the_server_pushes_fresh_parameters_to_every_known_agent_at_start(
    db: str, root: Path
) -> None:
    """An agent that does not register again (an older one, or one whose messages are
    delayed) still gets the parameters of the server's current settings, retained."""
    prefix = new_prefix()
    agent = f"{prefix}/agents/quiet"
    first = make_config(root, prefix=prefix, ttl=120, heartbeat=30)
    second = make_config(root, prefix=prefix, ttl=30, heartbeat=5)
    try:
        async with server_actors(first), make_client(first.mqtt) as client:
            await client.subscribe(f"{agent}/config", qos=1)
            reg = {"client_id": "quiet", "max_jobs": 2, "job_types": ["process_for_review"]}
            await client.publish(f"{agent}/register", orjson.dumps(reg), qos=1)
            params = orjson.loads(await _next(client, f"{agent}/config"))
            assert (params["heartbeat_s"], params["lease_ttl_s"]) == (30, 120)
        async with server_actors(second), make_client(second.mqtt) as client:
            await client.subscribe(f"{agent}/config", qos=1)
            while True:  # the retained old ones may come first
                params = orjson.loads(await _next(client, f"{agent}/config"))
                if params["heartbeat_s"] == 5:
                    break
            assert params["lease_ttl_s"] == 30 and params["quota"] == 2
            assert params["priorities"] == ["process_for_review"]
    finally:
        await _clear_retained(first, f"{agent}/config")


# --- 4. capabilities ---------------------------------------------------------------------


async def test_a_photo_only_agent_is_never_handed_a_video(
    db: str, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A photo-only agent (no ffmpeg) processes the photo and leaves the video alone:
    no failed attempt, no failed flag; `rush status` says nobody can do the video until
    an agent that can comes, and then it is processed."""
    from rush.status import collect_status

    prefix = new_prefix()
    config = make_config(root, prefix=prefix, max_attempts=2)
    video = await make_asset(root, "clip.mp4")
    photo = await make_asset(root, "pic.jpg", kind=MediaKind.PHOTO)
    photo_only = KindsProcessor((MediaKind.PHOTO,), heif=True)
    pi = AgentRuntime(config, [photo_only], agent_id="pi-photos")
    async with server_actors(config), agents_running([pi]):
        await wait_until(lambda: _processed(photo), limit_s=30)

        async def says_unserved() -> bool:
            snap = await collect_status(config)
            return bool(snap["queue_unserved"] == 1 and "video: 1" in snap["queue_unserved_needs"])

        await wait_until(says_unserved, limit_s=30)
        v = await Asset.get(id=video.id)
        assert v.state is AssetState.READY and v.attempts == 0 and not v.failed
        assert photo_only.seen == [str(photo.id)]
        video_agent = KindsProcessor((MediaKind.VIDEO, MediaKind.AUDIO))
        async with agents_running([AgentRuntime(config, [video_agent], agent_id="desk")]):
            await wait_until(lambda: _processed(video), limit_s=30)
    assert photo_only.seen == [str(photo.id)] and video_agent.seen == [str(video.id)]
    assert not await AssetEvent.filter(trigger="agent_error").exists()


async def test_real_processors_a_photo_agent_without_ffmpeg_leaves_videos_alone(
    db: str, root: Path
) -> None:
    """The shipped processor on a machine without ffmpeg advertises photos only; with
    `max_attempts = 1` a single video handed to it would flag the asset failed for good.
    The video waits instead, and the agent with real ffmpeg makes its proxy."""
    from integrations.processors import ReviewProcessor, detect_ffmpeg
    from rush.status import collect_status
    from tests import media_helpers as mh

    config = make_config(root, prefix=new_prefix(), max_attempts=1)
    (root / "INBOX").mkdir(exist_ok=True)
    assets = {}
    for name, kind in (("clip.mp4", MediaKind.VIDEO), ("pic.jpg", MediaKind.PHOTO)):
        path = root / "INBOX" / name
        if kind is MediaKind.VIDEO:
            mh.video(path, seconds=1)
        else:
            mh.asymmetric_photo(path, 1, "JPEG")
        rel = f"INBOX/{name}"
        assets[kind] = await Asset.create(
            kind=kind, rel_path=rel, path_key=rel, size=path.stat().st_size,
            state=AssetState.READY,
        )  # fmt: skip
    no_ffmpeg = ReviewProcessor(config.agent.proxy)
    assert no_ffmpeg.capabilities()["kinds"] == ["photo"]
    pi = AgentRuntime(config, [no_ffmpeg], agent_id="pi-no-ffmpeg")
    async with server_actors(config), agents_running([pi]):
        await wait_until(lambda: _processed(assets[MediaKind.PHOTO]), limit_s=60)

        async def video_unserved() -> bool:
            return (await collect_status(config))["queue_unserved_needs"] == "video: 1"

        await wait_until(video_unserved, limit_s=30)
        v = await Asset.get(id=assets[MediaKind.VIDEO].id)
        assert v.state is AssetState.READY and v.attempts == 0 and not v.failed
        assert not await Lease.filter(asset_id=v.id).exists()
        with_ffmpeg = ReviewProcessor(config.agent.proxy, *detect_ffmpeg())
        desk = AgentRuntime(config, [with_ffmpeg], agent_id="desk-ffmpeg")
        async with agents_running([desk]):
            await wait_until(lambda: _processed(v), limit_s=120)
    leases = await Lease.filter(asset_id=assets[MediaKind.VIDEO].id)
    assert [(x.agent_id, x.status) for x in leases] == [("desk-ffmpeg", "done")]
