"""Crash test: SIGKILL a real batch apply (and purge) at deterministic steps, then recover.

Each kill point runs the apply in a child process that kills itself right at step N
(`RUSH_TEST_CRASH_AFTER_N_FS_OPS`, counted at every journal write, rename, copy phase,
fsync and database finalisation).  Points are spread over the whole run.  The ARCHIVE
area is a real tmpfs volume, so KEEP moves are real cross-filesystem copies; REJECT
moves are same-filesystem renames.  After each kill, recovery runs, and the test checks
that every file of every group exists exactly once, in one place, byte-identical, with
the database agreeing with the disk; recovery run twice changes nothing; a following
apply then completes everything.  SQLite only (the storage paths are covered on both
backends by test_batch.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rush.config import Config
from rush.lifecycle import AssetState
from rush.models import Asset, Batch, FsAction, KeyValue, Sidecar
from rush.moves.journal import Roots
from rush.moves.lock import LOCK_KEY
from rush.moves.recovery import recover
from rush.moves.run import run_apply
from rush.storage import close_db, init_db
from tests.batch_helpers import digest, make_asset, make_config, write
from tests.conftest import REPO_ROOT, rush_env
from tests.support.environment import unavailable

S = AssetState
POINTS = 50

GROUPS: list[tuple[str, AssetState, tuple[str, ...]]] = [
    ("INBOX/a/clip.mp4", S.DECIDED_KEEP, ("clip.xmp", "clip.wav")),  # cross-fs
    ("INBOX/b/clip.mp4", S.DECIDED_KEEP, ("clip.xmp",)),  # cross-fs + collision
    ("INBOX/a/bad.mp4", S.DECIDED_REJECT, ("bad.srt",)),  # same fs
    ("INBOX/c/x.jpg", S.DECIDED_REJECT, ()),  # same fs
    ("INBOX/c/y.mp4", S.DECIDED_REJECT, ("y.lrf", "y.thm")),  # same fs
    ("REJECTS/d/old.mp4", S.DECIDED_KEEP, ("old.xmp",)),  # reopened: REJECTS -> ARCHIVE
]


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "archive-volume"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=False)
    if r.returncode != 0:
        unavailable("needs root to mount a tmpfs volume")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def temps(root: Path) -> list[Path]:
    return list(root.rglob("*.rushtmp"))


def start_zygote(count_file: Path) -> subprocess.Popen[str]:
    """The driver process that forks one apply/purge child per kill point."""
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tests/crash_driver.py"), "zygote"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=rush_env(RUSH_TEST_FS_OPS_COUNT_FILE=str(count_file)),
    )


def run_step(
    zygote: subprocess.Popen[str], n: int, op: str, root: Path, volume: Path, db_url: str
) -> str:
    """Have the zygote fork one `op` child killed at its `n`-th filesystem step."""
    assert zygote.stdin is not None and zygote.stdout is not None
    zygote.stdin.write(f"{n}\t{op}\t{root}\t{volume}\t{db_url}\n")
    zygote.stdin.flush()
    return zygote.stdout.readline().strip()


def restore_db(db_file: Path, template: bytes) -> None:
    """The SQLite file as it was before the run (its WAL and index files dropped)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    db_file.write_bytes(template)


def snapshot_tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def restore_tree(path: Path, files: dict[str, bytes]) -> None:
    for child in path.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    for rel, data in files.items():
        write(path, rel, data)


def all_hashes(*roots: Path) -> list[str]:
    return sorted(
        digest(p)
        for r in roots
        for p in r.rglob("*")
        if p.is_file()
        and p.name not in (".rushes_db", ".rushes_volume")
        and not p.name.endswith(".sqlite")
    )


async def check_consistent(
    cfg: Config, root: Path, volume: Path, expected: dict[str, dict[str, str]], all_h: list[str]
) -> None:
    """Every group complete in exactly one place, byte-identical, DB agreeing with disk."""
    roots = Roots.from_config(cfg)
    assert all_hashes(root, volume) == all_h, "a file was lost or duplicated"
    assert not temps(root) and not temps(volume)
    for aid, files in expected.items():
        asset = await Asset.get(id=aid)
        assert asset.batch_id is None
        sidecars = await Sidecar.filter(asset_id=aid).values_list("rel_path", flat=True)
        paths = [asset.rel_path, *sorted(sidecars)]
        at_dest = asset.state in (S.ARCHIVED, S.REJECTED)
        assert at_dest or asset.state in (S.DECIDED_KEEP, S.DECIDED_REJECT), asset.state
        assert asset.path_key == asset.rel_path
        area = asset.rel_path.split("/", 1)[0]
        origin = next(iter(files)).split("/", 1)[0]
        assert area == ({S.ARCHIVED: "ARCHIVE", S.REJECTED: "REJECTS"}.get(asset.state, origin))
        for p in paths:
            assert p.split("/", 1)[0] == area, "group split between areas"
        got = sorted(digest(roots.path(p)) for p in paths)
        assert got == sorted(files.values())
    assert await FsAction.filter(status="pending").count() == 0
    assert not await KeyValue.exists(key=LOCK_KEY)
    assert not await Batch.exists(status="running")


