"""The web UI's edges: redirect targets, the login limiter, JSON bounds, caching.

Each test drives the real app (real database, real HTTP through aiohttp's test server)
the way an attacker outside would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush.layout import init_library
from rush.models import Asset
from rush.users import add_user
from tests.webutil import csrf_of, login, make_asset, web_config
from web import auth, security
from web.app import create_app
from web.keys import CONFIG
from web.services import default_services


@pytest.fixture
async def client(db: str, tmp_path: Path) -> AsyncIterator[TestClient]:
    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    await add_user("alice", "correct horse")
    await add_user("bob", "battery staple")
    app = create_app(config, default_services(config))
    async with TestClient(TestServer(app)) as c:
        yield c


#: Targets a browser would read as another host (or that are not paths at all).
HOSTILE = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "/\u3000/evil.example",
    "evil.example",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_redirect_targets_are_same_origin_paths_only(target: str) -> None:
    assert security.safe_redirect_target(target) == "/"
    assert auth.safe_redirect_target(target) == "/"


def test_redirect_targets_keep_local_paths() -> None:
    assert security.safe_redirect_target("/assets/1?state=PROCESSED&q=a%20b") == (
        "/assets/1?state=PROCESSED&q=a%20b"
    )
    assert security.safe_redirect_target("/?folder=été") == "/?folder=%C3%A9t%C3%A9"
    assert security.safe_redirect_target("/ops") == "/ops"


async def test_no_open_redirect_through_next_or_back(client: TestClient) -> None:
    # Logged out: the login form must not carry the hostile target either.
    resp = await client.get("/login?next=/%09/evil.example", headers={"Accept": "text/html"})
    assert "evil.example" not in await resp.text()
    token = await csrf_of(client)
    for hostile in ("/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example"):
        client.session.cookie_jar.clear()
        token = await csrf_of(client)
        resp = await client.post(
            "/login",
            data={
                "username": "alice",
                "password": "correct horse",
                "_csrf": token,
                "next": hostile,
            },
            allow_redirects=False,
        )
        assert resp.status == 303 and resp.headers["Location"] == "/", resp.headers["Location"]
    token = await csrf_of(client, "/")
    for encoded in ("%09", "%0A", "%0D%0A", "%5C", "/"):
        resp = await client.get(f"/login?next=/{encoded}/evil.example", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/", (encoded, resp.headers)
    a = await make_asset(state="PROCESSED", failed=True)
    for hostile in ("/\t/evil.example", "/\r\n/evil.example", "//evil.example"):
        resp = await client.post(
            f"/assets/{a.id}/action/retry",
            data={"_csrf": token, "back": hostile},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
        assert "evil" not in resp.headers["Location"], resp.headers["Location"]


async def _try(client: TestClient, username: str, password: str) -> int:
    client.session.cookie_jar.clear()
    token = await csrf_of(client)
    resp = await client.post(
        "/login",
        data={"username": username, "password": password, "_csrf": token},
        allow_redirects=False,
    )
    return resp.status


async def test_a_success_does_not_reset_the_limiter(client: TestClient) -> None:
    """Four wrong passwords on other names, then one right one, five times: the limit
    (5 failures per address per window) must bite; it never did before."""
    statuses = []
    for round_no in range(5):
        for i in range(4):
            statuses.append(await _try(client, f"victim{round_no}{i}", "guess"))
        statuses.append(await _try(client, "alice", "correct horse"))
    assert 429 in statuses, statuses
    assert statuses.count(401) <= 5, statuses


async def test_limiter_holds_against_a_spread_of_names_and_a_restart(
    client: TestClient,
) -> None:
    for i in range(5):
        assert await _try(client, f"user{i}", "guess") == 401
    assert await _try(client, "someone-else", "guess") == 429
    # The failures are stored: a restarted server on the same database still refuses.
    config = client.server.app[CONFIG]  # type: ignore[union-attr]
    restarted = create_app(config, default_services(config))
    async with TestClient(TestServer(restarted)) as again:
        assert await _try(again, "alice", "correct horse") == 429


async def test_limiter_per_username_across_addresses(db: str) -> None:
    limiter = security.StoredLoginLimiter(max_failures=3, window_s=60)
    for t, ip in ((0, "1"), (1, "2"), (2, "3")):
        assert await limiter.retry_after(f"ip:{ip}", "alice", now=t) == 0
        await limiter.failed(f"ip:{ip}", "alice", now=t)
    assert await limiter.retry_after("ip:4", "ALICE", now=3) == pytest.approx(57)
    assert await limiter.retry_after("ip:4", "bob", now=3) == 0
    assert await limiter.retry_after("ip:4", "alice", now=61) == 0


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"project": ' + "[" * 200 + "]" * 200 + "}",
        '{"project": "' + "x" * 300_000 + '"}',
    ],
)
async def test_deep_or_huge_json_is_a_400(client: TestClient, body: str) -> None:
    token = await login(client)
    a = await make_asset()
    for url in (f"/api/assets/{a.id}/fields", f"/api/assets/{a.id}/tags"):
        resp = await client.post(
            url,
            data=body,
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
        text = await resp.text()
        assert resp.status == 400, (resp.status, text[:300])
        assert "Traceback" not in text and len(text) < 300
    assert (await Asset.get(id=a.id)).fields_data == {}


def test_json_bound_accepts_ordinary_bodies() -> None:
    assert security.parse_json_bounded('{"a": [1, {"b": "[[[["}], "c": "\\"]"}') == {
        "a": [1, {"b": "[[[["}],
        "c": '"]',
    }
    with pytest.raises(security.BadJson):
        security.parse_json_bounded("[" * 40 + "]" * 40)
    with pytest.raises(security.BadJson):
        security.parse_json_bounded("{")


async def test_html_with_user_data_is_not_stored(client: TestClient) -> None:
    await login(client)
    a = await make_asset()
    for url in ("/", f"/assets/{a.id}", "/ops", "/actions", "/bins", "/login"):
        resp = await client.get(url, headers={"Accept": "text/html"})
        assert resp.status == 200, url
        assert "no-store" in resp.headers.get("Cache-Control", ""), url
    resp = await client.get("/static/app.css")
    assert "no-store" not in resp.headers.get("Cache-Control", "")


async def test_refused_form_posts_come_back_in_the_page(client: TestClient) -> None:
    """A duplicate bin name and a refused reopen: the page the person was on, with the
    reason in words, never a bare text page."""
    token = await login(client)
    resp = await client.post("/bins", data={"_csrf": token, "name": "Wedding"})
    assert resp.status == 200
    resp = await client.post("/bins", data={"_csrf": token, "name": "Wedding"})
    text = await resp.text()
    assert resp.status == 200 and resp.url.path == "/bins", resp.status
    assert "<html" in text and "A bin named “Wedding” exists already" in text
    again = await client.get("/bins")
    assert "exists already" not in await again.text()  # shown once
    a = await make_asset(state="PROCESSED", rel="INBOX/shoot/C0007.MP4")
    resp = await client.post(f"/assets/{a.id}/action/reopen", data={"_csrf": token})
    text = await resp.text()
    assert resp.url.path == f"/assets/{a.id}" and "Reopen of C0007.MP4 refused" in text
