"""The MQTT bridge stops within the supervisor's deadline, even when the broker stalls.

Why this case: under load (a flood of messages) a broker reads slowly, the bridge's TCP
send buffer fills, and neither the `offline` goodbye nor the DISCONNECT can be written.
aiomqtt then gives up on the disconnect with an `MqttError`, which used to replace the
cancellation: the bridge took it for a lost connection and reconnected, for ever, until
the supervisor abandoned it.  Real Mosquitto on 1883, behind a TCP relay the test can
stall.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from actors.supervisor import Supervisor
from integrations.mqtt.client import MqttBridge
from rush.config import MqttConfig

pytestmark = pytest.mark.mqtt


class StallingRelay:
    """Forwards TCP to Mosquitto until `stall()`: then it stops reading from the client."""

    def __init__(self) -> None:
        self.stalled = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 1883)
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
