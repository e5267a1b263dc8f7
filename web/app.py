"""The web UI application: factory (middlewares, templates, resources) and the supervisor actor.

`create_app(config, services)` builds a plain `web.Application` (its keys are in
`web/keys.py`, its routes in `web/routes.py`); the database is opened
by whoever owns the process (`rush serve`, a test fixture).  `WebServer` runs it inside the
supervisor with `AppRunner`/`TCPSite`, so the web UI starts and stops with the other actors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from rush import decisions
from rush.config import Config
from web import auth, flash, roles, security, words
from web.errors import domain_errors
from web.keys import CLOSING, CODEC, CONFIG, COUNTS, LIMITER, RUNS, SERVICES, RunRegistry
from web.queries import CountCache
from web.routes import setup_routes
from web.services import WebServices
from web.template_filters import FILTERS

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


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
        # Outermost first: headers, login and CSRF, role, then domain errors nearest the
        # handler so they are raised as the handler's own HTTP error.
        middlewares=[
            _security_headers,
            auth.make_middleware(_codec_of),
            roles.role_middleware,
            domain_errors,
        ],
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
    env.filters.update(FILTERS)
    env.globals["static"] = lambda name: str(app.router["static"].url_for(filename=name))
    # What the review desk's templates show: label names, state words, fact summaries.
    env.globals["labels"] = decisions.LABELS
    env.globals["state_words"] = words.STATE_WORDS
    env.globals["fact_summary"] = words.summary
    env.globals["card_facts"] = words.card_facts
    env.filters.update(words.FILTERS)
    app.cleanup_ctx.append(_session_secret)
    app.cleanup_ctx.append(_count_invalidation)
    app.cleanup_ctx.append(_action_runs)
    app.on_shutdown.append(_on_shutdown)
    setup_routes(app)
    return app


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
