"""Agent memory benchmark: idle RSS of a real `rush agent`, and its peak RSS per job.

A real `rush serve` (SQLite, the broker given by `--broker`, default 127.0.0.1:1883, a random
topic prefix) and a real `rush agent` run on a generated library.  The agent's RSS is
read once it has been connected and idle for 60 s (10 s with `--quick`); then one file
at a time is dropped into INBOX and the agent's peak RSS *with its children* (ffmpeg) is
followed by polling /proc until the asset is done:

- a 1080p clip with sound (30 s; 5 s with `--quick`),
- a 25000 x 25000 RGB PNG (under 2 MB on disk, 2.5 GB decoded: refused by the budget),
- a 24 MP JPEG (decoded at a reduced scale).

Media are generated here, nothing is downloaded.  Goals: idle < 60 MB, every peak
< 500 MB.  The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSH_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_hwm(pid: int) -> None:
    """Reset the kernel's peak-RSS counter of `pid` (Linux: clear_refs 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            out += kids
            stack += kids
    return out


def tree_rss_kb(pid: int) -> int:
    """RSS of `pid` plus every descendant (the agent and its ffmpeg)."""
    return _rss_kb(pid) + sum(_rss_kb(child) for child in _descendants(pid))


def write_png(path: Path, width: int, height: int) -> None:
    """An RGB PNG of any size written row by row: a few MB on disk, little memory here."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    comp = zlib.compressobj(9)
    line = (bytes(range(256)) * (width * 3 // 256 + 1))[: width * 3]
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        for _ in range(height):
            data = comp.compress(b"\0" + line)
            if data:
                fh.write(chunk(b"IDAT", data))
        fh.write(chunk(b"IDAT", comp.flush()))
        fh.write(chunk(b"IEND", b""))


def write_jpeg(path: Path, width: int, height: int) -> None:
    """A 24 MP JPEG made by ffmpeg (a test pattern: detail for the encoder to keep)."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size={width}x{height}:rate=1:duration=1", "-frames:v", "1",
         "-q:v", "3", str(path)],
        check=True, timeout=300,
    )  # fmt: skip


def write_clip(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(path)],
        check=True, timeout=600,
    )  # fmt: skip


def _row(db: Path, rel: str) -> tuple[str, int, str, str, str | None] | None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        row = con.execute(
            "SELECT state, failed, suggestions_status, transcript_status, last_error"
            " FROM asset WHERE rel_path = ?",
            (rel,),
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return None if row is None else (str(row[0]), int(row[1]), str(row[2]), str(row[3]), row[4])


def _done(row: tuple[str, int, str, str, str | None] | None) -> bool:
    if row is None:
        return False
    state, failed, suggestions, transcript, _error = row
    if failed:
        return True
    return (
        state == "PROCESSED"
        and suggestions in ("done", "failed")
        and transcript
        in (
            "done",
            "none",
            "failed",
        )
    )


def measure(agent: int, db: Path, staged: Path, inbox: Path, limit_s: float) -> tuple[float, str]:
    """Drop `staged` into INBOX and follow the agent tree's RSS until the asset is done:
    (peak MB, outcome)."""
    _reset_hwm(agent)
    peak = tree_rss_kb(agent)
    target = inbox / staged.name
    os.rename(staged, target)
    rel = f"INBOX/{inbox.name}/{staged.name}"
    deadline = time.monotonic() + limit_s
    row = None
    polls = 0
    while time.monotonic() < deadline:
        peak = max(peak, tree_rss_kb(agent))
        polls += 1
        if polls % 10 == 0:
            row = _row(db, rel)
            if _done(row):
                break
        time.sleep(0.02)
    peak = max(peak, _hwm_kb(agent))
    if row is None or not _done(row):
        outcome = "timeout"
    elif row[1]:
        outcome = f"refused: {row[4]}"
    else:
        outcome = "processed"
    return peak / 1024, outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 s idle, a 5 s clip")
    parser.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker HOST:PORT")
    args = parser.parse_args()
    idle_s, clip_s = (10, 5) if args.quick else (60, 30)
    host, _, port = str(args.broker).partition(":")
    from rush.layout import init_library

    with tempfile.TemporaryDirectory(prefix="rush-bench-mem-") as tmp_name:
        tmp = Path(tmp_name)
        library = tmp / "RUSHES_DB"
        init_library(library)
        inbox = library / "INBOX" / "bench"
        inbox.mkdir()
        staging = tmp / "staging"
        staging.mkdir()
        print("generating media...", flush=True)
        media = {
            "video": staging / "clip_1080p.mp4",
            "png_25k": staging / "huge_25000.png",
            "jpeg_24mp": staging / "photo_24mp.jpg",
        }
        write_clip(media["video"], clip_s)
        write_png(media["png_25k"], 25000, 25000)
        write_jpeg(media["jpeg_24mp"], 6000, 4000)
        old = time.time() - 3600
        for path in media.values():
            os.utime(path, (old, old))
            print(f"  {path.name}: {path.stat().st_size / 1e6:.1f} MB", flush=True)
        config = tmp / "config.toml"
        config.write_text(
            f"""
data_dir = "{tmp / "data"}"
[library]
root = "{library}"
[scanner]
interval_s = 1
stable_after_s = 0
[mqtt]
host = "{host}"
port = {port or 1883}
prefix = "rush-bench-mem-{uuid.uuid4().hex[:8]}"
[homeassistant]
enabled = false
[hashing]
enabled = false
[web]
port = {_free_port()}
[leases]
ttl_s = 60
heartbeat_s = 5
max_attempts = 1
[agent]
id = "bench-memory"
library_mount = "{library}"
idle_poll_s = 0.5
""",
            encoding="utf-8",
        )
        logs = {name: (tmp / f"{name}.log").open("wb") for name in ("serve", "agent")}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name in ("serve", "agent"):
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "rush", name, "--config", str(config)],
                    env=_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=logs[name],
                    stderr=subprocess.STDOUT,
                )
                deadline = time.monotonic() + 120
                while b"MQTT connected" not in (tmp / f"{name}.log").read_bytes():
                    if procs[name].poll() is not None or time.monotonic() > deadline:
                        print((tmp / f"{name}.log").read_text(errors="replace")[-3000:])
                        raise SystemExit(f"rush {name} did not connect")
                    time.sleep(0.2)
            agent = procs["agent"].pid
            print(f"agent connected; idle for {idle_s} s...", flush=True)
            time.sleep(idle_s)
            figures: dict[str, float | str] = {"idle_rss_mb": round(tree_rss_kb(agent) / 1024, 1)}
            print(f"  idle RSS {figures['idle_rss_mb']} MB", flush=True)
            db = tmp / "data" / "rush.db"
            for key, path in media.items():
                time.sleep(3)  # idle: the previous job's memory goes back to the system
                peak, outcome = measure(agent, db, path, inbox, limit_s=600)
                figures[f"peak_{key}_mb"] = round(peak, 1)
                print(f"  {path.name}: peak {peak:.1f} MB ({outcome[:300]})", flush=True)
                if procs["agent"].poll() is not None:
                    raise SystemExit("the agent died")
            time.sleep(2)
            figures["idle_after_mb"] = round(tree_rss_kb(agent) / 1024, 1)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for fh in logs.values():
                fh.close()
    peaks = [v for k, v in figures.items() if k.startswith("peak_") and isinstance(v, float)]
    figures["goals_met"] = "yes" if figures["idle_rss_mb"] < 60 and max(peaks) < 500 else "no"  # type: ignore[operator]
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
