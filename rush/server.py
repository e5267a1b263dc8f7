"""The composition root of `rush serve`: build every actor, run them under one supervisor.

Each setup step registers its teardown on one AsyncExitStack, so shutdown runs them in
reverse order whatever failed (STYLE §6).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from actors.supervisor import Actor, Supervisor
from rush import events
from rush.config import Config
from rush.storage import close_db, init_db

log = logging.getLogger(__name__)


@dataclass
class ServerContext:
    """What actors share: the config and the in-process event bus (no transport here)."""

    config: Config
    bus: events.EventBus = field(default_factory=lambda: events.bus)


def build_actors(ctx: ServerContext) -> list[Actor]:
    """Every long-lived actor of the server, in start order."""
    from actors.scanner import Scanner

    from web.app import WebServer
    from web.services import default_services

    return [
        Scanner(ctx.config, bus=ctx.bus),
        WebServer(ctx.config, default_services(ctx.config, bus=ctx.bus)),
    ]


async def run_server(config: Config, *, supervisor_hook: object = None) -> None:
    ctx = ServerContext(config)
    async with contextlib.AsyncExitStack() as stack:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        await init_db(config.database_url())
        stack.push_async_callback(close_db)
        supervisor = Supervisor(build_actors(ctx))
        if callable(supervisor_hook):
            supervisor_hook(supervisor)
        log.info("rush serve: library %s, database %s", config.library.root, config.database_url())
        await supervisor.run()
    log.info("rush serve stopped")
