"""In-process event bus: domain code announces facts, integrations listen.

Why: the lifecycle must not import MQTT or the web server.  A transition
publishes an `AssetTransitioned`; the MQTT bridge forwards it to `rush/events/asset`,
the web UI pushes it to browsers, metrics count it.  Slow listeners never block the
publisher: each subscriber has a bounded queue, and on overflow the oldest event is
dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: a topic-like name and a JSON-able payload."""

    name: str
    payload: dict[str, Any] = field(default_factory=dict)


def asset_transitioned(
    uuid: str, source: str, target: str, at: datetime, trigger: str, actor: str
) -> Event:
    return Event(
        "asset",
        {
            "uuid": uuid,
            "from": source,
            "to": target,
            "at": at.isoformat(),
            "trigger": trigger,
            "by": actor,
        },
    )


class Subscription:
    def __init__(self, names: frozenset[str] | None, maxsize: int) -> None:
        self.names = names
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if self.names is not None and event.name not in self.names:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def publish(self, name: str, payload: dict[str, Any] | None = None) -> None:
        self.emit(Event(name, payload or {}))

    def has_subscribers(self) -> bool:
        """Whether anybody listens (bulk publishers skip building unread events)."""
        return bool(self._subs)

    def emit(self, event: Event) -> None:
        for sub in self._subs:
            sub.offer(event)

    @contextmanager
    def subscribe(self, *names: str, maxsize: int = 10_000) -> Iterator[Subscription]:
        sub = Subscription(frozenset(names) if names else None, maxsize)
        self._subs.append(sub)
        try:
            yield sub
        finally:
            self._subs.remove(sub)
            if sub.dropped:
                log.warning("event subscriber dropped %d events (too slow)", sub.dropped)


#: The process-wide bus.  Tests may create their own and pass it explicitly.
bus = EventBus()
