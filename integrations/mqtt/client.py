"""`MqttBridge`: one resilient MQTT connection shared by the actors of a process.

Why an actor of its own: actors publish through the `Messenger` protocol while the
bridge owns the connection, the reconnect loop with back-off, the retained Last Will,
re-subscription after a reconnect and the bounded outgoing queue that absorbs a broker
outage.  Every client sets TCP_NODELAY (docs/contract.md §6: Nagle plus delayed ACKs cost 40-90 ms
per round trip otherwise).

Incoming messages are handed to per-key ordered workers: messages about one agent
(`{prefix}/agents/{id}/…`) are handled in arrival order, different agents in parallel.
Handlers get the broker's retain flag with each message (`rush.messaging.Handler`).

A broker that refuses a publish or a subscription (the ACL) is named in the log, once
per bridge: under MQTT 5 from the PUBACK/SUBACK reason codes, under 3.1.1 from the SUBACK
failure code 0x80 (Mosquitto drops a refused 3.1.1 publish silently, which is why agents
connect with MQTT 5 and fall back to 3.1.1 only when the broker refuses that version).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import socket
import ssl
import uuid
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from integrations.mqtt.payloads import encode
from integrations.mqtt.topics import topic_matches
from rush import events
from rush.config import MqttConfig
from rush.messaging import Handler, PayloadLike

log = logging.getLogger(__name__)

NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
OnConnect = Callable[[], Coroutine[Any, Any, None]]
#: Longest wait for `MqttBridge.not_before` before connecting anyway.
NOT_BEFORE_MAX_S = 10.0
#: CONNACK codes of a broker that does not speak the MQTT version asked for
#: (3.1.1: 1 "unacceptable protocol version"; MQTT 5: 0x84 "unsupported protocol version").
UNSUPPORTED_PROTOCOL = frozenset({1, 0x84})
#: At shutdown, longest wait for the `offline` goodbye and, separately, for the
#: DISCONNECT: together well inside the supervisor's deadline (5 s) even when the
#: broker has stopped reading from us.
GOODBYE_S = 1.0
#: Brokers (host, port) that this process found speaking only 3.1.1: a bridge made later
#: (an actor restarted by the supervisor) does not ask them for MQTT 5 again.
_ONLY_311: set[tuple[str, int]] = set()


def _stop_if_cancelled() -> None:
    """Raise the cancellation an aiomqtt call may have swallowed.

    Why: on Python 3.11 `asyncio.wait_for` (which aiomqtt uses to connect, publish and
    subscribe) returns the result and drops a cancellation that arrives just as the
    awaited operation completes; the bridge then carried on as if nothing happened
    and the supervisor abandoned it after its deadline (SIGTERM during start-up)."""
    if _cancelling():
        raise asyncio.CancelledError


def _cancelling() -> bool:
    """Whether the current task is being cancelled (shutdown), whatever exception is in
    flight: an `MqttError` raised while we say goodbye must not pass for a lost
    connection, or the bridge would reconnect instead of stopping."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class BridgeStats:
    connects: int = 0
    published: int = 0
    dropped_outgoing: int = 0
    received: int = 0
    handler_errors: int = 0
    #: Publishes and subscriptions the broker refused (ACL).
    refused: int = 0


Refused = Callable[[str, str, str], None]


def _code_value(code: Any) -> int:
    """A SUBACK/PUBACK code as a number (paho gives ReasonCode objects or ints)."""
    value = getattr(code, "value", code)
    return value if isinstance(value, int) else 0


