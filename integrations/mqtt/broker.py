"""Embedded MQTT broker (amqtt) for `rush serve` when `mqtt.host` is empty.

Why: a single-box install (and `rush demo`) must work without installing Mosquitto.
It listens on loopback only with anonymous access, so it is never reachable from the
network; a real deployment with remote agents uses Mosquitto with the shipped ACL
(`deploy/mosquitto/`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

log = logging.getLogger(__name__)


def broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


def _make_broker(config: dict[str, Any]) -> Any:
    """An amqtt Broker that sends retained messages only for a client's own subscriptions.

    Why: amqtt (0.11-0.12) sends every newly connected client the retained messages
    matching *any* client's subscription filters.  Besides delivering messages nobody
    asked for, the broker is then busy writing them while a short-lived client such as
    `mosquitto_pub` sends its PUBLISH and DISCONNECT, and a QoS 0 command is lost (most
    `mosquitto_pub -t rush/cmd/scan -m '{}'` were, with the server's filters in place).
    """
    from amqtt.broker import Broker

    class OwnRetainedBroker(Broker):  # type: ignore[misc]
        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            holders = getattr(self, "_subscriptions", {}).get(subscription[0], [])
            if not any(holder is session for holder, _qos in holders):
                return
            await super()._publish_retained_messages_for_subscription(subscription, session)

    return OwnRetainedBroker(config)


class EmbeddedBroker:
    """Actor running an in-process amqtt broker on 127.0.0.1 until cancelled."""

    name = "mqtt-broker"
    #: The supervisor stops the MQTT clients of this process first (see `Supervisor.run`).
    stop_last = True

    def __init__(self, port: int) -> None:
        self.port = port
        self.started = asyncio.Event()
        #: Set once the broker listens or has given up (port taken): the clients of this
        #: process wait for it rather than meet a refused connection at start-up.
        self.settled = asyncio.Event()

    async def run(self) -> None:
        """Serve until cancelled; return at once (no restart loop) if the port is taken."""
        if port_in_use(self.port):
            self._log_port_taken()
            self.settled.set()
            return
        broker = _make_broker(broker_config(self.port))
        try:
            await broker.start()
        except Exception as exc:
            if not _address_in_use(exc):
                raise
            self._log_port_taken()  # taken between the check and the start
            self.settled.set()
            return
        self.started.set()
        self.settled.set()
        log.info("embedded MQTT broker listening on 127.0.0.1:%d (loopback only)", self.port)
        try:
            await asyncio.Event().wait()
        finally:
            self.started.clear()
            await asyncio.shield(broker.shutdown())

    def _log_port_taken(self) -> None:
        log.error(
            "embedded MQTT broker not started: 127.0.0.1:%d is already in use, probably by "
            "another broker (e.g. Mosquitto). To use that broker, set mqtt.host (and "
            "mqtt.port) in the config or RUSH_MQTT__HOST; to keep the embedded broker, set "
            "mqtt.embedded_port to a free port.",
            self.port,
        )


def port_in_use(port: int) -> bool:
    """True when something already listens on 127.0.0.1:`port` (e.g. Mosquitto on 1883).

    Why a probe: amqtt would log its own traceback and raise, and the supervisor would
    restart the broker again and again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As asyncio's server does, so that old connections in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _address_in_use(exc: BaseException | None) -> bool:
    """True when `exc` or one of its causes says the address is in use."""
    for _ in range(10):  # a bounded walk: exception chains may loop
        if exc is None:
            return False
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
