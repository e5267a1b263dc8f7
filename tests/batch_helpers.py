"""Helpers for the batch/purge tests: a real library on disk and assets in real states."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rush.config import Config, DatabaseConfig, LibraryConfig
from rush.layout import init_library, write_volume_marker
from rush.lifecycle import AssetState, Trigger
from rush.media import Area, MediaKind
from rush.models import Asset, Facts, Sidecar
from rush.moves.plan import area_of
from rush.transitions import transition

S = AssetState
T = Trigger


def make_config(root: Path, db_url: str, **library: Path) -> Config:
    """A new library; ARCHIVE/REJECTS volumes given here get their markers when they
    exist (as `rush init --volume` would write them), not when they are absent."""
    marker, _ = init_library(root)
    for area, key in (("ARCHIVE", "archive_root"), ("REJECTS", "rejects_root")):
        volume = library.get(key)
        if volume is not None and volume.is_dir():
            write_volume_marker(volume, marker.library_id, area)
    return Config(
        data_dir=root.parent / "data",
        library=LibraryConfig(root=root, **library),
        database=DatabaseConfig(dsn=db_url),
    )


def write(root: Path, rel: str, content: bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


async def path_to(asset_id: object, target: AssetState) -> None:
    """Walk an asset from PROCESSED to `target` with real transitions."""
    path: dict[AssetState, list[tuple[AssetState, Trigger]]] = {
        S.PROCESSED: [],
        S.DECIDED_KEEP: [(S.DECIDED_KEEP, T.DECIDE_KEEP)],
        S.DECIDED_REJECT: [(S.DECIDED_REJECT, T.DECIDE_REJECT)],
        S.ARCHIVED: [
            (S.DECIDED_KEEP, T.DECIDE_KEEP),
            (S.MOVE_QUEUED, T.QUEUE_MOVE),
            (S.ARCHIVED, T.MOVE_DONE),
        ],
        S.REJECTED: [
            (S.DECIDED_REJECT, T.DECIDE_REJECT),
            (S.MOVE_QUEUED, T.QUEUE_MOVE),
            (S.REJECTED, T.MOVE_DONE),
        ],
        S.DECISION_PENDING: [
            (S.DECIDED_KEEP, T.DECIDE_KEEP),
            (S.DECISION_PENDING, T.UNDO),
        ],
    }[target]
    current = S.PROCESSED
    for nxt, trig in path:
        await transition(asset_id, current, nxt, trig, "tester")  # type: ignore[arg-type]
        current = nxt


async def make_asset(
    root: Path | None,
    rel: str,
    state: AssetState = S.DECIDED_KEEP,
    *,
    sidecars: tuple[str, ...] = (),
    processed: bool = True,
    content: bytes | None = None,
    files_root: dict[str, Path] | None = None,
) -> Asset:
    """Create the files (unless root is None) and an asset walked to `state`."""
    data = content if content is not None else os.urandom(64) + rel.encode()
    folder = rel.rsplit("/", 1)[0]
    if root is not None:
        base = (files_root or {}).get(rel.split("/", 1)[0])
        target_root = base if base is not None else root
        strip = base is not None
        write(target_root, rel.split("/", 1)[1] if strip else rel, data)
        for sc in sidecars:
            screl = f"{folder}/{sc}"
            write(
                target_root,
                screl.split("/", 1)[1] if strip else screl,
                b"sidecar " + sc.encode() + data[:16],
            )
    mtime = 0.0
    if root is not None:
        # As a scan would have recorded it (a differing mtime reads as a change on disk).
        mtime = (target_root / (rel.split("/", 1)[1] if strip else rel)).stat().st_mtime
    asset = await Asset.create(
        kind=MediaKind.VIDEO,
        area=area_of(rel) or Area.INBOX,
        rel_path=rel,
        path_key=rel,
        size=len(data),
        mtime=mtime,
        state=S.PROCESSED,
    )
    for sc in sidecars:
        await Sidecar.create(
            asset=asset, rel_path=f"{folder}/{sc}", size=len(b"sidecar " + sc.encode() + data[:16])
        )
    if processed:
        await Facts.create(asset=asset, version=1, data={"duration": 1.0})
    await path_to(asset.id, state)
    return await Asset.get(id=asset.id)
