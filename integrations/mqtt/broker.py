"""Embedded MQTT broker (amqtt) for `rush serve` when `mqtt.host` is empty.

Why: a single-box install (and `rush demo`) must work without installing Mosquitto.
It listens on loopback only with anonymous access, so it is never reachable from the
network; a real deployment with remote agents uses Mosquitto with the shipped ACL
(`deploy/mosquitto/`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


def broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


class EmbeddedBroker:
    """Actor running an in-process amqtt broker on 127.0.0.1 until cancelled."""

    name = "mqtt-broker"
    #: The supervisor stops the MQTT clients of this process first (see `Supervisor.run`).
    stop_last = True

    def __init__(self, port: int) -> None:
        self.port = port
        self.started = asyncio.Event()

    async def run(self) -> None:
        from amqtt.broker import Broker

        broker = Broker(broker_config(self.port))
        await broker.start()
        self.started.set()
        log.info("embedded MQTT broker listening on 127.0.0.1:%d (loopback only)", self.port)
        try:
            await asyncio.Event().wait()
        finally:
            self.started.clear()
            await asyncio.shield(broker.shutdown())
