"""Home Assistant against the real Mosquitto and a real `rush serve` process.

Black-box through the external contract only: discovery configs on the discovery
prefix, the retained state topic, button command topics, `homeassistant/status`, and
the server's retained LWT.  Random prefixes keep parallel runs apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from integrations.homeassistant.discovery import DiscoveryContext, build_discovery
from rush.layout import init_library
from tests.conftest import free_port, rush_env
from tests.support.broker import BROKER_HOST, BROKER_PORT

pytestmark = pytest.mark.mqtt
# No agent registered and the seedbox disabled in this test.
EXPECTED_CONFIGS = len(build_discovery(DiscoveryContext("h", "n", "r"), {}, seedbox=False))
BROKER = (BROKER_HOST, BROKER_PORT)
TOPIC_RE = re.compile(
    r"^(?P<prefix>[^/]+)/(?P<component>sensor|binary_sensor|button)/"
    r"(?:(?P<node>[a-zA-Z0-9_-]+)/)?(?P<object>[a-zA-Z0-9_-]+)/config$"
)


class Collector:
    """Records every message under the given filters, retained ones included."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: dict[str, bytes] = {}
        self.history: list[tuple[str, bytes]] = []
        self.changed = asyncio.Event()

    async def pump(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.messages[str(message.topic)] = payload
            self.history.append((str(message.topic), payload))
            self.changed.set()

    async def wait_for(self, predicate: Any, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = sorted(self.messages)[:10]
                raise AssertionError(f"timed out waiting for MQTT messages; saw {seen}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                continue


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"prefix": f"rush-t-{tag}", "discovery": f"ha-t-{tag}", "node": f"rc_{tag}"}


@pytest.fixture
def server(tmp_path: Path, names: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    library = tmp_path / "lib"
    init_library(library)
    (library / "INBOX" / "shoot").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[library]
root = "{library}"
[scanner]
interval_s = 3600
stable_after_s = 0
[mqtt]
host = "{BROKER[0]}"
port = {BROKER[1]}
prefix = "{names["prefix"]}"
[homeassistant]
discovery_prefix = "{names["discovery"]}"
node_id = "{names["node"]}"
state_interval_s = 3600
[web]
port = {free_port()}
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "rush", "serve", "--config", str(config)],
        env=rush_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "wb"),  # noqa: SIM115
    )
    proc.library = library  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # Retained discovery configs of this test run are cleared from the shared broker.
        _clear_retained(names)


def _clear_retained(names: dict[str, str]) -> None:
    for prefix in (names["discovery"], names["prefix"]):
        subprocess.run(
            ["mosquitto_sub", "-h", BROKER[0], "-p", str(BROKER[1]), "-t", f"{prefix}/#",
             "--remove-retained", "--retained-only", "-W", "1"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip


@contextlib.asynccontextmanager
async def collecting(names: dict[str, str]) -> AsyncIterator[Collector]:
    """A subscriber to everything this test's server publishes, pumped in a TaskGroup."""
    async with aiomqtt.Client(
        BROKER[0], BROKER[1], identifier=f"ha-test-{uuid.uuid4().hex[:6]}"
    ) as client:
        await client.subscribe(f"{names['discovery']}/#", qos=1)
        await client.subscribe(f"{names['prefix']}/#", qos=1)
        col = Collector(client)
        async with asyncio.TaskGroup() as group:
            task = group.create_task(col.pump())
            try:
                yield col
            finally:
                task.cancel()


def _configs(col: Collector, names: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for topic, payload in col.messages.items():
        if topic.startswith(names["discovery"] + "/") and topic.endswith("/config") and payload:
            out[topic] = json.loads(payload)
    return out


def _state(col: Collector, names: dict[str, str]) -> dict[str, Any] | None:
    raw = col.messages.get(f"{names['prefix']}/ha/state")
    return json.loads(raw) if raw else None


async def test_discovery_states_buttons_republish_and_lwt(
    server: subprocess.Popen[bytes], names: dict[str, str]
) -> None:
    async with collecting(names) as collector:
        await _scenario(server, collector, names)


async def _scenario(
    server: subprocess.Popen[bytes], collector: Collector, names: dict[str, str]
) -> None:
    prefix, node = names["prefix"], names["node"]
    await collector.wait_for(lambda: collector.messages.get(f"{prefix}/server/status") == b"online")
    await collector.wait_for(
        lambda: len(_configs(collector, names)) >= EXPECTED_CONFIGS and _state(collector, names)
    )

    # Every discovery payload follows Home Assistant's rules.
    configs = _configs(collector, names)
    for topic, payload in configs.items():
        match = TOPIC_RE.match(topic)
        assert match and match["prefix"] == names["discovery"] and match["node"] == node, topic
        assert payload["unique_id"] and payload["device"]["identifiers"], topic
        assert (
            payload["origin"]["name"]
            and payload["availability"][0]["topic"] == f"{prefix}/server/status"
        )
        if match["component"] in ("sensor", "binary_sensor"):
            assert payload["state_topic"], topic
        else:
            assert payload["command_topic"], topic
    assert _state(collector, names)["state_discovered"] == 0  # type: ignore[index]

    # Pressing "Scan now" runs a scan; the new file shows up in the state sensors.
    media = server.library / "INBOX" / "shoot" / "clip.wav"  # type: ignore[attr-defined]
    await asyncio.to_thread(
        subprocess.run,
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(media)],
        check=True,
        timeout=60,
    )
    old = time.time() - 3600
    os.utime(media, (old, old))
    scan_button = next(
        p for p in configs.values() if p.get("command_topic") == f"{prefix}/cmd/scan"
    )
    await collector.client.publish(
        scan_button["command_topic"], scan_button["payload_press"], qos=1
    )
    await collector.wait_for(lambda: f"{prefix}/cmd/scan/result" in collector.messages)
    await collector.wait_for(lambda: (_state(collector, names) or {}).get("state_discovered") == 1)

    # Home Assistant restarting (birth message) makes the server republish every config.
    seen_before = len([t for t, _ in collector.history if t.endswith("/config")])
    await collector.client.publish(f"{names['discovery']}/status", "online", qos=1)
    await collector.wait_for(
        lambda: (
            len([t for t, _ in collector.history if t.endswith("/config")])
            >= seen_before + len(configs)
        )
    )

    # Killed without a goodbye: the broker's LWT flips availability to offline.
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    await collector.wait_for(
        lambda: collector.messages.get(f"{prefix}/server/status") == b"offline", within=120
    )
