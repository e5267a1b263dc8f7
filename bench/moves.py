"""Benchmark: batch apply of N decided assets with sidecars vs a plain `mv` loop.

Usage: python bench/moves.py [--quick] [--assets N]
Both runs move the same number of files (a main file and a sidecar per asset, 100
assets per folder) on one filesystem.  The apply includes everything it does for real:
planning, batch lock, journal, renames, fsyncs, database updates and history.  The `mv`
side is a shell loop running one `mv -n` per file.  Last line: one JSON object.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rush.config import Config, DatabaseConfig, LibraryConfig
from rush.layout import init_library
from rush.lifecycle import AssetState, Trigger
from rush.media import Area, MediaKind
from rush.models import Asset, Facts, Sidecar
from rush.moves.run import run_apply
from rush.storage import close_db, init_db
from rush.transitions import transition_many

PER_DIR = 100


def rels(n: int) -> list[tuple[str, str]]:
    return [
        (f"INBOX/d{i // PER_DIR:04d}/clip{i:06d}.mp4", f"INBOX/d{i // PER_DIR:04d}/clip{i:06d}.xmp")
        for i in range(n)
    ]


def make_files(root: Path, pairs: list[tuple[str, str]]) -> None:
    for main, side in pairs:
        p = root / main
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 256)
        (root / side).write_bytes(b"<xmp/>")


async def populate(pairs: list[tuple[str, str]]) -> None:
    assets = [
        Asset(
            kind=MediaKind.VIDEO,
            area=Area.INBOX,
            rel_path=m,
            path_key=m,
            state=AssetState.PROCESSED,
        )
        for m, _ in pairs
    ]
    await Asset.bulk_create(assets, batch_size=500)
    ids = {a.rel_path: a.id for a in await Asset.all().only("id", "rel_path")}
    await Sidecar.bulk_create(
        [Sidecar(asset_id=ids[m], rel_path=s) for m, s in pairs], batch_size=500
    )
    await Facts.bulk_create([Facts(asset_id=i, version=1) for i in ids.values()], batch_size=500)
    await transition_many(
        list(ids.values()),
        AssetState.PROCESSED,
        AssetState.DECIDED_KEEP,
        Trigger.DECIDE_KEEP,
        "bench",
    )


async def bench_apply(work: Path, n: int) -> float:
    root = work / "lib"
    init_library(root)
    pairs = rels(n)
    make_files(root, pairs)
    db_url = f"sqlite://{work / 'bench.sqlite'}"
    await init_db(db_url)
    try:
        await populate(pairs)
        cfg = Config(
            data_dir=work, library=LibraryConfig(root=root), database=DatabaseConfig(dsn=db_url)
        )
        start = time.perf_counter()
        report = await run_apply(cfg, "bench")
        elapsed = time.perf_counter() - start
        assert len(report.moved) == n and not report.failed, report.to_dict()["counts"]
    finally:
        await close_db()
    return elapsed


def bench_mv(work: Path, n: int) -> float:
    root = work / "mvlib"
    pairs = rels(n)
    make_files(root, pairs)
    lines = []
    for main, side in pairs:
        for rel in (main, side):
            lines.append(str(root / rel))
            lines.append(str(root / ("ARCHIVE" + rel[len("INBOX") :])))
    listing = work / "moves.txt"
    listing.write_text("\n".join(lines) + "\n")
    dirs = sorted({str((root / ("ARCHIVE" + m[len("INBOX") :])).parent) for m, _ in pairs})
    script = (
        'mkdir -p "$@"; while IFS= read -r s && IFS= read -r d; do mv -n -- "$s" "$d"; done < "$0"'
    )
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script, str(listing), *dirs], check=True)
    elapsed = time.perf_counter() - start
    assert len(list((root / "ARCHIVE").rglob("*.xmp"))) == n
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 assets instead of 10,000")
    parser.add_argument("--assets", type=int, default=None)
    args = parser.parse_args()
    n = args.assets or (1_000 if args.quick else 10_000)
    work = Path(tempfile.mkdtemp(prefix="rush-bench-moves-"))
    try:
        apply_s = asyncio.run(bench_apply(work, n))
        print(
            f"batch apply: {n} assets ({2 * n} files) in {apply_s:.2f} s ({n / apply_s:.0f} assets/s)"
        )
        mv_s = bench_mv(work, n)
        print(f"mv loop:     {2 * n} files in {mv_s:.2f} s")
        print(f"ratio apply/mv: {apply_s / mv_s:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        json.dumps(
            {
                "assets": n,
                "apply_s": round(apply_s, 3),
                "mv_s": round(mv_s, 3),
                "ratio": round(apply_s / mv_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