async def test_sigkill_at_50_points_then_recovery(tmp_path: Path, volume: Path) -> None:
    root = tmp_path / "lib"
    db_file = tmp_path / "crash.sqlite"
    db_url = f"sqlite://{db_file}"
    cfg = make_config(root, db_url, archive_root=volume)
    await init_db(db_url)
    write(volume, "b/clip.mp4", b"pre-existing file at the destination")
    expected: dict[str, dict[str, str]] = {}
    for rel, state, sidecars in GROUPS:
        a = await make_asset(root, rel, state, sidecars=sidecars)
        folder = rel.rsplit("/", 1)[0]
        expected[str(a.id)] = {
            p: digest(root / p) for p in [rel, *(f"{folder}/{s}" for s in sidecars)]
        }
    await close_db()
    tpl_db = db_file.read_bytes()
    tpl_lib, tpl_vol = snapshot_tree(root), snapshot_tree(volume)
    all_h = all_hashes(root, volume)

    count_file = tmp_path / "steps"
    zygote = start_zygote(count_file)
    assert zygote.stdin is not None and zygote.stdout is not None

    def run_child(n: int) -> str:
        return run_step(zygote, n, "apply", root, volume, db_url)

    def reset() -> None:
        restore_db(db_file, tpl_db)
        restore_tree(root, tpl_lib)
        restore_tree(volume, tpl_vol)

    outcomes: dict[str, int] = {}
    try:
        assert run_child(10**9) == "exit 0"
        total = int(count_file.read_text())
        assert total >= POINTS, f"only {total} steps: not enough kill points"
        points = sorted({1 + (i * (total - 1)) // (POINTS - 1) for i in range(POINTS)})
        assert len(points) == POINTS
        for n in points:
            reset()
            assert run_child(n) == "killed", f"step {n} of {total} did not kill the apply"
            await init_db(db_url, migrate=False)
            try:
                first = await recover(cfg)
                assert not first["busy"]
                for g in first["groups"]:
                    outcomes[g["outcome"]] = outcomes.get(g["outcome"], 0) + 1
                await check_consistent(cfg, root, volume, expected, all_h)
                state_before = await Asset.all().order_by("id").values("id", "state", "rel_path")
                second = await recover(cfg)
                assert second["groups"] == [] and second["unlocked"] == 0
                assert await Asset.all().order_by("id").values("id", "state", "rel_path") == (
                    state_before
                )
                report = await run_apply(cfg, "after-crash")
                assert report.failed == []
                await check_consistent(cfg, root, volume, expected, all_h)
                states = await Asset.all().values_list("state", flat=True)
                assert set(states) <= {S.ARCHIVED, S.REJECTED}
            finally:
                await close_db()
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
    print(f"{total} steps, {len(points)} kill points, recovery outcomes {outcomes}")
    # The kill points really exercised both directions of recovery.
    assert outcomes.get("rolled_back", 0) > 0 and outcomes.get("rolled_forward", 0) > 0, outcomes


async def test_sigkill_mid_purge_then_recovery_completes(tmp_path: Path) -> None:
    """Kill a confirmed purge at every step: recovery finishes what was started, and
    an asset whose purge had not started is intact; never half an asset."""
    from rush.models import PurgeAudit
    from rush.moves.run import run_purge

    root = tmp_path / "lib"
    db_file = tmp_path / "purge.sqlite"
    db_url = f"sqlite://{db_file}"
    volume = tmp_path / "unused-archive"
    volume.mkdir()
    cfg = make_config(root, db_url, archive_root=volume)
    await init_db(db_url)
    files: dict[str, list[str]] = {}
    for i in range(4):
        rel = f"REJECTS/p/r{i}.mp4"
        a = await make_asset(root, rel, S.REJECTED, sidecars=(f"r{i}.xmp",))
        write(root, f".derived/{a.id}/v1/proxy.mp4", b"proxy")
        files[str(a.id)] = [rel, f"REJECTS/p/r{i}.xmp", f".derived/{a.id}"]
    await close_db()
    tpl_db, tpl_lib = db_file.read_bytes(), snapshot_tree(root)
    count_file = tmp_path / "steps"
    zygote = start_zygote(count_file)
    assert zygote.stdin is not None and zygote.stdout is not None

    def run_child(n: int) -> str:
        return run_step(zygote, n, "purge", root, volume, db_url)

    def reset() -> None:
        restore_db(db_file, tpl_db)
        restore_tree(root, tpl_lib)

    try:
        assert run_child(10**9) == "exit 0"
        total = int(count_file.read_text())
        for n in range(1, total + 1):
            reset()
            assert run_child(n) == "killed"
            await init_db(db_url, migrate=False)
            try:
                await recover(cfg)
                for aid, paths in files.items():
                    asset = await Asset.get(id=aid)
                    present = [(root / p).exists() for p in paths]
                    if asset.state is S.PURGED:
                        assert not any(present) and asset.path_key is None
                        assert await PurgeAudit.filter(asset_id=aid).count() == 1
                    else:
                        assert asset.state is S.REJECTED and all(present), (n, present)
                        assert asset.batch_id is None
                assert await FsAction.filter(status="pending").count() == 0
                later = datetime.now(UTC) + timedelta(days=400)
                await run_purge(cfg, "again", confirm=True, now=later)
                assert set(await Asset.all().values_list("state", flat=True)) == {S.PURGED}
                assert await PurgeAudit.all().count() == len(files)
            finally:
                await close_db()
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
