"""The MQTT bridge stops within the supervisor's deadline, even when the broker stalls.

Why this case: under load (a flood of messages) a broker reads slowly, the bridge's TCP
send buffer fills, and neither the `offline` goodbye nor the DISCONNECT can be written.
aiomqtt then gives up on the disconnect with an `MqttError`, which used to replace the
cancellation: the bridge took it for a lost connection and reconnected, for ever, until
the supervisor abandoned it.  The shared Mosquitto (RUSH_TEST_MQTT), behind a TCP relay the test can
stall.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from actors.supervisor import Supervisor
from integrations.mqtt.client import MqttBridge
from rush.config import MqttConfig
from tests.support.broker import BROKER_HOST, BROKER_PORT

pytestmark = pytest.mark.mqtt


class StallingRelay:
    """Forwards TCP to Mosquitto until `stall()`: then it stops reading from the client."""

    def __init__(self) -> None:
        self.stalled = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(BROKER_HOST, BROKER_PORT)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            try:
                while True:
                    if up and self.stalled.is_set():
                        await asyncio.Event().wait()  # never read again: buffers fill up
                    data = await src.read(65536)
                    if not data:
                        break
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def stall(self) -> None:
        self.stalled.set()

    def close(self) -> None:
        for w in self.writers:
            w.transport.abort()


@pytest.mark.parametrize("run", range(3))
async def test_bridge_stops_in_time_when_the_broker_stalls(run: int) -> None:
    relay = StallingRelay()
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    prefix = f"rush-t-{uuid.uuid4().hex[:8]}"
    bridge = MqttBridge(
        MqttConfig(host="127.0.0.1", port=port, prefix=prefix),
        status_topic=f"{prefix}/server/status",
    )
    supervisor = Supervisor([bridge], shutdown_timeout=5.0)
    try:
        async with asyncio.timeout(60), asyncio.TaskGroup() as group:
            group.create_task(supervisor.run(install_signals=False))
            await asyncio.wait_for(bridge.connected.wait(), 10)
            relay.stall()
            for n in range(3000):  # ~30 MB: far more than the socket buffers hold
                await bridge.publish(f"{prefix}/flood/{n % 10}", b"x" * 10_000, qos=0)
            await asyncio.sleep(1.0)  # let the sender fill the buffers
            assert bridge.pending() > 0, "the stalled relay absorbed everything"
            supervisor.stop()
        assert supervisor.abandoned == []
        assert bridge.stats.connects == 1, "reconnected while shutting down"
    finally:
        for task in list(supervisor._runs):  # an abandoned bridge must not outlive the test
            task.cancel()
        relay.close()
        server.close()


async def test_bridge_reconnects_when_the_broker_drops_it() -> None:
    """The connection cut under the message loop: the bridge reconnects; it used to die
    of an `ExceptionGroup` its own reconnect loop did not catch (seen as a traceback from
    `rush agent` when the demo's embedded broker stopped first)."""
    relay = StallingRelay()
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    prefix = f"rush-t-{uuid.uuid4().hex[:8]}"
    bridge = MqttBridge(
        MqttConfig(host="127.0.0.1", port=port, prefix=prefix),
        status_topic=f"{prefix}/server/status",
    )
    task = asyncio.get_running_loop().create_task(bridge.run())
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        relay.close()  # the broker side goes away
        async with asyncio.timeout(30):
            while bridge.stats.connects < 2 and not task.done():  # noqa: ASYNC110 - a counter
                await asyncio.sleep(0.05)
        assert not task.done(), task.exception()
        assert bridge.stats.connects == 2
    finally:
        task.cancel()
        await asyncio.wait({task})
        relay.close()
        server.close()


def test_rush_serve_stops_cleanly_on_sigterm_every_time(tmp_path: Path) -> None:
    """`rush serve` on the real Mosquitto, stopped with SIGTERM at different moments of
    its start-up and life, several times: exit 0, and no actor abandoned."""
    from rush.layout import init_library
    from tests.conftest import free_port, rush_env

    library = tmp_path / "lib"
    init_library(library)
    tag = uuid.uuid4().hex[:8]
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[library]
root = "{library}"
[mqtt]
host = "{BROKER_HOST}"
port = {BROKER_PORT}
prefix = "rush-t-{tag}"
[homeassistant]
discovery_prefix = "ha-t-{tag}"
node_id = "rc_{tag}"
[web]
port = {free_port()}
""",
        encoding="utf-8",
    )
    for run, after in enumerate((0.0, 0.5, 1.5, 3.0, 1.0, 2.0)):
        log = tmp_path / f"serve{run}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rush", "serve", "--config", str(config)],
                env=rush_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                for _ in range(600):  # until the supervisor runs (signals handled)
                    if b"supervisor: started" in log.read_bytes():
                        break
                    time.sleep(0.05)
                time.sleep(after)
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        text = log.read_text(errors="replace")
        assert code == 0, (run, code, text[-2000:])
        assert "abandoning" not in text and "Traceback" not in text, (run, text[-2000:])
        assert "rush serve stopped" in text, (run, text[-2000:])
    subprocess.run(
        ["mosquitto_sub", "-h", BROKER_HOST, "-p", str(BROKER_PORT), "-t", f"rush-t-{tag}/#", "-t", f"ha-t-{tag}/#",
         "--remove-retained", "--retained-only", "-W", "1"],
        capture_output=True, timeout=10, check=False,
    )  # fmt: skip


async def test_bridge_stops_when_cancelled_at_any_moment_of_its_start() -> None:
    """Stop the supervisor 0 to 20 ms after it started the bridge, 80 times: the moment
    the broker's CONNACK (or SUBACK) arrives is in there, where Python 3.11's
    `asyncio.wait_for` used to swallow the cancellation and the bridge ran on."""
    prefix = f"rush-t-{uuid.uuid4().hex[:8]}"
    stuck: list[float] = []
    for i in range(80):
        delay = (i % 40) * 0.0005
        bridge = MqttBridge(
            MqttConfig(host=BROKER_HOST, port=BROKER_PORT, prefix=prefix),
            status_topic=f"{prefix}/server/status",
        )
        bridge.subscribe(f"{prefix}/cmd/#", _ignore)
        supervisor = Supervisor([bridge], shutdown_timeout=2.0)
        run = asyncio.get_running_loop().create_task(supervisor.run(install_signals=False))
        await asyncio.sleep(delay)
        supervisor.stop()
        await run
        if supervisor.abandoned:
            stuck.append(delay)
            for task in list(supervisor._runs):
                task.cancel()
    assert stuck == [], f"abandoned when stopped after {stuck} s"


async def _ignore(_topic: str, _payload: bytes, *, retain: bool) -> None:
    pass
