"""An agent killed with SIGKILL takes its ffmpeg with it, and the next owner of the
asset's derived folder removes the temporary outputs the dead job left behind.

Real `rush agent` subprocess, real ffmpeg on a generated clip, real Mosquitto; the
survivors are looked for in /proc.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.agent_runtime import AgentRuntime
from integrations.derived import TMP_PREFIX
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
from tests.conftest import rush_env
from tests.media_helpers import ffmpeg

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def long_clip(dst: Path) -> Path:
    """Twenty minutes of moving pictures at 5 fps: quick to make, slow to proxy at the
    `veryslow` preset (minutes), so the job is surely running when the agent dies."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=5:duration=1200",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(dst),
    )  # fmt: skip
    return dst


def short_clip(dst: Path) -> Path:
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(dst),
    )  # fmt: skip
    return dst


def proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0], fields[19]


def children_named(parent: int, name: str) -> list[tuple[int, str]]:
    """(pid, start time) of the live processes called `name` whose parent is `parent`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        stat = proc_stat(int(entry))
        if comm == name and stat is not None and stat[0] == parent and stat[1] != "Z":
            found.append((int(entry), stat[2]))
    return found


def alive(pid: int, started: str) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat[2] == started and stat[1] not in ("Z", "X")


def temps(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(f"{TMP_PREFIX}*")) if folder.exists() else []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_kill_9_takes_ffmpeg_along_and_the_next_owner_cleans_up(
    db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "lib"
    make_library(root)
    src = long_clip(root / "INBOX" / "long.mp4")
    asset = await Asset.create(
        kind=MediaKind.VIDEO,
        rel_path="INBOX/long.mp4",
        path_key="INBOX/long.mp4",
        size=src.stat().st_size,
        state=AssetState.READY,
    )
    prefix = new_prefix()
    config = make_config(
        root,
        prefix=prefix,
        # Short enough that the dead agent's lease expires soon, long enough that the
        # rescuer's own lease survives a machine busy with other test workers.
        ttl=6.0,
        heartbeat=1.0,
        check=0.2,
        processors="integrations.processors:default_processors",
    )
    env = rush_env(
        RUSH_MQTT__HOST="127.0.0.1",
        RUSH_MQTT__PORT=str(config.mqtt.port),
        RUSH_MQTT__PREFIX=prefix,
        RUSH_AGENT__ID="doomed",
        RUSH_AGENT__LIBRARY_MOUNT=str(root),
        RUSH_AGENT__JOB_TYPES='["process_for_review"]',
        RUSH_AGENT__IDLE_POLL_S="0.2",
        RUSH_AGENT__PROXY__VIDEO_PRESET="veryslow",
    )
    derived = root / ".derived" / str(asset.id)
    workdir = tmp_path / "agent"
    workdir.mkdir()
    survivors: list[tuple[int, str]] = []
    async with server_actors(config):
        log_fd = os.open(workdir / "agent.log", os.O_WRONLY | os.O_CREAT, 0o600)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rush", "agent",
            env=env, cwd=workdir, stdout=log_fd, stderr=subprocess.STDOUT,
        )  # fmt: skip
        os.close(log_fd)
        try:

            async def encoding() -> bool:
                survivors[:] = children_named(proc.pid, "ffmpeg")
                return bool(survivors) and bool(temps(derived))

            try:
                await wait_until(encoding, limit_s=90, interval=0.2)
            except AssertionError:
                pytest.fail("ffmpeg never ran:\n" + (workdir / "agent.log").read_text()[-3000:])
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        try:
            await wait_until(lambda: _none_alive(survivors), limit_s=10, interval=0.1)
        except AssertionError:
            for pid, _ in survivors:
                with_suppress_kill(pid)
            pytest.fail(f"ffmpeg {survivors} outlived the agent killed with SIGKILL")
        stale = temps(derived)
        assert stale, "the dead job left no temporary output to clean (test premise)"
        lease = await Lease.get(agent_id="doomed")
        await wait_until(lambda: _lease_status(lease.id, "expired"), limit_s=60)
        # The next run is quick: the same asset, a short clip now.
        src.unlink()
        short_clip(src)
        rescuer = AgentRuntime(config, default_processors(config), agent_id="rescuer")
        with caplog.at_level(logging.INFO, logger="integrations.derived"):
            async with agents_running([rescuer]):
                await wait_until(
                    lambda: _state(asset.id, AssetState.PROCESSED), limit_s=180, interval=0.2
                )
    assert temps(derived) == []
    assert all(not p.exists() for p in stale)
    removed = [r.getMessage() for r in caplog.records if "stale temporary" in r.getMessage()]
    assert removed and all(str(asset.id) in m for m in removed), removed
    assert src.is_file()  # the original stays where it is


async def _none_alive(pids: list[tuple[int, str]]) -> bool:
    return not any(alive(pid, started) for pid, started in pids)


def with_suppress_kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def _lease_status(lease_id: object, status: str) -> bool:
    return (await Lease.get(id=lease_id)).status == status


async def _state(asset_id: object, state: AssetState) -> bool:
    return (await Asset.get(id=asset_id)).state is state


def test_stale_temps_go_but_links_are_never_followed(tmp_path: Path) -> None:
    from integrations.derived import remove_stale_temps

    original = tmp_path / "INBOX" / "clip.mov"
    original.parent.mkdir()
    original.write_bytes(b"original")
    folder = tmp_path / ".derived" / "u1" / "v1"
    seq = folder / f"{TMP_PREFIX}ab12-seq"
    seq.mkdir(parents=True)
    (seq / "thumb_01.jpg").write_bytes(b"x")
    (seq / "inbox").symlink_to(original.parent)
    (folder / f"{TMP_PREFIX}cd34-proxy.mp4").write_bytes(b"half")
    (folder / f"{TMP_PREFIX}ef56-link").symlink_to(original)
    (folder / "proxy.mp4").write_bytes(b"done")
    other = tmp_path / ".derived" / "u1" / "v2" / f"{TMP_PREFIX}live-proxy.mp4"
    other.parent.mkdir()
    other.write_bytes(b"another version's job is writing this")
    removed = remove_stale_temps(folder)
    assert len(removed) == 3
    assert sorted(p.name for p in folder.iterdir()) == ["proxy.mp4"]
    assert original.read_bytes() == b"original" and other.exists()
