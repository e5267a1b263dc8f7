"""The review queue API on SQLite and PostgreSQL: window, position, this session's extras."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush import decisions
from rush.layout import init_library
from rush.models import Facts
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
    async with TestClient(TestServer(create_app(config, default_services(config)))) as c:
        yield c


async def queue(client: TestClient, query: str) -> dict[str, Any]:
    resp = await client.get(f"/api/review/queue?{query}")
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def test_queue_window_position_and_session_extras(client: TestClient) -> None:
    await login(client)
    made = [await make_asset(rel=f"INBOX/s/{i:03d}.mp4", size=100 + i) for i in range(12)]
    await Facts.create(asset=made[5], version=1, data={"duration_s": 72.5})
    at = made[5].id
    data = await queue(client, f"state=PROCESSED&at={at}&n=3")
    names = [it["name"] for it in data["items"]]
    assert names == ["002.mp4", "003.mp4", "004.mp4", "005.mp4", "006.mp4", "007.mp4", "008.mp4"]
    assert (data["total"], data["index"], data["offset"]) == (12, 5, 3)
    assert data["items"][3]["duration"] == 72.5
    assert data["items"][3]["url"] == f"/assets/{at}?state=PROCESSED"

    # Two clips decided: they leave state=PROCESSED, unless the page keeps them (also=).
    await decisions.decide(made[4].id, "KEEP", "user:alice")
    await decisions.decide(made[6].id, "REJECT", "user:alice")
    data = await queue(client, f"state=PROCESSED&at={at}&n=3")
    assert [it["name"] for it in data["items"]][2:5] == ["003.mp4", "005.mp4", "007.mp4"]
    assert data["total"] == 10
    also = f"{made[4].id},{made[6].id},not-a-uuid"
    data = await queue(client, f"state=PROCESSED&at={at}&n=3&also={also}")
    items = data["items"]
    assert [it["name"] for it in items] == [f"00{i}.mp4" for i in range(2, 9)]
    assert [it["extra"] for it in items][2:5] == [True, False, True]
    assert items[2]["state"] == "DECIDED_KEEP"
    assert (data["total"], data["index"]) == (12, 5)

    # Descending sort on size; the current clip itself no longer matching the filter.
    await decisions.decide(made[5].id, "KEEP", "user:alice")
    data = await queue(client, f"state=PROCESSED&sort=size&dir=desc&at={at}&n=2")
    assert [it["name"] for it in data["items"]] == [
        "008.mp4",
        "007.mp4",
        "005.mp4",
        "003.mp4",
        "002.mp4",
    ]
    assert data["items"][2]["extra"] and data["index"] == 5

    assert (await client.get("/api/review/queue?at=junk")).status == 400
    assert (await client.get("/api/review/queue?state=NOPE&at=" + str(at))).status == 400


async def test_ratings_and_labels_filter_sort_and_api(client: TestClient) -> None:
    token = await login(client)
    h = {"X-CSRF-Token": token}
    a, b, c = [await make_asset(rel=f"INBOX/r/{n}.mp4") for n in ("a", "b", "c")]
    resp = await client.post(f"/api/assets/{a.id}/rating", json={"rating": 4}, headers=h)
    assert resp.status == 200 and (await resp.json())["rating"] == 4
    resp = await client.post(f"/api/assets/{b.id}/label", json={"label": "green"}, headers=h)
    assert (await resp.json())["label"] == "green"
    await decisions.set_fields(c.id, {"rating": 2}, "user:t")  # the fields form keeps it too
    assert (await decisions.get_asset(c.id)).rating == 2  # type: ignore[attr-defined]
    assert (await decisions.get_asset(a.id)).fields_data == {"rating": 4}
    for query, expected in (
        ("rating=2&sort=rating&dir=desc", [a, c]),
        ("label=green", [b]),
        ("label=none&sort=rating", [c, a]),
    ):
        html = await (await client.get(f"/?{query}")).text()
        ids = re.findall(r'class="card" href="/assets/([0-9a-f-]{36})', html)
        assert ids == [str(x.id) for x in expected], (query, html[:2000])
    html = await (await client.get(f"/assets/{a.id}?sort=rating&dir=desc")).text()
    assert 'data-rating="4"' in html and f'data-next="/assets/{c.id}?' in html
    for bad in ({"rating": 6}, {"rating": "x"}):
        resp = await client.post(f"/api/assets/{a.id}/rating", json=bad, headers=h)
        assert resp.status == 400
    resp = await client.post(f"/api/assets/{a.id}/label", json={"label": "mauve"}, headers=h)
    assert resp.status == 400
    assert (await client.get("/?label=mauve")).status == 400


async def test_offline_export_carries_rating_and_label(db: str) -> None:
    import csv
    import io

    from rush import offline
    from rush.models import Derivative

    asset = await make_asset(rel="INBOX/x/C0001.MP4")
    await decisions.set_rating(asset.id, 4, "user:t")
    await decisions.set_label(asset.id, "red", "user:t")
    asset = await decisions.get_asset(asset.id)
    media = Derivative(
        asset_id=asset.id, version=1, role="proxy", rel_path=f".derived/{asset.id}/v1/proxy.mp4"
    )
    entry = offline.plan_clip(asset, media, {"duration": 2.0}, ["a"])
    row = next(csv.DictReader(io.StringIO(offline.media_csv([entry]))))
    assert (row["rating"], row["label"]) == ("4", "red")
    timeline = offline.build_timeline("t", [entry], {entry.uuid: "proxies/x.mp4"}, "lib")
    clip = next(iter(timeline.find_clips()))
    assert (clip.metadata["rush"]["rating"], clip.metadata["rush"]["label"]) == (4, "red")


async def test_desk_domain_errors_are_json_with_their_status(client: TestClient) -> None:
    """The error middleware answers the desk's routes as their own handlers did:
    `{"error": message}` as JSON, 404 for no such asset, 400 for a bad value."""
    h = {"X-CSRF-Token": await login(client)}
    a = await make_asset(rel="INBOX/e/a.mp4")
    missing = "00000000-0000-4000-8000-000000000000"
    resp = await client.post(f"/api/assets/{missing}/rating", json={"rating": 3}, headers=h)
    assert resp.status == 404 and resp.content_type == "application/json"
    assert "error" in await resp.json()
    resp = await client.post(f"/api/assets/{a.id}/label", json={"label": "mauve"}, headers=h)
    assert resp.status == 400 and resp.content_type == "application/json"
    assert "label must be one of" in (await resp.json())["error"]
