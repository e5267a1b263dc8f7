"""Home Assistant 2024.3 and current Home Assistant read our discovery the same way:
the same entity ids, and no warning for a sensor that has no value yet.

The publisher runs against the shared Mosquitto (RUSH_TEST_MQTT); what the broker then holds is fed
to `tests/ha_model.py`, a model of Home Assistant's own MQTT sensor rules per version.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from integrations.homeassistant.discovery import DiscoveryContext, build_discovery
from integrations.homeassistant.publisher import HomeAssistantPublisher
from integrations.mqtt.client import MqttBridge, make_client
from rush.config import Config
from rush.models import KeyValue
from tests.ha_model import VERSIONS, SensorModel, entity_id
from tests.support.broker import BROKER_HOST, BROKER_PORT

HA_DIR = Path(__file__).resolve().parent.parent / "deploy" / "homeassistant"
CTX = DiscoveryContext("homeassistant", "rushcatalog", "rush")
COMPONENT_RE = re.compile(r"^[^/]+/(?P<component>[a-z_]+)/")


def _ids(version: str) -> set[str]:
    agents = {"pi5-kitchen": {"hostname": "pi5", "version": "0.1.0"}}
    configs = build_discovery(CTX, agents, seedbox=True)
    out = set()
    for topic, payload in configs.items():
        match = COMPONENT_RE.match(topic)
        assert match, topic
        out.add(entity_id(match["component"], payload, version))
    return out


def test_entity_ids_are_the_same_on_every_version() -> None:
    old, new = _ids("2024.3"), _ids("2026.2")
    assert old == new, sorted(old ^ new)
    assert "sensor.rushcatalog_state_ready" in old
    assert "button.rushcatalog_apply_dry_run" in old
    assert "binary_sensor.rushcatalog_agent_pi5_kitchen" in old


@pytest.mark.parametrize("version", VERSIONS)
def test_examples_name_only_ids_that_discovery_creates(version: str) -> None:
    created = _ids(version)
    referenced: set[str] = set()
    for path in sorted(HA_DIR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        found = set(re.findall(r"\b(?:sensor|button|binary_sensor)\.[a-z0-9_]+", text))
        assert found <= created, (path.name, version, sorted(found - created))
        referenced |= found
    assert len(referenced) > 30


def _config(tag: str) -> Config:
    return Config.model_validate(
        {
            "mqtt": {"host": BROKER_HOST, "port": BROKER_PORT, "prefix": f"rush-t-{tag}"},
            "homeassistant": {"discovery_prefix": f"ha-t-{tag}", "node_id": f"rc_{tag}"},
        }
    )


async def _publish(config: Config) -> None:
    bridge = MqttBridge(config.mqtt, status_topic=f"{config.mqtt.prefix}/server/status")
    async with asyncio.TaskGroup() as group:
        task = group.create_task(bridge.run())
        await asyncio.wait_for(bridge.connected.wait(), 10)
        try:
            await HomeAssistantPublisher(config, bridge).publish_discovery()
            for _ in range(200):
                if bridge.pending() == 0:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
        finally:
            task.cancel()


async def _retained(config: Config) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    async with make_client(config.mqtt) as c:
        await c.subscribe(f"{config.homeassistant.discovery_prefix}/#", qos=1)
        await c.subscribe(f"{config.mqtt.prefix}/#", qos=1)
        try:
            async with asyncio.timeout(1.5):
                async for m in c.messages:
                    if m.retain and isinstance(m.payload, bytes) and m.payload:
                        out[m.topic.value] = m.payload
        except TimeoutError:
            pass
    return out


def _home_assistant(retained: dict[str, bytes], version: str) -> dict[str, SensorModel]:
    """Every sensor as Home Assistant `version` sees it after reading the broker."""
    sensors: dict[str, SensorModel] = {}
    for topic, payload in retained.items():
        if "/sensor/" in topic and topic.endswith("/config"):
            config: dict[str, Any] = json.loads(payload)
            model = SensorModel(config, version)
            state = retained.get(config["state_topic"])
            if state is not None:
                model.receive(state.decode(), config["state_topic"])
            sensors[config["unique_id"]] = model
    return sensors


async def _clear(config: Config, topics: list[str]) -> None:
    async with make_client(config.mqtt) as c:
        for topic in topics:
            await c.publish(topic, b"", qos=1, retain=True)


async def test_no_warning_for_sensors_without_a_value_yet(db: str) -> None:
    """Fresh install: no scan, no batch apply.  Then a scan: its time shows up."""
    tag = uuid.uuid4().hex[:8]
    config = _config(tag)
    try:
        await _publish(config)
        retained = await _retained(config)
        for version in VERSIONS:
            sensors = _home_assistant(retained, version)
            assert len(sensors) > 15
            warnings = [w for s in sensors.values() for w in s.warnings]
            assert warnings == [], (version, warnings)
            assert sensors[f"rc_{tag}_last_apply"].state is None  # "unknown"
            assert sensors[f"rc_{tag}_state_ready"].state == "0"

        finished = datetime(2026, 11, 23, 21, 4, 5, tzinfo=UTC)
        await KeyValue.create(
            key="last_scan", value={"finished_at": finished.isoformat(), "duration_s": 1.5}
        )
        await _publish(config)
        retained = await _retained(config)
        for version in VERSIONS:
            sensors = _home_assistant(retained, version)
            assert [w for s in sensors.values() for w in s.warnings] == [], version
            assert sensors[f"rc_{tag}_last_scan"].state == finished
            assert sensors[f"rc_{tag}_last_apply"].state is None
    finally:
        await _clear(config, sorted(await _retained(config)))
