"""What the web UI needs from the rest of the server, as narrow interfaces.

Batch apply, purge, reopen, reprocess and retry live in their own modules (`rush.moves`,
`rush.actions`).  The UI talks to them only through `ActionService`, so the pages work
against any implementation; `ModuleActions` binds the real modules, and a build without
one raises `ActionUnavailable`, which the pages report as "not available".
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Any, Protocol

from integrations.metrics import Metrics
from rush import actions, events
from rush.config import Config
from rush.moves.apply import plan_apply
from rush.moves.purge import plan_purge
from rush.moves.run import run_apply, run_purge


class ActionUnavailable(Exception):
    """The module behind an action is not part of this installation."""


class ActionService(Protocol):
    """Human actions the UI offers (Workflows 7-10); each returns a JSON-able report."""

    async def plan_apply(self) -> Any:
        """Dry run of a batch apply: eligible assets, collisions, sidecars."""

    async def run_apply(self, actor: str) -> Any:
        """Run the batch apply and return its report."""

    async def plan_purge(self) -> Any:
        """Dry run of the purge of REJECTED assets past their retention."""

    async def run_purge(self, actor: str, confirm: bool) -> Any:
        """Purge for real (only with `confirm=True`)."""

    async def reopen(self, asset_id: uuid.UUID, actor: str) -> Any: ...

    async def reprocess(self, asset_id: uuid.UUID, actor: str) -> Any: ...

    async def retry_failed(self, asset_id: uuid.UUID, actor: str) -> Any: ...


class ModuleActions:
    """`ActionService` over `rush.moves` (apply, purge) and `rush.actions`."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def plan_apply(self) -> Any:
        return await plan_apply(self.config)

    async def run_apply(self, actor: str) -> Any:
        return await run_apply(self.config, actor)

    async def plan_purge(self) -> Any:
        return await plan_purge(self.config)

    async def run_purge(self, actor: str, confirm: bool) -> Any:
        return await run_purge(self.config, actor, confirm=confirm)

    async def reopen(self, asset_id: uuid.UUID, actor: str) -> Any:
        return await actions.reopen(asset_id, actor)

    async def reprocess(self, asset_id: uuid.UUID, actor: str) -> Any:
        return await actions.reprocess(asset_id, actor)

    async def retry_failed(self, asset_id: uuid.UUID, actor: str) -> Any:
        return await actions.retry_failed(asset_id, actor)


@dataclass
class WebServices:
    """Everything `create_app` needs besides the config (the database is global in tortoise)."""

    actions: ActionService
    bus: events.EventBus = field(default_factory=lambda: events.bus)
    #: Prometheus registry rendered at /metrics (None: the endpoint answers 404).
    metrics: Metrics | None = None


def default_services(
    config: Config, bus: events.EventBus | None = None, metrics: Metrics | None = None
) -> WebServices:
    return WebServices(actions=ModuleActions(config), bus=bus or events.bus, metrics=metrics)


def jsonable(value: Any, depth: int = 0) -> Any:
    """Turn a report (dataclass, pydantic model, enum, path...) into plain JSON data."""
    if depth > 12:
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | PurePath):
        return str(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):  # the report's own public form
        return jsonable(to_dict(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        }
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return jsonable(dump(mode="json"), depth + 1)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)
