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
    asset = await make_asset(rel=rel, transcript_status="done", **extra)
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
