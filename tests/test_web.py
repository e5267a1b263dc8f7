"""The web UI through its real app factory, on SQLite and PostgreSQL (HTTP level)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush.events import EventBus
from rush.layout import init_library
from rush.lifecycle import AssetState
from rush.models import Asset, Suggestion, Tag
from rush.users import add_user
from tests.webutil import add_derivative, csrf_of, login, make_asset, web_config
from web.app import create_app
from web.services import default_services


@pytest.fixture
async def client(db: str, tmp_path: Path) -> AsyncIterator[TestClient]:
    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    await add_user("alice", "correct horse")
    app = create_app(config, default_services(config, bus=EventBus()))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_login_library_and_decide(client: TestClient) -> None:
    token = await login(client)
    a = await make_asset()
    resp = await client.get("/", headers={"Accept": "text/html"})
    assert resp.status == 200
    assert str(a.id) in await resp.text()
    resp = await client.post(
        f"/api/assets/{a.id}/decide", json={"decision": "KEEP"}, headers={"X-CSRF-Token": token}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["state"] == "DECIDED_KEEP"
    assert (await Asset.get(id=a.id)).state == AssetState.DECIDED_KEEP
    page = await client.get(f"/assets/{a.id}")
    assert page.status == 200
