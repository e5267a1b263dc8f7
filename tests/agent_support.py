"""Test support for the agent/lease tests: a library on disk, READY assets, a test processor.

The test processor is our own implementation of the `rush.jobs.Processor` interface
(a legitimate test double, not a fake of a real component): it reads an instruction
from the media file's first line (`ok`, `sleep=<s>`, `fail`, `crash`) and writes real
derivative files under the job's `derived_dir` on the agent's mount.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from rush.jobs import (
    DerivativeRef,
    DerivativeRole,
    JobContext,
    JobFailed,
    JobOutput,
    JobSpec,
    JobType,
)
from rush.layout import init_library
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Asset, Sidecar
from tests.support.broker import BROKER_HOST, BROKER_PORT


def make_library(root: Path) -> str:
    marker, _ = init_library(root)
    return marker.library_id


async def make_asset(
    root: Path,
    name: str,
    *,
    instruction: str = "ok",
    kind: MediaKind = MediaKind.VIDEO,
    state: AssetState = AssetState.READY,
    sidecars: tuple[str, ...] = (),
) -> Asset:
    """A READY asset whose file holds the test processor's instruction."""
    rel = f"INBOX/{name}"
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(instruction + "\n", encoding="utf-8")
    asset = await Asset.create(
        kind=kind, rel_path=rel, path_key=rel, size=path.stat().st_size, state=state
    )
    for ext in sidecars:
        side = path.with_suffix("." + ext)
        side.write_text("sidecar", encoding="utf-8")
        await Sidecar.create(asset=asset, rel_path=str(side.relative_to(root)), size=7)
    return asset


async def make_assets(root: Path, count: int, instruction: str = "ok") -> list[Asset]:
    return [
        await make_asset(root, f"clip{i:04d}.mp4", instruction=instruction) for i in range(count)
    ]


def write_outputs(root: Path, job: JobSpec) -> list[DerivativeRef]:
    """Real files for every role the job's kind requires."""
    folder = root / job.derived_dir
    folder.mkdir(parents=True, exist_ok=True)
    refs = []
    roles = {
        MediaKind.VIDEO: [DerivativeRole.PROXY, DerivativeRole.THUMB],
        MediaKind.AUDIO: [DerivativeRole.PROXY],
        MediaKind.PHOTO: [DerivativeRole.THUMB],
    }[job.kind]
    for role in roles:
        name = f"{role}.bin"
        (folder / name).write_bytes(b"x" * 16)
        refs.append(DerivativeRef(role=role, path=f"{job.derived_dir}/{name}", size=16))
    return refs


class TestProcessor:
    """Runs `process_for_review` by the instruction in the media file."""

    job_type = JobType.PROCESS_FOR_REVIEW
    __test__ = False

    def __init__(self) -> None:
        self.seen: list[str] = []

    def capabilities(self) -> dict[str, Any]:
        return {"test": True}

    async def run(self, job: JobSpec, ctx: JobContext) -> JobOutput:
        self.seen.append(job.asset_uuid)
        instruction = ctx.abs_path(job.paths.main).read_text(encoding="utf-8").strip()
        if instruction.startswith("sleep="):
            total = float(instruction.split("=", 1)[1])
            steps = max(1, int(total / 0.1))
            for i in range(steps):
                await asyncio.sleep(total / steps)
                await ctx.heartbeat((i + 1) / steps)
        elif instruction.startswith("quiet="):
            # A long step that reports nothing: only the runtime's own heartbeats (every
            # `heartbeat_s` of the server's parameters) keep the lease alive.
            await asyncio.sleep(float(instruction.split("=", 1)[1]))
        elif instruction == "fail":
            raise JobFailed("the test media asked to fail")
        elif instruction == "crash":
            raise RuntimeError("the test processor crashed")
        elif instruction == "exit":
            os._exit(3)
        refs = write_outputs(ctx.library_root, job)
        return JobOutput(facts={"test": True, "has_audio": False}, derivatives=refs)


class KindsProcessor(TestProcessor):
    """A `process_for_review` processor that handles only some kinds and says so in its
    capabilities, like the real one on a machine without ffmpeg (photos only): any other
    kind fails, as the real processor would."""

    __test__ = False

    def __init__(self, kinds: tuple[MediaKind, ...], **flags: Any) -> None:
        super().__init__()
        self.kinds = kinds
        self.flags = flags

    def capabilities(self) -> dict[str, Any]:
        return {"kinds": [k.value for k in self.kinds], **self.flags}

    async def run(self, job: JobSpec, ctx: JobContext) -> JobOutput:
        if job.kind not in self.kinds:
            self.seen.append(job.asset_uuid)
            raise JobFailed(f"this agent cannot process {job.kind} (no ffmpeg)")
        return await super().run(job, ctx)


