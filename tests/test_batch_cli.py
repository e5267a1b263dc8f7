"""Entry points: the CLI commands, the MQTT command handlers and the purge policy actor."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.purger import Purger
from rush.cli import _common, asset_cmd, purge_cli
from rush.cli import apply as apply_cli
from rush.config import Config, PurgeConfig
from rush.lifecycle import AssetState
from rush.models import Asset
from rush.moves.commands import cmd_apply, cmd_purge
from rush.storage import close_db, init_db
from rush.transitions import utcnow
from tests.batch_helpers import make_asset, make_config
from tests.support.broker import BROKER_HOST, BROKER_PORT

S = AssetState


def cli(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (apply_cli, purge_cli, asset_cmd):
        module.register(sub, _common)
    args = parser.parse_args(argv)
    code: int = args.func(args, config)
    return code


def with_db(db_url: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        await init_db(db_url)
        try:
            return await fn()
        finally:
            await close_db()

    return asyncio.run(go())


def test_cli_apply_dry_run_then_apply(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db_url)

    async def setup() -> Asset:
        return await make_asset(root, "INBOX/c/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))

    a = with_db(db_url, setup)
    assert cli(cfg, "apply", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "1 group(s) to move (2 files, 1 sidecars)" in out
    assert "INBOX/c/clip.xmp -> ARCHIVE/c/clip.xmp" in out
    assert (root / "INBOX/c/clip.mp4").exists()
    assert cli(cfg, "apply") == 0
    captured = capsys.readouterr()
    assert "1 moved" in captured.out and "apply" in captured.err  # progress on stderr
    assert (root / "ARCHIVE/c/clip.mp4").exists()
    assert cli(cfg, "reopen", str(a.id), "--actor", "ida") == 0
    assert "DECISION_PENDING" in capsys.readouterr().out
    assert cli(cfg, "reopen", str(a.id)) == 1
    assert "only ARCHIVED or REJECTED" in capsys.readouterr().err
    assert cli(cfg, "reprocess", str(a.id)) == 0
    assert "version 2" in capsys.readouterr().out
    assert cli(cfg, "retry", str(a.id)) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert cli(cfg, "retry", "not-a-uuid") == 2
    assert cli(cfg, "reprocess", str(uuid.uuid4())) == 1


def test_cli_purge_dry_run_and_confirm(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db_url)

    async def setup() -> None:
        a = await make_asset(root, "REJECTS/p/old.mp4", S.REJECTED)
        await Asset.filter(id=a.id).update(state_changed_at=utcnow() - timedelta(days=200))

    with_db(db_url, setup)
    assert cli(cfg, "purge", "--dry-run") == 0
    assert "1 REJECTED asset(s)" in capsys.readouterr().out
    assert cli(cfg, "purge") == 0  # no flag: still a dry run
    assert (root / "REJECTS/p/old.mp4").exists()
    assert cli(cfg, "purge", "--confirm") == 0
    assert "1 purged" in capsys.readouterr().out
    assert not (root / "REJECTS/p/old.mp4").exists()


async def test_cmd_apply_defaults_to_dry_run_and_validates(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await make_asset(root, "INBOX/m/clip.mp4", S.DECIDED_REJECT)
    dry = await cmd_apply(cfg, {})
    assert dry["ok"] and dry["dry_run"] and dry["plan"]["to_move"] == 1
    assert (await cmd_apply(cfg, None))["dry_run"] is True
    assert (await Asset.get(id=a.id)).state is S.DECIDED_REJECT
    for bad in ({"dry_run": "no"}, ["x"], "apply"):
        result = await cmd_apply(cfg, bad)
        assert result["ok"] is False and "error" in result
    done = await cmd_apply(cfg, {"dry_run": False, "actor": "ha"})
    assert done["ok"] and done["report"]["counts"]["moved"] == 1
    assert (await Asset.get(id=a.id)).state is S.REJECTED


async def test_cmd_purge_needs_confirm(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await make_asset(root, "REJECTS/m/old.mp4", S.REJECTED)
    await Asset.filter(id=a.id).update(state_changed_at=utcnow() - timedelta(days=365))
    dry = await cmd_purge(cfg, {"confirm": False})
    assert dry["dry_run"] and len(dry["plan"]["eligible"]) == 1
    assert (await cmd_purge(cfg, {"confirm": "yes"}))["ok"] is False
    assert (await Asset.get(id=a.id)).state is S.REJECTED
    done = await cmd_purge(cfg, {"confirm": True})
    assert done["ok"] and len(done["report"]["purged"]) == 1


async def test_purger_actor_only_when_enabled(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await make_asset(root, "REJECTS/q/old.mp4", S.REJECTED)
    await Asset.filter(id=a.id).update(state_changed_at=utcnow() - timedelta(days=10))
    off = Purger(cfg)
    assert await off.run_once() is None
    await off.run()  # returns at once: nothing to do while disabled
    assert (await Asset.get(id=a.id)).state is S.REJECTED
    cfg.purge = PurgeConfig(auto=True, after_days=30)
    on = Purger(cfg, clock=lambda: utcnow() + timedelta(days=25))
    result = await on.run_once()
    assert result is not None and len(result["purged"]) == 1
    assert (await Asset.get(id=a.id)).state is S.PURGED


class EventWatcher:
    """`mosquitto_sub` on `{prefix}/events/#` of the real broker, ready once it has seen
    a probe of its own."""

    def __init__(self, prefix: str) -> None:
        import subprocess

        self.prefix = prefix
        broker = ["-h", BROKER_HOST, "-p", str(BROKER_PORT), "-q", "1"]
        self.proc = subprocess.Popen(
            ["mosquitto_sub", *broker, "-v", "-t", f"{prefix}/events/#"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        import threading

        threading.Thread(target=self._read, daemon=True).start()
        for _ in range(100):
            subprocess.run(
                ["mosquitto_pub", *broker, "-t", f"{prefix}/events/probe", "-m", "probe"],
                check=True,
            )
            if self.wait_for("/events/probe", 0.1):
                return
        raise AssertionError("mosquitto_sub never saw its probe")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return True
            time.sleep(0.02)
        return False

    def payloads(self, name: str) -> list[dict[str, Any]]:
        import json

        head = f"{self.prefix}/events/{name} "
        return [json.loads(line[len(head) :]) for line in self.lines if line.startswith(head)]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_cli_transitions_reach_mqtt(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only `rush serve` holds an MQTT connection, yet a transition made from the shell
    must reach `events/asset` (docs/contract.md §5) and an apply must reach `events/batch`."""
    from rush.config import MqttConfig

    root = tmp_path / "lib"
    prefix = f"rush-cli-{uuid.uuid4().hex[:8]}"
    cfg = make_config(root, db_url).model_copy(
        update={"mqtt": MqttConfig(host=BROKER_HOST, port=BROKER_PORT, prefix=prefix)}
    )

    async def setup() -> Asset:
        return await make_asset(root, "INBOX/c/clip.mp4", S.DECIDED_KEEP)

    a = with_db(db_url, setup)
    watcher = EventWatcher(prefix)
    try:
        assert cli(cfg, "apply") == 0
        assert cli(cfg, "reopen", str(a.id)) == 0
        assert watcher.wait_for('"to":"DECISION_PENDING"', 10)
        assert watcher.wait_for(f"{prefix}/events/batch", 10)
        moves = [(e["uuid"], e["from"], e["to"]) for e in watcher.payloads("asset")]
        assert moves == [
            (str(a.id), "DECIDED_KEEP", "MOVE_QUEUED"),
            (str(a.id), "MOVE_QUEUED", "ARCHIVED"),
            (str(a.id), "ARCHIVED", "DECISION_PENDING"),
        ]
        (batch,) = watcher.payloads("batch")
        assert (batch["kind"], batch["moved"], batch["failed"]) == ("apply", 1, 0)
    finally:
        watcher.close()
    assert "not published" not in caplog.text


def test_cli_without_broker_still_works(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No broker listening: the command does its work and says what MQTT missed."""
    from rush.config import MqttConfig
    from tests.conftest import free_port

    root = tmp_path / "lib"
    cfg = make_config(root, db_url).model_copy(
        update={"mqtt": MqttConfig(host="127.0.0.1", port=free_port(), prefix="rush-none")}
    )

    async def setup() -> Asset:
        return await make_asset(root, "INBOX/c/clip.mp4", S.DECIDED_KEEP)

    with_db(db_url, setup)
    assert cli(cfg, "apply") == 0
    assert (root / "ARCHIVE/c/clip.mp4").exists()
    assert "3 event(s) of this command were not published to MQTT" in caplog.text
