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
        elif instruction == "fail":
            raise JobFailed("the test media asked to fail")
        elif instruction == "crash":
            raise RuntimeError("the test processor crashed")
        elif instruction == "exit":
            os._exit(3)
        refs = write_outputs(ctx.library_root, job)
        return JobOutput(facts={"test": True, "has_audio": False}, derivatives=refs)


def processors(_config: object = None) -> list[Any]:
    """Factory named by `agent.processors` in subprocess tests."""
    return [TestProcessor()]


def new_prefix() -> str:
    return f"rush-t-{uuid.uuid4().hex[:10]}"