def processors(_config: object = None) -> list[Any]:
    """Factory named by `agent.processors` in subprocess tests."""
    return [TestProcessor()]


def new_prefix() -> str:
    return f"rush-t-{uuid.uuid4().hex[:10]}"


# --- a private Mosquitto started from the shipped deploy/mosquitto/mosquitto.conf ---------

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy" / "mosquitto"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_conf(
    workdir: Path, port: int, *, passwd: Path | None = None, acl: Path | None = None
) -> Path:
    """The shipped config with only paths and the port changed (anonymous without passwd)."""
    lines = []
    for line in (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "password_file":
            line = f"password_file {passwd}" if passwd else ""
        elif key == "acl_file":
            line = f"acl_file {acl}" if acl else ""
        elif key == "allow_anonymous":
            line = f"allow_anonymous {'false' if passwd else 'true'}"
        elif key == "persistence_location":
            line = f"persistence_location {workdir}/"
        lines.append(line)
    if os.geteuid() == 0:
        # Started as root, mosquitto drops to user `mosquitto`, which cannot read the
        # test's private temporary folder; keep the test's own identity instead.
        lines.append("user root")
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return conf


class Mosquitto:
    """A mosquitto process of our own on a free loopback port."""

    def __init__(
        self,
        workdir: Path,
        *,
        passwd: Path | None = None,
        acl: Path | None = None,
        port: int | None = None,
    ):
        import subprocess

        self._subprocess = subprocess
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = mosquitto_conf(workdir, self.port, passwd=passwd, acl=acl)
        self.log = workdir / "mosquitto.log"
        self.proc: Any = None

    def start(self) -> None:
        import socket
        import time

        with open(self.log, "ab") as log:
            self.proc = self._subprocess.Popen(
                ["mosquitto", "-c", str(self.conf)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=10)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(kill=True)


def make_passwd(path: Path, users: dict[str, str]) -> Path:
    import subprocess

    path.write_text("", encoding="utf-8")
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True)
    path.chmod(0o600)
    return path


# --- the server's MQTT actors and in-process agents -------------------------------------

import contextlib  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable  # noqa: E402

from rush.config import Config  # noqa: E402


def make_config(
    root: Path,
    *,
    prefix: str,
    port: int = BROKER_PORT,
    ttl: float = 5.0,
    heartbeat: float = 1.0,
    check: float = 0.2,
    quota: int = 4,
    max_attempts: int = 3,
    max_jobs: int = 1,
    idle_poll: float = 0.2,
    username: str | None = None,
    password: str | None = None,
    grace: float = 5.0,
    processors: str = "tests.agent_support:processors",
) -> Config:
    mqtt: dict[str, Any] = {
        "host": BROKER_HOST if port == BROKER_PORT else "127.0.0.1",
        "port": port,
        "prefix": prefix,
    }
    if username:
        mqtt["username"] = username
        mqtt["password"] = password
    return Config.model_validate(
        {
            "library": {"root": str(root)},
            "mqtt": mqtt,
            "leases": {
                "ttl_s": ttl,
                "heartbeat_s": heartbeat,
                "check_interval_s": check,
                "default_quota": quota,
                "max_attempts": max_attempts,
            },
            "secondary": {"transcription": False, "suggest_tags": False},
            "agent": {
                "library_mount": str(root),
                "max_jobs": max_jobs,
                "idle_poll_s": idle_poll,
                "job_types": ["process_for_review"],
                "shutdown_grace_s": grace,
                "processors": processors,
            },
        }
    )


@contextlib.asynccontextmanager
async def server_actors(config: Config, **ctx_kw: Any) -> AsyncIterator[Any]:
    """The production MQTT wiring of `rush serve` (bridge, jobs, lease keeper, commands)."""
    from rush import events
    from rush.server import ServerContext, build_mqtt_actors

    ctx = ServerContext(config, bus=ctx_kw.pop("bus", None) or events.EventBus(), **ctx_kw)
    actors = build_mqtt_actors(ctx)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(a.run(), name=a.name) for a in actors]
        bridge = ctx.messenger
        await asyncio.wait_for(bridge.connected.wait(), 10)  # type: ignore[union-attr]
        try:
            yield ctx
        finally:
            for task in tasks:
                task.cancel()


@contextlib.asynccontextmanager
async def agents_running(runtimes: list[Any]) -> AsyncIterator[list[Any]]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(r.run()) for r in runtimes]
        try:
            yield runtimes
        finally:
            for r in runtimes:
                r.stop()
            _done, pending = await asyncio.wait(tasks, timeout=15)
            for task in pending:
                task.cancel()


async def wait_until(
    check: Callable[[], Awaitable[bool]], limit_s: float = 30.0, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
