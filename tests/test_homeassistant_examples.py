"""The shipped Home Assistant examples reference only entities that discovery creates."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from integrations.homeassistant.discovery import DiscoveryContext, build_discovery

HA_DIR = Path(__file__).resolve().parent.parent / "deploy" / "homeassistant"
CTX = DiscoveryContext("homeassistant", "rushcatalog", "rush")


def _entity_ids() -> set[str]:
    return {str(p["default_entity_id"]) for p in build_discovery(CTX, {}, seedbox=True).values()}


def test_dashboard_entities_exist() -> None:
    text = (HA_DIR / "dashboard.yaml").read_text()
    yaml.safe_load(text)  # valid YAML
    referenced = set(re.findall(r"\b(?:sensor|button|binary_sensor)\.rushcatalog_[a-z0-9_]+", text))
    assert referenced, "dashboard references no entity"
    assert referenced <= _entity_ids(), sorted(referenced - _entity_ids())


def test_automations_are_valid_yaml_on_our_topics() -> None:
    for path in HA_DIR.glob("automation_*.yaml"):
        doc = yaml.safe_load(path.read_text())
        topics = [t["topic"] for t in doc["triggers"]]
        assert all(t.startswith("rush/events/") for t in topics), path
        assert doc["actions"], path
