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
    from actors.purger import Purger
    from actors.scanner import Scanner
    from web.app import WebServer
    from web.services import default_services

    actors: list[Actor] = [
        Scanner(ctx.config, bus=ctx.bus),
        Purger(ctx.config, bus=ctx.bus),
        WebServer(ctx.config, default_services(ctx.config, bus=ctx.bus)),
    ]
    if ctx.config.seedbox.enabled:
        from actors.seed_relocator import SeedRelocator

        actors.append(SeedRelocator(ctx.config))
    return actors


async def run_server(
    config: Config, *, supervisor_hook: object = None, force_exit_after: float | None = None
) -> None:
    """Run every actor until SIGTERM/SIGINT.

    `force_exit_after` (the `rush serve` process only): when an actor ignored
    cancellation, the interpreter's own shutdown would wait for it for ever, so the
    process exits with status 1 that many seconds after the supervisor gave up on it.
    """
    ctx = ServerContext(config)
    async with contextlib.AsyncExitStack() as stack:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        await init_db(config.database_url())
        stack.push_async_callback(close_db)
        # Before any actor starts: settle whatever a crashed apply or purge left.
        from rush.recovery import startup

        await startup(config, bus=ctx.bus)
        from rush import actions

        actions.configure(config)
        supervisor = Supervisor(build_actors(ctx))
        if callable(supervisor_hook):
            supervisor_hook(supervisor)
        log.info("rush serve: library %s, database %s", config.library.root, config.database_url())
        try:
            await supervisor.run()
        finally:
            if supervisor.abandoned and force_exit_after is not None:
                _exit_later(force_exit_after, supervisor.abandoned)
    log.info("rush serve stopped")


def _exit_later(delay: float, stuck: list[str]) -> None:
    import os
    import threading

    def force() -> None:
        log.error("forcing exit: actors %s ignored cancellation", ", ".join(stuck))
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(delay, force)
    timer.daemon = True
    timer.start()
