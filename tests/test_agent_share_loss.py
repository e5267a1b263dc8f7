"""The library share disappears in the middle of a job (a lazily unmounted bind mount).

The agent must give the job back without charging the healthy asset an attempt, say
"share not mounted" once, wait for the share, and claim again once it is back.  Real
mount, real ffmpeg, real Mosquitto; needs root (under CI, not being able to mount fails).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.agent_runtime import AgentRuntime
from integrations.processors import default_processors
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Asset, Lease
from tests.agent_support import (
    agents_running,
    make_config,
    make_library,
    new_prefix,
    server_actors,
    wait_until,
)
from tests.support.environment import unavailable
from tests.test_agent_children import children_named, long_clip

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


def _umount_lazy(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True, timeout=30)


def _mounted(path: Path) -> bool:
    """Whether something is mounted on `path` (os.path.ismount misses a bind mount of a
    folder of the same filesystem)."""
    target = str(path.resolve())
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        return any(line.split()[4] == target for line in info)


@pytest.fixture
def share(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(the library as the server sees it, the agent's bind mount of it)."""
    lib = tmp_path / "lib"
    make_library(lib)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    problem = "needs root to mount" if os.geteuid() != 0 else None
    if problem is None:
        proc = _mount("--bind", str(lib), str(mnt))
        if proc.returncode != 0:
            problem = f"cannot bind-mount: {proc.stderr.strip()}"
    if problem is not None:
        unavailable(problem)
    try:
        yield lib, mnt
    finally:
        while _mounted(mnt):
            _umount_lazy(mnt)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_share_lost_mid_job_releases_without_an_attempt_and_resumes(
    db: str, share: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    lib, mnt = share
    src = long_clip(lib / "INBOX" / "long.mp4")
    asset = await Asset.create(
        kind=MediaKind.VIDEO,
        rel_path="INBOX/long.mp4",
        path_key="INBOX/long.mp4",
        size=src.stat().st_size,
        state=AssetState.READY,
    )
    config = make_config(
        lib,
        prefix=new_prefix(),
        ttl=30.0,
        heartbeat=0.5,
        grace=0.5,
        processors="integrations.processors:default_processors",
    )
    config.agent.library_mount = mnt
    config.agent.proxy.video_preset = "veryslow"  # minutes of work: surely mid-job below
    agent = AgentRuntime(config, default_processors(config), agent_id="roamer")
    caplog.set_level(logging.INFO, logger="integrations.agent_runtime")
    async with server_actors(config), agents_running([agent]):

        async def encoding() -> bool:
            return (
                bool(children_named(os.getpid(), "ffmpeg"))
                and await Lease.filter(agent_id="roamer", status="active").exists()
            )

        await wait_until(encoding, limit_s=60, interval=0.2)
        first = await Lease.get(agent_id="roamer", status="active")
        _umount_lazy(mnt)
        await wait_until(lambda: _ended(first.id), limit_s=60, interval=0.2)
        lease = await Lease.get(id=first.id)
        a = await Asset.get(id=asset.id)
        assert lease.status == "released", (lease.status, a.last_error)
        assert a.state is AssetState.READY and a.attempts == 0 and not a.failed
        assert a.last_error is None
        # Nothing is claimed while the share is away; the agent waits for it.
        assert await Lease.filter(asset_id=asset.id).count() == 1
        # The share comes back: the agent claims again by itself.
        proc = _mount("--bind", str(lib), str(mnt))
        assert proc.returncode == 0, proc.stderr
        await wait_until(
            lambda: Lease.filter(agent_id="roamer", status="active").exists(), limit_s=60
        )
    said = [r.getMessage() for r in caplog.records if "share not mounted" in r.getMessage()]
    assert len(said) == 1, said
    assert "released" in said[0] and "attempt" in said[0]


async def _ended(lease_id: object) -> bool:
    return (await Lease.get(id=lease_id)).status != "active"
