"""Processing benchmark: processor overhead over raw ffmpeg, and photo thumbnail throughput.

Full run: a generated 60 s 1080p clip with audio and 200 generated 24-MP JPEGs.
`--quick`: a 10 s 720p clip and 30 photos (under a minute).

The video figure compares the ReviewProcessor's video job (probe, one ffmpeg pass for
proxy + thumbnails + poster, strip sprite, atomic commits) with the very same ffmpeg
argument list run raw, alternating the two, in the same run.  The last line printed
is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from integrations import ffcmd
from integrations.processors import ReviewProcessor, detect_ffmpeg
from rush.config import ProxyConfig
from rush.jobs import JobPaths, JobSpec, JobType
from rush.layout import derived_dir, resolve
from rush.media import MediaKind


class Ctx:
    def __init__(self, root: Path) -> None:
        self.library_root = root
        self.beats = 0

    async def heartbeat(self, progress: float) -> None:
        self.beats += 1

    def abs_path(self, rel: str) -> Path:
        return resolve(self.library_root, rel)


def job(kind: MediaKind, main: str) -> JobSpec:
    asset = uuid.uuid4()
    return JobSpec(
        job_id=asset.hex,
        type=JobType.PROCESS_FOR_REVIEW,
        asset_uuid=str(asset),
        kind=kind,
        lock_token="bench",
        lease_expires_at=datetime.now(UTC),
        paths=JobPaths(main=main),
        derived_dir=derived_dir(asset, 1),
        version=1,
    )


def make_clip(dst: Path, seconds: int, size: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(dst)],
        check=True,
    )  # fmt: skip


def make_photos(folder: Path, count: int) -> list[Path]:
    """24-MP photo-like JPEGs (noise over gradients); a few bases copied under new names."""
    bases = []
    for n in range(min(4, count)):
        w, h = 6000, 4000
        noise = Image.effect_noise((w // 4, h // 4), 40 + 10 * n).resize((w, h))
        grad = Image.linear_gradient("L").resize((w, h))
        img = Image.merge("RGB", (noise, grad, Image.blend(noise, grad, 0.5)))
        exif = Image.Exif()
        exif[0x0112] = 6 if n % 2 else 1
        exif[0x0110] = "Bench Cam"
        path = folder / f"base{n}.jpg"
        img.save(path, "JPEG", quality=90, exif=exif)
        bases.append(path)
    out = []
    for i in range(count):
        dst = folder / f"IMG_{i:04d}.jpg"
        shutil.copyfile(bases[i % len(bases)], dst)
        out.append(dst)
    for b in bases:
        b.unlink()
    return out


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (ffmpeg, ffprobe)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_raw(args: list[str]) -> bytes:
    """The raw command, blocking on purpose: nothing else runs while it is timed."""
    return subprocess.run(args, check=True, capture_output=True).stdout


async def bench_video(root: Path, rel: str, reps: int) -> dict[str, float]:
    cfg = ProxyConfig()
    proc = ReviewProcessor(cfg, *detect_ffmpeg())
    src = root / rel
    probe = json.loads(run_raw(ffcmd.probe_args(str(src))))
    facts = ffcmd.facts_from_probe(probe)
    raw_dir = root / "raw"
    proc_times, raw_times, proc_cpu, raw_cpu = [], [], [], []
    for _ in range(reps):
        shutil.rmtree(raw_dir, ignore_errors=True)
        (raw_dir / "seq").mkdir(parents=True)
        args = ffcmd.video_pass_args(
            str(src),
            ffcmd.VideoOutputs(
                str(raw_dir / "proxy.mp4"),
                str(raw_dir / "seq/thumb_%02d.jpg"),
                str(raw_dir / "p.jpg"),
            ),
            cfg,
            duration_s=facts["duration_s"],
            source_height=facts["display_height"],
            has_audio=facts["has_audio"],
        )
        c0, t0 = cpu_seconds(), time.perf_counter()
        run_raw(args)
        raw_times.append(time.perf_counter() - t0)
        raw_cpu.append(cpu_seconds() - c0)
        ctx = Ctx(root)
        c0, t0 = cpu_seconds(), time.perf_counter()
        out = await proc.run(job(MediaKind.VIDEO, rel), ctx)
        proc_times.append(time.perf_counter() - t0)
        proc_cpu.append(cpu_seconds() - c0)
        assert out.derivatives, "processor produced nothing"
    # The overhead ratio is measured in CPU seconds (this process + its ffmpeg/ffprobe
    # children): it counts all the extra work the processor does and, unlike wall time,
    # stays steady when other work competes for the cores. Wall ratios are reported too.
    raw, ours = min(raw_times), min(proc_times)
    raw_med, ours_med = statistics.median(raw_times), statistics.median(proc_times)
    return {
        "proxy_overhead_ratio": round(statistics.median(proc_cpu) / statistics.median(raw_cpu), 4),
        "video_raw_cpu_s": round(statistics.median(raw_cpu), 3),
        "video_processor_cpu_s": round(statistics.median(proc_cpu), 3),
        "video_raw_s": round(raw, 3),
        "video_processor_s": round(ours, 3),
        "proxy_wall_ratio_best": round(ours / raw, 4),
        "proxy_wall_ratio_median": round(ours_med / raw_med, 4),
        "video_realtime_factor": round(facts["duration_s"] / ours, 2),
    }


async def bench_photos(root: Path, rels: list[str]) -> dict[str, float]:
    proc = ReviewProcessor(ProxyConfig(), *detect_ffmpeg())
    sizes = len(ProxyConfig().photo_sizes)
    t0 = time.perf_counter()
    for rel in rels:
        await proc.run(job(MediaKind.PHOTO, rel), Ctx(root))
    elapsed = time.perf_counter() - t0
    return {
        "photos": len(rels),
        "photo_s": round(elapsed, 2),
        "photos_per_min": round(len(rels) / elapsed * 60, 1),
        "photo_thumbs_per_min": round(len(rels) * sizes / elapsed * 60, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 s 720p clip, 30 photos")
    args = parser.parse_args()
    seconds, size, photos, reps = (
        (10, "1280x720", 30, 2) if args.quick else (60, "1920x1080", 200, 3)
    )
    with tempfile.TemporaryDirectory(prefix="rush-bench-") as tmp:
        root = Path(tmp)
        (root / "INBOX").mkdir()
        t0 = time.perf_counter()
        make_clip(root / "INBOX" / "clip.mp4", seconds, size)
        paths = make_photos(root / "INBOX", photos)
        print(
            f"generated {seconds} s {size} clip and {photos} photos in {time.perf_counter() - t0:.1f} s"
        )
        video = await bench_video(root, "INBOX/clip.mp4", reps)
        print(
            f"video {seconds} s {size}, {reps} runs each: CPU raw {video['video_raw_cpu_s']} s, "
            f"processor {video['video_processor_cpu_s']} s -> overhead ratio "
            f"{video['proxy_overhead_ratio']} (goal <= 1.05); wall best raw "
            f"{video['video_raw_s']} s, processor {video['video_processor_s']} s (ratio best "
            f"{video['proxy_wall_ratio_best']}, median {video['proxy_wall_ratio_median']})"
        )
        photo = await bench_photos(root, [str(p.relative_to(root)) for p in paths])
        print(
            f"photos: {photo['photos']} x 24 MP in {photo['photo_s']} s: "
            f"{photo['photos_per_min']} photos/min, {photo['photo_thumbs_per_min']} thumbnails/min"
        )
    figures = {**video, **photo, "clip_seconds": seconds, "clip_size": size}
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
