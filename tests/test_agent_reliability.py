"""Reliability of agents and server over MQTT: a killed agent, a restarted broker, the ACL."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from integrations.agent_runtime import AgentRuntime
from integrations.mqtt.client import make_client
from rush.commands import scan_handler
from rush.config import MqttConfig
from rush.lifecycle import AssetState
from rush.models import Agent, Asset, AssetEvent, Lease
from tests.agent_support import (
    DEPLOY,
    Mosquitto,
    TestProcessor,
    agents_running,
    make_asset,
    make_assets,
    make_config,
    make_library,
    make_passwd,
    new_prefix,
    server_actors,
    wait_until,
)
from tests.conftest import rush_env

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    make_library(lib)
    return lib


def agent_command() -> list[str]:
    """`python -m rush agent`, or the same entry point when the CLI lacks other commands."""
    try:
        from rush.cli import build_parser

        build_parser()
    except ImportError:
        return [sys.executable, "-m", "tests.agent_main"]
    return [sys.executable, "-m", "rush", "agent"]


async def test_killed_agent_lease_expires_and_late_result_is_refused(
    db: str, root: Path, tmp_path: Path
) -> None:
    prefix = new_prefix()
    # A TTL that four busy test workers cannot outlast between two heartbeats.
    config = make_config(root, prefix=prefix, ttl=4.0, heartbeat=0.8, check=0.1)
    asset = await make_asset(root, "long.mp4", instruction="sleep=60")
    env = rush_env(
        RUSH_MQTT__HOST="127.0.0.1",
        RUSH_MQTT__PORT=str(config.mqtt.port),
        RUSH_MQTT__PREFIX=prefix,
        RUSH_AGENT__ID="victim",
        RUSH_AGENT__LIBRARY_MOUNT=str(root),
        RUSH_AGENT__PROCESSORS="tests.agent_support:processors",
        RUSH_AGENT__JOB_TYPES='["process_for_review"]',
        RUSH_AGENT__IDLE_POLL_S="0.2",
    )
    assert importlib.util.find_spec("tests.agent_support") is not None
    workdir = tmp_path / "agent"
    workdir.mkdir()
    async with server_actors(config):
        log_fd = os.open(workdir / "agent.log", os.O_WRONLY | os.O_CREAT, 0o600)
        proc = await asyncio.create_subprocess_exec(
            *agent_command(), env=env, cwd=workdir, stdout=log_fd, stderr=subprocess.STDOUT
        )
        os.close(log_fd)
        try:
            await wait_until(lambda: Lease.filter(agent_id="victim").exists(), limit_s=60)
            # Heartbeats keep the lease alive well past its TTL while the agent lives.
            await asyncio.sleep(6.0)
            lease = await Lease.get(agent_id="victim")
            assert lease.status == "active", (workdir / "agent.log").read_text()[-3000:]
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await wait_until(lambda: _status(lease.id, "expired"), limit_s=40)
        a = await Asset.get(id=asset.id)
        assert a.state is AssetState.READY and a.attempts == 1 and not a.failed
        (root / a.rel_path).write_text("ok\n")  # the next run is quick
        rescuer = AgentRuntime(config, [TestProcessor()], agent_id="rescuer")
        async with agents_running([rescuer]):
            await wait_until(lambda: _state(asset.id, AssetState.PROCESSED), limit_s=30)
        # The dead agent's late result, with its old token, is refused and changes nothing.
        async with make_client(config.mqtt) as client:
            base = f"{prefix}/agents/victim/jobs/{lease.id}"
            await client.subscribe(f"{base}/ack", qos=1)
            late = {"lock_token": lease.lock_token, "status": "error", "error": "late"}
            await client.publish(f"{base}/result", orjson.dumps(late), qos=1)
            ack = await _next_payload(client)
            assert ack["accepted"] is False
    a = await Asset.get(id=asset.id)
    assert a.state is AssetState.PROCESSED and a.last_error is None
    triggers = [e.trigger for e in await AssetEvent.filter(asset_id=asset.id).order_by("id")]
    assert triggers == ["claim", "lease_expired", "claim", "processed"]
    statuses = sorted(x.status for x in await Lease.filter(asset_id=asset.id))
    assert statuses == ["done", "expired"]


async def _status(lease_id: Any, status: str) -> bool:
    return (await Lease.get(id=lease_id)).status == status


async def _state(asset_id: Any, state: AssetState) -> bool:
    return (await Asset.get(id=asset_id)).state is state


async def _next_payload(client: Any, limit_s: float = 10.0) -> Any:
    async def first() -> Any:
        async for message in client.messages:
            return orjson.loads(message.payload)
        return None

    return await asyncio.wait_for(first(), limit_s)


async def test_broker_restart_mid_run_loses_nothing(db: str, root: Path, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        config = make_config(
            root, prefix=new_prefix(), port=broker.port, ttl=20, heartbeat=1, quota=2, max_jobs=2
        )
        await make_assets(root, 40, instruction="sleep=0.3")
        runtimes = [AgentRuntime(config, [TestProcessor()], agent_id=f"r{i}") for i in range(5)]
        async with server_actors(config) as ctx, agents_running(runtimes):
            await wait_until(lambda: _processed_at_least(5), limit_s=30)
            broker.stop(kill=True)
            await asyncio.sleep(1.0)
            broker.start()
            await wait_until(lambda: _processed_at_least(40), limit_s=90)
            assert ctx.messenger.stats.connects >= 2
            assert all(r.bridge.stats.connects >= 2 for r in runtimes)
    finally:
        broker.stop(kill=True)
    claims = [e.asset_id for e in await AssetEvent.filter(trigger="claim")]
    processed = [e.asset_id for e in await AssetEvent.filter(trigger="processed")]
    assert len(set(processed)) == 40 and len(processed) == 40
    assert len(claims) == len(set(claims)) == 40
    assert {x.status for x in await Lease.all()} == {"done"}


async def _processed_at_least(n: int) -> bool:
    return await Asset.filter(state=AssetState.PROCESSED).count() >= n


class CountingScanner:
    def __init__(self) -> None:
        self.calls = 0

    async def scan_once(self) -> dict[str, int]:
        self.calls += 1
        return {"seen": 0}


async def test_acl_confines_agents(db: str, root: Path, tmp_path: Path) -> None:
    users = {
        "rush-server": "s3rver",
        "operator": "0perator",
        "homeassistant": "h4ss",
        "ag1": "pw-ag1",
        "ag2": "pw-ag2",
    }
    passwd = make_passwd(tmp_path / "passwd", users)
    broker = Mosquitto(tmp_path / "broker", passwd=passwd, acl=DEPLOY / "acl")
    broker.start()

    def creds(user: str) -> MqttConfig:
        return MqttConfig(
            host="127.0.0.1",
            port=broker.port,
            username=user,
            password=users[user],  # type: ignore[arg-type]
        )

    try:
        config = make_config(
            root, prefix="rush", port=broker.port, username="rush-server", password="s3rver"
        )
        await make_assets(root, 2)
        scanner = CountingScanner()
        from rush.commands import CommandRegistry

        registry = CommandRegistry()
        registry.register("scan", scan_handler(scanner))
        async with (
            server_actors(config, commands=registry),
            make_client(creds("rush-server")) as spy,
            make_client(creds("ag1")) as ag1,
            make_client(creds("operator")) as operator,
        ):
            await spy.subscribe("rush/#", qos=1)
            await ag1.subscribe("rush/agents/ag1/job", qos=1)
            await ag1.subscribe("rush/agents/ag2/job", qos=1)  # not allowed to read
            claim = {"request_id": "x1", "job_types": ["process_for_review"]}
            for topic, body in (
                ("rush/cmd/scan", {}),
                ("rush/cmd/purge", {"confirm": True}),
                ("rush/agents/ag2/register", {"client_id": "impostor"}),
                ("rush/agents/ag2/claim", claim),
            ):
                await ag1.publish(topic, orjson.dumps(body), qos=1)
            # Its own registration and claim go through.
            await ag1.publish("rush/agents/ag1/register", b'{"client_id":"ag1"}', qos=1)
            await wait_until(lambda: Agent.filter(id="ag1").exists(), limit_s=10)
            await ag1.publish("rush/agents/ag1/claim", orjson.dumps(claim), qos=1)
            answer = await _next_payload(ag1)
            assert answer["request_id"] == "x1" and answer["job"] is not None
            # The operator may trigger a scan.
            await operator.subscribe("rush/cmd/scan/result", qos=1)
            await operator.publish("rush/cmd/scan", b"{}", qos=1)
            outcome = await _next_payload(operator)
            assert outcome["ok"] is True and outcome["result"] == {"seen": 0}
            seen: list[str] = []
            while True:
                try:
                    msg = await asyncio.wait_for(spy.messages.__anext__(), 0.5)
                except TimeoutError:
                    break
                seen.append(msg.topic.value)
        assert scanner.calls == 1  # only the operator's
        assert "rush/agents/ag2/claim" not in seen and "rush/cmd/purge" not in seen
        assert seen.count("rush/cmd/scan") == 1
        assert "rush/agents/ag1/claim" in seen
        assert not await Agent.filter(id="ag2").exists()
        assert await Lease.filter(agent_id="ag2").count() == 0
        assert await Lease.filter(agent_id="ag1").count() == 1
    finally:
        broker.stop(kill=True)
    assert "set_tcp_nodelay true" in (DEPLOY / "mosquitto.conf").read_text()


async def test_sigterm_releases_the_running_job(db: str, root: Path, tmp_path: Path) -> None:
    prefix = new_prefix()
    config = make_config(root, prefix=prefix, ttl=30, heartbeat=1)
    asset = await make_asset(root, "long.mp4", instruction="sleep=60")
    env = rush_env(
        RUSH_MQTT__HOST="127.0.0.1",
        RUSH_MQTT__PORT=str(config.mqtt.port),
        RUSH_MQTT__PREFIX=prefix,
        RUSH_AGENT__ID="polite",
        RUSH_AGENT__LIBRARY_MOUNT=str(root),
        RUSH_AGENT__PROCESSORS="tests.agent_support:processors",
        RUSH_AGENT__JOB_TYPES='["process_for_review"]',
        RUSH_AGENT__SHUTDOWN_GRACE_S="0.5",
    )
    async with server_actors(config):
        proc = await asyncio.create_subprocess_exec(
            *agent_command(), env=env, cwd=tmp_path, stderr=subprocess.DEVNULL
        )
        try:
            await wait_until(lambda: Lease.filter(agent_id="polite").exists(), limit_s=60)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await wait_until(lambda: Agent.filter(id="polite", online=False).exists(), limit_s=10)
    lease = await Lease.get(agent_id="polite")
    a = await Asset.get(id=asset.id)
    assert lease.status == "released" and a.state is AssetState.READY and a.attempts == 0
