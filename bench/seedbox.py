"""Benchmark: relocate N small seeding torrents from "NVMe" to "Synology" through a real
qbittorrent-nox and report the mean relocation time and the throughput.

    python bench/seedbox.py [--torrents 20] [--size-mb 4] [--quick]

"Synology" is a tmpfs when run as root (a real cross-filesystem copy), else a folder on the
same filesystem (then qBittorrent only renames).  Two more torrents are deferred on
purpose (one hard-linked into a library folder, one too young): `deferred` counts them,
`success_ratio` (the KPI, goal 1.0) must not drop because of them.  The last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rush.seedbox.service import relocate, seedbox_kpis
from rush.seedbox.state import SeedState, write_state
from rush.storage import close_db, init_db
from tests.seedbox_support import (
    add_seeding,
    make_torrent,
    running_qbittorrent,
    seedbox_config,
    tmpfs,
)


async def bench(n: int, size_mb: float, refresh_ms: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="rush-bench-seedbox-") as tmp:
        base = Path(tmp)
        size = int(size_mb * 1_000_000)
        with (
            running_qbittorrent(base, refresh_ms) as qbit,
            tmpfs(base / "syno", size_mb=int(n * size_mb * 1.2) + 64) as cross_fs,
        ):
            nvme, syno = base / "nvme", base / "syno"
            config = seedbox_config(base, qbit.url, nvme, syno, poll_interval_s=0.1)
            (syno / config.seedbox.syno_marker).write_text("bench\n")
            client = qbit.client()
            # Two deferrals ride along (one hard-linked into a "library", one too young):
            # they must be counted apart and leave the success ratio alone.
            extra = [("Bench.Linked.mkv", 86400), ("Bench.Young.mkv", 60)]
            for name, age in extra:
                infohash, data = make_torrent(nvme / "tv", name, {"": size}, seed=n + len(name))
                if name == "Bench.Linked.mkv":
                    (base / "library").mkdir(exist_ok=True)
                    os.link(nvme / "tv" / name, base / "library" / name)
                add_seeding(client, data, infohash, nvme / "tv", "tv")
                write_state(
                    config.seedbox.state_dir,
                    SeedState.model_validate(
                        {
                            "kind": "added",
                            "infohash": infohash,
                            "added_epoch": int(time.time()) - age,
                            "source": "sonarr",
                            "title": name,
                            "imported_paths": [f"/media/tv/{name}"],
                        }
                    ),
                )
            for i in range(n):
                name = f"Bench.S01E{i:02d}.mkv"
                infohash, data = make_torrent(nvme / "tv", name, {"": size}, seed=i)
                add_seeding(client, data, infohash, nvme / "tv", "tv")
                write_state(
                    config.seedbox.state_dir,
                    SeedState.model_validate(
                        {
                            "kind": "added",
                            "infohash": infohash,
                            "added_epoch": int(time.time()) - 86400,
                            "source": "sonarr",
                            "title": name,
                            "imported_paths": [f"/media/tv/{name}"],
                        }
                    ),
                )
            await init_db(config.database_url())
            try:
                t0 = time.perf_counter()
                report = await relocate(config)
                wall = time.perf_counter() - t0
                kpis = await seedbox_kpis(config)
            finally:
                await close_db()
    moved = [o for o in report.outcomes if o.action == "moved"]
    for o in report.outcomes:
        print(f"{o.action:<8} {o.name:<22} {o.bytes / 1e6:7.2f} MB {o.seconds:6.2f} s {o.reason}")
    total = sum(o.bytes for o in moved)
    print(
        f"{len(moved)}/{n} relocated ({report.deferred} deferred, {report.failed} failed), {total / 1e6:.1f} MB in {wall:.1f} s "
        f"({'tmpfs: cross-filesystem' if cross_fs else 'same filesystem'})"
    )
    return {
        "torrents": n,
        "size_mb_each": size_mb,
        "qbt_refresh_ms": refresh_ms,
        "cross_filesystem": cross_fs,
        "wall_s": round(wall, 3),
        "mean_relocation_s": round(sum(o.seconds for o in moved) / len(moved), 3)
        if moved
        else None,
        "mb_per_s": round(total / 1e6 / wall, 3) if wall else None,
        "deferred": report.deferred,
        "failed": report.failed,
        # The KPI: successes / attempts, deferrals (hard link, too young) not counted.
        "success_ratio": kpis["success_ratio"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--torrents", type=int, default=20)
    parser.add_argument("--size-mb", type=float, default=4.0)
    parser.add_argument(
        "--refresh-ms",
        type=int,
        default=1500,
        help="qBittorrent's state refresh interval (stock 1500 ms; the tests use 200)",
    )
    parser.add_argument("--quick", action="store_true", help="5 torrents")
    args = parser.parse_args()
    n = 5 if args.quick else args.torrents
    result = asyncio.run(bench(n, args.size_mb, args.refresh_ms))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
