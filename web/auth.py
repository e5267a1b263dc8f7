"""Login sessions, CSRF protection and login rate limiting for the web UI.

Sessions are signed cookies (HMAC-SHA256 over a small JSON payload with an expiry).
Every browser gets a session before logging in (an anonymous one on the login page, cookie
only) so the login form itself carries a CSRF token; logging in rotates the session id and
the token (no session fixation) and records the id in the `web_session` table.  A logged-in
cookie counts only while its row exists: logging out, a password reset (`rush user add
--replace`) or `rush user remove` ends it at once, restarts included.

CSRF: every state-changing request (POST/PUT/PATCH/DELETE) must carry the session's token,
in the `_csrf` form field or the `X-CSRF-Token` header (fetch).  SameSite=Lax cookies are a
second line of defence, not the only one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from rush.config import Config
from rush.models import WebSession
from web import security

log = logging.getLogger(__name__)

COOKIE = "rush_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "_csrf"
SESSION_TTL_S = 14 * 86400
ANON_TTL_S = 3600
SECRET_FILE = "web_session_secret"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Reachable without a session.
PUBLIC_PREFIXES = ("/static/",)
# /metrics checks a session or the bearer token itself (Prometheus has no session).
PUBLIC_PATHS = frozenset({"/login", "/favicon.ico", "/metrics"})


@dataclass
class Session:
    sid: str
    csrf: str
    exp: float
    user: str | None = None
    uid: int | None = None

    @property
    def authenticated(self) -> bool:
        return self.user is not None


#: Where the middleware puts the request's session (None: no valid cookie).
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
#: The logged-in user's role (None: not logged in).
ROLE: web.RequestKey[str | None] = web.RequestKey("role")


def load_or_create_secret(config: Config) -> bytes:
    """`web.session_secret` if configured, else a random key kept in `data_dir` (0600)."""
    if config.web.session_secret is not None:
        value = config.web.session_secret.get_secret_value()
        if len(value) < 16:
            raise ValueError("web.session_secret must be at least 16 characters")
        return value.encode()
    path: Path = config.data_dir / SECRET_FILE
    try:
        data = path.read_bytes().strip()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data + b"\n")
    os.chmod(path, 0o600)
    log.info("generated a web session secret in %s", path)
    return data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"rush-session\x00" + secret).digest()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def encode(self, session: Session) -> str:
        payload = {"sid": session.sid, "csrf": session.csrf, "exp": int(session.exp)}
        if session.user is not None:
            payload["user"] = session.user
            payload["uid"] = session.uid  # type: ignore[assignment]
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def decode(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or "." not in cookie or len(cookie) > 4096:
            return None
        body, sig = cookie.rsplit(".", 1)
        if not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(
                sid=str(data["sid"]),
                csrf=str(data["csrf"]),
                exp=float(data["exp"]),
                user=data.get("user"),
                uid=data.get("uid"),
            )
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        if session.exp < now:
            return None
        return session


async def open_session(session: Session) -> None:
    """Record a logged-in session (and forget the expired ones on the way)."""
    now = datetime.now(UTC)
    await WebSession.filter(expires_at__lt=now).delete()
    await WebSession.create(
        sid=session.sid, user_id=session.uid, expires_at=datetime.fromtimestamp(session.exp, UTC)
    )


async def session_alive(session: Session) -> bool:
    """Whether a logged-in cookie still has its row (same user, not expired)."""
    return await session_role(session) is not None


async def session_role(session: Session) -> str | None:
    """The role of a logged-in cookie's user, or None when the session is gone.

    Read on every request, so a role changed with `rush user add --replace --role`
    applies at once."""
    row = await WebSession.get_or_none(sid=session.sid).select_related("user")
    if (
        row is None
        or row.user_id != session.uid  # type: ignore[attr-defined]
        or row.expires_at <= datetime.now(UTC)
    ):
        return None
    return str(row.user.role)


async def close_session(session: Session) -> None:
    await WebSession.filter(sid=session.sid).delete()


def new_session(user: str | None = None, uid: int | None = None) -> Session:
    ttl = SESSION_TTL_S if user else ANON_TTL_S
    return Session(
        sid=secrets.token_urlsafe(16),
        csrf=secrets.token_urlsafe(24),
        exp=time.time() + ttl,
        user=user,
        uid=uid,
    )


def set_session_cookie(
    response: web.StreamResponse, codec: SessionCodec, session: Session, secure: bool
) -> None:
    response.set_cookie(
        COOKIE,
        codec.encode(session),
        max_age=max(0, int(session.exp - time.time())),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=secure,
    )


def client_key(request: web.Request) -> str:
    return f"ip:{request.remote or '?'}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def wants_html(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


async def csrf_token_of(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()  # cached by aiohttp: the handler reads it again for free
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def make_middleware(codec_of: Callable[[web.Request], SessionCodec]) -> Any:
    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        codec = codec_of(request)
        session = codec.decode(request.cookies.get(COOKIE))
        role: str | None = None
        if session is not None and session.authenticated:
            role = await session_role(session)
            if role is None:
                session = None  # logged out, password reset or user removed
        request[SESSION] = session
        request[ROLE] = role
        path = request.path
        if not is_public(path) and (session is None or not session.authenticated):
            if wants_html(request):
                raise web.HTTPSeeOther(f"/login?next={_safe_next(request.path_qs)}")
            raise web.HTTPUnauthorized(text="login required")
        if request.method in UNSAFE_METHODS:
            token = await csrf_token_of(request)
            if session is None or not token or not hmac.compare_digest(token, session.csrf):
                raise web.HTTPForbidden(text="missing or invalid CSRF token; reload the page")
        return await handler(request)

    return auth_middleware


def _safe_next(target: str) -> str:
    return quote(safe_redirect_target(target), safe="")


def safe_redirect_target(target: str | None) -> str:
    """Only same-origin paths (see `web.security.safe_redirect_target`)."""
    return security.safe_redirect_target(target)
