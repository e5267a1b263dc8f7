"""Workflow 12 (docs/contract.md §9): deliverables in EXPORTS/ never enter the inventory (docs/contract.md §1).

Runs the real `rush init` and `rush scan` commands on a library holding the same media
file in `EXPORTS/proj/h264/` and in `INBOX/`: only the INBOX copy may become an asset.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from rush.models import Asset, Sidecar
from rush.storage import close_db, init_db
from tests.conftest import rush_env
from tests.media_helpers import video


def _rush(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rush", *argv],
        env=rush_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_exports_are_never_indexed(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "RUSHES_DB"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[library]\nroot = "{root}"\n'
        f'[database]\ndsn = "{db_url}"\n[scanner]\nstable_after_s = 0\n'
    )
    (tmp_path / "data").mkdir()
    init = _rush("init", "--config", str(cfg), cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    media = tmp_path / "clip.mp4"
    video(media, audio=False, seconds=0.5, size="64x36", rate=10)
    exported = root / "EXPORTS" / "proj" / "h264" / "final.mp4"
    exported.parent.mkdir(parents=True)
    shutil.copyfile(media, exported)
    (exported.parent / "final.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    (root / "EXPORTS" / "proj" / "prores").mkdir()
    shutil.copyfile(media, root / "EXPORTS" / "proj" / "prores" / "master.mov")
    inbox = root / "INBOX" / "day1" / "clip.mp4"
    inbox.parent.mkdir(parents=True)
    shutil.copyfile(media, inbox)

    for _ in range(2):  # a second pass must not pick anything up either
        scan = _rush("scan", "--config", str(cfg), cwd=tmp_path)
        assert scan.returncode == 0, scan.stderr

    async def inventory() -> tuple[list[str], list[str]]:
        await init_db(db_url)
        try:
            assets = await Asset.all().values_list("rel_path", flat=True)
            sidecars = await Sidecar.all().values_list("rel_path", flat=True)
            return [str(a) for a in assets], [str(s) for s in sidecars]
        finally:
            await close_db()

    assets, sidecars = asyncio.run(inventory())
    assert assets == ["INBOX/day1/clip.mp4"]
    assert not [s for s in sidecars if s.startswith("EXPORTS/")]
