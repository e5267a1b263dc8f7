"""The web UI through its real app factory, on SQLite and PostgreSQL (HTTP level)."""

from __future__ import annotations

import asyncio
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush.events import EventBus
from rush.layout import init_library
from rush.lifecycle import AssetState
from rush.config import Config
from rush.models import Asset, Bin, Derivative, Suggestion, Tag
from rush.users import add_user
from tests.webutil import add_derivative, csrf_of, login, make_asset, web_config
from web.app import CONFIG, create_app
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


# --- helpers ---------------------------------------------------------------------------


async def raw_get(client: TestClient, target: str, cookie: str = "") -> int:
    """Send `target` byte for byte (no client-side normalisation of `..` or `%2e`)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        head = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        writer.write((head + "\r\n").encode())
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()


def cookie_header(client: TestClient) -> str:
    return "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)


def lib_root(client: TestClient) -> Path:
    return client.server.app[CONFIG].library.root  # type: ignore[union-attr]


# --- security ----------------------------------------------------------------------------


def state_changing(aid: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"/api/assets/{aid}/decide", {"decision": "KEEP"}),
        (f"/api/assets/{aid}/undo", {}),
        (f"/api/assets/{aid}/tags", {"add": "x"}),
        (f"/api/assets/{aid}/fields", {"project": "p"}),
        (f"/api/assets/{aid}/suggestions/accept", {"tag": "beach"}),
        (f"/api/assets/{aid}/link-audio", {"audio_id": str(aid)}),
        (f"/api/assets/{aid}/unlink-audio", {}),
        (f"/api/assets/{aid}/bins", {"bin": 1}),
        (f"/assets/{aid}/action/reopen", {}),
        (f"/assets/{aid}/action/reprocess", {}),
        (f"/assets/{aid}/action/retry", {}),
        ("/bins", {"name": "b"}),
        ("/bins/1/delete", {}),
        ("/actions/apply/plan", {}),
        ("/actions/apply/run", {"confirm": "yes"}),
        ("/actions/purge/plan", {}),
        ("/actions/purge/run", {"confirm": "yes"}),
        ("/logout", {}),
    ]


async def test_state_changing_endpoints_need_session_and_csrf(client: TestClient) -> None:
    a = await make_asset()
    await Suggestion.create(asset=a, version=1, tag="beach")
    for url, body in state_changing(a.id):
        resp = await client.post(url, data=body, allow_redirects=False)
        assert resp.status == 401, (url, resp.status)
    token = await login(client)
    for url, body in state_changing(a.id):
        resp = await client.post(url, data=body, allow_redirects=False)
        assert resp.status == 403, (url, resp.status)
        resp = await client.post(
            url, json=body, headers={"X-CSRF-Token": token + "x"}, allow_redirects=False
        )
        assert resp.status == 403, (url, resp.status)
    fresh = await Asset.get(id=a.id)
    assert fresh.state == AssetState.PROCESSED and fresh.fields_data == {}
    assert await Tag.filter(asset_id=a.id).count() == 0
    assert await Bin.all().count() == 0
    # Still logged in: /logout was refused without a token.
    assert (await client.get("/", allow_redirects=False)).status == 200


async def test_pages_need_login(client: TestClient) -> None:
    a = await make_asset()
    for url in ("/", f"/assets/{a.id}", "/ops", "/actions", "/bins", "/events"):
        resp = await client.get(url, allow_redirects=False, headers={"Accept": "text/html"})
        assert resp.status == 303 and resp.headers["Location"].startswith("/login"), url
        resp = await client.get(url, allow_redirects=False)
        assert resp.status == 401, url
    assert (await client.get("/static/app.css")).status == 200
    assert (await client.get("/login")).status == 200


async def test_login_csrf_rate_limit_and_cookie_flags(client: TestClient) -> None:
    token = await csrf_of(client)
    resp = await client.post(
        "/login", data={"username": "alice", "password": "correct horse"}, allow_redirects=False
    )
    assert resp.status == 403  # no CSRF token on the login form
    for _ in range(5):
        resp = await client.post(
            "/login", data={"username": "alice", "password": "nope", "_csrf": token}
        )
        assert resp.status == 401
    resp = await client.post(
        "/login", data={"username": "alice", "password": "correct horse", "_csrf": token}
    )
    assert resp.status == 429 and "Retry-After" in resp.headers


async def test_session_cookie_logout_and_open_redirect(client: TestClient) -> None:
    token = await csrf_of(client)
    resp = await client.post(
        "/login",
        data={"username": "alice", "password": "correct horse", "_csrf": token, "next": "//evil.example/"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"
    set_cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Secure" not in set_cookie
    old = cookie_header(client)
    token = await csrf_of(client, "/")
    resp = await client.post("/logout", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 303
    # The old cookie is refused after logout.
    assert await raw_get(client, "/ops", cookie=old) == 401
    config: Config = client.server.app[CONFIG]  # type: ignore[union-attr]
    secret = config.data_dir / "web_session_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


async def test_derived_files_and_traversal(client: TestClient, tmp_path: Path) -> None:
    await login(client)
    root = lib_root(client)
    a = await make_asset()
    ok = await add_derivative(root, a, "proxy", "proxy.mp4", b"0123456789" * 100, "video/mp4")
    (tmp_path / "secret.txt").write_text("top secret")
    link = root / ".derived" / str(a.id) / "v1" / "evil.jpg"
    link.symlink_to(tmp_path / "secret.txt")
    evil_link = await Derivative.create(
        asset=a, version=1, role="thumb", rel_path=f".derived/{a.id}/v1/evil.jpg"
    )
    dotdot = await Derivative.create(
        asset=a, version=1, role="thumb", rel_path=f".derived/{a.id}/../../../secret.txt"
    )
    outside = await Derivative.create(asset=a, version=1, role="thumb", rel_path="INBOX/x.mp4")
    absolute = await Derivative.create(
        asset=a, version=1, role="thumb", rel_path=str(tmp_path / "secret.txt")
    )
    cookie = cookie_header(client)
    resp = await client.get(f"/derived/{a.id}/{ok.id}")
    assert resp.status == 200 and (await resp.read()) == b"0123456789" * 100
    resp = await client.get(f"/derived/{a.id}/{ok.id}", headers={"Range": "bytes=10-19"})
    assert resp.status == 206 and await resp.read() == b"0123456789"
    for d in (evil_link, dotdot, outside, absolute):
        assert (await client.get(f"/derived/{a.id}/{d.id}")).status == 404, d.rel_path
    other = await make_asset()
    assert (await client.get(f"/derived/{other.id}/{ok.id}")).status == 404  # wrong owner
    for target in (
        "/derived/../../etc/passwd",
        f"/derived/{a.id}/../../../etc/passwd",
        f"/derived/{a.id}/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/derived/%2e%2e/%2e%2e/etc/passwd",
        f"/derived/{a.id}/%2Fetc%2Fpasswd",
        "/derived//etc/passwd",
        f"/derived/{a.id}/{ok.id}/../../../../etc/passwd",
        f"/derived/{a.id}/..%2f..%2f{ok.id}",
    ):
        status = await raw_get(client, target, cookie=cookie)
        assert status == 404, (target, status)
