"""Batch apply against a real library on disk and both database backends."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rush.lifecycle import AssetState
from rush.models import Asset, AssetEvent, Batch, FsAction, PathChange, Sidecar
from rush.moves import lock
from rush.moves.apply import BatchReport, plan_apply
from rush.moves.lock import BatchBusy
from rush.moves.run import run_apply
from tests.batch_helpers import digest, make_asset, make_config, write
from tests.support.environment import unavailable

S = AssetState


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return r.returncode == 0


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real second filesystem (tmpfs) so cross-volume moves are really cross-device."""
    mnt = tmp_path / "vol"
    if not _mount_tmpfs(mnt, "4m"):
        unavailable("needs root to mount a tmpfs volume")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def temps(root: Path) -> list[Path]:
    return list(root.rglob("*.rushtmp"))


def chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def files_under(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): digest(p)
        for p in root.rglob("*")
        if p.is_file() and p.name not in (".rushes_db", ".rushes_volume")
    }


async def test_dry_run_lists_and_touches_nothing(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await make_asset(root, "INBOX/d/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))
    await make_asset(root, "INBOX/d/raw.mp4", S.DECIDED_REJECT, processed=False)
    before = files_under(root)
    plan = await plan_apply(cfg)
    d = plan.to_dict()
    assert d["to_move"] == 1 and d["sidecars"] == 1
    assert d["items"][0]["uuid"] == str(a.id)
    assert "never processed" in d["skipped"][0]["reason"]
    assert files_under(root) == before
    assert (await Asset.get(id=a.id)).state is S.DECIDED_KEEP
    assert await FsAction.all().count() == 0


async def test_apply_moves_groups_updates_db_and_reports(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    keep = await make_asset(root, "INBOX/2024/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))
    rej = await make_asset(root, "INBOX/2024/bad.mp4", S.DECIDED_REJECT, sidecars=("bad.srt",))
    back = await make_asset(root, "REJECTS/old/x.mp4", S.REJECTED)  # rejected, reopen+keep
    await make_asset(root, "ARCHIVE/old/y.mp4", S.ARCHIVED)
    from rush.actions import reopen
    from rush.transitions import transition

    await reopen(back.id, "alice")
    await transition(back.id, S.DECISION_PENDING, S.DECIDED_KEEP, "decide_keep", "alice")  # type: ignore[arg-type]
    noop = await make_asset(root, "ARCHIVE/kept/z.mp4", S.DECIDED_KEEP)
    contents = files_under(root)
    report = await run_apply(cfg, "alice")
    assert report.failed == []
    assert {m["uuid"] for m in report.moved} == {str(keep.id), str(rej.id), str(back.id)}
    assert report.noop == [str(noop.id)]
    after = files_under(root)
    assert sorted(after.values()) == sorted(contents.values())  # nothing lost or changed
    k = await Asset.get(id=keep.id)
    assert (k.state, k.rel_path, k.path_key, k.area, k.batch_id) == (
        S.ARCHIVED, "ARCHIVE/2024/clip.mp4", "ARCHIVE/2024/clip.mp4", "ARCHIVE", None,
    )  # fmt: skip
    assert after["ARCHIVE/2024/clip.xmp"] == contents["INBOX/2024/clip.xmp"]
    assert [s.rel_path for s in await Sidecar.filter(asset_id=keep.id)] == ["ARCHIVE/2024/clip.xmp"]
    r = await Asset.get(id=rej.id)
    assert (r.state, r.rel_path) == (S.REJECTED, "REJECTS/2024/bad.mp4")
    b = await Asset.get(id=back.id)
    assert (b.state, b.rel_path) == (S.ARCHIVED, "ARCHIVE/old/x.mp4")
    assert (await Asset.get(id=noop.id)).state is S.ARCHIVED
    changes = await PathChange.filter(asset_id=keep.id).order_by("id")
    assert [(c.old_path, c.new_path) for c in changes] == [
        ("INBOX/2024/clip.mp4", "ARCHIVE/2024/clip.mp4"),
        ("INBOX/2024/clip.xmp", "ARCHIVE/2024/clip.xmp"),
    ]
    triggers = (
        await AssetEvent.filter(asset_id=keep.id).order_by("id").values_list("trigger", flat=True)
    )
    assert triggers[-2:] == ["queue_move", "move_done"]
    stored = await Batch.get(id=report.batch_id)
    assert stored.status == "done" and stored.report["counts"]["moved"] == 3
    assert await FsAction.filter(status="pending").count() == 0
    # Idempotent: a second apply finds nothing to do.
    again = await run_apply(cfg, "alice")
    assert again.moved == [] and again.failed == []


async def test_collisions_never_overwrite_and_names_are_stable(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    write(root, "ARCHIVE/d/clip.mp4", b"someone else's file")
    write(root, "ARCHIVE/d/other.xmp", b"someone else's sidecar")
    a = await make_asset(root, "INBOX/d/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))
    b = await make_asset(root, "INBOX/d/other.mp4", S.DECIDED_KEEP, sidecars=("other.xmp",))
    c = await make_asset(root, "INBOX/e/../e/plain.mp4", S.DECIDED_KEEP, processed=True)
    dry = (await plan_apply(cfg)).to_dict()
    report = await run_apply(cfg, "bob")
    assert (root / "ARCHIVE/d/clip.mp4").read_bytes() == b"someone else's file"
    assert (root / "ARCHIVE/d/other.xmp").read_bytes() == b"someone else's sidecar"
    ha, hb = a.id.hex[:8], b.id.hex[:8]
    assert (root / f"ARCHIVE/d/clip__{ha}.mp4").exists()
    assert (root / f"ARCHIVE/d/clip__{ha}.xmp").exists()
    assert (root / f"ARCHIVE/d/other__{hb}.mp4").exists()
    assert (root / f"ARCHIVE/d/other__{hb}.xmp").exists()
    assert (await Asset.get(id=a.id)).rel_path == f"ARCHIVE/d/clip__{ha}.mp4"
    # The dry run announced exactly the names the apply used.
    planned = {m["dst"] for c_ in dry["collisions"] for m in c_["files"]}
    assert planned == {
        f"ARCHIVE/d/clip__{ha}.mp4", f"ARCHIVE/d/clip__{ha}.xmp",
        f"ARCHIVE/d/other__{hb}.mp4", f"ARCHIVE/d/other__{hb}.xmp",
    }  # fmt: skip
    assert any("unsafe" in s["reason"] for s in report.skipped)
    assert (await Asset.get(id=c.id)).state is S.DECIDED_KEEP


async def test_second_concurrent_apply_is_refused(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    await make_asset(root, "INBOX/a.mp4", S.DECIDED_KEEP)
    import uuid

    holder = uuid.uuid4()
    await lock.acquire_lock(holder, "apply")
    with pytest.raises(BatchBusy, match="another apply is running"):
        await run_apply(cfg, "carol")
    assert (await Asset.get(rel_path="INBOX/a.mp4")).state is S.DECIDED_KEEP
    await lock.release_lock(holder)
    assert len((await run_apply(cfg, "carol")).moved) == 1


async def test_two_applies_racing_one_wins(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    for i in range(5):
        await make_asset(root, f"INBOX/r/{i}.mp4", S.DECIDED_KEEP, sidecars=(f"{i}.xmp",))
    results = await asyncio.gather(run_apply(cfg, "a"), run_apply(cfg, "b"), return_exceptions=True)
    ok = [r for r in results if isinstance(r, BatchReport)]
    busy = [r for r in results if isinstance(r, BatchBusy)]
    assert len(busy) + len(ok) == 2 and sum(len(r.moved) for r in ok) == 5
    assert len(list((root / "ARCHIVE/r").iterdir())) == 10


async def test_cross_volume_move_copies_verifies_and_removes_source(
    db: str, tmp_path: Path, tmpfs: Path
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db, archive_root=tmpfs)
    a = await make_asset(root, "INBOX/v/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.wav",))
    h = digest(root / "INBOX/v/clip.mp4")
    report = await run_apply(cfg, "dave")
    assert report.failed == [] and len(report.moved) == 1
    assert digest(tmpfs / "v/clip.mp4") == h and (tmpfs / "v/clip.wav").exists()
    assert not (root / "INBOX/v/clip.mp4").exists()
    assert not (root / "ARCHIVE/v").exists()
    assert not temps(tmpfs)
    assert (await Asset.get(id=a.id)).rel_path == "ARCHIVE/v/clip.mp4"


async def test_disk_full_on_destination_volume_rolls_the_group_back(
    db: str, tmp_path: Path, tmpfs: Path
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db, archive_root=tmpfs)
    small = await make_asset(root, "INBOX/f/small.mp4", S.DECIDED_KEEP)
    big = await make_asset(
        root, "INBOX/f/big.mp4", S.DECIDED_KEEP, sidecars=("big.xmp",), content=os.urandom(6 << 20)
    )
    h = digest(root / "INBOX/f/big.mp4")
    report = await run_apply(cfg, "erin")
    assert [f["uuid"] for f in report.failed] == [str(big.id)]
    assert "no space left on the volume of" in report.failed[0]["reason"]
    assert digest(root / "INBOX/f/big.mp4") == h and (root / "INBOX/f/big.xmp").exists()
    assert not (tmpfs / "f/big.mp4").exists() and not temps(tmpfs)
    b = await Asset.get(id=big.id)
    assert (b.state, b.rel_path, b.batch_id) == (S.DECIDED_KEEP, "INBOX/f/big.mp4", None)
    assert (await Asset.get(id=small.id)).state is S.ARCHIVED


async def test_permission_denied_on_a_sidecar_rolls_back_the_main_file(
    db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await make_asset(root, "INBOX/p/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))
    other = await make_asset(root, "INBOX/p/fine.mp4", S.DECIDED_REJECT)
    locked = root / "INBOX/p/clip.xmp"
    if not chattr("+i", locked):
        unavailable("chattr +i is not available on this filesystem")
    try:
        report = await run_apply(cfg, "frank")
    finally:
        assert chattr("-i", locked)
    assert [f["uuid"] for f in report.failed] == [str(a.id)]
    assert report.failed[0]["reason"] == f"permission denied on {locked}"
    assert report.failed[0]["rel_path"] == "INBOX/p/clip.mp4"
    assert (root / "INBOX/p/clip.mp4").exists() and locked.exists()
    assert not (root / "ARCHIVE/p/clip.mp4").exists()
    assert (await Asset.get(id=a.id)).state is S.DECIDED_KEEP
    assert (await Asset.get(id=other.id)).state is S.REJECTED
    rollback = await FsAction.filter(asset_id=a.id, action="rollback").values_list(
        "status", flat=True
    )
    assert rollback == ["done"]
    # Once the problem is gone, the next apply moves it.
    again = await run_apply(cfg, "frank")
    assert [m["uuid"] for m in again.moved] == [str(a.id)]


async def test_missing_destination_volume_fails_per_asset(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db, rejects_root=tmp_path / "not-mounted")
    keep = await make_asset(root, "INBOX/m/k.mp4", S.DECIDED_KEEP)
    rej = await make_asset(root, "INBOX/m/r.mp4", S.DECIDED_REJECT, sidecars=("r.xmp",))
    report = await run_apply(cfg, "gina")
    assert [f["uuid"] for f in report.failed] == [str(rej.id)]
    assert "REJECTS volume not mounted or not initialised" in report.failed[0]["reason"]
    assert report.failed[0]["rel_path"] == "INBOX/m/r.mp4"
    assert not (tmp_path / "not-mounted").exists()  # never created in place of the volume
    assert (root / "INBOX/m/r.mp4").exists() and (root / "INBOX/m/r.xmp").exists()
    assert (await Asset.get(id=rej.id)).state is S.DECIDED_REJECT
    assert (await Asset.get(id=keep.id)).state is S.ARCHIVED


async def test_vanished_source_fails_that_asset_only(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    gone = await make_asset(root, "INBOX/g/gone.mp4", S.DECIDED_KEEP, sidecars=("gone.xmp",))
    (root / "INBOX/g/gone.xmp").unlink()
    fine = await make_asset(root, "INBOX/g/fine.mp4", S.DECIDED_KEEP)
    report = await run_apply(cfg, "hal")
    assert [f["uuid"] for f in report.failed] == [str(gone.id)]
    assert (root / "INBOX/g/gone.mp4").exists()
    assert (await Asset.get(id=gone.id)).state is S.DECIDED_KEEP
    assert (await Asset.get(id=fine.id)).state is S.ARCHIVED


async def test_two_kept_assets_aiming_at_the_same_name(db: str, tmp_path: Path) -> None:
    """A new clip and a reopened one with the same sub-path both go to ARCHIVE."""
    from rush.actions import reopen
    from rush.lifecycle import Trigger
    from rush.transitions import transition

    root = tmp_path / "lib"
    cfg = make_config(root, db)
    new = await make_asset(root, "INBOX/d/a.mp4", S.DECIDED_KEEP, sidecars=("a.xmp",))
    old = await make_asset(root, "REJECTS/d/a.mp4", S.REJECTED, sidecars=("a.xmp",))
    await reopen(old.id, "ivy")
    await transition(old.id, S.DECISION_PENDING, S.DECIDED_KEEP, Trigger.DECIDE_KEEP, "ivy")
    h_new, h_old = digest(root / "INBOX/d/a.mp4"), digest(root / "REJECTS/d/a.mp4")
    report = await run_apply(cfg, "ivy")
    assert report.failed == [] and len(report.moved) == 2
    tag = old.id.hex[:8]
    assert digest(root / "ARCHIVE/d/a.mp4") == h_new
    assert digest(root / f"ARCHIVE/d/a__{tag}.mp4") == h_old
    assert (root / f"ARCHIVE/d/a__{tag}.xmp").exists() and (root / "ARCHIVE/d/a.xmp").exists()
    assert (await Asset.get(id=old.id)).rel_path == f"ARCHIVE/d/a__{tag}.mp4"
    assert (await Asset.get(id=new.id)).rel_path == "ARCHIVE/d/a.mp4"
    assert sorted(await Sidecar.filter(asset_id=old.id).values_list("rel_path", flat=True)) == [
        f"ARCHIVE/d/a__{tag}.xmp"
    ]


async def test_cross_volume_source_not_removable_leaves_the_group_at_its_source(
    db: str, tmp_path: Path, tmpfs: Path
) -> None:
    """The copy is in place but the source cannot be unlinked: the copy is removed again,
    earlier files of the group are moved back, and the journal says so."""
    root = tmp_path / "lib"
    cfg = make_config(root, db, archive_root=tmpfs)
    a = await make_asset(root, "INBOX/u/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))
    before = files_under(root)
    locked = root / "INBOX/u/clip.xmp"
    if not chattr("+i", locked):
        unavailable("chattr +i is not available on this filesystem")
    try:
        report = await run_apply(cfg, "uma")
    finally:
        assert chattr("-i", locked)
    assert [f["uuid"] for f in report.failed] == [str(a.id)]
    assert files_under(root) == before  # both files at their source, unchanged
    assert not (tmpfs / "u").exists() or not any((tmpfs / "u").iterdir())
    got = await Asset.get(id=a.id)
    assert (got.state, got.rel_path, got.batch_id) == (S.DECIDED_KEEP, "INBOX/u/clip.mp4", None)
    rows = await FsAction.filter(asset_id=a.id).order_by("id").values_list("action", "status")
    assert rows == [("move", "rolled_back"), ("move", "rolled_back"), ("rollback", "done")]
    again = await run_apply(cfg, "uma")
    assert [m["uuid"] for m in again.moved] == [str(a.id)]
    assert (tmpfs / "u/clip.xmp").exists() and not locked.exists()


async def test_copy_left_at_both_places_is_left_to_recovery(
    db: str, tmp_path: Path, tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the source nor the new copy can be removed: the journal stays pending and
    the asset queued, so recovery (not a false "rolled back") settles the group."""
    from rush.moves import journal
    from rush.moves.recovery import recover

    root = tmp_path / "lib"
    cfg = make_config(root, db, archive_root=tmpfs)
    a = await make_asset(root, "INBOX/w/clip.mp4", S.DECIDED_KEEP)
    h = digest(root / "INBOX/w/clip.mp4")
    src, dst = root / "INBOX/w/clip.mp4", tmpfs / "w/clip.mp4"
    real_step = journal.step

    def step(label: str) -> None:
        real_step(label)
        if label == "copy:renamed":
            assert chattr("+i", src) and chattr("+i", dst)

    monkeypatch.setattr(journal, "step", step)
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    if not chattr("+i", probe) or not chattr("-i", probe):
        unavailable("chattr +i is not available on this filesystem")
    try:
        report = await run_apply(cfg, "walt")
    finally:
        chattr("-i", src)
        chattr("-i", dst)
    monkeypatch.setattr(journal, "step", real_step)
    assert [f["uuid"] for f in report.failed] == [str(a.id)]
    assert "recovery needed" in report.failed[0]["reason"]
    assert digest(src) == h and digest(dst) == h
    got = await Asset.get(id=a.id)
    assert (got.state, got.rel_path) == (S.MOVE_QUEUED, "INBOX/w/clip.mp4")
    moves = await FsAction.filter(asset_id=a.id, action="move").values_list("status", flat=True)
    assert moves == ["pending"]
    out = await recover(cfg)
    assert [g["outcome"] for g in out["groups"]] == ["rolled_forward"]
    assert digest(dst) == h and not src.exists()
    got = await Asset.get(id=a.id)
    assert (got.state, got.rel_path) == (S.ARCHIVED, "ARCHIVE/w/clip.mp4")
    assert await FsAction.filter(status="pending").count() == 0


async def test_unsupported_folder_fsync_does_not_fail_an_apply(
    db: str, tmp_path: Path, tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import stat

    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # a share answering EINVAL to folder fsync
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    root = tmp_path / "lib"
    cfg = make_config(root, db, archive_root=tmpfs)
    keep = await make_asset(root, "INBOX/n/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))
    rej = await make_asset(root, "INBOX/n/bad.mp4", S.DECIDED_REJECT)
    h = digest(root / "INBOX/n/clip.mp4")
    report = await run_apply(cfg, "nina")
    assert report.failed == [] and len(report.moved) == 2
    assert digest(tmpfs / "n/clip.mp4") == h and (tmpfs / "n/clip.xmp").exists()
    assert not (root / "INBOX/n/clip.mp4").exists() and (root / "REJECTS/n/bad.mp4").exists()
    assert (await Asset.get(id=keep.id)).state is S.ARCHIVED
    assert (await Asset.get(id=rej.id)).state is S.REJECTED


def put_bytes(folder: Path, rel: bytes, data: bytes) -> Path:
    """A file whose name is raw bytes (not valid UTF-8), as a NAS share may hold."""
    path = Path(os.fsdecode(os.fsencode(folder) + b"/" + rel))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("volume", ["same", "other"])
async def test_non_utf8_name_keeps_its_bytes_in_every_area(
    db: str, tmp_path: Path, volume: str, request: pytest.FixtureRequest
) -> None:
    from actors.scanner import Scanner
    from rush import events

    root = tmp_path / "lib"
    archive = request.getfixturevalue("tmpfs") if volume == "other" else root / "ARCHIVE"
    cfg = make_config(root, db, **({"archive_root": archive} if volume == "other" else {}))
    cfg.scanner.stable_after_s = 0
    data = os.urandom(100)
    put_bytes(root, b"INBOX/n/caf\xe9.mp4", data)  # latin-1 bytes
    taken = put_bytes(archive, b"n/gar\xe7on.mp4", b"someone else's file")
    scanner = Scanner(cfg, bus=events.EventBus())
    await scanner.scan_once()
    stored = {a.rel_path: a for a in await Asset.all()}
    assert set(stored) == {"INBOX/n/caf\uf7e9.mp4"}  # ARCHIVE files are never indexed
    a = await make_asset(root, "INBOX/n/other.mp4", S.DECIDED_KEEP)  # a processed neighbour
    moving = stored["INBOX/n/caf\uf7e9.mp4"]
    from rush.models import Facts
    from rush.transitions import transition

    await Asset.filter(id=moving.id).update(state=S.PROCESSED)
    await Facts.create(asset=moving, version=moving.version, data={"duration": 1.0})
    await transition(moving.id, S.PROCESSED, S.DECIDED_KEEP, "decide_keep", "x")  # type: ignore[arg-type]
    # An INBOX file whose name collides with the non-UTF-8 name already in ARCHIVE.
    clash = put_bytes(root, b"INBOX/n/gar\xe7on.mp4", b"a new take")
    await scanner.scan_once()
    c = await Asset.get(rel_path="INBOX/n/gar\uf7e7on.mp4")
    await Asset.filter(id=c.id).update(state=S.PROCESSED)
    await Facts.create(asset=c, version=c.version, data={"duration": 1.0})
    await transition(c.id, S.PROCESSED, S.DECIDED_KEEP, "decide_keep", "x")  # type: ignore[arg-type]

    report = await run_apply(cfg, "zoe")
    assert report.failed == [] and len(report.moved) == 3
    names = set(os.listdir(os.fsencode(archive / "n")))
    tag = c.id.hex[:8].encode()
    assert names == {b"caf\xe9.mp4", b"other.mp4", b"gar\xe7on.mp4", b"gar\xe7on__" + tag + b".mp4"}
    assert (archive / os.fsdecode(b"n/caf\xe9.mp4")).read_bytes() == data
    assert taken.read_bytes() == b"someone else's file" and not clash.exists()
    assert (await Asset.get(id=moving.id)).rel_path == "ARCHIVE/n/caf\uf7e9.mp4"
    assert (await Asset.get(id=c.id)).rel_path == f"ARCHIVE/n/gar\uf7e7on__{c.id.hex[:8]}.mp4"
    assert (await Asset.get(id=a.id)).state is S.ARCHIVED
    again = await scanner.scan_once()
    assert (again.missing, again.new, again.moved) == (0, 0, 0)
    assert not await Asset.filter(missing=True).exists()


async def test_symlinked_folders_are_never_followed(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    outside = tmp_path / "outside"
    outside.mkdir()
    # A destination folder that is a link leading out of the library.
    os.symlink(outside, root / "ARCHIVE/out")
    to_link = await make_asset(root, "INBOX/out/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))
    # A deeper link, below a real folder of the destination area.
    (root / "REJECTS/deep").mkdir()
    os.symlink(outside, root / "REJECTS/deep/in")
    deep = await make_asset(root, "INBOX/deep/in/y.mp4", S.DECIDED_REJECT)
    # A source folder replaced by a link after the scan.
    write(tmp_path / "elsewhere", "x.mp4", b"not in the library")
    from_link = await make_asset(None, "INBOX/moved/x.mp4", S.DECIDED_REJECT)
    os.symlink(tmp_path / "elsewhere", root / "INBOX/moved")
    fine = await make_asset(root, "INBOX/fine/z.mp4", S.DECIDED_KEEP)
    report = await run_apply(cfg, "sam")
    failed = {f["uuid"]: f["reason"] for f in report.failed}
    assert set(failed) == {str(to_link.id), str(deep.id), str(from_link.id)}
    assert all("symbolic link" in reason for reason in failed.values()), failed
    assert list(outside.iterdir()) == []
    assert (tmp_path / "elsewhere/x.mp4").exists() and not (root / "REJECTS/moved").exists()
    assert (root / "INBOX/out/clip.mp4").exists() and (root / "INBOX/out/clip.xmp").exists()
    assert (root / "INBOX/deep/in/y.mp4").exists()
    for a in (to_link, deep, from_link):
        got = await Asset.get(id=a.id)
        assert (got.state, got.rel_path, got.batch_id) == (a.state, a.rel_path, None)
    assert (await Asset.get(id=fine.id)).state is S.ARCHIVED
    assert await FsAction.filter(status="pending").count() == 0


async def test_cancelled_apply_waits_for_its_mover(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling an apply (service shutdown) returns only once no file moves any more;
    the groups already moved and those not started are settled by recovery."""
    import threading
    import time

    from rush.models import KeyValue
    from rush.moves import journal
    from rush.moves.lock import LOCK_KEY
    from rush.moves.recovery import recover

    root = tmp_path / "lib"
    cfg = make_config(root, db)
    assets = [await make_asset(root, f"INBOX/c/{i:02}.mp4", S.DECIDED_KEEP) for i in range(10)]
    contents = sorted(files_under(root).values())
    reached = threading.Event()
    renames = 0
    real_step = journal.step

    def step(label: str) -> None:
        nonlocal renames
        real_step(label)
        if label == "rename":
            renames += 1
            if renames == 3:
                reached.set()
                time.sleep(1.0)  # the mover is busy with group 3 when the task is cancelled

    monkeypatch.setattr(journal, "step", step)
    task = asyncio.create_task(run_apply(cfg, "tom"))
    assert await asyncio.to_thread(reached.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after_cancel = files_under(root)
    await asyncio.sleep(1.5)
    assert files_under(root) == after_cancel, "files moved after the cancelled apply returned"
    assert len([p for p in after_cancel if p.startswith("ARCHIVE/")]) == 3
    assert not await KeyValue.exists(key=LOCK_KEY)
    # The history says it was stopped, not that it crashed, before and after recovery.
    (stopped,) = await Batch.filter(kind="apply")
    assert stopped.status == "interrupted" and stopped.finished_at is None
    monkeypatch.setattr(journal, "step", real_step)
    out = await recover(cfg)
    await stopped.refresh_from_db()
    assert stopped.status == "interrupted" and stopped.finished_at is not None
    assert len(stopped.report["recovery"]) == 10
    outcomes = sorted(g["outcome"] for g in out["groups"])
    assert outcomes == ["rolled_back"] * 7 + ["rolled_forward"] * 3
    for a in assets:
        got = await Asset.get(id=a.id)
        assert got.batch_id is None
        assert got.state is (S.ARCHIVED if got.rel_path.startswith("ARCHIVE/") else S.DECIDED_KEEP)
        assert (root / got.rel_path).is_file()
    assert await FsAction.filter(status="pending").count() == 0
    assert sorted(files_under(root).values()) == contents
    report = await run_apply(cfg, "tom")
    assert report.failed == [] and len(report.moved) == 7
