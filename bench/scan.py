"""Scanner benchmark: how close is a pass to what the disk and SQLite allow?

Builds a synthetic library (default 200,000 files in 2,000 folders; sparse files, old
mtimes, one sidecar in ten), then measures in the same run:

- find_s:  `find ROOT -type f -printf '%s %T@\\n'` (the traversal limit);
- limit_s: find_s + a plain sqlite3 executemany of (uuid, path, size, mtime) into a fresh
  table (the persistence limit);
- the scanner's first pass (listing + every row committed), its second pass
  (DISCOVERED -> READY with one history row per asset, reported apart) and a third pass
  where nothing changed.

Goals: first_scan_ratio = first / limit_s <= 1.5, ready_pass_ratio = READY pass / limit_s
<= 1.5, rescan_ratio = rescan / find_s <= 1.5, peak RSS of the scanner process < 200 MB at
200,000 files (< 400 MB at 1,000,000).  The scanner runs in a child process so its peak
RSS is its own.  `--db postgres` runs the scanner against a fresh PostgreSQL database
(RUSH_BENCH_PG names the server) and measures the persistence limit there with a plain
asyncpg executemany.
Usage: python bench/scan.py [--quick] [--files N] [--db sqlite|postgres] [--keep DIR]
The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def build_tree(root: Path, files: int, folders: int) -> None:
    """INBOX/dNNNN/clipNNNNN.mp4 (+ .xmp for one file in ten), sparse, one hour old."""
    old = time.time() - 3600
    per = max(1, files // folders)
    made = 0
    for d in range(folders):
        folder = root / "INBOX" / f"shoot {d // 100:02d}" / f"d{d:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per):
            if made >= files:
                return
            # One file in ten is the .xmp sidecar of the clip before it.
            name = f"clip{i - 1:05d}.xmp" if i % 10 == 9 else f"clip{i:05d}.mp4"
            path = os.path.join(folder, name)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            try:
                os.ftruncate(fd, 1000 + (made * 7919) % 5_000_000)
            finally:
                os.close(fd)
            os.utime(path, (old, old))
            made += 1


def time_find(root: Path) -> float:
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            ["find", str(root), "-type", "f", "-printf", "%s %T@\\n"],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def _find_rows(root: Path) -> list[tuple[str, str, int, float]]:
    out = subprocess.run(
        ["find", str(root), "-type", "f", "-printf", "%s %T@ %P\\0"],
        capture_output=True,
        check=True,
    ).stdout
    rows = []
    for rec in out.split(b"\0"):
        if rec:
            size, mtime, path = rec.split(b" ", 2)
            rows.append((str(uuid.uuid4()), path.decode(), int(size), float(mtime)))
    return rows


def time_sqlite_insert(root: Path, db_path: Path) -> float:
    rows = _find_rows(root)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id CHAR(36) PRIMARY KEY, path TEXT, size BIGINT, mtime REAL)")
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


async def _pg_insert(dsn: str, rows: list[tuple[str, str, int, float]]) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE t (id CHAR(36) PRIMARY KEY, path TEXT, size BIGINT, mtime FLOAT8)"
        )
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.executemany("INSERT INTO t VALUES ($1, $2, $3, $4)", rows)
        elapsed = time.perf_counter() - t0
        await conn.execute("DROP TABLE t")
    finally:
        await conn.close()
    return elapsed


def time_pg_insert(root: Path, dsn: str) -> float:
    """The same persistence limit on PostgreSQL: one plain executemany, one transaction."""
    return asyncio.run(_pg_insert(dsn, _find_rows(root)))


async def child(root: Path, data: Path, dsn: str) -> dict[str, float | int]:
    sys.path.insert(0, str(HERE))
    from actors.scanner import Scanner
    from rush import events
    from rush.config import Config
    from rush.storage import close_db, init_db

    config = Config.model_validate(
        {
            "data_dir": str(data),
            "library": {"root": str(root)},
            "scanner": {"stable_after_s": 0},
            "database": {"dsn": dsn or f"sqlite://{data / 'rush.db'}"},
        }
    )
    await init_db(config.database_url())
    bus = events.EventBus()
    scanner = Scanner(config, bus=bus)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        first = await scanner.scan_once()
        first_s, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        ready = await scanner.scan_once()
        ready_s, ready_cpu = time.perf_counter() - t0, time.process_time() - c0
        rescans = []
        for _ in range(3):
            t0 = time.perf_counter()
            again = await scanner.scan_once()
            rescans.append(time.perf_counter() - t0)
            assert again.changes() == 0, again
    finally:
        await close_db()
    return {
        "new": first.new,
        "sidecars": first.sidecars_added,
        "ready": ready.ready,
        "first_scan_s": first_s,
        "ready_pass_s": ready_s,
        "first_scan_cpu_s": first_cpu,
        "ready_pass_cpu_s": ready_cpu,
        "rescan_s": statistics.median(rescans),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 files instead of 200,000")
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="build/keep the tree here")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "DATA", "DSN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        root_s, data_s, dsn = args.child
        result = asyncio.run(child(Path(root_s), Path(data_s), dsn))
        print(json.dumps(result))
        return 0
    with contextlib.ExitStack() as stack:
        dsn = ""
        if args.db == "postgres":
            sys.path.insert(0, str(HERE / "bench"))
            from pgdb import fresh_database

            dsn = stack.enter_context(fresh_database("scan"))
        return run(args, dsn)


def run(args: argparse.Namespace, dsn: str) -> int:

    files = args.files or (20_000 if args.quick else 200_000)
    folders = max(1, files // 100)
    base = args.keep or Path(tempfile.mkdtemp(prefix="rush-bench-scan-"))
    try:
        root = base / "lib"
        if not (root / ".rushes_db").exists():
            sys.path.insert(0, str(HERE))
            from rush.layout import init_library

            init_library(root)
            t0 = time.perf_counter()
            build_tree(root, files, folders)
            print(f"built {files} files in {folders} folders in {time.perf_counter() - t0:.1f} s")
        find_s = time_find(root)
        plain = base / "plain.db"
        insert_s = time_pg_insert(root, dsn) if dsn else time_sqlite_insert(root, plain)
        limit_s = find_s + insert_s
        data = base / "data"
        shutil.rmtree(data, ignore_errors=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(root), str(data), dsn],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"find {find_s:.2f} s, {args.db} insert {insert_s:.2f} s, scanner: first pass "
            f"{result['first_scan_s']:.2f} s ({result['new']} assets, {result['sidecars']} "
            f"sidecars), READY pass {result['ready_pass_s']:.2f} s ({result['ready']} assets), "
            f"unchanged rescan {result['rescan_s']:.3f} s"
        )
        figures = {
            "db": args.db,
            "files": files,
            "find_s": round(find_s, 3),
            "limit_s": round(limit_s, 3),
            "first_scan_s": round(result["first_scan_s"], 3),
            "ready_pass_s": round(result["ready_pass_s"], 3),
            "rescan_s": round(result["rescan_s"], 3),
            # CPU time of the scanner process (all threads, SQLite's included): steadier
            # than wall-clock time on a shared machine.
            "first_scan_cpu_s": round(result["first_scan_cpu_s"], 3),
            "ready_pass_cpu_s": round(result["ready_pass_cpu_s"], 3),
            "first_scan_ratio": round(result["first_scan_s"] / limit_s, 2),
            "ready_pass_ratio": round(result["ready_pass_s"] / limit_s, 2),
            "rescan_ratio": round(result["rescan_s"] / find_s, 2),
            "peak_rss_mb": round(peak_kb / 1024, 1),
        }
        print(json.dumps(figures))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
