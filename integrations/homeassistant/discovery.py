"""Home Assistant MQTT discovery payloads, built by pure functions (no broker needed).

Every entity hangs off one "RushCatalog" device (per-agent connectivity sensors are
devices of their own, linked with `via_device`).  Sensor states come from one retained
JSON state topic read through `value_template`s, so one publish refreshes the whole
dashboard; timestamp sensors are the exception (see `value_topic`).  Availability follows
the server's retained LWT topic.

Entity ids are set twice on purpose (docs/homeassistant.md): `object_id` is what Home
Assistant 2024.x honours, `default_entity_id` what it honours from 2025.10 on (it then
ignores `object_id` when both are given); each version drops the key it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rush import __version__
from rush.lifecycle import AssetState

_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
SUPPORT_URL = "https://github.com/rushcatalog/rushcatalog"


@dataclass(frozen=True)
class DiscoveryContext:
    discovery_prefix: str
    node_id: str
    mqtt_prefix: str
    configuration_url: str | None = None

    @property
    def availability_topic(self) -> str:
        return f"{self.mqtt_prefix}/server/status"

    @property
    def state_topic(self) -> str:
        return f"{self.mqtt_prefix}/ha/state"

    def cmd_topic(self, command: str) -> str:
        return f"{self.mqtt_prefix}/cmd/{command}"

    def value_topic(self, key: str) -> str:
        """The retained topic of one timestamp sensor, published only once it has a value.

        Why not the JSON state topic: a timestamp sensor must never receive a text that
        is not a date.  Home Assistant 2024.x logs "Invalid state message" for every
        state whose template renders `None` (newer versions read `None` as unknown), and
        no template can make it skip a message quietly.  A topic with nothing on it
        leaves the sensor "unknown" on every version.
        """
        return f"{self.mqtt_prefix}/ha/state/{key}"


@dataclass(frozen=True)
class SensorSpec:
    key: str  # key in the state JSON, also the object id suffix
    name: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = "measurement"
    icon: str | None = None
    entity_category: str | None = None

    @property
    def seedbox(self) -> bool:
        """A seedbox KPI: its state key exists only when `seedbox.enabled`."""
        return self.key.startswith("seedbox_")


def _state_sensors() -> list[SensorSpec]:
    specs = [
        SensorSpec(
            f"state_{s.value.lower()}",
            f"Assets {s.value.replace('_', ' ').lower()}",
            unit="assets",
            icon="mdi:filmstrip-box-multiple",
        )
        for s in AssetState
    ]
    specs += [
        SensorSpec("awaiting_decision", "Awaiting decision", unit="assets", icon="mdi:gavel"),
        SensorSpec("queue_depth", "Processing queue", unit="assets", icon="mdi:tray-full"),
        SensorSpec("processing", "Processing now", unit="assets", icon="mdi:cog-sync"),
        SensorSpec("failed", "Failed processing", unit="assets", icon="mdi:alert-circle"),
        SensorSpec("missing", "Missing files", unit="assets", icon="mdi:file-question"),
        SensorSpec("duplicates", "Duplicate copies", unit="assets", icon="mdi:content-duplicate"),
        SensorSpec("last_verify", "Last verify", device_class="timestamp", state_class=None),
        SensorSpec(
            "last_verify_problems", "Last verify problems", unit="files", icon="mdi:shield-alert"
        ),
        SensorSpec("agents_online", "Agents online", unit="agents", icon="mdi:server-network"),
        SensorSpec("purge_eligible", "Purge eligible", unit="assets", icon="mdi:delete-clock"),
        SensorSpec("last_scan", "Last scan", device_class="timestamp", state_class=None),
        SensorSpec("last_scan_duration", "Last scan duration", unit="s", device_class="duration"),
        SensorSpec("last_apply", "Last batch apply", device_class="timestamp", state_class=None),
        SensorSpec("last_apply_moved", "Last apply moved", unit="assets", icon="mdi:folder-move"),
        SensorSpec(
            "last_apply_failed", "Last apply failed", unit="assets", icon="mdi:folder-alert"
        ),
        SensorSpec("seedbox_success_ratio", "Seedbox success ratio", unit="%", icon="mdi:percent"),
        SensorSpec(
            "seedbox_mean_relocation_s",
            "Seedbox mean relocation time",
            unit="s",
            device_class="duration",
        ),
        SensorSpec(
            "seedbox_moved_today_gb",
            "Seedbox moved today",
            unit="GB",
            device_class="data_size",
            state_class="total",
        ),
        SensorSpec("seedbox_nvme_free_gb", "NVMe free space", unit="GB", device_class="data_size"),
        SensorSpec("seedbox_nvme_free_percent", "NVMe free", unit="%", icon="mdi:harddisk"),
    ]
    for cause in ("network", "api", "permissions", "space", "unavailable", "hardlink", "other"):
        specs.append(
            SensorSpec(
                f"seedbox_errors_{cause}",
                f"Seedbox errors ({cause})",
                unit="errors",
                state_class="total",
                icon="mdi:alert",
            )
        )
    return specs


SENSORS: tuple[SensorSpec, ...] = tuple(_state_sensors())
#: State keys whose sensor reads its own `value_topic` rather than the JSON state.
TIMESTAMP_KEYS: tuple[str, ...] = tuple(s.key for s in SENSORS if s.device_class == "timestamp")

#: Safe actions only: nothing here moves, deletes or decides anything.
BUTTONS: tuple[tuple[str, str, str, str], ...] = (
    # (object id, name, command, payload)
    ("scan_now", "Scan now", "scan", "{}"),
    ("seedbox_run_now", "Seedbox run now", "seedbox/run", "{}"),
    # Its own always-dry command, so the broker ACL can let Home Assistant press it without
    # ever being able to start a real apply on `cmd/apply`.
    ("apply_dry_run", "Apply moves — dry run", "apply/dry-run", '{"dry_run": true}'),
)


#: Buttons of the seedbox manager, advertised only when `seedbox.enabled`.
SEEDBOX_BUTTONS = frozenset({"seedbox_run_now"})


def check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(f"{value!r} is not a valid discovery id ([a-zA-Z0-9_-]+)")
    return value


def device_block(ctx: DiscoveryContext) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [ctx.node_id],
        "name": "RushCatalog",
        "manufacturer": "RushCatalog",
        "model": "RushCatalog server",
        "sw_version": __version__,
    }
    if ctx.configuration_url:
        block["configuration_url"] = ctx.configuration_url
    return block


def origin_block() -> dict[str, Any]:
    return {"name": "RushCatalog", "sw_version": __version__, "support_url": SUPPORT_URL}


def _availability(ctx: DiscoveryContext) -> list[dict[str, str]]:
    return [
        {
            "topic": ctx.availability_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]


def config_topic(ctx: DiscoveryContext, component: str, object_id: str) -> str:
    return (
        f"{ctx.discovery_prefix}/{component}/{check_id(ctx.node_id)}/{check_id(object_id)}/config"
    )


def _entity_id(component: str, object_id: str) -> dict[str, str]:
    """The id keys of every Home Assistant version we support (see the module docstring)."""
    return {"object_id": object_id, "default_entity_id": f"{component}.{object_id}"}


def sensor_config(ctx: DiscoveryContext, spec: SensorSpec) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": spec.name,
        "unique_id": f"{ctx.node_id}_{spec.key}",
        **_entity_id("sensor", f"{ctx.node_id}_{spec.key}"),
        "state_topic": ctx.state_topic,
        "value_template": f"{{{{ value_json.{spec.key} }}}}",
        "device": device_block(ctx),
        "origin": origin_block(),
        "availability": _availability(ctx),
    }
    if spec.key in TIMESTAMP_KEYS:
        payload["state_topic"] = ctx.value_topic(spec.key)
        del payload["value_template"]  # the payload is the ISO 8601 time itself
    if spec.unit:
        payload["unit_of_measurement"] = spec.unit
    if spec.device_class:
        payload["device_class"] = spec.device_class
    if spec.state_class:
        payload["state_class"] = spec.state_class
    if spec.icon:
        payload["icon"] = spec.icon
    return payload


def button_config(
    ctx: DiscoveryContext, object_id: str, name: str, command: str, press: str
) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": f"{ctx.node_id}_{object_id}",
        **_entity_id("button", f"{ctx.node_id}_{object_id}"),
        "command_topic": ctx.cmd_topic(command),
        "payload_press": press,
        # A press is a command: QoS 1 like every message of ours (HA defaults to 0).
        "qos": 1,
        "device": device_block(ctx),
        "origin": origin_block(),
        "availability": _availability(ctx),
        "icon": "mdi:play-circle",
    }


def agent_object_id(agent_id: str) -> str:
    return f"agent_{check_id(agent_id)}"


def agent_config(
    ctx: DiscoveryContext, agent_id: str, hostname: str = "", version: str = ""
) -> dict[str, Any]:
    """A connectivity binary_sensor for one agent, as its own device via the server."""
    object_id = agent_object_id(agent_id)
    device: dict[str, Any] = {
        "identifiers": [f"{ctx.node_id}_{object_id}"],
        "name": f"RushIndexer {agent_id}",
        "manufacturer": "RushCatalog",
        "model": "RushIndexer agent",
        "via_device": ctx.node_id,
    }
    if version:
        device["sw_version"] = version
    payload: dict[str, Any] = {
        "name": "Connectivity",
        "unique_id": f"{ctx.node_id}_{object_id}",
        **_entity_id("binary_sensor", f"{ctx.node_id}_{object_id}"),
        "device_class": "connectivity",
        "state_topic": f"{ctx.mqtt_prefix}/agents/{agent_id}/status",
        "payload_on": "online",
        "payload_off": "offline",
        "device": device,
        "origin": origin_block(),
        "availability": _availability(ctx),
    }
    if hostname:
        payload["json_attributes_topic"] = f"{ctx.mqtt_prefix}/agents/{agent_id}/config"
    return payload


def build_discovery(
    ctx: DiscoveryContext, agents: dict[str, dict[str, str]], *, seedbox: bool
) -> dict[str, dict[str, Any]]:
    """Every discovery config, by topic.  `agents`: id -> {"hostname", "version"};
    the seedbox entities only when `seedbox` (the manager is enabled)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in SENSORS:
        if seedbox or not spec.seedbox:
            out[config_topic(ctx, "sensor", spec.key)] = sensor_config(ctx, spec)
    for object_id, name, command, press in BUTTONS:
        if seedbox or object_id not in SEEDBOX_BUTTONS:
            out[config_topic(ctx, "button", object_id)] = button_config(
                ctx, object_id, name, command, press
            )
    for agent_id, info in sorted(agents.items()):
        out[config_topic(ctx, "binary_sensor", agent_object_id(agent_id))] = agent_config(
            ctx, agent_id, info.get("hostname", ""), info.get("version", "")
        )
    return out


def seedbox_topics(ctx: DiscoveryContext) -> set[str]:
    """The config topics of every seedbox entity (cleared while the seedbox is disabled)."""
    topics = {config_topic(ctx, "sensor", s.key) for s in SENSORS if s.seedbox}
    return topics | {config_topic(ctx, "button", b) for b in SEEDBOX_BUTTONS}


def removed_topics(previous: set[str], current: set[str]) -> list[str]:
    """Config topics to clear (empty retained payload) because their entity is gone."""
    return sorted(previous - current)
