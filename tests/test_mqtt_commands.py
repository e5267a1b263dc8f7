"""Manual triggers over the real broker: a retained `rush/cmd/…` message never runs."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from actors.scanner import Scanner
from integrations.mqtt.client import make_client
from rush import events
from rush.commands import CommandRegistry, scan_handler
from rush.lifecycle import AssetState
from rush.models import Asset
from rush.server import ServerContext, _register_commands
from rush.transitions import utcnow
from tests import batch_helpers
from tests.agent_support import make_config, make_library, new_prefix, server_actors

S = AssetState


async def _results(client: aiomqtt.Client, count: int, limit_s: float) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    async def collect() -> None:
        async for m in client.messages:
            assert isinstance(m.payload, bytes)
            got.append({"topic": m.topic.value, **orjson.loads(m.payload)})
            if len(got) >= count:
                return

    await asyncio.wait_for(collect(), limit_s)
    return got


async def _retained_under(config_mqtt: Any, filter_: str) -> list[str]:
    """Topics under `filter_` that still hold a retained message on the broker."""
    found: list[str] = []
    async with make_client(config_mqtt) as c:
        await c.subscribe(filter_, qos=1)
        try:
            async with asyncio.timeout(1.0):
                async for m in c.messages:
                    if m.retain:
                        found.append(m.topic.value)
        except TimeoutError:
            pass
    return found


async def test_retained_commands_are_refused_cleared_and_never_run(
    db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    prefix = new_prefix()
    root = tmp_path / "lib"
    make_library(root)
    config = make_config(root, prefix=prefix)
    old = await batch_helpers.make_asset(root, "REJECTS/p/old.mp4", S.REJECTED)
    await Asset.filter(id=old.id).update(state_changed_at=utcnow() - timedelta(days=400))
    keep = await batch_helpers.make_asset(root, "INBOX/k/clip.mp4", S.DECIDED_KEEP)
    bus = events.EventBus()
    reg = CommandRegistry()
    scanner = Scanner(config, bus=bus)
    reg.register("scan", scan_handler(scanner))
    _register_commands(ServerContext(config, bus=bus, commands=reg))

    retained = {
        "purge": {"confirm": True},
        "apply": {"dry_run": False},
        "scan": {},
    }
    async with make_client(config.mqtt) as c:
        for name, args in retained.items():
            await c.publish(f"{prefix}/cmd/{name}", orjson.dumps(args), qos=1, retain=True)

    async with make_client(config.mqtt) as watcher:
        await watcher.subscribe(f"{prefix}/cmd/+/result", qos=1)
        async with server_actors(config, commands=reg, bus=bus):
            refused = await _results(watcher, 3, 10)
            # Nothing else comes: in particular the broker's echo of the clearing
            # (an empty message) must not run a command with `{}`.
            with pytest.raises(TimeoutError):
                await _results(watcher, 1, 1.5)
            assert sorted(r["command"] for r in refused) == ["apply", "purge", "scan"]
            for r in refused:
                assert r["ok"] is False and r["refused"] == "retained"
                assert "without the retain flag" in r["error"]
            assert (await Asset.get(id=old.id)).state is S.REJECTED
            assert (root / "REJECTS/p/old.mp4").exists()
            assert (await Asset.get(id=keep.id)).state is S.DECIDED_KEEP
            assert (root / "INBOX/k/clip.mp4").exists()
            assert scanner.last_report is None
            assert await _retained_under(config.mqtt, f"{prefix}/cmd/#") == []
            warnings = [r for r in caplog.records if "retained message" in r.getMessage()]
            assert len(warnings) == 3

            # The same command sent normally runs.
            async with make_client(config.mqtt) as c:
                await c.publish(f"{prefix}/cmd/purge", b'{"confirm": true}', qos=1)
            (done,) = await _results(watcher, 1, 15)
            assert done["command"] == "purge" and done["ok"] is True
            assert (await Asset.get(id=old.id)).state is S.PURGED


async def test_disabled_seedbox_refuses_its_command(db: str, tmp_path: Path) -> None:
    """`seedbox.enabled = false`: `rush/cmd/seedbox/run` answers a clear refusal and runs
    nothing (no run log, no lock, no attempt recorded), whatever the payload says."""
    from rush.models import SeedRelocation

    prefix = new_prefix()
    root = tmp_path / "lib"
    make_library(root)
    config = make_config(root, prefix=prefix)
    assert config.seedbox.enabled is False
    config.seedbox.log_dir = tmp_path / "seedbox-log"
    config.seedbox.lock_dir = tmp_path / "seedbox-locks"
    config.seedbox.state_dir = tmp_path / "seedbox-state"
    bus = events.EventBus()
    reg = CommandRegistry()
    _register_commands(ServerContext(config, bus=bus, commands=reg))
    async with make_client(config.mqtt) as watcher:
        await watcher.subscribe(f"{prefix}/cmd/+/result", qos=1)
        await watcher.subscribe(f"{prefix}/cmd/seedbox/run/result", qos=1)
        async with server_actors(config, commands=reg, bus=bus), make_client(config.mqtt) as c:
            for payload in ({}, {"dry_run": False}):
                await c.publish(f"{prefix}/cmd/seedbox/run", orjson.dumps(payload), qos=1)
                (result,) = await _results(watcher, 1, 10)
                assert result["ok"] is False and result["refused"] == "disabled", result
                assert "seedbox.enabled" in result["error"]
    assert await SeedRelocation.all().count() == 0
    assert not config.seedbox.log_dir.exists()
    assert not config.seedbox.lock_dir.exists()
