"""Discovery payloads obey Home Assistant's own rules (pure: no broker needed)."""

from __future__ import annotations

import json
import re

import pytest

from integrations.homeassistant.discovery import (
    BUTTONS,
    SENSORS,
    DiscoveryContext,
    build_discovery,
    check_id,
    removed_topics,
    seedbox_topics,
)
from rush.lifecycle import AssetState

CTX = DiscoveryContext("homeassistant", "rushcatalog", "rush", "http://nas:8765")
TOPIC_RE = re.compile(
    r"^homeassistant/(?P<component>sensor|binary_sensor|button)/"
    r"(?:(?P<node>[a-zA-Z0-9_-]+)/)?(?P<object>[a-zA-Z0-9_-]+)/config$"
)


def _all() -> dict[str, dict[str, object]]:
    agents = {"pi5-kitchen": {"hostname": "pi5", "version": "0.1.0"}}
    return build_discovery(CTX, agents, seedbox=True)


def test_every_topic_and_payload_follows_ha_rules() -> None:
    configs = _all()
    unique_ids: set[str] = set()
    for topic, payload in configs.items():
        match = TOPIC_RE.match(topic)
        assert match, topic
        component = match["component"]
        assert isinstance(payload["unique_id"], str) and payload["unique_id"]
        unique_ids.add(payload["unique_id"])
        device = payload["device"]
        assert isinstance(device, dict) and device["identifiers"]
        assert payload["origin"]["name"] == "RushCatalog"  # type: ignore[index]
        assert payload["availability"] == [
            {
                "topic": "rush/server/status",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ]
        if component in ("sensor", "binary_sensor"):
            assert payload["state_topic"]
        if component == "button":
            assert str(payload["command_topic"]).startswith("rush/cmd/")
            assert payload["qos"] == 1  # a press is a command: never QoS 0
        json.dumps(payload)  # serialisable as-is
    assert len(unique_ids) == len(configs), "unique_id must be unique"


def test_entities_cover_the_issue_list() -> None:
    keys = {s.key for s in SENSORS}
    for state in AssetState:
        assert f"state_{state.value.lower()}" in keys
    for key in (
        "awaiting_decision",
        "queue_depth",
        "failed",
        "agents_online",
        "last_scan",
        "last_scan_duration",
        "last_apply",
        "last_apply_moved",
        "last_apply_failed",
        "purge_eligible",
        "seedbox_success_ratio",
        "seedbox_mean_relocation_s",
        "seedbox_moved_today_gb",
        "seedbox_nvme_free_gb",
        "seedbox_errors_network",
        "seedbox_errors_api",
        "seedbox_errors_permissions",
    ):
        assert key in keys, key
    assert {b[2] for b in BUTTONS} == {"scan", "seedbox/run", "apply/dry-run"}


def test_buttons_are_safe_only() -> None:
    configs = _all()
    buttons = {t: p for t, p in configs.items() if "/button/" in t}
    assert len(buttons) == 3
    apply = next(p for p in buttons.values() if p["command_topic"] == "rush/cmd/apply/dry-run")
    assert json.loads(str(apply["payload_press"])) == {"dry_run": True}
    assert not any("purge" in str(p["command_topic"]) for p in buttons.values())


def test_agent_is_a_device_via_the_server() -> None:
    configs = _all()
    topic = "homeassistant/binary_sensor/rushcatalog/agent_pi5-kitchen/config"
    agent = configs[topic]
    assert agent["device"]["via_device"] == "rushcatalog"  # type: ignore[index]
    assert agent["state_topic"] == "rush/agents/pi5-kitchen/status"
    assert agent["device_class"] == "connectivity"


def test_removed_agent_is_cleared() -> None:
    before = set(_all())
    after = set(build_discovery(CTX, {}, seedbox=True))
    assert removed_topics(before, after) == [
        "homeassistant/binary_sensor/rushcatalog/agent_pi5-kitchen/config"
    ]


@pytest.mark.parametrize("bad", ["with space", "slash/", "plus+", "", "é"])
def test_bad_ids_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        check_id(bad)


def test_value_templates_point_at_snapshot_keys() -> None:
    for spec in SENSORS:
        payload = _all()[f"homeassistant/sensor/rushcatalog/{spec.key}/config"]
        if spec.device_class == "timestamp":  # its own topic, its value as the payload
            assert payload["state_topic"] == f"rush/ha/state/{spec.key}"
            assert "value_template" not in payload
        else:
            assert payload["value_template"] == f"{{{{ value_json.{spec.key} }}}}"


def test_seedbox_entities_only_when_enabled() -> None:
    on = build_discovery(CTX, {}, seedbox=True)
    off = build_discovery(CTX, {}, seedbox=False)
    gone = set(on) - set(off)
    assert gone == seedbox_topics(CTX)
    assert "homeassistant/button/rushcatalog/seedbox_run_now/config" in gone
    assert all("seedbox" in t for t in gone) and not any("seedbox" in t for t in off)
    assert len(gone) == len([s for s in SENSORS if s.key.startswith("seedbox_")]) + 1
