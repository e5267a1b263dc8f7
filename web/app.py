"""The web UI application: factory, typed app keys, routes and the supervisor actor.

`create_app(config, services)` builds a plain `web.Application`; the database is opened
by whoever owns the process (`rush serve`, a test fixture).  `WebServer` runs it inside the
supervisor with `AppRunner`/`TCPSite`, so the web UI starts and stops with the other actors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from rush.config import Config
from web import auth, flash, security
from web.queries import CountCache
from web.services import WebServices

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


@dataclass
class ActionRun:
    """One batch apply or purge started from the UI, followed live on its page."""

    id: str
    kind: str
    actor: str
    status: str = "running"  # running | done | error
    report: Any = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass
class RunRegistry:
    runs: dict[str, ActionRun] = field(default_factory=dict)
    group: asyncio.TaskGroup | None = None


CONFIG = web.AppKey("config", Config)
SERVICES = web.AppKey("services", WebServices)
CODEC = web.AppKey("codec", auth.SessionCodec)
LIMITER = web.AppKey("limiter", security.StoredLoginLimiter)
COUNTS = web.AppKey("counts", CountCache)
CLOSING = web.AppKey("closing", asyncio.Event)
RUNS = web.AppKey("runs", RunRegistry)


def _codec_of(request: web.Request) -> auth.SessionCodec:
    return request.app[CODEC]


async def _session_secret(app: web.Application) -> AsyncIterator[None]:
    """Load (or create once, 0600) the session secret: file I/O belongs here, not in the factory."""
    secret = await asyncio.to_thread(auth.load_or_create_secret, app[CONFIG])
    app[CODEC] = auth.SessionCodec(secret)
    yield


async def _count_invalidation(app: web.Application) -> AsyncIterator[None]:
    """Drop cached counts whenever an asset changes state, so badges and totals stay true."""
    closing = app[CLOSING]

    async def follow() -> None:
        with app[SERVICES].bus.subscribe("asset", maxsize=1000) as sub:
            while not closing.is_set():
                try:
                    await asyncio.wait_for(sub.queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                app[COUNTS].invalidate()

    async with asyncio.TaskGroup() as group:
        task = group.create_task(follow(), name="web-count-invalidation")
        yield
        closing.set()
        task.cancel()


async def _action_runs(app: web.Application) -> AsyncIterator[None]:
    """Background batch apply / purge runs; cancelled (and journaled by them) on shutdown."""
    registry = app[RUNS]
    async with asyncio.TaskGroup() as group:
        registry.group = group
        yield
        registry.group = None
        for run in registry.runs.values():
            if run.task is not None and not run.task.done():
                run.task.cancel()


async def _on_shutdown(app: web.Application) -> None:
    app[CLOSING].set()


def create_app(config: Config, services: WebServices) -> web.Application:
    """Build the web UI (no I/O here: secrets and background tasks start in cleanup_ctx)."""
    app = web.Application(
        middlewares=[_security_headers, auth.make_middleware(_codec_of)],
        client_max_size=1024 * 1024,
    )
    app[CONFIG] = config
    app[SERVICES] = services
    app[LIMITER] = security.StoredLoginLimiter()
    app[COUNTS] = CountCache()
    app[CLOSING] = asyncio.Event()
    app[RUNS] = RunRegistry()
    app[flash.FLASHES] = flash.FlashStore()
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        default_helpers=False,
    )
    from web import views

    env.filters.update(views.FILTERS)
    env.globals["static"] = lambda name: str(app.router["static"].url_for(filename=name))
    app.cleanup_ctx.append(_session_secret)
    app.cleanup_ctx.append(_count_invalidation)
    app.cleanup_ctx.append(_action_runs)
    app.on_shutdown.append(_on_shutdown)
    setup_routes(app)
    return app


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


@web.middleware
async def _security_headers(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    if not response.prepared:  # streamed responses (files, SSE) have sent their headers
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
    if security.no_store(request.path):
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    )
    return response


def setup_routes(app: web.Application) -> None:
    """Every route of the UI, in one place."""
    from web import review_api, secondary_views, views

    r = app.router
    r.add_get("/login", views.login_page, name="login")
    r.add_post("/login", views.login_submit)
    r.add_post("/logout", views.logout)
    r.add_get("/", views.library, name="library")
    r.add_get("/assets/{id}", views.asset_page, name="asset")
    r.add_post("/api/assets/{id}/decide", views.api_decide)
    r.add_post("/api/assets/{id}/undo", views.api_undo)
    r.add_post("/api/assets/{id}/reject-duplicate", views.api_reject_duplicate)
    r.add_post("/api/assets/{id}/tags", views.api_tags)
    r.add_post("/api/assets/{id}/fields", views.api_fields)
    r.add_post("/api/assets/{id}/suggestions/accept", views.api_accept_suggestion)
    r.add_post("/api/assets/{id}/link-audio", views.api_link_audio)
    r.add_post("/api/assets/{id}/unlink-audio", views.api_unlink_audio)
    r.add_post("/api/assets/{id}/bins", views.api_asset_bin)
    r.add_post("/assets/{id}/action/{action}", views.asset_action)
    r.add_post("/assets/{id}/recompute/{job}", secondary_views.asset_recompute)
    r.add_get("/bins", views.bins_page, name="bins")
    r.add_post("/bins", views.bin_create)
    r.add_post("/bins/{bin}/delete", views.bin_delete)
    r.add_post("/bins/{bin}/export", views.bin_export)
    r.add_get("/ops", views.ops_page, name="ops")
    r.add_get("/events", views.event_stream)
    r.add_get("/metrics", views.metrics)
    r.add_get("/actions", views.actions_page, name="actions")
    r.add_post("/actions/{kind}/plan", views.action_plan)
    r.add_post("/actions/{kind}/run", views.action_run)
    r.add_get("/actions/runs/{run}", views.action_run_page)
    r.add_get("/actions/runs/{run}/report", views.action_run_report)
    r.add_get(
        r"/derived/{asset:[0-9a-fA-F-]{32,36}}/{deriv:[0-9]{1,18}}", views.derived, name="derived"
    )
    review_api.setup_routes(app)
    r.add_static("/static/", HERE / "static", name="static", append_version=True)


class WebServer:
    """Supervisor actor serving the UI on `web.host:web.port` until cancelled."""

    name = "web"

    def __init__(self, config: Config, services: WebServices) -> None:
        self.config = config
        self.services = services
        self.port: int | None = None

    async def run(self) -> None:
        app = create_app(self.config, self.services)
        runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.web.host, self.config.web.port)
            await site.start()
            addresses = runner.addresses
            if addresses:
                self.port = int(addresses[0][1])
            log.info("web UI on http://%s:%s/", self.config.web.host, self.port)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
