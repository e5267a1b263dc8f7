"""What every handler needs: rendering with the base context and request parsing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from rush.lifecycle import AssetState
from web import auth, flash, queries, security

STATES = [s.value for s in AssetState]


def base_context(request: web.Request) -> dict[str, Any]:
    session: auth.Session | None = request.get(auth.SESSION)
    return {
        "session": session,
        "user": session.user if session else None,
        "csrf": session.csrf if session else "",
        "path": request.path,
        "request": request,
        "flashes": flash.take(request),
    }


def render(
    template: str, request: web.Request, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render with the base context (user, CSRF token) every page needs."""
    return aiohttp_jinja2.render_template(
        template, request, {**base_context(request), **context}, status=status
    )


def session_of(request: web.Request) -> auth.Session:
    session: auth.Session | None = request.get(auth.SESSION)
    assert session is not None and session.authenticated  # the middleware guarantees it
    return session


def actor(request: web.Request) -> str:
    return f"user:{session_of(request).user}"


def asset_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError as exc:
        raise web.HTTPNotFound(text="no such asset") from exc


async def body(request: web.Request) -> Mapping[str, Any]:
    if request.content_type == "application/json":
        try:
            data = security.parse_json_bounded(await request.read())
        except security.BadJson as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return data
    form = await request.post()
    return {k: v for k, v in form.items() if k != auth.CSRF_FIELD}


def filters(request: web.Request) -> queries.Filters:
    try:
        return queries.Filters.parse(request.query, request.query.getall("state", []))
    except queries.BadFilter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
