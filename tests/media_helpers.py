"""Test media made on the spot (ffmpeg lavfi sources, Pillow, espeak-ng) and a job context.

Small and short on purpose (320x240, 2 s) so the processing tests stay fast.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from rush.jobs import JobPaths, JobSpec, JobType
from rush.layout import derived_dir, resolve
from rush.media import MediaKind

RED = (255, 0, 0)
BLUE = (0, 0, 255)


class Ctx:
    """Our own JobContext for tests: records heartbeats, maps paths like the runtime."""

    def __init__(self, root: Path) -> None:
        self.library_root = root
        self.progress: list[float] = []

    async def heartbeat(self, progress: float) -> None:
        self.progress.append(progress)

    def abs_path(self, rel: str) -> Path:
        return resolve(self.library_root, rel)


def make_job(
    kind: MediaKind,
    main: str,
    job_type: JobType = JobType.PROCESS_FOR_REVIEW,
    inputs: dict[str, Any] | None = None,
) -> JobSpec:
    asset = uuid.uuid4()
    return JobSpec(
        job_id=uuid.uuid4().hex,
        type=job_type,
        asset_uuid=str(asset),
        kind=kind,
        lock_token=uuid.uuid4().hex,
        lease_expires_at=datetime.now(UTC),
        paths=JobPaths(main=main),
        derived_dir=derived_dir(asset, 1),
        version=1,
        inputs=inputs or {},
    )


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=120,
    )


def video(
    dst: Path,
    *,
    audio: bool = True,
    seconds: float = 2,
    size: str = "320x240",
    rate: int = 25,
    extra: tuple[str, ...] = (),
) -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ffmpeg(*args, *extra, str(dst))
    return dst


def audio(dst: Path, seconds: float = 2, codec: tuple[str, ...] = ()) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", *codec, str(dst))
    return dst


def silence(dst: Path, seconds: float = 3) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={seconds}", str(dst))
    return dst


def speech(dst: Path, text: str, voice: str = "ko") -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(dst), text], check=True, timeout=60)
    return dst


def asymmetric_photo(
    dst: Path, orientation: int, fmt: str, exif_extra: dict[int, Any] | None = None
) -> Path:
    """200x100 stored pixels: left half red, right half blue, with an EXIF orientation."""
    img = Image.new("RGB", (200, 100), BLUE)
    img.paste(RED, (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    for key, value in (exif_extra or {}).items():
        exif[key] = value
    img.save(dst, fmt, exif=exif)
    return dst


def truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def garbage(dst: Path, size: int = 50_000) -> Path:
    dst.write_bytes(os.urandom(size))
    return dst


def listing(root: Path) -> set[str]:
    """Every path under `root` (to prove originals' folders are untouched)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}
