"""Benchmark: export a bin of N clips as an offline package, then relink it.

    python bench/export.py            # 1,000 clips with tiny real proxies
    python bench/export.py --quick    # 100 clips
    python bench/export.py --db postgres://root@127.0.0.1:5432/test_bench

Builds a temporary library (one tiny ffmpeg proxy copied N times under `.derived/`,
assets, derivatives, facts, tags and a bin), then times `export_selection` (database
reads, proxy copies, .otio/.xml/.edl/.csv/manifest) and `relink_package`.
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rush.layout import derived_dir, init_library
from rush.lifecycle import AssetState
from rush.models import Asset, Bin, Derivative, Facts, Tag
from rush.offline import Selection, export_selection, relink_package
from rush.storage import close_db, init_db


def make_proxy(path: Path) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x36:rate=25:duration=0.4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
        timeout=60,
    )


def write_files(root: Path, assets: list[Asset], proxy: Path) -> int:
    """Originals and proxies on disk (sync: this is set-up, not the measured part)."""
    for a in assets:
        original = root / a.rel_path
        original.parent.mkdir(parents=True, exist_ok=True)
        original.write_bytes(b"original")
        d = root / derived_dir(a.id, 1)
        d.mkdir(parents=True)
        shutil.copyfile(proxy, d / "proxy.mp4")
    return proxy.stat().st_size


async def populate(root: Path, n: int, proxy: Path) -> None:
    init_library(root)
    assets = []
    for i in range(n):
        rel = f"INBOX/day{i // 100:03d}/C{i:05d}.MP4"
        assets.append(
            Asset(
                id=uuid.uuid4(),
                kind="video",
                rel_path=rel,
                path_key=rel,
                state=AssetState.PROCESSED,
                size=1000,
            )
        )
    proxy_size = write_files(root, assets, proxy)
    await Asset.bulk_create(assets, batch_size=500)
    await Derivative.bulk_create(
        [
            Derivative(
                asset_id=a.id,
                version=1,
                role="proxy",
                rel_path=f"{derived_dir(a.id, 1)}/proxy.mp4",
                size=proxy_size,
            )
            for a in assets
        ],
        batch_size=500,
    )
    await Facts.bulk_create(
        [
            Facts(
                asset_id=a.id,
                version=1,
                data={"duration": 0.4, "frame_rate": 25, "timecode": "01:00:00:00"},
            )
            for a in assets
        ],
        batch_size=500,
    )
    await Tag.bulk_create([Tag(asset_id=a.id, name="bench") for a in assets], batch_size=500)
    bench_bin = await Bin.create(name="bench")
    saved = await Asset.all()
    for start in range(0, n, 500):
        await bench_bin.assets.add(*saved[start : start + 500])


async def main_async(n: int, db_url: str | None) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="rush-bench-export-") as tmp:
        work = Path(tmp)
        await init_db(db_url or f"sqlite://{work / 'rush.db'}")
        try:
            proxy = work / "proxy.mp4"
            make_proxy(proxy)
            root = work / "RUSHES_DB"
            t0 = time.perf_counter()
            await populate(root, n, proxy)
            populate_s = time.perf_counter() - t0
            print(f"populated {n} assets in {populate_s:.2f} s", flush=True)
            t0 = time.perf_counter()
            report = await export_selection(root, Selection(bin="bench"), work / "pkg")
            export_s = time.perf_counter() - t0
            assert len(report.clips) == n, (len(report.clips), report.skipped[:3])
            print(
                f"export: {n} clips in {export_s:.2f} s ({n / export_s:.0f} clips/s), "
                f"{report.bytes_copied / 1e6:.1f} MB copied",
                flush=True,
            )
            t0 = time.perf_counter()
            relinked = await relink_package(root, work / "pkg")
            relink_s = time.perf_counter() - t0
            assert len(relinked.found()) == n
            print(f"relink: {n} clips in {relink_s:.2f} s ({n / relink_s:.0f} clips/s)")
        finally:
            await close_db()
    return {
        "clips": n,
        "export_s": round(export_s, 3),
        "clips_per_s": round(n / export_s, 1),
        "relink_s": round(relink_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--clips", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 clips")
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    n = 100 if args.quick else args.clips
    figures = asyncio.run(main_async(n, args.db))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
