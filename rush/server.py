"""The composition root of `rush serve`: build every actor, run them under one supervisor.

Each setup step registers its teardown on one AsyncExitStack, so shutdown runs them in
reverse order whatever failed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from dataclasses import dataclass, field
from typing import Any

from actors.supervisor import Actor, Supervisor
from rush import events
from rush.commands import CommandRegistry, scan_handler
from rush.config import Config
from rush.messaging import Messenger
from rush.storage import close_db, init_db

log = logging.getLogger(__name__)


@dataclass
class ServerContext:
    """What actors share: the config and the in-process event bus (no transport here)."""

    config: Config
    bus: events.EventBus = field(default_factory=lambda: events.bus)
    #: Manual triggers (`rush/cmd/{name}`); each feature registers its handler.
    commands: CommandRegistry = field(default_factory=CommandRegistry)
    #: Set by `build_mqtt_actors`: how actors publish/subscribe without importing MQTT.
    messenger: Messenger | None = None


def build_actors(ctx: ServerContext) -> list[Actor]:
    """Every long-lived actor of the server, in start order."""
    from actors.backfill import SecondaryBackfill
    from actors.hasher import HasherActor
    from actors.purger import Purger
    from actors.scanner import Scanner
    from actors.search_indexer import SearchIndexer
    from actors.verifier import Verifier
    from integrations.metrics import Metrics, MetricsCollector
    from web.app import WebServer
    from web.services import default_services

    config = ctx.config
    scanner = Scanner(config, bus=ctx.bus)
    actors: list[Actor] = [
        scanner,
        Purger(config, bus=ctx.bus),
        SearchIndexer(config),
        SecondaryBackfill(config),
        HasherActor(config),
        Verifier(config),
    ]
    ctx.commands.register("scan", scan_handler(scanner))
    _register_commands(ctx)
    if config.seedbox.enabled:
        from actors.seed_relocator import SeedRelocator, SeedSpaceWatch

        actors.append(SeedRelocator(config))
        if config.seedbox.trigger_free_percent is not None:
            actors.append(SeedSpaceWatch(config))
    actors += build_mqtt_actors(ctx)
    metrics = Metrics()
    actors.append(MetricsCollector(config, metrics, bus=ctx.bus))
    actors.append(WebServer(config, default_services(config, bus=ctx.bus, metrics=metrics)))
    return actors


def _register_commands(ctx: ServerContext) -> None:
    """`rush/cmd/{name}` triggers: dry runs unless the payload explicitly confirms."""
    from rush.moves.commands import cmd_apply, cmd_purge
    from rush.seedbox.service import cmd_seedbox_run

    config = ctx.config

    async def apply(payload: dict[str, Any]) -> dict[str, Any]:
        return await cmd_apply(config, payload)

    async def purge(payload: dict[str, Any]) -> dict[str, Any]:
        return await cmd_purge(config, payload)

    async def seedbox_run(payload: dict[str, Any]) -> dict[str, Any]:
        return await cmd_seedbox_run(config, payload)

    async def apply_dry_run(_payload: dict[str, Any]) -> dict[str, Any]:
        return await cmd_apply(config, {"dry_run": True})  # whatever the payload says

    ctx.commands.register("apply", apply)
    ctx.commands.register("apply/dry-run", apply_dry_run)
    ctx.commands.register("purge", purge)
    ctx.commands.register("seedbox/run", seedbox_run)


def build_mqtt_actors(ctx: ServerContext) -> list[Actor]:
    """The MQTT bridge (+ embedded broker when `mqtt.host` is empty), jobs, Home Assistant."""
    from actors.event_forwarder import EventForwarder
    from actors.jobs import CommandService, JobService, LeaseKeeper
    from integrations.homeassistant.publisher import HomeAssistantPublisher
    from integrations.mqtt.broker import EmbeddedBroker
    from integrations.mqtt.client import MqttBridge
    from integrations.mqtt.topics import Topics

    config = ctx.config
    mqtt = config.mqtt
    topics = Topics(mqtt.prefix)
    actors: list[Actor] = []
    host, port = mqtt.broker_address()
    broker: EmbeddedBroker | None = None
    if not mqtt.host:
        broker = EmbeddedBroker(port)
        actors.append(broker)
    bridge = MqttBridge(
        mqtt,
        status_topic=topics.server_status,
        name="mqtt",
        host=host,
        port=port,
        bus=ctx.bus,
        events_topic=topics.events_asset,
        workers=64,
        not_before=broker.settled if broker is not None else None,
    )
    ctx.messenger = bridge
    jobs = JobService(config, bridge, bus=ctx.bus)
    jobs.install()
    if "agents/refresh" not in ctx.commands:  # `rush agents set` asks for a push
        ctx.commands.register("agents/refresh", jobs.cmd_refresh)
    commands = CommandService(config, bridge, ctx.commands)
    commands.install()
    actors += [bridge, jobs, LeaseKeeper(config, bus=ctx.bus), commands]
    actors.append(EventForwarder(ctx.bus, bridge, {"batch": topics.events_batch}))
    actors.append(HomeAssistantPublisher(config, bridge, ctx.bus))
    return actors


def freeze_startup_heap() -> None:
    """Move everything allocated at start-up out of the garbage collector's sight.

    Why: modules, ORM metadata and pydantic schemas make a heap of a few hundred
    thousand objects that live for ever; without this every full collection walks
    them again and stalls the event loop for tens of milliseconds (claim latency p99).
    """
    gc.collect()
    gc.freeze()


async def run_server(
    config: Config, *, supervisor_hook: object = None, force_exit_after: float | None = None
) -> None:
    """Run every actor until SIGTERM/SIGINT.

    `force_exit_after` (the `rush serve` process only): when an actor ignored
    cancellation, the interpreter's own shutdown would wait for it for ever, so the
    process exits with status 1 that many seconds after the supervisor gave up on it.
    """
    from rush.runlock import run_lock

    ctx = ServerContext(config)
    async with contextlib.AsyncExitStack() as stack:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # One server per data folder: a second one would double every actor (and fight
        # the first for the web and broker ports).  Raises LockBusy, naming the holder.
        stack.enter_context(run_lock(config.data_dir, "serve", "rush serve"))
        await init_db(config.database_url())
        stack.push_async_callback(close_db)
        # Before any actor starts: settle whatever a crashed apply or purge left.
        from rush.moves.recovery import startup

        await startup(config, bus=ctx.bus)
        from rush import actions, leasing

        stale = await leasing.forget_presence()
        if stale:
            log.info("%d agent(s) offline until they report again", stale)

        actions.configure(config)
        supervisor = Supervisor(build_actors(ctx))
        freeze_startup_heap()
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
