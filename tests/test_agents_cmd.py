"""Forgetting an agent: `rush agents remove`, and its Home Assistant entity is cleared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from integrations.homeassistant.publisher import HomeAssistantPublisher
from rush.config import Config
from rush.models import Agent
from rush.storage import close_db, init_db
from tests.conftest import rush_env


class RecordingMessenger:
    """Our own `Messenger` interface, recording what would go to the broker."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Any, bool]] = []

    async def publish(
        self, topic: str, payload: Any, *, retain: bool = False, qos: int = 1
    ) -> None:
        self.published.append((topic, payload, retain))

    def subscribe(self, filter_: str, handler: Any) -> None:
        pass


async def test_removed_agent_entity_is_cleared(db: str) -> None:
    await Agent.create(id="pi-kitchen", hostname="pi", version="0.1.0")
    messenger = RecordingMessenger()
    publisher = HomeAssistantPublisher(Config(), messenger)
    await publisher.publish_discovery()
    topic = "homeassistant/binary_sensor/rushcatalog/agent_pi-kitchen/config"
    assert any(t == topic and p for t, p, _ in messenger.published)
    await Agent.filter(id="pi-kitchen").delete()
    messenger.published.clear()
    await publisher.publish_discovery()
    assert (topic, b"", True) in messenger.published  # empty retained payload removes it
    assert not any(t == topic and p for t, p, _ in messenger.published)


def test_agents_remove_cli(tmp_path: Path) -> None:
    import asyncio

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")

    async def seed() -> None:
        await init_db(f"sqlite://{tmp_path / 'data' / 'rush.db'}")
        try:
            await Agent.create(id="laptop", online=True)
            await Agent.create(id="old-pi", online=False)
        finally:
            await close_db()

    asyncio.run(seed())

    def rush(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rush", "agents", *argv, "--config", str(cfg)],
            env=rush_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    assert "old-pi" in rush("list").stdout
    refused = rush("remove", "laptop")
    assert refused.returncode == 3 and "online" in refused.stdout
    assert rush("remove", "old-pi").returncode == 0
    assert rush("remove", "ghost").returncode == 1
    listing = rush("list").stdout
    assert "old-pi" not in listing and "laptop" in listing
