"""Recovery on both backends: each interrupted group settles in exactly one place."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import uuid
from pathlib import Path

from rush.lifecycle import AssetState, Trigger
from rush.models import Asset, Batch, FsAction, KeyValue, Sidecar
from rush.moves.lock import LOCK_KEY
from rush.moves.recovery import recover
from rush.transitions import transition
from tests.batch_helpers import digest, make_asset, make_config, write

S = AssetState


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def queued(root: Path, rel: str, batch_id: uuid.UUID, sidecars: tuple[str, ...]) -> Asset:
    a = await make_asset(root, rel, S.DECIDED_KEEP, sidecars=sidecars)
    await Asset.filter(id=a.id).update(batch_id=batch_id)
    await transition(a.id, S.DECIDED_KEEP, S.MOVE_QUEUED, Trigger.QUEUE_MOVE, "crashed-batch")
    folder = rel.rsplit("/", 1)[0]
    for src in [rel, *(f"{folder}/{s}" for s in sidecars)]:
        await FsAction.create(
            action="move",
            src=src,
            dst="ARCHIVE" + src[len("INBOX") :],
            batch_id=batch_id,
            asset_id=a.id,
        )
    return a


def put_bytes(root: Path, rel: bytes, data: bytes) -> Path:
    """A file whose name is raw bytes (not valid UTF-8)."""
    path = Path(os.fsdecode(os.fsencode(root) + b"/" + rel))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def move(root: Path, rel: str, *, keep_source: bool = False) -> None:
    src, dst = root / rel, root / ("ARCHIVE" + rel[len("INBOX") :])
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    if not keep_source:
        src.unlink()


async def test_recovery_rolls_forward_back_and_never_deletes_a_differing_file(
    db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    bid = uuid.uuid4()
    await Batch.create(id=bid, kind="apply", status="running")
    await KeyValue.create(
        key=LOCK_KEY,
        value={"batch_id": str(bid), "pid": dead_pid(), "host": socket.gethostname()},
    )
    # A: all at destination, main still at both places (copy done, source not removed).
    a = await queued(root, "INBOX/a/clip.mp4", bid, ("clip.xmp",))
    move(root, "INBOX/a/clip.mp4", keep_source=True)
    move(root, "INBOX/a/clip.xmp")
    write(root, "ARCHIVE/a/.clip.xmp.rushtmp", b"half a copy")
    # B: main moved, sidecar not yet: roll back.
    b = await queued(root, "INBOX/b/clip.mp4", bid, ("clip.xmp",))
    move(root, "INBOX/b/clip.mp4")
    # C: a different file sits at the destination: not ours, never deleted.
    c = await queued(root, "INBOX/c/clip.mp4", bid, ())
    write(root, "ARCHIVE/c/clip.mp4", b"somebody else's clip")
    # D: locked by the batch but not queued yet.
    d = await make_asset(root, "INBOX/d/x.mp4", S.DECIDED_REJECT)
    await Asset.filter(id=d.id).update(batch_id=bid)

    out = await recover(cfg)
    outcomes = {g["uuid"]: g["outcome"] for g in out["groups"]}
    assert outcomes == {
        str(a.id): "rolled_forward",
        str(b.id): "rolled_back",
        str(c.id): "rolled_back",
    }
    assert out["unlocked"] == 1
    ra = await Asset.get(id=a.id)
    assert (ra.state, ra.rel_path, ra.batch_id) == (S.ARCHIVED, "ARCHIVE/a/clip.mp4", None)
    assert await Sidecar.filter(asset_id=a.id).values_list("rel_path", flat=True) == [
        "ARCHIVE/a/clip.xmp"
    ]
    assert not (root / "INBOX/a/clip.mp4").exists() and (root / "ARCHIVE/a/clip.mp4").exists()
    assert not (root / "ARCHIVE/a/.clip.xmp.rushtmp").exists()
    rb = await Asset.get(id=b.id)
    assert (rb.state, rb.rel_path, rb.batch_id) == (S.DECIDED_KEEP, "INBOX/b/clip.mp4", None)
    assert (root / "INBOX/b/clip.mp4").exists() and not (root / "ARCHIVE/b/clip.mp4").exists()
    assert (root / "ARCHIVE/c/clip.mp4").read_bytes() == b"somebody else's clip"
    assert (root / "INBOX/c/clip.mp4").exists()
    assert (await Asset.get(id=c.id)).state is S.DECIDED_KEEP
    rd = await Asset.get(id=d.id)
    assert (rd.state, rd.batch_id) == (S.DECIDED_REJECT, None)
    assert (await Batch.get(id=bid)).status == "crashed"
    assert not await KeyValue.exists(key=LOCK_KEY)
    assert await FsAction.filter(status="pending").count() == 0
    again = await recover(cfg)
    assert again["groups"] == [] and again["unlocked"] == 0


async def test_recovery_leaves_a_live_batch_alone(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    bid = uuid.uuid4()
    await Batch.create(id=bid, kind="apply", status="running")
    await KeyValue.create(
        key=LOCK_KEY, value={"batch_id": str(bid), "pid": os.getpid(), "host": socket.gethostname()}
    )
    a = await queued(root, "INBOX/l/clip.mp4", bid, ())
    move(root, "INBOX/l/clip.mp4")
    out = await recover(cfg)
    assert out["busy"] is True
    assert (await Asset.get(id=a.id)).state is S.MOVE_QUEUED
    assert (root / "ARCHIVE/l/clip.mp4").exists()


async def test_forward_refused_by_database_rolls_back_without_losing_a_copy(
    db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    bid = uuid.uuid4()
    await Batch.create(id=bid, kind="apply", status="running")
    a = await queued(root, "INBOX/z/clip.mp4", bid, ("clip.xmp",))
    data = (root / "INBOX/z/clip.mp4").read_bytes()
    move(root, "INBOX/z/clip.mp4", keep_source=True)  # at both places, identical
    move(root, "INBOX/z/clip.xmp")
    # Another record claims the destination path: the forward database update must fail.
    squatter = await make_asset(None, "ARCHIVE/elsewhere.mp4", AssetState.ARCHIVED)
    await Asset.filter(id=squatter.id).update(path_key="ARCHIVE/z/clip.mp4")
    out = await recover(cfg)
    assert [g["outcome"] for g in out["groups"]] == ["rolled_back"]
    assert (root / "INBOX/z/clip.mp4").read_bytes() == data
    assert (root / "INBOX/z/clip.xmp").exists()
    assert not (root / "ARCHIVE/z/clip.mp4").exists() and not (root / "ARCHIVE/z/clip.xmp").exists()
    ra = await Asset.get(id=a.id)
    assert (ra.state, ra.rel_path, ra.batch_id) == (S.DECIDED_KEEP, "INBOX/z/clip.mp4", None)


async def test_startup_recovers_and_configures_cleanup(db: str, tmp_path: Path) -> None:
    from rush import actions
    from rush.moves.recovery import startup

    root = tmp_path / "lib"
    cfg = make_config(root, db)
    bid = uuid.uuid4()
    await Batch.create(id=bid, kind="apply", status="running")
    a = await queued(root, "INBOX/s/clip.mp4", bid, ())
    out = await startup(cfg)
    assert [g["outcome"] for g in out["groups"]] == ["rolled_back"]
    assert (await Asset.get(id=a.id)).state is S.DECIDED_KEEP
    write(root, f".derived/{a.id}/v1/x.jpg", b"x")
    await Asset.filter(id=a.id).update(version=2)
    assert await actions.cleanup_superseded_derivatives(a.id) == [f".derived/{a.id}/v1"]


async def test_recovery_of_a_non_utf8_name_keeps_its_bytes(db: str, tmp_path: Path) -> None:
    """A crashed copy of `caf\\xe9.mp4` (latin-1 bytes): the leftover temporary copy is
    journaled and removed, the file goes back under its exact bytes."""
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    bid = uuid.uuid4()
    await Batch.create(id=bid, kind="apply", status="running")
    rel = "INBOX/n/caf\uf7e9.mp4"  # the stored form of b"INBOX/n/caf\xe9.mp4"
    a = await make_asset(None, rel, S.DECIDED_KEEP)
    await Asset.filter(id=a.id).update(batch_id=bid)
    await transition(a.id, S.DECIDED_KEEP, S.MOVE_QUEUED, Trigger.QUEUE_MOVE, "crashed-batch")
    await FsAction.create(
        action="move", src=rel, dst="ARCHIVE/n/caf\uf7e9.mp4", batch_id=bid, asset_id=a.id
    )
    src = put_bytes(root, b"INBOX/n/caf\xe9.mp4", b"clip")
    put_bytes(root, b"ARCHIVE/n/.caf\xe9.mp4.rushtmp", b"cl")  # a crashed copy
    out = await recover(cfg)
    assert [g["outcome"] for g in out["groups"]] == ["rolled_back"]
    assert digest(src) == hashlib.sha256(b"clip").hexdigest()
    assert os.listdir(os.fsencode(root) + b"/ARCHIVE/n") == []  # no temporary copy left
    deleted = await FsAction.get(action="delete", asset_id=a.id)
    assert (deleted.src, deleted.status) == ("ARCHIVE/n/.caf\uf7e9.mp4.rushtmp", "done")
    assert (await Asset.get(id=a.id)).state is S.DECIDED_KEEP


async def test_recovery_never_follows_a_symlinked_folder(db: str, tmp_path: Path) -> None:
    """The destination folder became a link to a copy outside the library: recovery
    refuses the group rather than delete the only copy inside the library."""
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    bid = uuid.uuid4()
    await Batch.create(id=bid, kind="apply", status="running")
    a = await queued(root, "INBOX/l/clip.mp4", bid, ())
    outside = tmp_path / "outside"
    write(outside, "clip.mp4", (root / "INBOX/l/clip.mp4").read_bytes())
    os.symlink(outside, root / "ARCHIVE/l")
    out = await recover(cfg)
    [group] = out["groups"]
    assert group["outcome"].startswith("error") and "symbolic link" in group["outcome"]
    assert (root / "INBOX/l/clip.mp4").exists() and (outside / "clip.mp4").exists()
    got = await Asset.get(id=a.id)
    assert (got.state, got.rel_path) == (S.MOVE_QUEUED, "INBOX/l/clip.mp4")
    assert await FsAction.filter(asset_id=a.id, action="move", status="pending").count() == 1
