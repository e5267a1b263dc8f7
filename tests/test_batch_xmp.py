"""`[apply] write_xmp`: an XMP beside each original a batch apply archives, journaled,
never replacing a file, never in INBOX or REJECTS; recovery settles an interrupted write."""

from __future__ import annotations

from pathlib import Path

from rush import decisions
from rush.lifecycle import AssetState
from rush.metadata import xmp
from rush.models import Asset, FsAction, Sidecar
from rush.moves.journal import Roots
from rush.moves.recovery import recover
from rush.moves.run import run_apply
from tests.batch_helpers import make_asset, make_config

S = AssetState


async def test_apply_writes_xmp_beside_archived_originals_only(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    keep = await make_asset(root, "INBOX/2024/clip.mp4", S.DECIDED_KEEP)
    own = await make_asset(root, "INBOX/2024/cam.mp4", S.DECIDED_KEEP, sidecars=("cam.xmp",))
    rej = await make_asset(root, "INBOX/2024/bad.mp4", S.DECIDED_REJECT)
    await decisions.set_fields(keep.id, {"rating": 5}, "alice")
    await decisions.add_tag(keep.id, "ceremony", "alice")
    own_before = (root / "INBOX/2024/cam.xmp").read_bytes()

    off = await run_apply(cfg, "alice")  # the default: no XMP anywhere
    assert off.xmp == [] and not (root / "ARCHIVE/2024/clip.xmp").exists()

    for aid in (keep.id, own.id, rej.id):  # back to a decision, then apply with the step on
        await _back_to_inbox(root, aid)
    cfg.apply.write_xmp = True
    report = await run_apply(cfg, "alice")
    outcomes = {r["uuid"]: r["outcome"] for r in report.xmp}
    assert outcomes == {str(keep.id): "written", str(own.id): "exists, kept"}
    written = xmp.parse((root / "ARCHIVE/2024/clip.xmp").read_bytes())
    assert (written.label, written.rating, written.keywords) == ("Keep", 5, ["ceremony"])
    assert (root / "ARCHIVE/2024/cam.xmp").read_bytes() == own_before  # never replaced
    assert not list((root / "REJECTS").rglob("*.xmp")) and not list((root / "INBOX").rglob("*.xmp"))
    assert await Sidecar.filter(asset_id=keep.id, rel_path="ARCHIVE/2024/clip.xmp").exists()
    row = await FsAction.get(action="write_xmp")
    assert (row.status, row.dst, str(row.asset_id)) == (
        "done",
        "ARCHIVE/2024/clip.xmp",
        str(keep.id),
    )
    assert report.to_dict()["xmp"] == report.xmp


async def _back_to_inbox(root: Path, asset_id: object) -> None:
    """Put an applied asset back as a fresh decided one in INBOX (test set-up only)."""
    a = await Asset.get(id=asset_id)
    target = "DECIDED_KEEP" if a.state is S.ARCHIVED else "DECIDED_REJECT"
    new_rel = "INBOX/" + a.rel_path.split("/", 1)[1]
    (root / new_rel).parent.mkdir(parents=True, exist_ok=True)
    (root / a.rel_path).rename(root / new_rel)
    for side in await Sidecar.filter(asset_id=a.id):
        side_new = "INBOX/" + side.rel_path.split("/", 1)[1]
        (root / side.rel_path).rename(root / side_new)
        await Sidecar.filter(id=side.id).update(rel_path=side_new)
    await Asset.filter(id=a.id).update(
        rel_path=new_rel, path_key=new_rel, area="INBOX", state=target
    )


async def test_recovery_settles_an_interrupted_xmp_write(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    (root / "ARCHIVE/x").mkdir(parents=True)
    (root / "ARCHIVE/x/.a.xmp.rushtmp").write_text("half")
    (root / "ARCHIVE/x/b.xmp").write_text("<x/>")
    await FsAction.create(action="write_xmp", dst="ARCHIVE/x/a.xmp", status="pending")
    await FsAction.create(action="write_xmp", dst="ARCHIVE/x/b.xmp", status="pending")
    await recover(cfg)
    rows = {r.dst: r.status for r in await FsAction.filter(action="write_xmp")}
    assert rows == {"ARCHIVE/x/a.xmp": "void", "ARCHIVE/x/b.xmp": "done"}
    assert sorted(p.name for p in (root / "ARCHIVE/x").iterdir()) == ["b.xmp"]
    assert Roots.from_config(cfg).path("ARCHIVE/x/b.xmp").exists()