class RushClient(aiomqtt.Client):
    """aiomqtt's client, plus what aiomqtt drops: the PUBACK reason code of MQTT 5.

    `on_refused(operation, topic, reason)` is called for a publish the broker refused."""

    on_refused: Refused | None = None

    def _on_publish(
        self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        if _code_value(reason_code) >= 0x80 and self.on_refused is not None:
            # paho still holds the message while it calls back: its topic names the culprit.
            out = getattr(self._client, "_out_messages", {}).get(mid)
            topic = getattr(out, "topic", "?")
            with contextlib.suppress(Exception):
                self.on_refused("PUBLISH to", str(topic), str(reason_code))
        super()._on_publish(client, userdata, mid, reason_code, properties)


def make_client(
    config: MqttConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    identifier: str | None = None,
    will: aiomqtt.Will | None = None,
    max_queued_outgoing: int | None = None,
    mqtt5: bool = False,
) -> RushClient:
    """An aiomqtt client with the project's settings (TCP_NODELAY, TLS, credentials)."""
    tls_context = None
    if config.tls:
        tls_context = ssl.create_default_context(
            cafile=str(config.ca_file) if config.ca_file else None
        )
    client = RushClient(
        host or config.host or "127.0.0.1",
        port or config.port,
        identifier=identifier,
        username=config.username,
        password=config.password.get_secret_value() if config.password else None,
        will=will,
        keepalive=config.keepalive_s,
        tls_context=tls_context,
        socket_options=NODELAY,
        max_queued_outgoing_messages=max_queued_outgoing,
        max_inflight_messages=200,
        timeout=10,
        protocol=aiomqtt.ProtocolVersion.V5 if mqtt5 else aiomqtt.ProtocolVersion.V311,
    )
    # Many publishes in flight are normal here (claim bursts); do not warn about them.
    client.pending_calls_threshold = 10_000
    return client


class MqttBridge:
    """The MQTT connection actor; implements `rush.messaging.Messenger`."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        status_topic: str,
        name: str = "mqtt",
        host: str | None = None,
        port: int | None = None,
        identifier: str | None = None,
        bus: events.EventBus | None = None,
        events_topic: str | None = None,
        queue_limit: int = 20_000,
        workers: int = 8,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        max_inflight: int = 200,
        not_before: asyncio.Event | None = None,
        mqtt5: bool = False,
        refusal_hint: str = "",
    ) -> None:
        self.name = name
        #: MQTT 5 (reason codes for refused publishes), 3.1.1 if the broker refuses it.
        self.mqtt5 = mqtt5
        #: An MQTT 5 session was once established: a failure since is the network's.
        self._mqtt5_worked = False
        #: Trying 3.1.1 after an MQTT 5 connection that failed without an answer.
        self._trying_311 = False
        #: Appended to the "broker refused" warning (what the ACL expects of us).
        self.refusal_hint = refusal_hint
        self._refusal_said = False
        #: The first connection waits for this (at most NOT_BEFORE_MAX_S): the embedded
        #: broker of the same process starting up.
        self.not_before = not_before
        self.config = config
        self.status_topic = status_topic
        self.host = host
        self.port = port
        self.identifier = identifier or config.client_id or f"rush-{name}-{uuid.uuid4().hex[:10]}"
        self.bus = bus
        self.events_topic = events_topic
        self.queue_limit = queue_limit
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_inflight = max_inflight
        self.stats = BridgeStats()
        self.connected = asyncio.Event()
        self._handlers: list[tuple[str, Handler]] = []
        self._route_cache: dict[str, list[tuple[str, Handler]]] = {}
        self._filters: list[str] = []
        self._new_filters: asyncio.Queue[str] = asyncio.Queue()
        self._outgoing: collections.deque[Outgoing] = collections.deque()
        self._has_outgoing = asyncio.Event()
        self._on_connect: list[OnConnect] = []
        self._workers: list[asyncio.Queue[tuple[str, bytes, bool]]] = [
            asyncio.Queue(1000) for _ in range(workers)
        ]
        self._client: aiomqtt.Client | None = None

    # --- Messenger ------------------------------------------------------------
    async def publish(
        self, topic: str, payload: PayloadLike, *, retain: bool = False, qos: int = 1
    ) -> None:
        """Queue for delivery; while disconnected the oldest message goes first on overflow."""
        self._enqueue(Outgoing(topic, encode(payload), qos, retain))

    def subscribe(self, filter_: str, handler: Handler) -> None:
        self._handlers.append((filter_, handler))
        self._route_cache.clear()
        if filter_ not in self._filters:
            self._filters.append(filter_)
            if self.connected.is_set():
                self._new_filters.put_nowait(filter_)

    def add_on_connect(self, callback: OnConnect) -> None:
        """Run `callback` after each (re)connection, once subscriptions are restored."""
        self._on_connect.append(callback)

    def pending(self) -> int:
        return len(self._outgoing)

    def _refused(self, operation: str, topic: str, reason: str) -> None:
        """The broker said no (ACL): say it once, then only count."""
        self.stats.refused += 1
        if self._refusal_said:
            log.debug("MQTT broker refused %s %s (%s)", operation, topic, reason)
            return
        self._refusal_said = True
        user = self.config.username or "(anonymous)"
        log.warning(
            "the broker refused %s %s (%s) from MQTT user %r: check the ACL / username%s",
            operation,
            topic,
            reason,
            user,
            f" ({self.refusal_hint})" if self.refusal_hint else "",
        )

    async def _subscribe(self, client: aiomqtt.Client, filter_: str) -> None:
        granted = await client.subscribe(filter_, qos=1)
        for code in granted if isinstance(granted, list | tuple) else ():
            if _code_value(code) >= 0x80:
                self._refused("SUBSCRIBE to", filter_, str(code))

    def _enqueue(self, msg: Outgoing, *, front: bool = False) -> None:
        if len(self._outgoing) >= self.queue_limit:
            dropped = self._outgoing.popleft()
            self.stats.dropped_outgoing += 1
            log.warning("MQTT outgoing queue full: dropped a message for %s", dropped.topic)
        if front:
            self._outgoing.appendleft(msg)
        else:
            self._outgoing.append(msg)
        self._has_outgoing.set()

    # --- actor ----------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for queue in self._workers:
                group.create_task(self._worker(queue))
            if self.bus is not None and self.events_topic:
                group.create_task(self._forward_events(self.bus, self.events_topic))
            await self._connection_loop()

    async def _connection_loop(self) -> None:
        if self.not_before is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.not_before.wait(), NOT_BEFORE_MAX_S)
        delay = self.backoff_initial
        host = self.host or self.config.host or "127.0.0.1"
        port = self.port or self.config.port
        if (host, port) in _ONLY_311:
            self.mqtt5 = False
        while True:
            client = make_client(
                self.config,
                host=host,
                port=port,
                identifier=self.identifier,
                will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
                mqtt5=self.mqtt5,
            )
            client.on_refused = self._refused
            entered = False
            try:
                async with client:
                    entered = True
                    _stop_if_cancelled()
                    self._mqtt5_worked = self._mqtt5_worked or self.mqtt5
                    if self._trying_311:
                        _ONLY_311.add((host, port))
                    self._trying_311 = False
                    self._client = client
                    delay = self.backoff_initial
                    self.stats.connects += 1
                    await client.publish(self.status_topic, b"online", qos=1, retain=True)
                    _stop_if_cancelled()
                    for filter_ in self._filters:
                        await self._subscribe(client, filter_)
                        _stop_if_cancelled()
                    while not self._new_filters.empty():
                        self._new_filters.get_nowait()
                    self.connected.set()
                    log.info("MQTT connected to %s:%d as %s", host, port, self.identifier)
                    try:
                        await self._connected_session(client)
                    finally:
                        self.connected.clear()
                        self._client = None
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if (
                    self.mqtt5
                    and isinstance(exc, MqttConnectError)
                    and _code_value(exc.rc) in UNSUPPORTED_PROTOCOL
                ):
                    log.info("MQTT broker %s:%d refuses MQTT 5; using 3.1.1", host, port)
                    self.mqtt5 = False
                    _ONLY_311.add((host, port))
                    continue
                if self.mqtt5 and not entered and not self._mqtt5_worked and not _cancelling():
                    # Some brokers (amqtt, the embedded one) drop an MQTT 5 CONNECT without
                    # any CONNACK: try 3.1.1 at once before calling the broker away.
                    log.info(
                        "MQTT 5 connection to %s:%d failed (%s); trying 3.1.1", host, port, exc
                    )
                    self.mqtt5 = False
                    self._trying_311 = True
                    continue
                if self._trying_311 and not entered:
                    # 3.1.1 failed as well: the broker is away, not old; ask for 5 next time.
                    self.mqtt5 = True
                    self._trying_311 = False
                if _cancelling():
                    # The goodbye failed (the disconnect timed out on a stalled broker):
                    # we are stopping all the same, never reconnecting.
                    log.info("MQTT disconnect at shutdown not acknowledged (%s)", exc)
                    raise asyncio.CancelledError from exc
                log.warning(
                    "MQTT connection to %s:%d lost or refused (%s); retrying in %.1f s",
                    host,
                    port,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(self.backoff_max, delay * 2)

    async def _connected_session(self, client: aiomqtt.Client) -> None:
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._sender(client))
                    group.create_task(self._subscriber(client))
                    for callback in self._on_connect:
                        group.create_task(callback())
                    async for message in client.messages:
                        self.stats.received += 1
                        payload = message.payload
                        if not isinstance(payload, bytes | bytearray):
                            payload = str(payload).encode() if payload is not None else b""
                        topic = message.topic.value
                        index = self._worker_index(topic)
                        await self._workers[index].put((topic, bytes(payload), message.retain))
                    raise aiomqtt.MqttError("message stream ended")
            except BaseExceptionGroup as group_exc:
                # Not `except*`: before Python 3.11.4 (Debian 12 ships 3.11.2) an exception
                # raised inside `except*` is wrapped in a new group, which the connection
                # loop's `except MqttError` would not catch (the bridge then crashed on a
                # broker going away).
                mqtt, rest = group_exc.split(aiomqtt.MqttError)
                if mqtt is None or rest is not None:
                    raise
                if _cancelling():  # lost while stopping: a stop, not a reason to reconnect
                    raise asyncio.CancelledError from _first_leaf(mqtt)
                # The sender's own TaskGroup nests groups: re-raise a plain MqttError so
                # the connection loop reconnects instead of the bridge crashing.
                raise _first_leaf(mqtt) from None
        except asyncio.CancelledError:
            # Clean shutdown: say `offline` ourselves, the Will is only for crashes.  The
            # client's timeout also bounds the DISCONNECT that `async with client` sends.
            client.timeout = GOODBYE_S
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(
                    self.status_topic, b"offline", qos=1, retain=True, timeout=GOODBYE_S
                )
            raise

    def _worker_index(self, topic: str) -> int:
        parts = topic.split("/")
        key = topic
        if "agents" in parts:
            i = parts.index("agents")
            key = "/".join(parts[: i + 2])
        return zlib.crc32(key.encode()) % len(self._workers)

    async def _subscriber(self, client: aiomqtt.Client) -> None:
        while True:
            filter_ = await self._new_filters.get()
            await self._subscribe(client, filter_)
            _stop_if_cancelled()

    async def _sender(self, client: aiomqtt.Client) -> None:
        inflight = asyncio.Semaphore(self.max_inflight)
        async with asyncio.TaskGroup() as group:
            while True:
                while not self._outgoing:
                    self._has_outgoing.clear()
                    await self._has_outgoing.wait()
                msg = self._outgoing.popleft()
                await inflight.acquire()
                group.create_task(self._send_one(client, msg, inflight))

    async def _send_one(
        self, client: aiomqtt.Client, msg: Outgoing, inflight: asyncio.Semaphore
    ) -> None:
        # No per-publish timeout (it costs a task per message): a dead connection is
        # detected by the keepalive and ends the session, which cancels this task.
        try:
            await client.publish(
                msg.topic, msg.payload, qos=msg.qos, retain=msg.retain, timeout=math.inf
            )
            self.stats.published += 1
        except (aiomqtt.MqttError, TimeoutError, asyncio.CancelledError):
            # Not acknowledged: keep it for the next connection (QoS 1 is at least once,
            # every handler is idempotent); the connection loop notices the loss.
            self._enqueue(msg, front=True)
            raise
        finally:
            inflight.release()

    def _routes(self, topic: str) -> list[tuple[str, Handler]]:
        """The handlers of a topic (memoised: agents repeat the same topics)."""
        routes = self._route_cache.get(topic)
        if routes is None:
            if len(self._route_cache) >= 4096:
                self._route_cache.clear()
            routes = [(f, h) for f, h in self._handlers if topic_matches(f, topic)]
            self._route_cache[topic] = routes
        return routes

    async def _worker(self, queue: asyncio.Queue[tuple[str, bytes, bool]]) -> None:
        while True:
            topic, payload, retain = await queue.get()
            for filter_, handler in self._routes(topic):
                try:
                    await handler(topic, payload, retain=retain)
                except Exception:
                    self.stats.handler_errors += 1
                    log.exception(
                        "MQTT handler for %s failed on %s; message dropped", filter_, topic
                    )

    async def _forward_events(self, bus: events.EventBus, topic: str) -> None:
        with bus.subscribe("asset") as sub:
            async for event in sub:
                await self.publish(topic, event.payload)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first non-group exception inside (possibly nested) exception groups."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
