"""The web UI through its real app factory, on SQLite and PostgreSQL (HTTP level)."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush import decisions
from rush.config import Config
from rush.events import EventBus
from rush.layout import init_library
from rush.lifecycle import AssetState, Trigger
from rush.media import MediaKind
from rush.models import (
    Agent,
    Asset,
    Bin,
    Derivative,
    KeyValue,
    Lease,
    Suggestion,
    Tag,
    Transcript,
)
from rush.transitions import transition
from rush.users import add_user
from tests.webutil import add_derivative, csrf_of, login, make_asset, web_config
from web import auth
from web.app import create_app
from web.keys import CONFIG
from web.services import ActionUnavailable, WebServices, default_services


@pytest.fixture
async def client(db: str, tmp_path: Path) -> AsyncIterator[TestClient]:
    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    await add_user("alice", "correct horse")
    app = create_app(config, default_services(config))  # the process-wide bus, as in `rush serve`
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
        data={
            "username": "alice",
            "password": "correct horse",
            "_csrf": token,
            "next": "//evil.example/",
        },
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


async def test_logged_in_sessions_end_on_logout_reset_and_removal_across_restarts(
    client: TestClient, tmp_path: Path
) -> None:
    """A logged-in cookie counts only while its `web_session` row exists: a restarted
    server (a new app on the same database and secret) still refuses a logged-out cookie,
    and a password reset or a removed user ends every browser of that user."""
    from rush.users import remove_user

    config: Config = client.server.app[CONFIG]  # type: ignore[union-attr]
    first, token = await fresh_login_with(client, "alice", "correct horse")
    second, _ = await fresh_login_with(client, "alice", "correct horse")
    assert await raw_get(client, "/ops", cookie=first) == 200
    client.session.cookie_jar.clear()
    resp = await client.post(
        "/logout", data={"_csrf": token}, headers={"Cookie": first}, allow_redirects=False
    )
    assert resp.status == 303
    restarted = create_app(config, default_services(config))
    async with TestClient(TestServer(restarted)) as again:
        assert await raw_get(again, "/ops", cookie=first) == 401  # logged out, for good
        assert await raw_get(again, "/ops", cookie=second) == 200  # the other browser stays
        await add_user("alice", "a brand new secret", replace=True)
        assert await raw_get(again, "/ops", cookie=second) == 401  # password reset
        third, _ = await fresh_login_with(again, "alice", "a brand new secret")
        assert await raw_get(again, "/ops", cookie=third) == 200
        assert await remove_user("alice") == 1
        assert await raw_get(again, "/ops", cookie=third) == 401  # user removed


async def fresh_login_with(client: TestClient, username: str, password: str) -> tuple[str, str]:
    client.session.cookie_jar.clear()
    token = await login(client, username, password)
    return cookie_header(client), token


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


# --- library filters, neighbours, live events, actions ------------------------------------


def ids_in(html: str) -> set[str]:
    return set(re.findall(r'data-id="([0-9a-f-]{36})"', html))


async def test_library_filters_on_both_backends(client: TestClient) -> None:
    await login(client)
    a = await make_asset(rel="INBOX/alpha/a.mp4", mtime=1_750_000_000.0)  # 2025-06-15
    b = await make_asset(rel="INBOX/beta/b.wav", kind=MediaKind.AUDIO, mtime=1_700_000_000.0)
    c = await make_asset(rel="INBOX/alpha/c.jpg", kind=MediaKind.PHOTO, state="READY")
    await make_asset(rel="INBOX/alpha/gone.mp4", state="PURGED")
    await decisions.set_tags(a.id, ["beach"], "t")
    await decisions.set_fields(
        a.id, {"project": "Film A", "people": ["Ann", "Bob"], "rating": 4}, "t"
    )
    await decisions.set_fields(b.id, {"project": "Film B", "people": ["Ann"], "rating": 2}, "t")
    await decisions.decide(b.id, "REJECT", "t")
    await Transcript.create(asset=b, version=1, text="Hello Wedding guests", words=[])
    box = await Bin.create(name="selects")
    await box.assets.add(c)
    cases: list[tuple[str, set[Asset]]] = [
        ("", {a, b, c}),
        ("state=READY", {c}),
        ("state=READY&state=DECIDED_REJECT", {b, c}),
        ("state=PURGED", set()),
        ("kind=audio", {b}),
        ("folder=INBOX/alpha", {a, c}),
        ("text=ALPHA", {a, c}),
        ("tag=beach", {a}),
        ("project=Film+A", {a}),
        ("person=Ann", {a, b}),
        ("person=Bob", {a}),
        ("rating=3", {a}),
        ("decision=REJECT", {b}),
        ("decision=none", {a, c}),
        ("q=wedding", {b}),
        (f"bin={box.id}", {c}),
        ("since=2025-06-01&until=2025-06-30", {a}),
    ]
    for qs, expected in cases:
        resp = await client.get(f"/?{qs}")
        assert resp.status == 200, (qs, await resp.text())
        html = await resp.text()
        if qs == "state=PURGED":
            assert len(ids_in(html)) == 1  # purged ones appear only when asked for
            continue
        assert ids_in(html) == {str(x.id) for x in expected}, qs
    for bad in ("state=NOPE", "sort=evil", "rating=9", "since=yesterday", "kind=doc"):
        assert (await client.get(f"/?{bad}")).status == 400, bad


async def test_pagination_sort_and_neighbours(client: TestClient) -> None:
    await login(client)
    made = [await make_asset(rel=f"INBOX/s/{i:03d}.mp4", size=i) for i in range(25)]
    client.server.app[CONFIG].web.page_size = 10  # type: ignore[union-attr]
    pages = []
    for n in (1, 2, 3):
        html = await (await client.get(f"/?sort=size&dir=desc&page={n}")).text()
        pages.append(re.findall(r'data-id="([0-9a-f-]{36})"', html))
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [x for p in pages for x in p] == [str(a.id) for a in reversed(made)]
    html = await (await client.get(f"/assets/{made[10].id}?sort=size&dir=desc")).text()
    assert f'data-next="/assets/{made[9].id}?' in html
    assert f'data-prev="/assets/{made[11].id}?' in html
    html = await (await client.get(f"/assets/{made[0].id}?sort=path")).text()
    assert 'data-prev=""' in html and f'data-next="/assets/{made[1].id}?' in html


async def test_api_errors_map_to_statuses(client: TestClient) -> None:
    token = await login(client)
    h = {"X-CSRF-Token": token}
    ready = await make_asset(state="READY")
    resp = await client.post(f"/api/assets/{ready.id}/decide", json={"decision": "KEEP"}, headers=h)
    assert resp.status == 409 and "READY" in (await resp.json())["error"]
    resp = await client.post(
        f"/api/assets/{uuid.uuid4()}/decide", json={"decision": "KEEP"}, headers=h
    )
    assert resp.status == 404
    resp = await client.post(f"/api/assets/{ready.id}/fields", json={"rating": 9}, headers=h)
    assert resp.status == 400
    resp = await client.post(
        f"/api/assets/{ready.id}/decide",
        data="{oops",
        headers={**h, "Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert (await client.get("/assets/not-a-uuid")).status == 404


async def test_event_stream_pushes_transitions(client: TestClient) -> None:
    token = await login(client)
    a = await make_asset()
    resp = await client.get("/events")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    assert (await resp.content.readline()).startswith(b"retry:")
    decided = await client.post(
        f"/api/assets/{a.id}/decide", json={"decision": "REJECT"}, headers={"X-CSRF-Token": token}
    )
    assert decided.status == 200
    lines = []
    while not any(line.startswith(b"data:") for line in lines):
        lines.append(await asyncio.wait_for(resp.content.readline(), 5))
    data = json.loads(lines[-1].removeprefix(b"data: "))
    assert data["uuid"] == str(a.id) and data["to"] == "DECIDED_REJECT"
    resp.close()


class ReopenOnly:
    """A small real ActionService: reopen through the lifecycle, a trivial apply plan."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    async def plan_apply(self) -> Any:
        return {
            "eligible": await Asset.filter(state__in=["DECIDED_KEEP", "DECIDED_REJECT"]).count()
        }

    async def run_apply(self, actor: str) -> Any:
        self.applied.append(actor)
        return {"moved": 0, "errors": []}

    async def plan_purge(self) -> Any:
        raise ActionUnavailable("purge is not part of this test build")

    async def run_purge(self, actor: str, confirm: bool) -> Any:
        raise ActionUnavailable("purge is not part of this test build")

    async def reopen(self, asset_id: uuid.UUID, actor: str) -> Any:
        asset = await Asset.get(id=asset_id)
        await transition(
            asset_id, AssetState(asset.state), AssetState.DECISION_PENDING, Trigger.REOPEN, actor
        )

    async def reprocess(self, asset_id: uuid.UUID, actor: str) -> Any:
        raise ActionUnavailable("no reprocess here")

    async def retry_failed(self, asset_id: uuid.UUID, actor: str) -> Any:
        raise ActionUnavailable("no retry here")


