"""Roles: every state-changing endpoint, posted by a viewer, a reviewer and an admin.

Real app, real database (SQLite and PostgreSQL); the refusals change nothing.  Plus the
migration that makes accounts created before roles existed `admin`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush.layout import init_library
from rush.lifecycle import AssetState
from rush.models import Asset, Bin, Suggestion, Tag
from rush.users import UserError, add_user
from tests.webutil import login, make_asset, web_config
from web.app import create_app
from web.roles import ASSET_ACTIONS, REQUIRED
from web.services import default_services

ROLE_OF = {"vera": "viewer", "rita": "reviewer", "adam": "admin"}
PASSWORD = "correct horse"


def endpoints(aid: uuid.UUID) -> list[tuple[str, str, dict[str, Any]]]:
    """(url, least role, body) for every POST route of the UI but /logout."""
    return [
        (f"/api/assets/{aid}/decide", "reviewer", {"decision": "KEEP"}),
        (f"/api/assets/{aid}/undo", "reviewer", {}),
        (f"/api/assets/{aid}/tags", "reviewer", {"add": "x"}),
        (f"/api/assets/{aid}/fields", "reviewer", {"project": "p"}),
        (f"/api/assets/{aid}/suggestions/accept", "reviewer", {"tag": "beach"}),
        (f"/api/assets/{aid}/link-audio", "reviewer", {"audio_id": str(aid)}),
        (f"/api/assets/{aid}/unlink-audio", "reviewer", {}),
        (f"/api/assets/{aid}/bins", "reviewer", {"bin": 1}),
        (f"/api/assets/{aid}/rating", "reviewer", {"rating": 1}),
        (f"/api/assets/{aid}/label", "reviewer", {"label": "red"}),
        (f"/api/assets/{aid}/reject-duplicate", "reviewer", {}),
        (f"/assets/{aid}/action/reopen", "reviewer", {}),
        (f"/assets/{aid}/action/reprocess", "admin", {}),
        (f"/assets/{aid}/action/retry", "admin", {}),
        (f"/assets/{aid}/recompute/transcription", "reviewer", {"language": "en"}),
        ("/bins", "reviewer", {"name": "b"}),
        ("/bins/1/delete", "reviewer", {}),
        ("/bins/1/export", "reviewer", {}),
        ("/actions/apply/plan", "reviewer", {}),
        ("/actions/purge/plan", "reviewer", {}),
        ("/actions/apply/run", "admin", {"confirm": "no"}),
        ("/actions/purge/run", "admin", {"confirm": "no"}),
    ]


def test_the_table_covers_every_post_route() -> None:
    from rush.config import Config

    app = create_app(Config(), default_services(Config()))
    posts = {
        r.resource.canonical
        for r in app.router.routes()
        if r.method == "POST" and r.resource is not None
    }
    listed = {template for _method, template in REQUIRED} | {"/assets/{id}/action/{action}"}
    assert posts - {"/login"} == listed, sorted(posts ^ listed)
    assert set(ASSET_ACTIONS) == {"reopen", "reprocess", "retry"}
    # The per-role test below posts to each of them (both kinds, the three actions).
    assert len(endpoints(uuid.uuid4())) == len(listed) - 2 + 2 + 3


@pytest.fixture
async def app_client(db: str, tmp_path: Path) -> AsyncIterator[TestClient]:
    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    for name, role in ROLE_OF.items():
        await add_user(name, PASSWORD, role=role)
    app = create_app(config, default_services(config))
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.mark.parametrize("who", sorted(ROLE_OF))
async def test_every_state_changing_endpoint_checks_the_role(
    app_client: TestClient, who: str
) -> None:
    role = ROLE_OF[who]
    rank = ["viewer", "reviewer", "admin"]
    a = await make_asset(state="PROCESSED")
    await Suggestion.create(asset=a, version=1, tag="beach")
    token = await login(app_client, who, PASSWORD)
    for url, needed, body in endpoints(a.id):
        resp = await app_client.post(
            url, json=body, headers={"X-CSRF-Token": token}, allow_redirects=False
        )
        text = await resp.text()
        if rank.index(role) < rank.index(needed):
            assert resp.status == 403, (who, url, resp.status, text[:200])
            assert f"Your role ({role}) cannot do this: it needs {needed}" in text
        else:
            assert resp.status != 403, (who, url, text[:200])
    if role == "viewer":
        fresh = await Asset.get(id=a.id)
        assert fresh.state == AssetState.PROCESSED and fresh.fields_data == {}
        assert await Tag.filter(asset_id=a.id).count() == 0
        assert await Bin.all().count() == 0
    # Every role can read and log out.
    assert (await app_client.get(f"/assets/{a.id}")).status == 200
    resp = await app_client.post("/logout", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 303


async def test_a_refused_form_post_comes_back_with_the_reason(app_client: TestClient) -> None:
    token = await login(app_client, "vera", PASSWORD)
    resp = await app_client.post(
        "/bins", data={"_csrf": token, "name": "Mine"}, headers={"Referer": "/bins"}
    )
    assert resp.url.path == "/bins"
    assert "Your role (viewer) cannot do this: it needs reviewer" in await resp.text()
    assert await Bin.all().count() == 0


async def test_roles_are_checked_when_set(db: str) -> None:
    with pytest.raises(UserError):
        await add_user("zed", PASSWORD, role="root")
    user = await add_user("zoe", PASSWORD)
    assert user.role == "admin"  # the default, as before roles
    user = await add_user("zoe", "another secret", replace=True, role="viewer")
    assert user.role == "viewer"


async def test_accounts_made_before_roles_become_admin(tmp_path: Path) -> None:
    """Migrate a database to just before the roles, create an account the old way, then
    apply the rest: that account is an admin."""
    from tortoise import Tortoise, connections
    from tortoise.migrations.api.migrate import migrate

    from rush.models import User
    from rush.storage import close_db, init_db, tortoise_config

    url = f"sqlite://{tmp_path / 'old.db'}"
    config = tortoise_config(url)
    await migrate(config=config, target="rush.0004_login_failures")
    conn = connections.get("default")
    await conn.execute_query(
        'INSERT INTO "user" (username, password_hash, created_at) VALUES (?, ?, ?)',
        ["oldtimer", "x", "2026-01-01 00:00:00+00:00"],
    )
    await Tortoise.close_connections()
    await init_db(url)
    try:
        assert (await User.get(username="oldtimer")).role == "admin"
    finally:
        await close_db()
