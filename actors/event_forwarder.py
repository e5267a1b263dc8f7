"""Forwards selected in-process events to MQTT, one topic per event name.

Inputs: the event bus.  Outputs: `{prefix}/events/{name}` messages (e.g. `batch`, which
Home Assistant automations use to notify when a batch apply ends with failures).
"""

from __future__ import annotations

from rush import events
from rush.messaging import Messenger


class EventForwarder:
    name = "event-forwarder"

    def __init__(self, bus: events.EventBus, messenger: Messenger, topics: dict[str, str]) -> None:
        self.bus = bus
        self.messenger = messenger
        self.topics = topics

    async def run(self) -> None:
        with self.bus.subscribe(*self.topics) as sub:
            async for event in sub:
                await self.messenger.publish(self.topics[event.name], event.payload)
