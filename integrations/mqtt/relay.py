"""`CommandEventRelay`: carries the events of a one-shot command to MQTT.

Why: only `rush serve` holds an MQTT connection, yet `rush apply`, `rush purge`,
`rush reopen`, `rush reprocess`, `rush retry` and `rush scan` change states in their own
process.  docs/contract.md §5 promises `events/asset` on every transition, and Home Assistant
automations listen to `events/batch`; without this relay they would silently miss
everything done from a shell.

The relay connects lazily (a command that changes nothing never touches the broker),
publishes at QoS 1 while the command runs, and on exit waits for what is still queued
as long as the broker keeps taking it.  An unreachable broker never fails the command:
the work is done and journaled either way; a warning says how many events were not
published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from types import TracebackType

import aiomqtt

from integrations.mqtt.client import make_client
from integrations.mqtt.payloads import encode
from integrations.mqtt.topics import Topics
from rush import events
from rush.config import MqttConfig

log = logging.getLogger(__name__)

#: The in-process events that have an MQTT topic of their own.
RELAYED = ("asset", "batch")
#: On exit, give up when the broker took nothing for this long.
STALL_S = 5.0
#: Publishes awaiting their acknowledgement at once.
PIPELINE = 100
#: Events waiting for the broker at most; beyond, the oldest are dropped and counted.
QUEUE_LIMIT = 20_000


class CommandEventRelay:
    def __init__(
        self,
        config: MqttConfig,
        *,
        bus: events.EventBus | None = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.config = config
        self.bus = bus or events.bus
        self.topics = Topics(config.prefix)
        self.timeout = connect_timeout_s
        self.sent = 0
        self.error: str | None = None
        self._sub: events.Subscription | None = None
        self._subscription: contextlib.AbstractContextManager[events.Subscription] | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0

    def _topic(self, event: events.Event) -> str:
        if event.name == "asset":
            return self.topics.events_asset
        return self.topics.events_batch

    async def __aenter__(self) -> CommandEventRelay:
        # Bounded like every bus subscriber (the oldest go first, counted and reported):
        # a scan that readies a 200,000-file import must not hold them all in memory.
        self._subscription = self.bus.subscribe(*RELAYED, maxsize=QUEUE_LIMIT)
        self._sub = self._subscription.__enter__()
        self._task = asyncio.create_task(self._publish())
        return self

    async def _publish(self) -> None:
        assert self._sub is not None
        queue = self._sub.queue
        batch = [await queue.get()]
        self._in_flight = 1
        host, port = self.config.broker_address()
        client = make_client(
            self.config, host=host, port=port, identifier=f"rush-cli-{uuid.uuid4().hex[:10]}"
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(self.timeout):
                    await stack.enter_async_context(client)
                while True:
                    # Up to PIPELINE publishes awaiting their PUBACK at once: a scan
                    # that readies a whole import must not wait one round trip each.
                    while len(batch) < PIPELINE and not queue.empty():
                        batch.append(queue.get_nowait())
                    self._in_flight = len(batch)
                    await asyncio.gather(
                        *(
                            client.publish(
                                self._topic(e), encode(e.payload), qos=1, timeout=math.inf
                            )
                            for e in batch
                        )
                    )
                    self.sent += len(batch)
                    self._in_flight = 0
                    batch = [await queue.get()]
                    self._in_flight = 1
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            self.error = f"broker {host}:{port} unreachable or gone: {exc}"

    def left(self) -> int:
        """Events not (known to be) published yet."""
        return (self._sub.queue.qsize() if self._sub else 0) + self._in_flight

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        assert task is not None and self._subscription is not None
        try:
            last_progress, last_sent = time.monotonic(), self.sent
            while self.left() and not task.done():
                await asyncio.sleep(0.02)
                if self.sent != last_sent:
                    last_progress, last_sent = time.monotonic(), self.sent
                elif time.monotonic() - last_progress > STALL_S:
                    self.error = self.error or "the broker stopped acknowledging"
                    break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            left = self.left()
            dropped = self._sub.dropped if self._sub is not None else 0
            # Our own report below says it better than the bus's generic warning.
            if self._sub is not None:
                self._sub.dropped = 0
            self._subscription.__exit__(None, None, None)
        if left:
            log.warning(
                "%d event(s) of this command were not published to MQTT (%s); Home "
                "Assistant and other subscribers will not see them, the history has them",
                left,
                self.error or "interrupted",
            )
        if dropped:
            log.warning(
                "%d event(s) of this command were not published to MQTT: more than %d were "
                "waiting at once (the history has them)",
                dropped,
                QUEUE_LIMIT,
            )
