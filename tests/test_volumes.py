"""Volume markers: an absent ARCHIVE/REJECTS volume is never written to (docs/batch.md).

The central case is real: a tmpfs mounted as `library.archive_root`, then unmounted, so
the mount point is the empty folder of the root filesystem it really is.  Needs root;
under CI a failure to mount fails the test instead of skipping it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rush.cli import _common, purge_cli
from rush.cli import apply as apply_cli
from rush.cli import init as init_cli
from rush.config import Config
from rush.layout import init_library, read_marker, write_volume_marker
from rush.lifecycle import AssetState
from rush.media import VOLUME_MARKER_FILE
from rush.models import Asset
from rush.moves.purge import plan_purge
from rush.moves.run import run_purge
from rush.storage import close_db, init_db
from rush.transitions import utcnow
from rush.volumes import VolumeError, check_volumes, init_volume
from tests.batch_helpers import digest, make_asset, make_config
from tests.support.environment import unavailable

S = AssetState


def cli(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (apply_cli, purge_cli, init_cli):
        module.register(sub, _common)
    args = parser.parse_args(argv)
    code: int = args.func(args, config)
    return code


def with_db(db_url: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        await init_db(db_url)
        try:
            return await fn()
        finally:
            await close_db()

    return asyncio.run(go())


def _mount(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], capture_output=True
    )
    if r.returncode != 0:
        message = f"cannot mount a tmpfs (needs root): {r.stderr.decode(errors='replace')}"
        unavailable(message)


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True, capture_output=True)


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "archive-disk"
    mnt.mkdir()
    try:
        yield mnt
    finally:
        while os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_apply_to_an_unmounted_archive_mount_point_moves_nothing(
    db_url: str, tmp_path: Path, mount_point: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lib"
    _mount(mount_point)
    cfg = make_config(root, db_url, archive_root=mount_point)  # marker on the volume
    assert (mount_point / VOLUME_MARKER_FILE).is_file()

    async def setup() -> list[Asset]:
        return [
            await make_asset(root, "INBOX/s/a.mp4", S.DECIDED_KEEP, sidecars=("a.xmp",)),
            await make_asset(root, "INBOX/s/b.mp4", S.DECIDED_KEEP),
            await make_asset(root, "INBOX/s/r.mp4", S.DECIDED_REJECT),
        ]

    keep_a, keep_b, rej = with_db(db_url, setup)
    before = {p: digest(root / p) for p in ("INBOX/s/a.mp4", "INBOX/s/a.xmp", "INBOX/s/b.mp4")}
    _umount(mount_point)
    assert not os.path.ismount(mount_point) and os.listdir(mount_point) == []

    assert cli(cfg, "apply", "--dry-run") == 1
    out = capsys.readouterr().out
    wanted = (
        f"ARCHIVE volume not mounted or not initialised (marker {mount_point / VOLUME_MARKER_FILE}"
        " missing) — nothing was moved; once it is mounted run "
        f"`rush init --volume {mount_point}`"
    )
    assert wanted in out and "refused: 2 group(s) for ARCHIVE" in out

    assert cli(cfg, "apply") == 1
    out = capsys.readouterr().out
    assert wanted in out
    assert "1 moved" in out  # the REJECT went to REJECTS, which is fine
    assert os.listdir(mount_point) == []  # nothing landed on the root filesystem
    assert {p: digest(root / p) for p in before} == before

    async def states() -> dict[str, tuple[str, str, object]]:
        return {
            str(a.id): (str(x.state), x.rel_path, x.batch_id)
            for a in (keep_a, keep_b, rej)
            for x in [await Asset.get(id=a.id)]
        }

    now = with_db(db_url, states)
    assert now[str(keep_a.id)] == (S.DECIDED_KEEP, "INBOX/s/a.mp4", None)
    assert now[str(keep_b.id)] == (S.DECIDED_KEEP, "INBOX/s/b.mp4", None)
    assert now[str(rej.id)][0] == S.REJECTED

    # Mounting a fresh (unmarked) disk is refused too; `rush init --volume` marks it.
    _mount(mount_point)
    assert cli(cfg, "apply") == 1
    assert wanted in capsys.readouterr().out
    assert cli(cfg, "init", "--volume", str(mount_point)) == 0
    assert "ARCHIVE volume" in capsys.readouterr().out
    assert cli(cfg, "apply") == 0
    assert "2 moved" in capsys.readouterr().out
    assert digest(mount_point / "s/a.mp4") == before["INBOX/s/a.mp4"]
    assert (mount_point / "s/a.xmp").is_file() and (mount_point / "s/b.mp4").is_file()


async def test_a_volume_of_another_library_is_refused(db: str, tmp_path: Path) -> None:
    from rush.moves.apply import plan_apply
    from rush.moves.run import run_apply

    root = tmp_path / "lib"
    volume = tmp_path / "vol"
    volume.mkdir()
    cfg = make_config(root, db, archive_root=volume)
    write_volume_marker(volume, "0" * 32, "ARCHIVE")
    a = await make_asset(root, "INBOX/x/a.mp4", S.DECIDED_KEEP)
    plan = (await plan_apply(cfg)).to_dict()
    assert plan["to_move"] == 0 and [r["uuid"] for r in plan["refused"]] == [str(a.id)]
    assert "belongs to another library" in plan["volume_errors"]["ARCHIVE"]
    report = await run_apply(cfg, "t")
    assert [f["uuid"] for f in report.failed] == [str(a.id)]
    assert "nothing was moved" in report.failed[0]["reason"]
    assert (root / "INBOX/x/a.mp4").exists() and sorted(os.listdir(volume)) == [VOLUME_MARKER_FILE]
    assert (await Asset.get(id=a.id)).state is S.DECIDED_KEEP
    # The marker of the other area (REJECTS marked as ARCHIVE) is refused as well.
    library_id = read_marker(root).library_id
    write_volume_marker(volume, library_id, "REJECTS")
    problem = check_volumes(cfg, ["ARCHIVE"])["ARCHIVE"]
    assert "marked as the REJECTS volume" in problem


async def test_purge_refuses_an_unmarked_rejects_volume(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await make_asset(root, "REJECTS/p/old.mp4", S.REJECTED)
    await Asset.filter(id=a.id).update(state_changed_at=utcnow() - timedelta(days=400))
    (root / "REJECTS" / VOLUME_MARKER_FILE).unlink()
    plan = (await plan_purge(cfg)).to_dict()
    assert plan["eligible"] == [] and [r["uuid"] for r in plan["refused"]] == [str(a.id)]
    assert "REJECTS volume not mounted or not initialised" in plan["volume_errors"]["REJECTS"]
    assert "nothing was deleted" in plan["volume_errors"]["REJECTS"]
    result = await run_purge(cfg, "t", confirm=True)
    assert result["purged"] == [] and [f["uuid"] for f in result["failed"]] == [str(a.id)]
    assert (root / "REJECTS/p/old.mp4").exists()
    assert (await Asset.get(id=a.id)).state is S.REJECTED


def test_init_volume_rules(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    other = tmp_path / "disk"
    cfg = make_config(root, "sqlite://:memory:", rejects_root=other)
    with pytest.raises(VolumeError, match="does not exist"):
        init_volume(cfg, other)  # never created: a mount point is mounted, not made
    assert not other.exists()
    other.mkdir()
    (other / "lost+found").mkdir()  # a freshly formatted volume
    with pytest.raises(VolumeError, match="not a destination volume"):
        init_volume(cfg, tmp_path)
    done = init_volume(cfg, other)
    assert (
        done.written
        and done.area == "REJECTS"
        and any("not a mount point" in n for n in done.notes)
    )
    data = json.loads((other / VOLUME_MARKER_FILE).read_text())
    assert data == {"library_id": read_marker(root).library_id, "area": "REJECTS", "version": 1}
    assert not init_volume(cfg, other).written  # idempotent
    write_volume_marker(other, "f" * 32, "REJECTS")
    with pytest.raises(VolumeError, match="library ffff"):
        init_volume(cfg, other, adopt=True)


def test_upgrade_an_existing_library(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library made before volume markers: apply refuses until the volumes are adopted,
    plain `rush init` only says what to do, and `--adopt` is needed for a folder with files."""
    root = tmp_path / "lib"
    cfg = make_config(root, db_url)
    for area in ("ARCHIVE", "REJECTS"):
        (root / area / VOLUME_MARKER_FILE).unlink()  # as an install from before markers

    async def setup() -> Asset:
        await make_asset(root, "ARCHIVE/old/kept.mp4", S.ARCHIVED)
        return await make_asset(root, "INBOX/new/a.mp4", S.DECIDED_KEEP)

    a = with_db(db_url, setup)
    assert cli(cfg, "apply") == 1
    assert "ARCHIVE volume not mounted or not initialised" in capsys.readouterr().out
    assert (root / "INBOX/new/a.mp4").exists()

    assert cli(cfg, "init") == 0  # an existing library: no marker written
    out = capsys.readouterr().out
    assert f"rush init --volume {root / 'ARCHIVE'}" in out
    assert not (root / "ARCHIVE" / VOLUME_MARKER_FILE).exists()

    assert cli(cfg, "init", "--volume", str(root / "ARCHIVE")) == 1
    assert "--adopt" in capsys.readouterr().err
    assert not (root / "ARCHIVE" / VOLUME_MARKER_FILE).exists()
    assert cli(cfg, "init", "--volume", str(root / "ARCHIVE"), "--adopt") == 0
    assert cli(cfg, "init", "--volume", str(root / "REJECTS")) == 0  # empty: no --adopt
    capsys.readouterr()
    assert cli(cfg, "apply") == 0
    assert (root / "ARCHIVE/new/a.mp4").exists()
    assert with_db(db_url, lambda: Asset.get(id=a.id)).state is S.ARCHIVED


