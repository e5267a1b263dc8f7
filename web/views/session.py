"""Login and logout: the session cookie, the login limiter."""

from __future__ import annotations

import logging

from aiohttp import web

from rush.users import authenticate
from web import auth
from web.keys import CODEC, CONFIG, LIMITER
from web.views.common import render, session_of

log = logging.getLogger(__name__)


async def login_page(request: web.Request) -> web.StreamResponse:
    session: auth.Session | None = request.get(auth.SESSION)
    if session and session.authenticated:
        raise web.HTTPSeeOther(auth.safe_redirect_target(request.query.get("next")))
    if session is None:
        session = auth.new_session()
    response = render(
        "login.html",
        request,
        {
            "csrf": session.csrf,
            "next": auth.safe_redirect_target(request.query.get("next")),
            "error": None,
        },
    )
    auth.set_session_cookie(
        response, request.app[CODEC], session, request.app[CONFIG].web.secure_cookies
    )
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:128]
    password = str(form.get("password", ""))[:1024]
    target = auth.safe_redirect_target(str(form.get("next", "/")))
    limiter = request.app[LIMITER]
    client = auth.client_key(request)
    wait = await limiter.retry_after(client, username)
    session = request[auth.SESSION]
    assert session is not None  # the CSRF check needs one, so the middleware made sure
    if wait > 0:
        response = render(
            "login.html",
            request,
            {
                "csrf": session.csrf,
                "next": target,
                "error": f"Too many failed attempts; try again in {int(wait) + 1} s.",
            },
            status=429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await authenticate(username, password)
    if user is None:
        await limiter.failed(client, username)
        log.warning("failed login for %r from %s", username, request.remote)
        return render(
            "login.html",
            request,
            {"csrf": session.csrf, "next": target, "error": "Wrong username or password."},
            status=401,
        )
    fresh = auth.new_session(user.username, user.id)
    await auth.open_session(fresh)
    response = web.HTTPSeeOther(target)
    auth.set_session_cookie(
        response, request.app[CODEC], fresh, request.app[CONFIG].web.secure_cookies
    )
    log.info("user %s logged in from %s", user.username, request.remote)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await auth.close_session(session_of(request))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(auth.COOKIE, path="/")
    raise response
