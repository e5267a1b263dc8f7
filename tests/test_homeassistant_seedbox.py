"""Seedbox entities in Home Assistant follow `seedbox.enabled` (the shared Mosquitto)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from integrations.homeassistant.publisher import HomeAssistantPublisher
from integrations.mqtt.client import MqttBridge, make_client
from rush.config import Config
from rush.models import KeyValue
from tests.support.broker import BROKER_HOST, BROKER_PORT

pytestmark = pytest.mark.mqtt


def _config(tag: str, tmp_path: Path, *, seedbox: bool) -> Config:
    config = Config.model_validate(
        {
            "mqtt": {"host": BROKER_HOST, "port": BROKER_PORT, "prefix": f"rush-t-{tag}"},
            "homeassistant": {"discovery_prefix": f"ha-t-{tag}", "node_id": f"rc_{tag}"},
        }
    )
    config.seedbox.enabled = seedbox
    config.seedbox.nvme_root = tmp_path  # the KPIs read its free space
    return config


@asynccontextmanager
async def _bridge(config: Config) -> AsyncIterator[MqttBridge]:
    bridge = MqttBridge(config.mqtt, status_topic=f"{config.mqtt.prefix}/server/status")
    async with asyncio.TaskGroup() as group:
        task = group.create_task(bridge.run())
        await asyncio.wait_for(bridge.connected.wait(), 10)
        try:
            yield bridge
            for _ in range(200):
                if bridge.pending() == 0:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # the last publishes acknowledged
        finally:
            task.cancel()


async def _publish_discovery(config: Config) -> None:
    async with _bridge(config) as bridge:
        await HomeAssistantPublisher(config, bridge).publish_discovery()


async def _retained_configs(config: Config) -> dict[str, dict[str, object]]:
    """The discovery configs the broker holds now, as Home Assistant would read them."""
    out: dict[str, dict[str, object]] = {}
    async with make_client(config.mqtt) as c:
        await c.subscribe(f"{config.homeassistant.discovery_prefix}/#", qos=1)
        try:
            async with asyncio.timeout(1.5):
                async for m in c.messages:
                    if m.retain and isinstance(m.payload, bytes) and m.payload:
                        out[m.topic.value] = json.loads(m.payload)
        except TimeoutError:
            pass
    return out


async def test_seedbox_entities_follow_the_setting_and_buttons_use_qos_1(
    db: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    on = _config(tag, tmp_path, seedbox=True)
    off = _config(tag, tmp_path, seedbox=False)
    try:
        await _publish_discovery(on)
        configs = await _retained_configs(on)
        seedbox = {t for t in configs if "seedbox" in t}
        assert f"ha-t-{tag}/button/rc_{tag}/seedbox_run_now/config" in seedbox
        assert len(seedbox) > 10

        # The remembered topic list may be lost (or predate this rule): still cleared.
        await KeyValue.filter(key="ha_discovery_topics").delete()
        await _publish_discovery(off)
        configs = await _retained_configs(off)
        assert configs, "the other entities stay"
        assert not [t for t in configs if "seedbox" in t]
        buttons = {t: p for t, p in configs.items() if "/button/" in t}
        assert len(buttons) == 2
        assert all(p["qos"] == 1 for p in buttons.values())
    finally:
        async with make_client(off.mqtt) as c:
            for topic in await _retained_configs(off):
                await c.publish(topic, b"", qos=1, retain=True)
            await c.publish(f"{off.mqtt.prefix}/ha/state", b"", qos=1, retain=True)
            await c.publish(f"{off.mqtt.prefix}/server/status", b"", qos=1, retain=True)
