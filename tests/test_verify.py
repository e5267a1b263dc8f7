"""`rush verify` on real files: a flipped byte in ARCHIVE is found, nothing is written."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import pytest

from rush.cli import _common
from rush.cli import verify as verify_cli
from rush.config import Config
from rush.hashing import Hasher
from rush.lifecycle import AssetState
from rush.media import VOLUME_MARKER_FILE
from rush.storage import close_db, init_db
from rush.verify import VerifyRefused, last_verify, run_verify
from tests.batch_helpers import make_asset, make_config

S = AssetState


def cli(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    verify_cli.register(sub, _common)
    args = parser.parse_args(argv)
    code: int = args.func(args, config)
    return code


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith((".db", ".db-wal", ".db-shm"))
    }


def flip_byte(path: Path, offset: int) -> None:
    """Bit rot: one byte changes, size and mtime stay as they were."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


async def _library(cfg: Config) -> None:
    root = cfg.library.root
    for i in range(3):
        await make_asset(
            root, f"ARCHIVE/2024/clip{i}.mp4", S.ARCHIVED, content=os.urandom(400_000),
            sidecars=(f"clip{i}.xmp",),
        )  # fmt: skip
    await make_asset(root, "INBOX/new/a.mp4", S.PROCESSED)
    hasher = Hasher(cfg)
    try:
        while (await hasher.run_once()).hashed:
            pass
    finally:
        hasher.close()


async def test_verify_finds_a_flipped_byte_in_archive(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    await _library(cfg)
    clean = await run_verify(cfg, archive_only=True)
    assert (clean.checked, clean.ok, clean.problems) == (6, 6, 0)  # 3 clips + 3 sidecars
    flip_byte(root / "ARCHIVE/2024/clip1.mp4", 250_000)  # outside the sampled blocks
    (root / "ARCHIVE/2024/clip2.xmp").unlink()
    (root / "ARCHIVE/2024/stray.mov").write_bytes(b"not ours")
    before = snapshot(root)
    report = await run_verify(cfg, archive_only=True)
    assert [d["path"] for d in report.differs] == ["ARCHIVE/2024/clip1.mp4"]
    assert report.differs[0]["modified"] is False  # same size and mtime: corruption
    assert [m["path"] for m in report.missing] == ["ARCHIVE/2024/clip2.xmp"]
    assert report.extra == ["ARCHIVE/2024/stray.mov"]
    assert report.problems == 3
    assert snapshot(root) == before  # it reads only: nothing repaired, moved or written
    assert (await last_verify())["problems"] == 3
    # A sample re-hashes that share of the files (at least one); extras need a full pass.
    sampled = await run_verify(cfg, archive_only=True, sample_pct=20, seed=1)
    assert sampled.checked + len(sampled.missing) == 1 and sampled.extra == []
    # The whole library: INBOX too.
    everything = await run_verify(cfg, archive_only=False)
    assert everything.checked == 6  # 5 in ARCHIVE still readable + the INBOX clip


async def test_verify_refuses_an_unmounted_archive(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    await _library(cfg)
    (root / "ARCHIVE" / VOLUME_MARKER_FILE).unlink()
    with pytest.raises(VerifyRefused, match="ARCHIVE volume not mounted"):
        await run_verify(cfg)


def test_cli_verify_exit_codes(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db_url)

    async def setup() -> None:
        await init_db(db_url)
        try:
            await _library(cfg)
        finally:
            await close_db()

    asyncio.run(setup())
    assert cli(cfg, "verify", "--archive") == 0
    assert "6 ok, 0 differ" in capsys.readouterr().out
    flip_byte(root / "ARCHIVE/2024/clip0.mp4", 10)
    assert cli(cfg, "verify", "--archive") == 1
    out = capsys.readouterr().out
    assert "DIFFERS ARCHIVE/2024/clip0.mp4" in out and "corrupt" in out
    with pytest.raises(SystemExit):
        cli(cfg, "verify", "--sample", "0")


def test_schedule_is_off_by_default_and_due_after_the_interval() -> None:
    from datetime import UTC, datetime, timedelta

    from actors.verifier import due

    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert Config().verify.interval_days == 0
    assert not due(None, 0, now)
    assert due(None, 7, now)
    assert not due((now - timedelta(days=6)).isoformat(), 7, now)
    assert due((now - timedelta(days=7)).isoformat(), 7, now)


async def test_scheduled_verify_reports_to_status_metrics_and_home_assistant(
    db: str, tmp_path: Path
) -> None:
    from actors.verifier import Verifier
    from integrations.homeassistant.discovery import _state_sensors
    from integrations.metrics import Metrics
    from rush.status import collect_status

    root = tmp_path / "lib"
    cfg = make_config(root, db)
    await _library(cfg)
    off = Verifier(cfg)
    await asyncio.wait_for(off.run(), 5)  # returns at once: off by default
    assert await last_verify() == {}
    flip_byte(root / "ARCHIVE/2024/clip0.mp4", 100)
    cfg.verify.interval_days = 7
    on = Verifier(cfg)
    assert await on.run_once() is True
    assert await on.run_once() is False  # not due again for a week
    snap = await collect_status(cfg)
    assert snap["last_verify_problems"] == 1 and snap["last_verify"]
    metrics = Metrics()
    metrics.update_snapshot(snap)
    assert b"rush_last_verify_problems 1.0" in metrics.render()
    assert {"last_verify", "last_verify_problems"} <= {s.key for s in _state_sensors()}
