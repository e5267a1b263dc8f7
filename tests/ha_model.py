"""What Home Assistant does with our discovery configs and state messages, per version.

A faithful model of the few rules that matter, read from Home Assistant core's own code
(`homeassistant/components/mqtt/sensor.py`, `…/mqtt/entity.py` (`mixins.py` in 2024.x),
`…/mqtt/models.py`, `homeassistant/helpers/template.py`) in 2024.3.3, the newest release
that installs on Python 3.11, and in 2026.2.3:

- entity ids: 2024.x honours `object_id` (and drops the unknown `default_entity_id`, its
  discovery schemas use REMOVE_EXTRA); from 2025.10 `default_entity_id` wins over
  `object_id` (deprecated, silently ignored when both are given); with neither, the id
  comes from the device name and the entity name (`has_entity_name`).
- sensor states: the `value_template` is rendered with `value` and `value_json`; an
  undefined variable logs "Template variable warning".  A sensor whose device class is
  `timestamp` or `date` parses the rendered text as a datetime and logs "Invalid state
  message" when it cannot.  2026.2 first maps the text `None` to "unknown"; 2024.3 does
  that only for numeric sensors, so a timestamp sensor rendering `None` warns there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
import jinja2.sandbox

VERSIONS = ("2024.3", "2026.2")
PAYLOAD_NONE = "None"
DATETIME_CLASSES = frozenset({"timestamp", "date"})
#: Device classes whose states are not numbers (sensor/__init__.py, NON_NUMERIC_DEVICE_CLASSES).
NON_NUMERIC_CLASSES = DATETIME_CLASSES | {"enum"}


def _v(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def slugify(text: str) -> str:
    """Home Assistant's `slugify` for the ASCII ids we use: lower case, `_` between words."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def entity_id(component: str, config: dict[str, Any], version: str) -> str:
    """The entity id Home Assistant `version` creates for a fresh discovery config."""
    object_id: str | None = None
    if _v(version) >= (2025, 10) and "default_entity_id" in config:
        object_id = str(config["default_entity_id"]).partition(".")[2]
    elif "object_id" in config:
        object_id = str(config["object_id"])
    if object_id is None:
        device = config.get("device", {}).get("name", "")
        object_id = f"{device} {config.get('name') or ''}"
    return f"{component}.{slugify(object_id)}"


@dataclass
class SensorModel:
    """One MQTT sensor as Home Assistant `version` runs it."""

    config: dict[str, Any]
    version: str
    warnings: list[str] = field(default_factory=list)
    state: Any = None  # None: "unknown"

    @property
    def numeric_expected(self) -> bool:
        device_class = self.config.get("device_class")
        if device_class in DATETIME_CLASSES:
            return False
        if self.config.get("state_class") or self.config.get("unit_of_measurement"):
            return True
        return device_class is not None and device_class not in NON_NUMERIC_CLASSES

    def _render(self, payload: str) -> str:
        template = self.config.get("value_template")
        if template is None:
            return payload
        warnings = self.warnings

        class LoggingUndefined(jinja2.Undefined):
            def __str__(self) -> str:
                warnings.append(f"Template variable warning: {self._undefined_message}")
                return ""

        env = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=LoggingUndefined)
        variables: dict[str, Any] = {"value": payload}
        try:
            variables["value_json"] = json.loads(payload)
        except ValueError:
            pass
        return env.from_string(template).render(**variables).strip()

    def receive(self, payload: str, topic: str) -> None:
        new_value = self._render(payload)
        if _v(self.version) > (2024, 3) and new_value == PAYLOAD_NONE:
            self.state = None
            return
        if self.numeric_expected:
            if new_value == PAYLOAD_NONE:
                self.state = None
            elif new_value != "":
                self.state = new_value
            return
        if self.config.get("device_class") in (None, "enum"):
            self.state = new_value
            return
        try:
            self.state = datetime.fromisoformat(new_value)
        except ValueError:
            self.warnings.append(f"Invalid state message {payload!r} from {topic!r}")
            self.state = None
