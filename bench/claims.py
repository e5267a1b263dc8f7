"""Claim throughput: N simulated agents against a real Mosquitto and a database pool.

Starts its own Mosquitto with the shipped `deploy/mosquitto/mosquitto.conf` settings
(anonymous for the bench, on a free port), fills a SQLite database with READY assets,
runs the server's MQTT actors in this process and the simulated agents in a child
process (so both sides get their own CPU), then prints claims per second, the p50/p99
claim round trip, the number of double claims (must be 0), the raw QoS 1 round trip
through the same broker made with `mosquitto_pub`/`mosquitto_sub` (and the same between
two aiomqtt clients), and the claims per second the MQTT stack alone allows
(`transport_ceiling_claims_per_s`, with the same number of agents) and the share of it
reached (`ceiling_ratio`; goal >= 0.75 with p99 < 25 ms and 0 double claims).  The
database is SQLite unless `--db postgres` (a fresh database on the server named by
RUSH_BENCH_PG).  The last line is JSON.

    python bench/claims.py [--quick] [--agents 20] [--assets 6000] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# --- child process: the simulated agents -------------------------------------------------


async def agents_main(port: int, prefix: str, agents: int) -> None:
    import orjson

    from integrations.mqtt.client import make_client
    from rush.config import MqttConfig

    cfg = MqttConfig(host="127.0.0.1", port=port, prefix=prefix)
    ready = asyncio.Barrier(agents + 1)
    start_box: dict[str, float] = {}
    results: list[dict[str, Any]] = []

    async def agent(n: int) -> None:
        agent_id = f"bench{n:03d}"
        base = f"{prefix}/agents/{agent_id}"
        rtts: list[float] = []
        got: list[str] = []
        async with make_client(cfg, identifier=f"{agent_id}-{uuid.uuid4().hex[:6]}") as client:
            await client.subscribe(f"{base}/job", qos=1)
            await client.subscribe(f"{base}/config", qos=1)
            register = {"client_id": agent_id, "max_jobs": 10_000}
            await client.publish(f"{base}/register", orjson.dumps(register), qos=1)
            messages = client.messages
            async for message in messages:
                if message.topic.value.endswith("/config"):
                    break
            await ready.wait()
            while True:
                request_id = uuid.uuid4().hex
                body = orjson.dumps({"request_id": request_id, "job_types": ["process_for_review"]})
                t0 = time.perf_counter()
                # As `rush agent`'s bridge publishes: no timeout task per message.
                await client.publish(f"{base}/claim", body, qos=1, timeout=math.inf)
                answer: dict[str, Any] = {}
                async for message in messages:
                    answer = orjson.loads(message.payload)
                    if answer.get("request_id") == request_id:
                        break
                rtts.append((time.perf_counter() - t0) * 1000)
                job = answer.get("job")
                if job is None:
                    rtts.pop()  # the empty answer that ends the run is not a claim
                    break
                got.append(job["asset_uuid"])
        results.append({"agent": agent_id, "rtts": rtts, "assets": got, "end": time.perf_counter()})

    async with asyncio.TaskGroup() as group:
        for n in range(agents):
            group.create_task(agent(n))
        await ready.wait()
        start_box["t"] = time.perf_counter()
    end = max(r["end"] for r in results)
    rtts = [x for r in results for x in r["rtts"]]
    assets = [a for r in results for a in r["assets"]]
    print(
        json.dumps(
            {
                "claims": len(assets),
                "wall_s": end - start_box["t"],
                "rtts": rtts,
                "assets": assets,
            }
        )
    )


# --- parent: broker, database, server ----------------------------------------------------


async def run_agents(port: int, prefix: str, agents: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        str(port),
        prefix,
        str(agents),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    out, _ = await proc.communicate()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def transport_ceiling(port: int, agents: int, claims: int) -> float:
    """Claims per second when the server side is the production MQTT bridge answering
    each claim at once with a canned job and one `events/asset` message, without any
    database: what the MQTT stack alone allows on this machine, in the same run."""
    from integrations.mqtt.client import MqttBridge
    from integrations.mqtt.topics import Topics
    from rush.config import MqttConfig

    prefix = f"rush-ceiling-{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix)
    bridge = MqttBridge(
        MqttConfig(host="127.0.0.1", port=port, prefix=prefix),
        status_topic=topics.server_status,
        workers=64,
    )
    served = 0

    async def on_register(topic: str, _payload: bytes, *, retain: bool) -> None:
        agent = topic.split("/")[-2]
        await bridge.publish(topics.agent_config(agent), {"quota": 1}, retain=True)

    async def on_claim(topic: str, payload: bytes, *, retain: bool) -> None:
        nonlocal served
        import orjson

        agent = topic.split("/")[-2]
        served += 1
        job = None
        if served <= claims:
            asset = str(uuid.uuid4())
            job = {"job_id": str(uuid.uuid4()), "asset_uuid": asset, "lock_token": "t" * 32}
            event = {"uuid": asset, "from": "READY", "to": "PROCESSING_REVIEW", "at": "now"}
            await bridge.publish(topics.events_asset, event)
        answer = {"request_id": orjson.loads(payload)["request_id"], "job": job}
        await bridge.publish(topics.agent_job(agent), answer)

    bridge.subscribe(topics.agents_filter("register"), on_register)
    bridge.subscribe(topics.agents_filter("claim"), on_claim)
    task = asyncio.create_task(bridge.run())
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        child = await run_agents(port, prefix, agents)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return float(child["claims"] / child["wall_s"])


def cli_roundtrip(port: int, prefix: str, rounds: int) -> float:
    """p50 of a QoS 1 request/response made of the broker's own command-line clients.

    One long-lived `mosquitto_pub -l` sends each ping; an echo made of `mosquitto_sub`
    piped into a second `mosquitto_pub -l` answers on the pong topic; a `mosquitto_sub`
    on that topic hands the answer back.  Every hop is a persistent connection, so no
    process start is timed: this is the raw broker round trip, measured in the same run.
    """
    ping, pong = f"{prefix}/raw-cli/ping", f"{prefix}/raw-cli/pong"
    conn = ["-h", "127.0.0.1", "-p", str(port), "-q", "1"]
    echo_sub = subprocess.Popen(
        ["mosquitto_sub", *conn, "-t", ping], stdout=subprocess.PIPE, bufsize=0
    )
    echo_pub = subprocess.Popen(
        ["mosquitto_pub", *conn, "-l", "-t", pong], stdin=echo_sub.stdout, bufsize=0
    )
    listen = subprocess.Popen(["mosquitto_sub", *conn, "-t", pong], stdout=subprocess.PIPE)
    send = subprocess.Popen(
        ["mosquitto_pub", *conn, "-l", "-t", ping], stdin=subprocess.PIPE, bufsize=0
    )
    assert listen.stdout is not None and send.stdin is not None
    answers, stdin = listen.stdout.fileno(), send.stdin
    pending = b""

    def answer(timeout: float) -> bytes | None:
        nonlocal pending
        deadline = time.perf_counter() + timeout
        while b"\n" not in pending:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([answers], [], [], left)[0]:
                return None
            chunk = os.read(answers, 4096)
            if not chunk:
                raise RuntimeError("mosquitto_sub ended during the round-trip measurement")
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        return line

    try:
        # Subscriptions are live once a warm-up line makes the whole loop.
        for _ in range(100):
            stdin.write(b"warm\n")
            if answer(0.1) is not None:
                break
        else:
            raise RuntimeError("the mosquitto_pub/mosquitto_sub echo never answered")
        while answer(0.2) is not None:  # late warm-up echoes
            pass
        times: list[float] = []
        for i in range(rounds):
            expected = str(i).encode()
            t0 = time.perf_counter()
            stdin.write(expected + b"\n")
            while (line := answer(10)) != expected:
                if line is None:
                    raise RuntimeError(f"no echo of round {i} within 10 s")
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        for proc in (send, listen, echo_pub, echo_sub):
            proc.kill()
            proc.wait()
    return statistics.median(times)


async def aiomqtt_roundtrip(port: int, prefix: str, rounds: int) -> float:
    """p50 of a QoS 1 request/response between two aiomqtt clients through the broker."""
    from integrations.mqtt.client import make_client
    from rush.config import MqttConfig

    cfg = MqttConfig(host="127.0.0.1", port=port)
    ping, pong = f"{prefix}/raw/ping", f"{prefix}/raw/pong"
    async with make_client(cfg) as a, make_client(cfg) as b:
        await a.subscribe(pong, qos=1)
        await b.subscribe(ping, qos=1)

        async def echo() -> None:
            echoed = 0
            async for message in b.messages:
                await b.publish(pong, message.payload, qos=1)
                echoed += 1
                if echoed == rounds:
                    return

        async with asyncio.TaskGroup() as group:
            group.create_task(echo())
            times: list[float] = []
            stream = a.messages
            for i in range(rounds):
                t0 = time.perf_counter()
                await a.publish(ping, str(i).encode(), qos=1)
                await stream.__anext__()
                times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def main_async(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    from rush.layout import init_library
    from rush.lifecycle import AssetState
    from rush.media import MediaKind
    from rush.models import Asset, AssetEvent, Lease
    from rush.server import freeze_startup_heap
    from rush.storage import close_db, init_db
    from tests.agent_support import Mosquitto, make_config, server_actors

    work = Path(tempfile.mkdtemp(prefix="rush-bench-"))
    broker = Mosquitto(work / "broker")
    broker.start()
    prefix = f"rush-bench-{uuid.uuid4().hex[:8]}"
    try:
        root = work / "lib"
        init_library(root)
        await init_db(dsn or f"sqlite://{work / 'rush.db'}")
        try:
            assets = [
                Asset(
                    kind=MediaKind.VIDEO,
                    rel_path=f"INBOX/b/{i:06d}.mp4",
                    path_key=f"INBOX/b/{i:06d}.mp4",
                    state=AssetState.READY,
                )
                for i in range(args.assets)
            ]
            await Asset.bulk_create(assets, batch_size=1000)
            rounds = 300 if args.quick else 1000
            raw = await asyncio.to_thread(cli_roundtrip, broker.port, prefix, rounds)
            raw_aiomqtt = await aiomqtt_roundtrip(broker.port, prefix, rounds)
            config = make_config(root, prefix=prefix, port=broker.port, ttl=600, heartbeat=60)
            config.leases.default_quota = 100_000
            config.leases.check_interval_s = 30
            freeze_startup_heap()  # as `rush serve` does once its actors are built
            async with server_actors(config):
                child = await run_agents(broker.port, prefix, args.agents)
            per_asset: dict[str, int] = {}
            for event in await AssetEvent.filter(trigger="claim"):
                per_asset[str(event.asset_id)] = per_asset.get(str(event.asset_id), 0) + 1
            db_doubles = sum(n - 1 for n in per_asset.values() if n > 1)
            leases = await Lease.all().values_list("asset_id", flat=True)
            lease_doubles = len(leases) - len(set(leases))
            answer_doubles = len(child["assets"]) - len(set(child["assets"]))
        finally:
            await close_db()
        ceiling = await transport_ceiling(broker.port, args.agents, min(args.assets, 5000))
    finally:
        broker.stop(kill=True)
    rtts = child["rtts"]
    claims_per_s = child["claims"] / child["wall_s"]
    return {
        "db": args.db,
        "agents": args.agents,
        "claims": child["claims"],
        "claims_per_s": round(claims_per_s, 1),
        "p50_ms": round(percentile(rtts, 0.5), 3),
        "p99_ms": round(percentile(rtts, 0.99), 3),
        "double_claims": db_doubles + lease_doubles + answer_doubles,
        "raw_roundtrip_ms": round(raw, 3),
        "aiomqtt_roundtrip_ms": round(raw_aiomqtt, 3),
        "transport_ceiling_claims_per_s": round(ceiling, 1),
        "ceiling_ratio": round(claims_per_s / ceiling, 3),
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        import uvloop

        uvloop.run(agents_main(int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small pool, under a minute")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--assets", type=int, default=None)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    if args.assets is None:
        args.assets = 1500 if args.quick else 10_000
    import logging

    logging.basicConfig(level=logging.WARNING)
    import uvloop

    with contextlib.ExitStack() as stack:
        dsn = ""
        if args.db == "postgres":
            sys.path.insert(0, str(REPO / "bench"))
            from pgdb import fresh_database

            dsn = stack.enter_context(fresh_database("claims"))
        result = uvloop.run(main_async(args, dsn))
    print(
        f"{result['db']}, {result['agents']} agents, {result['claims']} claims: "
        f"{result['claims_per_s']} claims/s, p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, double claims {result['double_claims']}; "
        f"raw QoS 1 round trip p50 {result['raw_roundtrip_ms']} ms with mosquitto_pub/"
        f"mosquitto_sub, {result['aiomqtt_roundtrip_ms']} ms between two aiomqtt clients; "
        "the MQTT stack "
        f"alone (no database) allows {result['transport_ceiling_claims_per_s']} claims/s "
        f"(ratio {result['ceiling_ratio']})"
    )
    print(json.dumps(result))
    return 0 if result["double_claims"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