async def test_actions_through_the_service_protocol(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    await add_user("alice", "correct horse")
    service = ReopenOnly()
    app = create_app(config, WebServices(actions=service, bus=EventBus()))
    async with TestClient(TestServer(app)) as c:
        token = await login(c)
        archived = await make_asset(state="ARCHIVED")
        resp = await c.post(
            f"/assets/{archived.id}/action/reopen", data={"_csrf": token}, allow_redirects=False
        )
        assert resp.status == 303
        assert (await Asset.get(id=archived.id)).state == AssetState.DECISION_PENDING
        resp = await c.post(f"/assets/{archived.id}/action/reprocess", data={"_csrf": token})
        # Refused: back on the asset page, which says why (in words, no bare text page).
        assert resp.status == 200 and resp.url.path == f"/assets/{archived.id}"
        assert "Reprocess of " in await resp.text()
        resp = await c.post("/actions/apply/plan", data={"_csrf": token})
        assert resp.status == 200 and "eligible" in await resp.text()
        resp = await c.post("/actions/apply/run", data={"_csrf": token})
        assert resp.url.path == "/actions"  # no explicit confirmation: back, with the reason
        assert "tick the confirmation box" in await resp.text()
        assert service.applied == []
        resp = await c.post(
            "/actions/apply/run", data={"_csrf": token, "confirm": "yes"}, allow_redirects=False
        )
        assert resp.status == 303
        run_url = resp.headers["Location"]
        for _ in range(100):
            report = await (await c.get(run_url + "/report")).json()
            if report["status"] != "running":
                break
            await asyncio.sleep(0.02)
        assert report["status"] == "done" and report["report"] == {"moved": 0, "errors": []}
        assert service.applied == ["user:alice"]
        resp = await c.post("/actions/purge/plan", data={"_csrf": token})
        assert resp.status == 503 and "not part of this test build" in await resp.text()


async def test_default_actions_use_the_real_modules(client: TestClient) -> None:
    """`default_services` binds `rush.actions`: reopening an ARCHIVED asset really works."""
    token = await login(client)
    a = await make_asset(state="ARCHIVED", rel="ARCHIVE/shoot/a.mp4", area="ARCHIVE")
    resp = await client.post(
        f"/assets/{a.id}/action/reopen", data={"_csrf": token}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    reopened = await Asset.get(id=a.id)
    assert (reopened.state, reopened.rel_path) == (
        AssetState.DECISION_PENDING,
        "ARCHIVE/shoot/a.mp4",
    )
    # A second reopen is refused by the domain, never a 500 nor a silent success: the
    # asset page says so, naming the file rather than its UUID.
    resp = await client.post(f"/assets/{a.id}/action/reopen", data={"_csrf": token})
    assert resp.status == 200 and resp.url.path == f"/assets/{a.id}"
    message = re.search(r'<p class="flash error" role="alert">([^<]*)</p>', await resp.text())
    assert message and "only ARCHIVED or REJECTED" in message.group(1)
    assert "a.mp4" in message.group(1) and str(a.id) not in message.group(1)
    assert (await Asset.get(id=a.id)).state == AssetState.DECISION_PENDING
    assert (await client.get("/actions")).status == 200
    assert (await client.get("/ops")).status == 200
    assert (await client.get("/bins")).status == 200


async def test_ops_page_shows_agents_leases_failures_and_scan(client: TestClient) -> None:
    await login(client)
    now = datetime.now(UTC)
    await Agent.create(
        id="laptop-1", hostname="laptop", version="0.1", capabilities={"proxy": True, "transcription": False},
        online=True, last_seen=now,
    )  # fmt: skip
    await Agent.create(id="pi-2", hostname="pi", online=False, last_seen=now - timedelta(hours=2))
    busy = await make_asset(state="PROCESSING_REVIEW", rel="INBOX/q/busy.mp4")
    await Lease.create(
        asset=busy, job_type="process_for_review", agent_id="laptop-1", lock_token="tok-1",
        active_key=f"{busy.id}:process_for_review", progress=0.42, expires_at=now + timedelta(minutes=2),
    )  # fmt: skip
    await make_asset(
        state="READY",
        rel="INBOX/q/broken.mp4",
        failed=True,
        attempts=3,
        last_error="moov atom not found",
    )
    # As the scanner records it.
    await KeyValue.create(
        key="last_scan", value={"finished_at": "2026-11-24T06:00:12+00:00", "duration_s": 2.5}
    )
    html = await (await client.get("/ops")).text()
    for needle in (
        "laptop-1",
        "pi-2",
        "busy.mp4",
        "42%",
        "broken.mp4",
        "moov atom not found",
        "2.50 s",
        "Retry",
    ):
        assert needle in html, needle
    assert html.count('class="dot on"') == 1  # the Pi is offline


def test_session_secret_sources(tmp_path: Path) -> None:
    configured = Config.model_validate(
        {"data_dir": str(tmp_path / "a"), "web": {"session_secret": "x" * 20}}
    )
    assert auth.load_or_create_secret(configured) == b"x" * 20
    assert not (tmp_path / "a" / "web_session_secret").exists()
    with pytest.raises(ValueError):
        auth.load_or_create_secret(Config.model_validate({"web": {"session_secret": "short"}}))
    generated = Config.model_validate({"data_dir": str(tmp_path / "b")})
    first = auth.load_or_create_secret(generated)
    assert auth.load_or_create_secret(generated) == first and len(first) >= 32


def test_session_codec_refuses_tampering_and_expiry() -> None:
    codec = auth.SessionCodec(b"k" * 32)
    session = auth.new_session("alice", 1)
    cookie = codec.encode(session)
    decoded = codec.decode(cookie)
    assert decoded is not None and (decoded.sid, decoded.csrf, decoded.user) == (
        session.sid,
        session.csrf,
        "alice",
    )
    sig = cookie.rsplit(".", 1)[1]
    forged = auth._b64(json.dumps({"sid": "s", "csrf": "c", "exp": 9e9, "user": "root"}).encode())
    assert codec.decode(f"{forged}.{sig}") is None
    assert codec.decode(cookie, now=session.exp + 1) is None
    assert auth.SessionCodec(b"other" * 8).decode(cookie) is None


async def test_linked_audio_shown_on_both_pages(client: TestClient) -> None:
    token = await login(client)
    video = await make_asset(rel="INBOX/day1/clip.mp4")
    audio = await make_asset(rel="INBOX/day1/zoom.wav", kind=MediaKind.AUDIO)
    html = await (await client.get(f"/assets/{video.id}")).text()
    assert f'<option value="{audio.id}">zoom.wav — same folder</option>' in html  # candidate
    resp = await client.post(
        f"/api/assets/{video.id}/link-audio",
        json={"audio_id": str(audio.id)},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 200
    assert f'href="/assets/{audio.id}"' in await (await client.get(f"/assets/{video.id}")).text()
    audio_page = await (await client.get(f"/assets/{audio.id}")).text()
    assert f'data-unlink="{video.id}"' in audio_page
    resp = await client.post(
        f"/api/assets/{audio.id}/link-audio",
        json={"audio_id": str(video.id)},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 400  # an audio asset cannot take a linked audio


def test_facts_table_leaves_out_what_the_file_does_not_have() -> None:
    from web.asset_context import flatten as _flatten

    facts = {"width": 1600, "lens_model": None, "tags": [], "streams": [{"codec": "h264"}]}
    assert _flatten(facts) == [("width", "1600"), ("streams[0].codec", "h264")]


async def test_library_cards_pick_their_picture(client: TestClient) -> None:
    """Poster first, else a thumbnail; a sound shows its waveform, never a blank card."""
    await login(client)
    root = lib_root(client)
    video = await make_asset()
    await add_derivative(root, video, "thumb", "t.jpg", b"t")
    poster = await add_derivative(root, video, "poster", "p.jpg", b"p")
    sound = await make_asset(kind=MediaKind.AUDIO, rel="INBOX/shoot/zoom.wav")
    await add_derivative(root, sound, "proxy", "proxy.m4a", b"a")
    wave = await add_derivative(root, sound, "waveform_png", "waveform.png", b"w")
    html = await (await client.get("/")).text()
    assert f'src="/derived/{video.id}/{poster.id}"' in html
    assert f'src="/derived/{sound.id}/{wave.id}"' in html
