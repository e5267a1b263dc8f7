"""Purge of REJECTED assets: policy boundary, confirmation, idempotence, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rush.config import PurgeConfig
from rush.lifecycle import AssetState
from rush.models import Asset, FsAction, PurgeAudit
from rush.moves.purge import PurgeCandidate, PurgeNotConfirmed, plan_purge, select_purgeable
from rush.moves.run import run_purge
from tests.batch_helpers import make_asset, make_config, write
from tests.support.environment import unavailable

S = AssetState
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def rejected(root: Path, rel: str, age: timedelta, sidecars: tuple[str, ...] = ()) -> Asset:
    a = await make_asset(root, rel, S.REJECTED, sidecars=sidecars)
    await Asset.filter(id=a.id).update(state_changed_at=NOW - age)
    write(root, f".derived/{a.id}/v1/proxy.mp4", b"proxy")
    return await Asset.get(id=a.id)


def test_policy_boundary_is_inclusive_at_after_days() -> None:
    import uuid

    def c(age: timedelta, rel: str = "REJECTS/a.mp4") -> PurgeCandidate:
        return PurgeCandidate(uuid.uuid4(), rel, NOW - age)

    at, just_before = c(timedelta(days=180)), c(timedelta(days=180) - timedelta(seconds=1))
    hostile = c(timedelta(days=400), "REJECTS/../INBOX/a.mp4")
    wrong_area = c(timedelta(days=400), "ARCHIVE/a.mp4")
    eligible, skipped, cutoff = select_purgeable([at, just_before, hostile, wrong_area], NOW, 180)
    assert eligible == [at]
    assert cutoff == NOW - timedelta(days=180)
    assert {s["uuid"] for s in skipped} == {str(hostile.id), str(wrong_area.id)}


async def test_purge_requires_confirmation(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await rejected(root, "REJECTS/x/old.mp4", timedelta(days=200))
    with pytest.raises(PurgeNotConfirmed):
        await run_purge(cfg, "ann", confirm=False, now=NOW)
    assert (root / "REJECTS/x/old.mp4").exists()
    assert (await Asset.get(id=a.id)).state is S.REJECTED
    cfg.purge = PurgeConfig(auto=True)
    result = await run_purge(cfg, "policy", confirm=False, now=NOW)
    assert [p["uuid"] for p in result["purged"]] == [str(a.id)]


async def test_confirmed_purge_deletes_group_and_derived_keeps_audit(
    db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    old = await rejected(root, "REJECTS/x/old.mp4", timedelta(days=181), sidecars=("old.xmp",))
    young = await rejected(root, "REJECTS/x/young.mp4", timedelta(days=179))
    arch = await make_asset(root, "ARCHIVE/x/kept.mp4", S.ARCHIVED)
    await Asset.filter(id=arch.id).update(state_changed_at=NOW - timedelta(days=999))
    write(root, f".derived/{arch.id}/v1/proxy.mp4", b"proxy")
    dry = await plan_purge(cfg, now=NOW)
    assert [e["uuid"] for e in dry.to_dict()["eligible"]] == [str(old.id)]
    assert (root / "REJECTS/x/old.mp4").exists()  # dry run deletes nothing
    result = await run_purge(cfg, "ann", confirm=True, now=NOW)
    assert [p["uuid"] for p in result["purged"]] == [str(old.id)]
    assert not (root / "REJECTS/x/old.mp4").exists() and not (root / "REJECTS/x/old.xmp").exists()
    assert not (root / f".derived/{old.id}").exists()
    o = await Asset.get(id=old.id)
    assert (o.state, o.path_key, o.batch_id) == (S.PURGED, None, None)
    audit = await PurgeAudit.get(asset_id=old.id)
    assert audit.actor == "ann" and "REJECTS/x/old.xmp" in audit.files
    assert audit.rejected_at == NOW - timedelta(days=181)
    # Untouched: the young REJECTED asset and anything ARCHIVED, however old.
    assert (root / "REJECTS/x/young.mp4").exists() and (root / f".derived/{young.id}").exists()
    assert (root / "ARCHIVE/x/kept.mp4").exists() and (root / f".derived/{arch.id}").exists()
    assert (await Asset.get(id=arch.id)).state is S.ARCHIVED
    assert await FsAction.filter(status="pending").count() == 0
    assert await FsAction.filter(asset_id=old.id, action="delete", status="done").count() == 2
    # Idempotent: a second run does nothing and breaks nothing.
    again = await run_purge(cfg, "ann", confirm=True, now=NOW)
    assert again["purged"] == [] and again["failed"] == []
    assert await PurgeAudit.filter(asset_id=old.id).count() == 1


async def test_hostile_paths_in_db_are_refused(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    write(root, "INBOX/keep.mp4", b"precious inbox file")
    bad = []
    for rel in ("REJECTS/../INBOX/keep.mp4", "/etc/hostname", "REJECTS/../../outside.txt"):
        a = await make_asset(None, "REJECTS/h/ok.mp4", S.REJECTED)
        await Asset.filter(id=a.id).update(
            rel_path=rel, path_key=None, state_changed_at=NOW - timedelta(days=999)
        )
        bad.append(a.id)
    result = await run_purge(cfg, "ann", confirm=True, now=NOW)
    assert result["purged"] == []
    assert {s["uuid"] for s in result["skipped"]} == {str(b) for b in bad}
    assert outside.read_text() == "precious"
    assert (root / "INBOX/keep.mp4").exists()
    for b in bad:
        assert (await Asset.get(id=b)).state is S.REJECTED


async def test_purge_never_deletes_through_a_symlinked_folder(db: str, tmp_path: Path) -> None:
    import os

    root = tmp_path / "lib"
    cfg = make_config(root, db)
    outside = tmp_path / "outside"
    write(outside, "old.mp4", b"precious, outside the library")
    write(outside, "old.xmp", b"sidecar")
    a = await make_asset(None, "REJECTS/l/old.mp4", S.REJECTED, sidecars=("old.xmp",))
    await Asset.filter(id=a.id).update(state_changed_at=NOW - timedelta(days=999))
    os.symlink(outside, root / "REJECTS/l")
    result = await run_purge(cfg, "ann", confirm=True, now=NOW)
    assert result["purged"] == [] and [f["uuid"] for f in result["failed"]] == [str(a.id)]
    assert "symbolic link" in result["failed"][0]["reason"]
    assert (outside / "old.mp4").exists() and (outside / "old.xmp").exists()
    got = await Asset.get(id=a.id)
    assert (got.state, got.batch_id) == (S.REJECTED, None)
    assert await PurgeAudit.filter(asset_id=a.id).count() == 0


def chattr(flag: str, path: Path) -> bool:
    import subprocess

    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


async def test_partial_purge_journals_and_audits_what_was_deleted(db: str, tmp_path: Path) -> None:
    """The main file is deleted, then its sidecar cannot be: the journal says which is
    which, and the deletion that happened is audited."""
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await rejected(root, "REJECTS/q/old.mp4", timedelta(days=200), sidecars=("old.xmp",))
    locked = root / "REJECTS/q/old.xmp"
    if not chattr("+i", locked):
        unavailable("chattr +i is not available on this filesystem")
    try:
        result = await run_purge(cfg, "ann", confirm=True, now=NOW)
    finally:
        assert chattr("-i", locked)
    assert [f["uuid"] for f in result["failed"]] == [str(a.id)]
    assert not (root / "REJECTS/q/old.mp4").exists() and locked.exists()
    rows = await FsAction.filter(asset_id=a.id).order_by("id").values_list("src", "status")
    assert rows == [
        ("REJECTS/q/old.mp4", "done"),
        ("REJECTS/q/old.xmp", "failed"),
        (f".derived/{a.id}", "failed"),
    ]
    [audit] = await PurgeAudit.filter(asset_id=a.id)
    assert (audit.files, audit.actor, audit.size) == (["REJECTS/q/old.mp4"], "ann", a.size)
    got = await Asset.get(id=a.id)
    assert (got.state, got.batch_id) == (S.REJECTED, None)
    # Once the sidecar can go, the next purge finishes the asset.
    again = await run_purge(cfg, "ann", confirm=True, now=NOW)
    assert [p["uuid"] for p in again["purged"]] == [str(a.id)]
    assert not locked.exists() and not (root / f".derived/{a.id}").exists()
    assert await PurgeAudit.filter(asset_id=a.id).count() == 2
    assert await FsAction.filter(status="pending").count() == 0


async def test_recovery_of_a_failing_purge_keeps_the_journal_true(db: str, tmp_path: Path) -> None:
    """A purge killed after deleting the main file; completing it fails on the sidecar:
    the main file's row is done and audited, not voided."""
    import uuid

    from rush.models import Batch
    from rush.moves.recovery import recover

    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await rejected(root, "REJECTS/r/old.mp4", timedelta(days=200), sidecars=("old.xmp",))
    bid = uuid.uuid4()
    await Batch.create(id=bid, kind="purge", status="running")
    await Asset.filter(id=a.id).update(batch_id=bid)
    for action, src in (
        ("delete", "REJECTS/r/old.mp4"),
        ("delete", "REJECTS/r/old.xmp"),
        ("rmtree", f".derived/{a.id}"),
    ):
        await FsAction.create(action=action, src=src, batch_id=bid, asset_id=a.id)
    (root / "REJECTS/r/old.mp4").unlink()  # deleted before the crash
    locked = root / "REJECTS/r/old.xmp"
    if not chattr("+i", locked):
        unavailable("chattr +i is not available on this filesystem")
    try:
        out = await recover(cfg)
    finally:
        assert chattr("-i", locked)
    assert [p["outcome"][:6] for p in out["purges"]] == ["error:"]
    statuses = dict(await FsAction.filter(asset_id=a.id).values_list("src", "status"))
    assert statuses == {
        "REJECTS/r/old.mp4": "done",
        "REJECTS/r/old.xmp": "failed",
        f".derived/{a.id}": "failed",
    }
    [audit] = await PurgeAudit.filter(asset_id=a.id)
    assert audit.files == ["REJECTS/r/old.mp4"] and audit.actor == "system:recovery"
    got = await Asset.get(id=a.id)
    assert (got.state, got.batch_id) == (S.REJECTED, None)
    assert locked.exists() and (root / f".derived/{a.id}").exists()
