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
    from actors.scanner import Scanner

    scanner = Scanner(ctx.config, bus=ctx.bus)
    ctx.commands.register("scan", scan_handler(scanner))
    return [scanner, *build_mqtt_actors(ctx)]


def build_mqtt_actors(ctx: ServerContext) -> list[Actor]:
    """The MQTT bridge (+ embedded broker when `mqtt.host` is empty) and the job actors."""
    from actors.jobs import CommandService, JobService, LeaseKeeper
    from integrations.mqtt.broker import EmbeddedBroker
    from integrations.mqtt.client import MqttBridge
    from integrations.mqtt.topics import Topics

    config = ctx.config
    mqtt = config.mqtt
    topics = Topics(mqtt.prefix)
    actors: list[Actor] = []
    host, port = mqtt.host, mqtt.port
    if not host:
        actors.append(EmbeddedBroker(mqtt.embedded_port))
        host, port = "127.0.0.1", mqtt.embedded_port
    bridge = MqttBridge(
        mqtt,
        status_topic=topics.server_status,
        name="mqtt",
        host=host,
        port=port,
        bus=ctx.bus,
        events_topic=topics.events_asset,
        workers=64,
    )
    ctx.messenger = bridge
    jobs = JobService(config, bridge, bus=ctx.bus)
    jobs.install()
    commands = CommandService(config, bridge, ctx.commands)
    commands.install()
    actors += [bridge, jobs, LeaseKeeper(config, bus=ctx.bus), commands]
    return actors


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