def test_a_new_library_marks_its_own_areas_only(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    _, created = init_library(root)
    assert root / "ARCHIVE" / VOLUME_MARKER_FILE in created
    assert root / "REJECTS" / VOLUME_MARKER_FILE in created
    # Start-up never writes one: a second init of an existing library adds nothing.
    (root / "REJECTS" / VOLUME_MARKER_FILE).unlink()
    _, again = init_library(root)
    assert again == [] and not (root / "REJECTS" / VOLUME_MARKER_FILE).exists()


async def test_the_ui_dry_run_shows_the_refused_volume(db: str, tmp_path: Path) -> None:
    from rush.moves.apply import plan_apply
    from web.reports import apply_plan_view

    root = tmp_path / "lib"
    cfg = make_config(root, db, archive_root=tmp_path / "absent")
    a = await make_asset(root, "INBOX/x/a.mp4", S.DECIDED_KEEP)
    view = apply_plan_view((await plan_apply(cfg)).to_dict())
    assert view["counts"]["groups"] == 0 and view["counts"]["skipped"] == 1
    assert [s["uuid"] for s in view["skipped"]] == [str(a.id)]
    assert len(view["volume_errors"]) == 1
    assert "ARCHIVE volume not mounted or not initialised" in view["volume_errors"][0]
