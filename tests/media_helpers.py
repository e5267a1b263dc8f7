"""Test media made on the spot (ffmpeg lavfi sources, Pillow, espeak-ng) and a job context.

Small and short on purpose (320x240, 2 s) so the processing tests stay fast.
"""

from __future__ import annotations

import os
import struct
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
    if fmt == "HEIF":  # Pillow writes HEIF only through pillow-heif's plug-in
        import pillow_heif

        pillow_heif.register_heif_opener()
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


def write_dng(
    path: Path,
    width: int = 400,
    height: int = 200,
    orientation: int = 1,
    make: str = "Canon",
    model: str = "Canon EOS R5",
) -> Path:
    """A minimal uncompressed DNG that LibRaw decodes: one IFD, a 16-bit RGGB mosaic.

    Left half red, right half blue (as stored), like `asymmetric_photo`; no preview, so
    rawpy must demosaic it.
    """
    data = bytearray()
    for y in range(height):
        for x in range(width):
            red_side = x < width // 2
            site = (y % 2) * 2 + (x % 2)  # RGGB: 0 = R, 3 = B, else G
            high = (site == 0 and red_side) or (site == 3 and not red_side)
            data += struct.pack("<H", 60000 if high else 2000)
    byte, ascii_, short, long_, rational, srational = 1, 2, 3, 4, 5, 10
    packers = {
        byte: lambda v: bytes(v),
        ascii_: lambda v: v.encode() + b"\0",
        short: lambda v: struct.pack(f"<{len(v)}H", *v),
        long_: lambda v: struct.pack(f"<{len(v)}I", *v),
        rational: lambda v: b"".join(struct.pack("<II", n, d) for n, d in v),
        srational: lambda v: b"".join(struct.pack("<ii", n, d) for n, d in v),
    }
    identity = [(1, 1), (0, 1), (0, 1), (0, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1)]
    tags: list[tuple[int, int, Any]] = [
        (254, long_, [0]), (256, long_, [width]), (257, long_, [height]),
        (258, short, [16]), (259, short, [1]), (262, short, [32803]),
        (271, ascii_, make), (272, ascii_, model), (273, long_, [0]),
        (274, short, [orientation]), (277, short, [1]), (278, long_, [height]),
        (279, long_, [len(data)]), (284, short, [1]),
        (33421, short, [2, 2]), (33422, byte, [0, 1, 1, 2]),
        (50706, byte, [1, 4, 0, 0]), (50707, byte, [1, 1, 0, 0]),
        (50708, ascii_, model), (50717, long_, [65535]), (50721, srational, identity),
        (50728, rational, [(1, 1), (1, 1), (1, 1)]), (50778, short, [21]),
    ]  # fmt: skip
    entries = []
    for tag, typ, values in sorted(tags, key=lambda t: t[0]):
        raw = packers[typ](values)
        count = len(raw) if typ == ascii_ else len(values)
        entries.append((tag, typ, count, raw))
    extra_offset = 8 + 2 + 12 * len(entries) + 4
    extra = bytearray()
    offsets: dict[int, int] = {}
    for tag, _typ, _count, raw in entries:
        if len(raw) > 4:
            offsets[tag] = extra_offset + len(extra)
            extra += raw + (b"\0" if len(raw) % 2 else b"")
    data_offset = extra_offset + len(extra)
    out = bytearray(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, typ, count, raw in entries:
        value = struct.pack("<I", data_offset) if tag == 273 else raw
        field = struct.pack("<I", offsets[tag]) if len(value) > 4 else value.ljust(4, b"\0")
        out += struct.pack("<HHI", tag, typ, count) + field
    out += struct.pack("<I", 0) + extra + data
    path.write_bytes(bytes(out))
    return path
