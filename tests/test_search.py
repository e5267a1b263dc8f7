"""The one search box on SQLite FTS5 and PostgreSQL full-text search: names, folders,
tags, fields, camera and transcript lines, case- and accent-insensitive, with the time
of each transcript hit; case-insensitive tag/project/location filters."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush import decisions, search
from rush.layout import init_library
from rush.models import Asset, Facts, SearchEntry, Transcript
from rush.users import add_user
from tests.webutil import login, make_asset, web_config
from web.app import create_app
from web.queries import Filters, page
from web.services import default_services


def _words(text: str, start: float, step: float = 0.5) -> list[dict[str, object]]:
    return [
        {"word": w, "start": start + i * step, "end": start + (i + 1) * step, "conf": 1.0}
        for i, w in enumerate(text.split())
    ]


def test_normalise_folds_case_accents_and_separators() -> None:
    assert search.normalise("Santé_ANNA-Tom.MP4") == "sante anna tom mp4"
    assert search.normalise("BrideAndGroom Ωmega Çà") == "bride and groom ωmega ca"
    assert search.query_tokens("  Wedding   RINGS ") == ["wedding", "rings"]


def test_entries_split_transcripts_into_timed_lines() -> None:
    words = _words("hello my name is Anna", 1.0) + _words("bring the rings", 10.0)
    entries = search.entries_for(
        "INBOX/2026 Wedding/C0001.MP4",
        ["Ceremony"],
        {"project": "Anna & Tom", "people": ["Anna", "Tom"], "rating": 4},
        {"camera_make": "Sony", "camera_model": "ILME-FX3"},
        [("hello my name is Anna bring the rings", words)],
    )
    assert entries[0][0] is None and "ILME-FX3" in entries[0][1] and "Ceremony" in entries[0][1]
    assert entries[1:] == [(1.0, "hello my name is Anna"), (10.0, "bring the rings")]


@pytest.fixture
async def corpus(db: str) -> dict[str, Asset]:
    wedding = await make_asset(rel="INBOX/2026-06-14 Wedding Anna & Tom/A-cam/C0001.MP4")
    await Facts.create(
        asset=wedding, version=1, data={"camera_make": "Sony", "camera_model": "ILME-FX3"}
    )
    await Transcript.create(
        asset=wedding,
        version=1,
        language="en",
        text="we are here for the wedding please bring the rings",
        words=_words("we are here for the wedding", 2.0) + _words("please bring the rings", 12.4),
    )
    await decisions.add_tag(wedding.id, "Ceremony", "alice")
    await decisions.set_fields(wedding.id, {"project": "Anna & Tom Wedding"}, "alice")
    toast = await make_asset(rel="INBOX/Party/toast.mov")
    await Transcript.create(
        asset=toast,
        version=1,
        language="fr",
        source="sidecar",
        text="Santé ! À la vôtre",
        words=_words("Santé ! À la vôtre", 3.0),
    )
    other = await make_asset(rel="INBOX/Seoul/street.mp4")
    await search.index_changed()
    return {"wedding": wedding, "toast": toast, "other": other}


async def _ids(q: str, **filters: str) -> set[str]:
    f = Filters.parse({"q": q, **filters})
    return {str(r["id"]) for r in await page(f, 0, 50)}


async def test_search_box_finds_every_kind_of_text(corpus: dict[str, Asset]) -> None:
    w, t = str(corpus["wedding"].id), str(corpus["toast"].id)
    assert await _ids("rings") == {w}  # transcript
    assert await _ids("RING") == {w}  # prefix, case
    assert await _ids("ceremony") == {w}  # tag
    assert await _ids("fx3") == {w}  # camera
    assert await _ids("c0001") == {w}  # file name
    assert await _ids("a-cam") == {w}  # folder
    assert await _ids("anna rings") == {w}  # words from different texts
    assert await _ids("sante") == {t}  # accents folded in the text...
    assert await _ids("VÔTRE") == {t}  # ...and in the query
    assert await _ids("seoul") == {str(corpus["other"].id)}
    assert await _ids("zebra") == set()
    assert await _ids("rings", kind="photo") == set()  # combines with the other filters
    assert await _ids('"; DROP TABLE asset; --') == set()  # quotes are not syntax
    assert await Asset.all().count() == 3


async def test_transcript_hits_carry_their_time(corpus: dict[str, Asset]) -> None:
    hits = await search.hits_for("rings", [corpus["wedding"].id, corpus["toast"].id])
    assert [(h.t, h.text) for h in hits[corpus["wedding"].id]] == [
        (13.9, "please bring the rings")  # the word itself, not its line
    ]
    assert corpus["toast"].id not in hits


async def test_index_follows_changes(corpus: dict[str, Asset]) -> None:
    toast = corpus["toast"].id
    assert await _ids("speech") == set()
    await decisions.add_tag(toast, "Speech", "alice")
    assert await search.index_changed() >= 1
    assert await _ids("speech") == {str(toast)}
    await decisions.remove_tag(toast, "Speech", "alice")
    await search.index_changed()
    assert await _ids("speech") == set()
    await Asset.filter(id=toast).delete()  # entries go with the asset
    assert await SearchEntry.filter(asset_id=toast).count() == 0
    assert await _ids("sante") == set()


async def test_tag_project_filters_ignore_case(corpus: dict[str, Asset]) -> None:
    w = str(corpus["wedding"].id)
    assert await _ids("", tag="ceremony") == {w}
    assert await _ids("", tag="CEREMONY") == {w}
    assert await _ids("", project="anna & tom wedding") == {w}
    assert await _ids("", folder="inbox/party") == {str(corpus["toast"].id)}


@pytest.fixture
async def client(db: str, tmp_path: Path) -> AsyncIterator[TestClient]:
    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    await add_user("alice", "correct horse")
    app = create_app(config, default_services(config))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_library_lists_hits_with_links_to_the_second(
    client: TestClient, corpus: dict[str, Asset]
) -> None:
    await login(client)
    html = await (await client.get("/", params={"q": "Rings"})).text()
    wid = corpus["wedding"].id
    assert f'href="/assets/{wid}?t=13.9&amp;q=Rings"' in html, html[:3000]
    assert "please bring the rings" in html
    assert re.search(r'<datalist id="dl-tag"><option value="Ceremony">', html)
    assert '<option value="Anna &amp; Tom Wedding">' in html
    page_html = await (
        await client.get(f"/assets/{wid}", params={"t": "12.4", "q": "rings"})
    ).text()
    assert "search.js" in page_html and 'data-t="12.4"' in page_html
