"""End to end with hostile file names: a real `rush serve`, a real `rush agent` on the real
Mosquitto, real ffmpeg-generated media.

Names on Linux are bytes.  A name that is not valid UTF-8, one with a newline, quotes, a
leading dash, and one of 255 bytes (the longest a file system allows) are each processed,
decided, applied (batch apply moves them to ARCHIVE with the exact bytes, their sidecars
beside them) and exported; the agent survives every one of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rush import names
from rush.decisions import decide
from rush.layout import init_library
from rush.lifecycle import AssetState
from rush.models import Asset, Facts, Sidecar
from rush.offline import read_package
from rush.storage import close_db, init_db
from tests.conftest import free_port, rush_env
from tests.media_helpers import asymmetric_photo, ffmpeg
from tests.support.broker import BROKER_HOST, BROKER_PORT

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

#: Main file names (bytes) -> sidecar suffixes written beside them.
HOSTILE: dict[bytes, tuple[bytes, ...]] = {
    b"bad\xff\xfe.mp4": (b".xmp", b".srt"),
    b"new\nline.mp4": (b".xmp",),
    b"quo\"te's.mp4": (b".xmp",),
    b"-dash.mp4": (b".xmp",),
    b"L" * 251 + b".mp4": (b".xmp",),
    b"caf\xe9 latin1.jpg": (b".xmp",),
}
SHOOT = b"hostile \xe9t\xe9"


def _stem(name: bytes) -> bytes:
    return name.rsplit(b".", 1)[0]


def _clip(path: bytes, *, audio: bool) -> None:
    args = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac"]
    ffmpeg(
        *args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-shortest",
        "-f", "mp4", "file:" + os.fsdecode(path),
    )  # fmt: skip


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "RUSHES_DB"
    init_library(root)
    shoot = os.fsencode(root / "INBOX") + b"/" + SHOOT
    os.makedirs(shoot)
    for name, sidecars in HOSTILE.items():
        path = shoot + b"/" + name
        if name.endswith(b".jpg"):
            tmp = tmp_path / "photo.jpg"
            asymmetric_photo(tmp, 6, "JPEG")
            os.rename(tmp, path)
        else:
            _clip(path, audio=name.startswith(b"bad"))
        for suffix in sidecars:
            side = shoot + b"/" + _stem(name) + suffix
            if suffix == b".srt":
                data = b"1\n00:00:00,500 --> 00:00:01,500\nHello hostile names\n"
            else:
                data = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>\n"
            with open(side, "wb") as fh:
                fh.write(data)
    old = time.time() - 3600
    for entry in os.listdir(shoot):
        os.utime(shoot + b"/" + entry, (old, old))
    return root


@pytest.fixture
def config(tmp_path: Path, library: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[library]
root = "{library}"
[scanner]
interval_s = 1
stable_after_s = 0
[mqtt]
host = "{BROKER_HOST}"
port = {BROKER_PORT}
prefix = "rush-names-{uuid.uuid4().hex[:8]}"
[homeassistant]
enabled = false
[leases]
ttl_s = 60
heartbeat_s = 5
[web]
port = {free_port()}
[agent]
id = "names-agent"
library_mount = "{library}"
max_jobs = 2
idle_poll_s = 0.5
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def running(tmp_path: Path, config: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    logs = [open(tmp_path / f"{name}.log", "wb") for name in ("serve", "agent")]  # noqa: SIM115
    procs: list[subprocess.Popen[bytes]] = []
    for cmd, log in zip(("serve", "agent"), logs, strict=True):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "rush", cmd, "--config", str(config)],
                env=rush_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        )
        # The agent starts once the server listens (registration is not what is tested).
        deadline = time.monotonic() + 60
        while cmd == "serve" and time.monotonic() < deadline and procs[0].poll() is None:
            if b"MQTT connected" in (tmp_path / "serve.log").read_bytes():
                break
            time.sleep(0.2)
    try:
        yield procs
    finally:
        _stop(procs)
        for log in logs:
            log.close()


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _processed(db_file: Path) -> list[Asset]:
    from tortoise.exceptions import OperationalError

    await init_db(f"sqlite://{db_file}", migrate=False)
    try:
        try:
            assets = await Asset.all()
        except OperationalError:
            return []
        done = len(assets) == len(HOSTILE) and all(
            a.state is AssetState.PROCESSED
            and a.suggestions_status == "done"
            and a.transcript_status in ("done", "none")
            for a in assets
        )
        failed = [a for a in assets if a.failed]
        return assets if done or failed else []
    finally:
        await close_db()


def _rush(config: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rush", *argv, "--config", str(config)],
        env=rush_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )


def _logs(tmp_path: Path) -> str:
    return "".join(
        f"\n--- {name}.log ---\n" + (tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]
        for name in ("serve", "agent")
    )


async def test_hostile_names_are_processed_decided_applied_and_exported(
    tmp_path: Path, library: Path, config: Path, running: list[subprocess.Popen[bytes]]
) -> None:
    db_file = tmp_path / "data" / "rush.db"
    deadline = time.monotonic() + 240
    assets: list[Asset] = []
    while time.monotonic() < deadline and not assets:
        await asyncio.sleep(1)
        if await asyncio.to_thread(db_file.exists):
            assets = await _processed(db_file)
    assert assets, "processing did not finish" + _logs(tmp_path)
    assert [(a.rel_path, a.last_error) for a in assets if a.failed] == [], _logs(tmp_path)
    # The agent took every job and is still alive.
    assert running[1].poll() is None, _logs(tmp_path)
    _stop(running)
    agent_log = (tmp_path / "agent.log").read_text(errors="replace")
    assert "Traceback" not in agent_log, agent_log[-4000:]

    inbox = os.fsencode(library / "INBOX") + b"/" + SHOOT
    await init_db(f"sqlite://{db_file}", migrate=False)
    try:
        by_name: dict[bytes, Asset] = {}
        for asset in assets:
            raw = names.to_bytes(asset.rel_path)
            assert raw.startswith(b"INBOX/" + SHOOT + b"/"), raw
            by_name[raw.rsplit(b"/", 1)[1]] = asset
        assert set(by_name) == set(HOSTILE)
        for name, asset in by_name.items():
            facts = await Facts.get(asset_id=asset.id, version=asset.version)
            # The name in the facts is the exact name, in the stored encoding.
            assert names.to_bytes(facts.data["file_name"]) == name
            sidecars = {names.to_bytes(s.rel_path) for s in await Sidecar.filter(asset=asset)}
            assert sidecars == {
                b"INBOX/" + SHOOT + b"/" + _stem(name) + suffix for suffix in HOSTILE[name]
            }
            await decide(asset.id, "KEEP", "tester")
    finally:
        await close_db()

    applied = _rush(config, "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    archive = os.fsencode(library / "ARCHIVE") + b"/" + SHOOT
    expected = {
        n for name, sides in HOSTILE.items() for n in (name, *(_stem(name) + s for s in sides))
    }
    assert set(os.listdir(archive)) == expected
    assert os.listdir(inbox) == []

    await init_db(f"sqlite://{db_file}", migrate=False)
    try:
        for asset in await Asset.all():
            assert asset.state is AssetState.ARCHIVED
            assert names.to_bytes(asset.rel_path).startswith(b"ARCHIVE/" + SHOOT + b"/")
    finally:
        await close_db()

    dest = tmp_path / "package"
    exported = _rush(config, "export-selection", "--state", "ARCHIVED", "--to", str(dest))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    package = read_package(dest)
    assert len(package.clips) == len(HOSTILE)
    originals = {names.to_bytes(c.original_path).rsplit(b"/", 1)[1] for c in package.clips}
    assert originals == set(HOSTILE)
    for clip in package.clips:
        assert (dest / clip.proxy_path).is_file(), clip.proxy_path
        assert len(os.fsencode(Path(clip.proxy_path).name)) <= 255
    relink = _rush(config, "relink", str(dest), "--format", "json")
    assert relink.returncode == 0, relink.stdout + relink.stderr
    assert relink.stdout.count(b'"status": "ok"') == len(HOSTILE), relink.stdout
