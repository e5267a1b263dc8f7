"""Manual triggers (`rush/cmd/{name}`), transport-free.

Why a registry: each feature registers its own handler (`scan`, `apply`, `purge`,
`seedbox/run`), and the MQTT bridge, the CLI or the web UI can all invoke them the same
way.  A handler takes the JSON payload and returns a JSON-able dict; `execute` never
raises for a handler's failure, it reports it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Any, Protocol

log = logging.getLogger(__name__)

CommandHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_NAME = re.compile(r"^[a-z0-9_-]{1,32}(/[a-z0-9_-]{1,32}){0,2}$")


class UnknownCommand(KeyError):
    pass


class CommandRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, CommandHandler] = {}

    def register(self, name: str, handler: CommandHandler) -> None:
        if not _NAME.match(name) or name.endswith("/result"):
            raise ValueError(f"invalid command name {name!r}")
        if name in self._handlers:
            raise ValueError(f"command {name!r} is already registered")
        self._handlers[name] = handler

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    async def execute(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Run a command; the outcome says `ok` and carries `result` or `error`."""
        handler = self._handlers.get(name)
        if handler is None:
            return {"command": name, "ok": False, "error": f"unknown command {name!r}"}
        try:
            result = await handler(payload)
        except Exception as exc:
            log.exception("command %s failed", name)
            return {"command": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        data = jsonable(result)
        if isinstance(data, dict) and data.get("ok") is False:
            # A handler that refused (bad payload, feature disabled, run busy) is a failed
            # command: `ok` says so at the top, where a script or Home Assistant looks.
            outcome: dict[str, Any] = {"command": name, "ok": False}
            outcome["error"] = str(data.get("error") or "refused")
            if "refused" in data:
                outcome["refused"] = data["refused"]
            outcome["result"] = data
            return outcome
        return {"command": name, "ok": True, "result": data}


class ScansOnce(Protocol):
    async def scan_once(self) -> Any: ...


def scan_handler(scanner: ScansOnce) -> CommandHandler:
    """`scan`: one scanner pass now; the report (a dataclass) becomes the result."""

    async def handle(_payload: dict[str, Any]) -> dict[str, Any]:
        report = await scanner.scan_once()
        data = jsonable(report)
        return data if isinstance(data, dict) else {"report": data}

    return handle


def jsonable(value: Any) -> Any:
    """Dataclasses, enums, dates and paths to plain JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
