"""Topics and payloads of the MQTT contract (pure), manual triggers and the bridge itself."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from integrations.mqtt.broker import EmbeddedBroker
from integrations.mqtt.client import MqttBridge, make_client
from integrations.mqtt.payloads import (
    ClaimPayload,
    HeartbeatPayload,
    RegisterPayload,
    ResultPayload,
    decode,
    progress_fraction,
    split_job_types,
)
from integrations.mqtt.topics import TopicKind, Topics, topic_matches
from rush import events
from rush.commands import CommandRegistry, scan_handler
from rush.config import MqttConfig
from rush.jobs import JobType
from tests.agent_support import free_port, make_config, make_library, new_prefix, server_actors
from tests.support.broker import BROKER_HOST, BROKER_PORT


def test_topics_build_and_parse() -> None:
    t = Topics("home/rush")
    assert t.server_status == "home/rush/server/status"
    assert t.agent_claim("pi-1") == "home/rush/agents/pi-1/claim"
    assert t.cmd_result("seedbox/run") == "home/rush/cmd/seedbox/run/result"
    job = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert t.job_result("pi-1", job) == f"home/rush/agents/pi-1/jobs/{job}/result"
    p = t.parse(f"home/rush/agents/pi-1/jobs/{job}/heartbeat")
    assert p is not None and (p.kind, p.agent_id, p.job_id) == (TopicKind.HEARTBEAT, "pi-1", job)
    assert t.parse("home/rush/cmd/seedbox/run") == t.parse("home/rush/cmd/seedbox/run")
    cmd = t.parse("home/rush/cmd/seedbox/run")
    assert cmd is not None and cmd.kind is TopicKind.COMMAND and cmd.command == "seedbox/run"
    res = t.parse("home/rush/cmd/scan/result")
    assert res is not None and res.kind is TopicKind.COMMAND_RESULT
    for bad in (
        "other/agents/a/claim",
        "home/rush/agents/a b/claim",
        "home/rush/agents/a/unknown",
        "home/rush/agents/a/jobs/x/what",
        "home/rush/cmd/../x",
        "home/rush/cmd/SCAN",
        "home/rushx/agents/a/claim",
    ):
        assert t.parse(bad) is None, bad
    with pytest.raises(ValueError):
        t.agent_claim("a/b")
    with pytest.raises(ValueError):
        t.agent_claim("#")
    with pytest.raises(ValueError):
        Topics("rush/#")
    assert topic_matches("rush/agents/+/jobs/+/result", f"rush/agents/a/jobs/{job}/result")
    assert not topic_matches("rush/agents/+/claim", "rush/agents/a/b/claim")
    assert topic_matches("rush/cmd/#", "rush/cmd/seedbox/run")


def test_decode_drops_bad_payloads(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    ok = decode(
        ClaimPayload,
        b'{"request_id":"r1","job_types":["transcription"]}',
        topic="t",
        max_bytes=1024,
    )
    assert ok is not None and ok.request_id == "r1"
    for raw in (
        b"",
        b"{",
        b"[]",
        b'"s"',
        b'{"request_id":"r\\u00071","job_types":["transcription"]}',
        b'{"request_id":"r1","job_types":[]}',
        b'{"request_id":"' + b"x" * 2000 + b'","job_types":["transcription"]}',
    ):
        assert decode(ClaimPayload, raw, topic="t", max_bytes=4096) is None, raw
    assert (
        decode(RegisterPayload, b'{"client_id":"a","max_jobs":100000}', topic="t", max_bytes=99)
        is None
    )
    assert (
        decode(
            ResultPayload, b'{"lock_token":"abcdefgh","status":"maybe"}', topic="t", max_bytes=999
        )
        is None
    )
    assert "dropped" in caplog.text
    # Unknown keys from a newer agent are ignored, not fatal.
    reg = decode(RegisterPayload, b'{"client_id":"a","future":1}', topic="t", max_bytes=999)
    assert reg is not None and reg.client_id == "a"


@pytest.mark.parametrize(
    "request_id",
    [
        "r1",
        "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
        "agent #3 / claim (42)",
        pytest.param("é" * 64, id="64-non-ascii"),
    ],
)
def test_request_id_is_any_opaque_text(request_id: str) -> None:
    raw = orjson.dumps({"request_id": request_id, "job_types": ["transcription"]})
    claim = decode(ClaimPayload, raw, topic="t", max_bytes=4096)
    assert claim is not None and claim.request_id == request_id


@pytest.mark.parametrize("request_id", ["", "x" * 65, "a\nb", "a\x00b", "tab\there", "\x7f"])
def test_request_id_refuses_control_characters_and_length(request_id: str) -> None:
    raw = orjson.dumps({"request_id": request_id, "job_types": ["transcription"]})
    assert decode(ClaimPayload, raw, topic="t", max_bytes=4096) is None


def test_unknown_job_types_are_split_off_not_fatal() -> None:
    raw = b'{"request_id":"r1","job_types":["rm -rf","transcription","transcription"]}'
    claim = decode(ClaimPayload, raw, topic="t", max_bytes=4096)
    assert claim is not None
    assert split_job_types(claim.job_types) == ([JobType.TRANSCRIPTION], ["rm -rf"])
    reg = decode(RegisterPayload, b'{"client_id":"a","job_types":["x9"]}', topic="t", max_bytes=99)
    assert reg is not None and split_job_types(reg.job_types) == ([], ["x9"])
    for wrong in (b'{"request_id":"r1","job_types":[5]}', b'{"request_id":"r1","job_types":"x"}'):
        assert decode(ClaimPayload, wrong, topic="t", max_bytes=4096) is None


def test_heartbeat_progress_is_normalised_never_fatal() -> None:
    assert [progress_fraction(v) for v in (None, 0, 0.4, 1, 42, 100, 100.5, -1)] == [
        None, 0, 0.4, 1, 0.42, 1.0, None, None,
    ]  # fmt: skip
    hb = decode(
        HeartbeatPayload, b'{"lock_token":"abcdefgh","progress":250}', topic="t", max_bytes=99
    )
    assert hb is not None and hb.progress == 250
    bad = b'{"lock_token":"abcdefgh","progress":"half"}'
    assert decode(HeartbeatPayload, bad, topic="t", max_bytes=99) is None  # wrong type: dropped


async def test_command_registry() -> None:
    reg = CommandRegistry()

    @dataclasses.dataclass
    class Report:
        found: int
        path: Path

    class Scanner:
        async def scan_once(self) -> Report:
            return Report(3, Path("INBOX"))

    async def boom(_payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("nope")

    reg.register("scan", scan_handler(Scanner()))
    reg.register("boom", boom)
    with pytest.raises(ValueError):
        reg.register("scan", boom)
    with pytest.raises(ValueError):
        reg.register("bad/result", boom)
    assert await reg.execute("scan", {}) == {
        "command": "scan",
        "ok": True,
        "result": {"found": 3, "path": "INBOX"},
    }
    out = await reg.execute("boom", {})
    assert out["ok"] is False and "nope" in out["error"]
    assert (await reg.execute("nothing", {}))["ok"] is False


async def test_commands_and_events_over_mqtt(db: str, tmp_path: Path) -> None:
    prefix = new_prefix()
    root = tmp_path / "lib"
    make_library(root)
    config = make_config(root, prefix=prefix)
    reg = CommandRegistry()
    calls: list[dict[str, Any]] = []

    async def apply(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload)
        return {"dry_run": payload.get("dry_run", True)}

    reg.register("apply", apply)
    bus = events.EventBus()
    async with server_actors(config, commands=reg, bus=bus), make_client(config.mqtt) as c:
        await c.subscribe(f"{prefix}/cmd/+/result", qos=1)
        await c.subscribe(f"{prefix}/events/asset", qos=1)
        await c.subscribe(f"{prefix}/server/status", qos=1)
        await c.publish(f"{prefix}/cmd/apply", b"", qos=1)
        await c.publish(f"{prefix}/cmd/apply", b"[1]", qos=1)
        await c.publish(f"{prefix}/cmd/nope", b"{}", qos=1)
        bus.publish("asset", {"uuid": "u", "from": "READY", "to": "PROCESSING_REVIEW", "at": "t"})
        got: dict[str, list[Any]] = {}

        async def collect() -> None:
            async for m in c.messages:
                value = (
                    m.payload.decode()
                    if m.topic.value.endswith("status")
                    else orjson.loads(m.payload)
                )
                got.setdefault(m.topic.value, []).append(value)
                if sum(len(v) for v in got.values()) >= 5:
                    return

        await asyncio.wait_for(collect(), 10)
    results = got[f"{prefix}/cmd/apply/result"]
    assert {"command": "apply", "ok": True, "result": {"dry_run": True}} in results
    assert any(r["ok"] is False and "JSON object" in r["error"] for r in results)
    assert got[f"{prefix}/cmd/nope/result"][0]["ok"] is False
    assert got[f"{prefix}/events/asset"][0]["to"] == "PROCESSING_REVIEW"
    assert got[f"{prefix}/server/status"] == ["online"]
    assert calls == [{}]


async def test_embedded_broker_and_retained_status(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    broker = EmbeddedBroker(port)
    prefix = new_prefix()
    cfg = MqttConfig(host="", embedded_port=port, prefix=prefix)
    bridge = MqttBridge(
        cfg,
        status_topic=f"{prefix}/server/status",
        host="127.0.0.1",
        port=port,
        not_before=broker.settled,
    )
    received: list[bytes] = []

    async def handler(_topic: str, payload: bytes, *, retain: bool) -> None:
        received.append(payload)

    bridge.subscribe(f"{prefix}/ping", handler)
    async with asyncio.TaskGroup() as group:
        # The bridge starts first, as it may under the supervisor.
        tasks = [group.create_task(bridge.run())]
        await asyncio.sleep(0.3)
        tasks.append(group.create_task(broker.run()))
        await asyncio.wait_for(bridge.connected.wait(), 10)
        await bridge.publish(f"{prefix}/ping", {"n": 1})
        async with make_client(MqttConfig(host="127.0.0.1", port=port)) as c:
            await c.subscribe(f"{prefix}/server/status", qos=1)
            first = await asyncio.wait_for(c.messages.__anext__(), 5)
            assert first.payload == b"online" and first.retain
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
    assert received == [b'{"n":1}']
    # The bridge waited for the broker of its process: no refused first connection.
    assert "lost or refused" not in caplog.text


async def test_embedded_broker_on_a_taken_port_says_so_once_and_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another broker (e.g. Mosquitto) already on the port: one clear error, no restart loop."""
    import socket

    from actors.supervisor import Backoff, FunctionActor, Supervisor

    caplog.set_level(logging.INFO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = EmbeddedBroker(port)
        supervisor = Supervisor(
            [broker, FunctionActor("idle", asyncio.Event().wait)],
            backoff=Backoff(initial=0.01, maximum=0.05),
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(supervisor.run(install_signals=False))
            await asyncio.sleep(1.0)
            supervisor.stop()
    status = supervisor.status[broker.name]
    assert status.restarts == 0 and not status.running
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert f"127.0.0.1:{port} is already in use" in message
    assert "mqtt.host" in message and "mqtt.embedded_port" in message


async def test_bridge_queues_while_broker_is_down(tmp_path: Path) -> None:
    from tests.agent_support import Mosquitto

    broker = Mosquitto(tmp_path / "b")
    prefix = new_prefix()
    cfg = MqttConfig(host="127.0.0.1", port=broker.port, prefix=prefix)
    bridge = MqttBridge(cfg, status_topic=f"{prefix}/server/status", queue_limit=3, backoff_max=0.3)
    for n in range(5):
        await bridge.publish(f"{prefix}/q", {"n": n})  # broker not even started
    assert bridge.pending() == 3 and bridge.stats.dropped_outgoing == 2
    try:
        broker.start()
        async with asyncio.TaskGroup() as group:
            task = group.create_task(bridge.run())
            await asyncio.wait_for(bridge.connected.wait(), 10)
            for _ in range(100):
                if bridge.stats.published >= 3:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
        assert bridge.pending() == 0 and bridge.stats.published >= 3
    finally:
        broker.stop(kill=True)


async def test_bridge_keeps_a_message_the_broker_never_acknowledged(tmp_path: Path) -> None:
    """A publish still waiting for its PUBACK when the session ends is sent again later."""
    import os
    import signal

    from tests.agent_support import Mosquitto

    broker = Mosquitto(tmp_path / "b")
    prefix = new_prefix()
    cfg = MqttConfig(host="127.0.0.1", port=broker.port, prefix=prefix)
    bridge = MqttBridge(cfg, status_topic=f"{prefix}/server/status")
    broker.start()
    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(bridge.run())
            await asyncio.wait_for(bridge.connected.wait(), 10)
            os.kill(broker.proc.pid, signal.SIGSTOP)  # the broker hears nothing more
            try:
                await bridge.publish(f"{prefix}/q", {"n": 1})
                for _ in range(100):
                    if bridge.pending() == 0:
                        break
                    await asyncio.sleep(0.01)
                assert bridge.pending() == 0  # handed to the socket, not acknowledged
                task.cancel()
            finally:
                os.kill(broker.proc.pid, signal.SIGCONT)
        assert bridge.pending() == 1 and bridge.stats.published == 0
    finally:
        broker.stop(kill=True)


async def test_bridge_routes_each_topic_to_its_handlers() -> None:
    prefix = new_prefix()
    bridge = MqttBridge(MqttConfig(prefix=prefix), status_topic=f"{prefix}/server/status")
    seen: list[tuple[str, str]] = []

    def handler(name: str) -> Any:
        async def handle(topic: str, _payload: bytes, *, retain: bool) -> None:
            seen.append((name, topic))

        return handle

    bridge.subscribe(f"{prefix}/agents/+/claim", handler("claim"))
    bridge.subscribe(f"{prefix}/agents/#", handler("all"))
    topic = f"{prefix}/agents/a1/claim"
    assert [f for f, _h in bridge._routes(topic)] == [
        f"{prefix}/agents/+/claim",
        f"{prefix}/agents/#",
    ]
    bridge.subscribe(f"{prefix}/agents/a1/+", handler("late"))  # a later subscription counts
    assert len(bridge._routes(topic)) == 3
    assert bridge._routes(f"{prefix}/cmd/scan") == []


async def test_embedded_broker_keeps_quick_qos0_commands_and_foreign_retained() -> None:
    """`mosquitto_pub -t rush/cmd/scan -m '{}'` (QoS 0, connect-publish-disconnect) must
    reach the server through the embedded broker, and a client gets retained messages
    only for its own subscriptions (amqtt sent every client those of every filter)."""
    port = free_port()
    broker = EmbeddedBroker(port)
    task = asyncio.create_task(broker.run())
    try:
        await asyncio.wait_for(broker.started.wait(), 10)
        cfg = MqttConfig(host="127.0.0.1", port=port)
        async with make_client(cfg) as server:
            for n in range(20):  # the retained presence of twenty agents
                await server.publish(f"t/agents/a{n}/status", b"online", qos=1, retain=True)
            await server.subscribe("t/agents/+/status", qos=1)
            await server.subscribe("t/cmd/+", qos=1)
            async with make_client(cfg) as human:
                await human.subscribe("t/cmd/+/result", qos=1)
                foreign = []
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        async for message in human.messages:
                            foreign.append(message.topic.value)
                assert foreign == []
            for i in range(20):
                pub = await asyncio.create_subprocess_exec(
                    "mosquitto_pub", "-p", str(port), "-t", f"t/cmd/c{i}", "-m", "{}"
                )
                assert await pub.wait() == 0
            got: set[str] = set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    async for message in server.messages:
                        if message.topic.value.startswith("t/cmd/"):
                            got.add(message.topic.value)
                        if len(got) == 20:
                            break
            assert len(got) == 20, sorted(got)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_command_relay_is_bounded_and_says_what_it_dropped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A one-shot command's event relay keeps at most QUEUE_LIMIT events (the newest),
    publishes them at QoS 1 and reports the rest instead of growing without bound."""
    from integrations.mqtt import relay
    from rush import events

    monkeypatch.setattr(relay, "QUEUE_LIMIT", 10)
    prefix = new_prefix()
    bus = events.EventBus()
    got: list[bytes] = []
    async with make_client(MqttConfig(host=BROKER_HOST, port=BROKER_PORT)) as watcher:
        await watcher.subscribe(f"{prefix}/events/#", qos=1)
        cfg = MqttConfig(host=BROKER_HOST, port=BROKER_PORT, prefix=prefix)
        async with relay.CommandEventRelay(cfg, bus=bus) as r:
            for i in range(50):  # faster than any broker: no await in between
                bus.publish("asset", {"uuid": f"u{i}", "from": "A", "to": "B"})
            bus.publish("batch", {"kind": "apply", "moved": 50})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                async for message in watcher.messages:
                    got.append(message.payload)  # type: ignore[arg-type]
                    if b'"kind":"apply"' in message.payload:  # type: ignore[operator]
                        break
    assert r.sent >= 10 and got[-1] == b'{"kind":"apply","moved":50}'
    assert "were not published to MQTT: more than 10 were waiting at once" in caplog.text


async def test_an_mqtt5_agent_bridge_falls_back_to_311_on_the_embedded_broker() -> None:
    """amqtt (the demo's and single-box default broker) drops an MQTT 5 CONNECT without a
    CONNACK: the agent's bridge, which asks for MQTT 5 to see refusals, must try 3.1.1
    then instead of timing out for ever (the demo's agent never connected)."""
    port = free_port()
    broker = EmbeddedBroker(port)
    prefix = new_prefix()
    cfg = MqttConfig(host="127.0.0.1", port=port, prefix=prefix)
    bridge = MqttBridge(cfg, status_topic=f"{prefix}/agents/a1/status", mqtt5=True, backoff_max=1.0)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(broker.run())]
        await asyncio.wait_for(broker.settled.wait(), 10)
        tasks.append(group.create_task(bridge.run()))
        try:
            await asyncio.wait_for(bridge.connected.wait(), 60)
        finally:
            for task in tasks:
                task.cancel()
    assert bridge.mqtt5 is False


async def test_an_mqtt5_bridge_keeps_mqtt5_when_the_broker_was_only_away() -> None:
    """Mosquitto speaks MQTT 5: a bridge that found it away at first must not stay on
    3.1.1 (it would lose the reason codes of refused publishes)."""
    port = free_port()
    prefix = new_prefix()
    cfg = MqttConfig(host="127.0.0.1", port=port, prefix=prefix)
    bridge = MqttBridge(cfg, status_topic=f"{prefix}/agents/a1/status", mqtt5=True, backoff_max=0.5)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(bridge.run())
        await asyncio.sleep(1.5)  # a few refused attempts, with both versions
        relay = await asyncio.start_server(
            lambda r, w: _pipe_to(r, w, BROKER_HOST, BROKER_PORT), "127.0.0.1", port
        )
        try:
            await asyncio.wait_for(bridge.connected.wait(), 30)
            assert bridge.mqtt5 is True
        finally:
            task.cancel()
            relay.close()


async def _pipe_to(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    """Forward one TCP connection to the shared broker (it listens on its own port)."""
    up_reader, up_writer = await asyncio.open_connection(host, port)

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()

    await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer), return_exceptions=True)
