"""The Home Assistant actor: discovery configs and the retained state snapshot.

Inputs: the event bus (any pipeline event means "the picture may have changed"),
`homeassistant/status` (HA restarted: republish every config), the agents table.
Outputs: retained discovery configs, an empty retained payload for every entity that
no longer exists (the set of published topics is remembered across restarts), and the
retained state JSON, refreshed on change (debounced) and at `state_interval_s`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from integrations.homeassistant.discovery import (
    TIMESTAMP_KEYS,
    DiscoveryContext,
    build_discovery,
    removed_topics,
    seedbox_topics,
)
from rush import events
from rush.config import Config
from rush.messaging import Messenger
from rush.models import Agent, KeyValue
from rush.status import collect_status

log = logging.getLogger(__name__)

_TOPICS_KEY = "ha_discovery_topics"
Snapshot = Callable[[Config], Awaitable[dict[str, Any]]]


def discovery_context(config: Config) -> DiscoveryContext:
    url = config.web.base_url or f"http://{config.web.host}:{config.web.port}"
    return DiscoveryContext(
        discovery_prefix=config.homeassistant.discovery_prefix,
        node_id=config.homeassistant.node_id,
        mqtt_prefix=config.mqtt.prefix,
        configuration_url=url,
    )


async def _default_snapshot(config: Config) -> dict[str, Any]:
    return await collect_status(config)


class HomeAssistantPublisher:
    name = "homeassistant"

    def __init__(
        self,
        config: Config,
        messenger: Messenger,
        bus: events.EventBus | None = None,
        *,
        snapshot: Snapshot = _default_snapshot,
        debounce_s: float = 1.0,
    ) -> None:
        self.config = config
        self.ctx = discovery_context(config)
        self.messenger = messenger
        self.bus = bus or events.bus
        self._snapshot = snapshot
        self._debounce_s = debounce_s
        self._republish = asyncio.Event()
        self._wake = asyncio.Event()
        self._last_state: str | None = None
        self._last_values: dict[str, str] = {}

    async def _on_ha_status(self, _topic: str, payload: bytes, *, retain: bool) -> None:
        if payload.strip().lower() == b"online":
            log.info("Home Assistant came online: republishing discovery")
            self._republish.set()
            self._wake.set()

    async def publish_discovery(self) -> None:
        agents = {
            a.id: {"hostname": a.hostname, "version": a.version}
            for a in await Agent.all().only("id", "hostname", "version")
        }
        seedbox = self.config.seedbox.enabled
        configs = build_discovery(self.ctx, agents, seedbox=seedbox)
        stored = await KeyValue.get_or_none(key=_TOPICS_KEY)
        previous = set(stored.value.get("topics", [])) if stored else set()
        for topic in removed_topics(previous, set(configs)):
            log.info("removing Home Assistant entity %s", topic)
            await self.messenger.publish(topic, b"", retain=True)
        if not seedbox:
            # Earlier versions advertised them whatever the setting, and the remembered
            # set may not list them: clear them anyway (a no-op when absent).
            for topic in sorted(seedbox_topics(self.ctx) - previous):
                await self.messenger.publish(topic, b"", retain=True)
        for topic, payload in configs.items():
            await self.messenger.publish(topic, payload, retain=True)
        await KeyValue.update_or_create(
            key=_TOPICS_KEY, defaults={"value": {"topics": sorted(configs)}}
        )
        # A state right after the configs, so new entities are never "unknown".
        self._last_state = None
        await self.publish_state(force=True)

    async def publish_state(self, *, force: bool = False) -> None:
        snapshot = await self._snapshot(self.config)
        body = json.dumps(snapshot, sort_keys=True, default=_json_default)
        comparable = json.dumps(
            {k: v for k, v in snapshot.items() if k != "generated_at"},
            sort_keys=True,
            default=_json_default,
        )
        if not force and comparable == self._last_state:
            return
        self._last_state = comparable
        await self.messenger.publish(self.ctx.state_topic, body, retain=True)
        for key in TIMESTAMP_KEYS:
            value = snapshot.get(key)
            if value is None:
                continue  # nothing yet: the sensor stays "unknown" (see `value_topic`)
            text = _json_default(value) if isinstance(value, datetime) else str(value)
            if force or self._last_values.get(key) != text:
                self._last_values[key] = text
                await self.messenger.publish(self.ctx.value_topic(key), text, retain=True)

    async def run(self) -> None:
        if not self.config.homeassistant.enabled:
            log.info("Home Assistant discovery disabled")
            return
        self.messenger.subscribe(f"{self.ctx.discovery_prefix}/status", self._on_ha_status)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._pump_bus(), name="homeassistant-bus")
            await self._loop()

    async def _pump_bus(self) -> None:
        """Any pipeline event wakes the publisher (coalesced: one wake-up per burst)."""
        with self.bus.subscribe() as sub:
            async for _event in sub:
                self._wake.set()

    async def _loop(self) -> None:
        await self.publish_discovery()
        known_agents = await _agent_ids()
        interval = self.config.homeassistant.state_interval_s
        next_full = time.monotonic() + interval
        while True:
            timeout = max(0.0, next_full - time.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
                await asyncio.sleep(self._debounce_s)  # let a burst of events settle
            except TimeoutError:
                pass
            self._wake.clear()
            agents_now = await _agent_ids()
            if self._republish.is_set() or agents_now != known_agents:
                self._republish.clear()
                known_agents = agents_now
                await self.publish_discovery()
            elif time.monotonic() >= next_full:
                await self.publish_state(force=True)
            else:
                await self.publish_state()
            if time.monotonic() >= next_full:
                next_full = time.monotonic() + interval


async def _agent_ids() -> set[str]:
    return {str(a) for a in await Agent.all().values_list("id", flat=True)}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
