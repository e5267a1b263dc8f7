"""The dispatcher offers an agent only what it can do; the operator sets quota and
priorities per agent (`rush agents set`), persisted and pushed at once.  Both databases."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from integrations.mqtt.client import make_client
from rush import leasing
from rush.capabilities import Can, can_for, unserved_categories, unserved_ready
from rush.jobs import JobType
from rush.leasing import Dispatcher, LeaseSettings
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Agent, Asset
from tests.agent_support import (
    make_asset,
    make_config,
    make_library,
    new_prefix,
    server_actors,
)
from tests.conftest import rush_env

PHOTOS_ONLY = {"process_for_review": {"kinds": ["photo"], "heif": False, "ffmpeg": None}}


def test_capability_rules() -> None:
    photos = can_for(PHOTOS_ONLY, ["process_for_review"], JobType.PROCESS_FOR_REVIEW)
    assert photos == Can(kinds=frozenset({"photo"}), heif=False)
    assert photos.allows("photo", "INBOX/a.JPG") and not photos.allows("photo", "INBOX/a.HEIC")
    assert not photos.allows("video", "INBOX/a.mp4")
    # A type the agent did not register is not for it; an agent that says nothing can all.
    assert can_for(PHOTOS_ONLY, ["process_for_review"], JobType.TRANSCRIPTION) is None
    assert can_for({}, [], JobType.TRANSCRIPTION) == Can()
    assert can_for({"process_for_review": {"raw": "none"}}, [], JobType.PROCESS_FOR_REVIEW) == (
        Can(raw=False)
    )
    assert unserved_categories([photos]) == ["video", "audio", "photo (HEIF)"]
    assert unserved_categories([photos, Can()]) == []
    assert unserved_categories([]) == ["video", "audio", "photo", "photo (HEIF)", "photo (RAW)"]


async def test_dispatch_follows_capabilities(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_library(root)
    s = LeaseSettings(library_root=root, default_quota=8)
    await leasing.register_agent(
        "pi", s, client_id="pi", max_jobs=8, capabilities=PHOTOS_ONLY,
        job_types=["process_for_review"],
    )  # fmt: skip
    video = await make_asset(root, "clip.mp4")
    heic = await make_asset(root, "pic.heic", kind=MediaKind.PHOTO)
    jpg = await make_asset(root, "pic.jpg", kind=MediaKind.PHOTO)
    talk = await make_asset(root, "talk.wav", kind=MediaKind.AUDIO, state=AssetState.PROCESSED)
    await Asset.filter(id=talk.id).update(transcript_status="pending", transcript_language="en")
    d = Dispatcher(s)
    job = await d.claim("pi", "p1", ["process_for_review"])
    assert job is not None and job.asset_uuid == str(jpg.id)
    # Neither the video, nor the HEIF photo, nor the transcription it never registered.
    assert await d.claim("pi", "p2", ["process_for_review"]) is None
    assert await d.claim("pi", "p3", ["transcription", "process_for_review"]) is None
    await Agent.filter(id="pi").update(online=True)
    assert await unserved_ready() == {"video": 1, "photo (HEIF)": 1}
    for i in range(2):  # many claims at once (the batched path) change nothing
        assert not any(
            await asyncio.gather(
                *(d.claim("pi", f"b{i}-{n}", ["process_for_review"]) for n in range(5))
            )
        )
    await leasing.register_agent("desk", s, client_id="desk", max_jobs=8)
    got = {(await d.claim("desk", f"d{n}", ["process_for_review"])).asset_uuid for n in range(2)}  # type: ignore[union-attr]
    assert got == {str(video.id), str(heic.id)}
    assert await unserved_ready() == {}


async def test_operator_quota_and_priorities_persist(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_library(root)
    s = LeaseSettings(library_root=root, default_quota=1)
    await leasing.register_agent("big", s, client_id="big", max_jobs=8)
    assert (await Agent.get(id="big")).params["quota"] == 1
    await leasing.set_operator_params("big", quota=3, priorities=["transcription"])
    fresh = await leasing.refresh_params(s)
    assert fresh["big"]["quota"] == 3
    assert fresh["big"]["priorities"][0] == "transcription"
    # A re-registration (agent restart) keeps what the operator set.
    params = await leasing.register_agent("big", s, client_id="big", max_jobs=8)
    assert params["quota"] == 3 and params["priorities"][0] == "transcription"
    await make_asset(root, "a.mp4")
    await make_asset(root, "b.mp4")
    await make_asset(root, "c.mp4")
    await make_asset(root, "d.mp4")
    d = Dispatcher(s)
    granted = [await d.claim("big", f"r{n}", ["process_for_review"]) for n in range(4)]
    assert [g is not None for g in granted] == [True, True, True, False]
    await leasing.set_operator_params("big", clear=True)
    assert (await leasing.refresh_params(s, ["big"]))["big"]["quota"] == 1


async def _next(client: Any, topic: str, limit_s: float = 10.0) -> bytes:
    async with asyncio.timeout(limit_s):
        async for message in client.messages:
            if message.topic.value == topic and message.payload:
                return bytes(message.payload)
    raise AssertionError(f"nothing on {topic}")


@pytest.mark.mqtt
async def test_agents_set_cli_is_pushed_at_once(db: str, tmp_path: Path) -> None:
    """`rush agents set` (a real subprocess) against a running server on the real
    Mosquitto: the agent's retained parameters change without any restart."""
    root = tmp_path / "lib"
    make_library(root)
    prefix = new_prefix()
    config = make_config(root, prefix=prefix, quota=1)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[database]\ndsn = "{db}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {config.mqtt.port}\nprefix = "{prefix}"\n',
        encoding="utf-8",
    )
    agent = f"{prefix}/agents/laptop"
    try:
        async with server_actors(config), make_client(config.mqtt) as client:
            await client.subscribe(f"{agent}/config", qos=1)
            reg = {"client_id": "laptop", "max_jobs": 4,
                   "job_types": ["process_for_review", "transcription"]}  # fmt: skip
            await client.publish(f"{agent}/register", orjson.dumps(reg), qos=1)
            assert orjson.loads(await _next(client, f"{agent}/config"))["quota"] == 1
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "rush", "agents", "set", "laptop", "--quota", "3",
                "--priorities", "transcription,process_for_review", "--config", str(cfg),
                env=rush_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, out.decode()
            assert "asked to send" in out.decode()
            params = orjson.loads(await _next(client, f"{agent}/config", 20))
            assert params["quota"] == 3
            assert params["priorities"] == ["transcription", "process_for_review"]
        stored = (await Agent.get(id="laptop")).params
        assert stored["quota_limit"] == 3
    finally:
        async with make_client(config.mqtt) as client:
            await client.publish(f"{agent}/config", b"", qos=1, retain=True)
