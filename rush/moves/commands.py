"""Transport-free handlers of the `rush/cmd/apply` and `rush/cmd/purge` triggers.

Why here: the MQTT layer only parses JSON and publishes the returned dict on
`rush/cmd/{command}/result`; the rules (dry run by default, confirmation for a purge,
a clear error instead of an exception) live in domain code and are tested without a
broker.
"""

from __future__ import annotations

import logging
from typing import Any

from rush import events
from rush.config import Config
from rush.moves.apply import plan_apply
from rush.moves.lock import BatchBusy, Progress
from rush.moves.purge import PurgeNotConfirmed, plan_purge
from rush.moves.run import run_apply, run_purge

log = logging.getLogger(__name__)


def _flag(payload: Any, key: str, default: bool) -> bool:
    if payload is None:
        return default
    if not isinstance(payload, dict):
        raise ValueError("payload must be a JSON object")
    value = payload.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key!r} must be true or false")
    return value


def _actor(payload: Any, default: str) -> str:
    actor = payload.get("actor") if isinstance(payload, dict) else None
    return f"mqtt:{actor}" if isinstance(actor, str) and actor else default


async def cmd_apply(
    config: Config,
    payload: Any,
    *,
    progress: Progress | None = None,
    bus: events.EventBus | None = None,
) -> dict[str, Any]:
    """`rush/cmd/apply`: a dry run unless the payload says `{"dry_run": false}`."""
    try:
        dry_run = _flag(payload, "dry_run", True)
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    try:
        if dry_run:
            return {"ok": True, "dry_run": True, "plan": (await plan_apply(config)).to_dict()}
        report = await run_apply(config, _actor(payload, "mqtt"), progress=progress, bus=bus)
    except BatchBusy as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": not report.failed, "dry_run": False, "report": report.to_dict()}


async def cmd_purge(
    config: Config,
    payload: Any,
    *,
    progress: Progress | None = None,
    bus: events.EventBus | None = None,
) -> dict[str, Any]:
    """`rush/cmd/purge`: a dry run unless the payload says `{"confirm": true}`."""
    try:
        confirm = _flag(payload, "confirm", False)
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    try:
        if not confirm:
            return {"ok": True, "dry_run": True, "plan": (await plan_purge(config)).to_dict()}
        result = await run_purge(
            config, _actor(payload, "mqtt"), confirm=True, progress=progress, bus=bus
        )
    except (BatchBusy, PurgeNotConfirmed) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": not result["failed"], "dry_run": False, "report": result}
