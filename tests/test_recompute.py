"""Queue a transcription or tag suggestions again without reprocessing: the per-asset
language choice on the asset page, `rush retranscribe` / `rush resuggest`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush import leasing, secondary
from rush.languages import TranscriptionConfig
from rush.layout import init_library
from rush.leasing import LeaseSettings
from rush.media import MediaKind
from rush.models import Asset, Facts
from rush.users import add_user
from tests.webutil import login, make_asset, web_config
from web.app import create_app
from web.services import default_services


@pytest.fixture
async def client(db: str, tmp_path: Path) -> AsyncIterator[TestClient]:
    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    await add_user("alice", "correct horse")
    app = create_app(config, default_services(config))
    async with TestClient(TestServer(app)) as c:
        yield c


async def _speech_asset(rel: str = "INBOX/Seoul/a.mp4", **extra: object) -> Asset:
    extra.setdefault("transcript_status", "done")
    asset = await make_asset(rel=rel, **extra)
    await Facts.create(asset=asset, version=1, data={"has_audio": True, "duration_s": 3.0})
    return asset


async def test_choosing_a_language_on_the_asset_page_queues_a_transcription(
    client: TestClient,
) -> None:
    csrf = await login(client)
    asset = await _speech_asset()
    page = await (await client.get(f"/assets/{asset.id}")).text()
    assert 'id="retranscribe"' in page and 'name="language"' in page
    resp = await client.post(
        f"/assets/{asset.id}/recompute/transcription",
        data={"_csrf": csrf, "language": "ko"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    row = await Asset.get(id=asset.id)
    assert (row.transcript_status, row.transcript_language) == ("pending", "ko")
    assert row.fields_data["language"] == "ko" and row.suggestions_status == "pending"
    assert row.state == "PROCESSED" and row.version == 1  # no reprocess
    # No agent has a Korean model: the page says so instead of waiting silently.
    await leasing.register_agent(
        "en-only",
        LeaseSettings(),
        client_id="c",
        capabilities={"transcription": {"languages": ["en"]}},
    )
    page = await (await client.get(f"/assets/{asset.id}")).text()
    assert "no agent has a transcription model for &#39;ko&#39; (agents offer: en)" in page
    bad = await client.post(
        f"/assets/{asset.id}/recompute/transcription",
        data={"_csrf": csrf, "language": "klingon!"},
        allow_redirects=False,
    )
    assert bad.status == 400 and "not a language code" in await bad.text()
    photo = await make_asset(kind=MediaKind.PHOTO, rel="INBOX/p.jpg")
    refused = await client.post(
        f"/assets/{photo.id}/recompute/transcription",
        data={"_csrf": csrf},
        allow_redirects=False,
    )
    assert refused.status == 409 and "no audio" in await refused.text()


async def test_queue_rules(db: str) -> None:
    cfg = TranscriptionConfig(
        language_rules=[{"glob": "INBOX/Seoul/**", "language": "ko"}]  # type: ignore[list-item]
    )
    seoul = await _speech_asset()
    paris = await _speech_asset("INBOX/Paris/b.mp4", fields_data={"language": "fr"})
    running = await _speech_asset("INBOX/c.mp4")
    await Asset.filter(id=running.id).update(transcript_status="running")
    fresh = await _speech_asset("INBOX/d.mp4", state="READY")
    report = await secondary.queue_transcription([seoul.id, paris.id, running.id, fresh.id], cfg)
    assert report.queued == [seoul.id, paris.id]
    assert "running" in report.skipped[running.id] and "READY" in report.skipped[fresh.id]
    langs = {a.id: a.transcript_language for a in await Asset.all()}
    assert langs[seoul.id] == "ko" and langs[paris.id] == "fr"
    assert report.unserved == ["fr", "ko"] and "no agent transcribes fr, ko" in report.summary(
        "transcriptions"
    )
    sugg = await secondary.queue_suggestions([seoul.id, running.id])
    assert sugg.queued == [seoul.id, running.id]


def test_cli_retranscribe_and_resuggest(tmp_path: Path) -> None:
    """`rush retranscribe --filter … --language ko` queues only the transcription."""
    import asyncio
    import subprocess
    import sys

    from rush.storage import open_db
    from tests.conftest import rush_env

    config_file = tmp_path / "config.toml"
    config_file.write_text(f'data_dir = "{tmp_path / "data"}"\n[library]\nroot = "{tmp_path}"\n')
    db_url = f"sqlite://{tmp_path / 'data' / 'rush.db'}"
    (tmp_path / "data").mkdir()

    async def setup() -> tuple[str, str, str]:
        async with open_db(db_url):
            seoul = await _speech_asset()
            other = await _speech_asset("INBOX/Paris/b.mp4")
            failed = await _speech_asset("INBOX/c.mp4")
            await Asset.filter(id=failed.id).update(suggestions_status="error")
            return str(seoul.id), str(other.id), str(failed.id)

    seoul, other, failed = asyncio.run(setup())

    def rush(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rush", *argv, "--config", str(config_file)],
            env=rush_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = rush("retranscribe", "--filter", "folder=INBOX/Seoul", "--language", "ko")
    assert out.returncode == 0, out.stderr
    assert "1 transcription(s) queued, 0 skipped" in out.stdout
    assert "no agent transcribes ko yet" in out.stdout
    out = rush("resuggest", "--failed")
    assert out.returncode == 0 and "1 suggestion job(s) queued" in out.stdout, out
    bad = rush("retranscribe", "--filter", "folder")
    assert bad.returncode == 2 and "expected KEY=VALUE" in bad.stderr
    assert rush("retranscribe").returncode == 2

    async def check() -> dict[str, tuple[str, str | None, str]]:
        async with open_db(db_url):
            return {
                str(a.id): (a.transcript_status, a.transcript_language, a.suggestions_status)
                for a in await Asset.all()
            }

    rows = asyncio.run(check())
    assert rows[seoul] == ("pending", "ko", "pending")
    assert rows[other] == ("done", None, "none")
    assert rows[failed] == ("done", None, "pending")


async def test_backfill_queues_jobs_that_never_ran(db: str) -> None:
    video = await _speech_asset("INBOX/v.mp4", transcript_status="none")
    mute = await make_asset(rel="INBOX/mute.mp4", transcript_status="none")
    await Facts.create(asset=mute, version=1, data={"has_audio": False})
    photo = await make_asset(kind=MediaKind.PHOTO, rel="INBOX/p.jpg")
    done = await secondary.backfill(TranscriptionConfig(), transcription=True, suggest_tags=True)
    assert done == (1, 3)
    rows = {a.id: a for a in await Asset.all()}
    assert rows[video.id].transcript_status == "pending"
    assert rows[video.id].transcript_language == "en"
    assert rows[mute.id].transcript_status == "none"
    assert rows[photo.id].suggestions_status == "pending"
    assert await secondary.backfill(
        TranscriptionConfig(), transcription=True, suggest_tags=False
    ) == (0, 0)
