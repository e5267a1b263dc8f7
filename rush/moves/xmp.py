"""Opt-in step of a batch apply: an XMP beside each original that lands in ARCHIVE
(`[apply] write_xmp = true`), so Lightroom, Bridge or Resolve opening the archive see
the decision label, rating, tags and fields (rush/metadata/xmp_write.py).

Why journaled and narrow: it is a write next to originals.  It runs only after the
group reached ARCHIVE (never in INBOX, never in REJECTS), never replaces a file (an
XMP the camera or an editor wrote stays as it is: the step is skipped and reported),
writes a temporary file, fsyncs and renames it without replacing, and records each
write in the journal first; recovery settles a write interrupted by a crash.  The new
XMP is registered as a sidecar, so it travels with its asset from then on.
Contract: docs/batch.md, "XMP beside archived originals".
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from rush.lifecycle import AssetState
from rush.media import Area
from rush.metadata import xmp_write
from rush.models import Asset, Sidecar, Tag
from rush.moves import journal
from rush.moves.journal import Roots
from rush.transitions import utcnow

log = logging.getLogger(__name__)
ACTION = "write_xmp"


def xmp_rel(main_rel: str) -> str:
    return str(PurePosixPath(main_rel).with_suffix(".xmp"))


def _write(path: Path, text: str) -> int:
    """Temp file, fsync, rename without replacing, fsync the folder (blocking)."""
    tmp = journal.tmp_name(path)
    data = text.encode("utf-8")
    with tmp.open("xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        journal.rename_noreplace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    journal.fsync_dir(path.parent)
    return len(data)


async def write_archive_xmps(
    roots: Roots, batch_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> list[dict[str, Any]]:
    """Write the XMPs of these (just applied) assets; returns what happened to each."""
    results: list[dict[str, Any]] = []
    for asset_id in asset_ids:
        asset = await Asset.get_or_none(id=asset_id)
        if asset is None or asset.state is not AssetState.ARCHIVED:
            continue
        if PurePosixPath(asset.rel_path).parts[0] != Area.ARCHIVE.value:
            continue  # never beside a file in INBOX (or anywhere else)
        rel = xmp_rel(asset.rel_path)
        try:
            target = roots.path(rel)
        except Exception as exc:  # UnsafePath: a path that does not resolve inside ARCHIVE
            results.append({"uuid": str(asset.id), "xmp": rel, "outcome": f"refused: {exc}"})
            continue
        if target.exists() or await Sidecar.filter(asset_id=asset.id, rel_path=rel).exists():
            results.append({"uuid": str(asset.id), "xmp": rel, "outcome": "exists, kept"})
            continue
        tags = await Tag.filter(asset_id=asset.id).order_by("name").values_list("name", flat=True)
        fields = dict(asset.fields_data or {})
        rating = fields.get("rating")
        text = xmp_write.render(
            str(asset.id),
            rating=rating if isinstance(rating, int) else None,
            tags=[str(t) for t in tags],
            fields=fields,
            decision=asset.decision or "KEEP",  # in ARCHIVE: kept
        )
        row = await journal.record(ACTION, dst=rel, batch_id=batch_id, asset_id=asset.id)
        try:
            size = await asyncio.to_thread(_write, target, text)
        except OSError as exc:
            await journal.finish([row.id], "failed", str(exc))
            results.append({"uuid": str(asset.id), "xmp": rel, "outcome": f"failed: {exc}"})
            continue
        await Sidecar.create(
            asset_id=asset.id, rel_path=rel, size=size, mtime=target.stat().st_mtime
        )
        await journal.finish([row.id], "done")
        await Asset.filter(id=asset.id).update(updated_at=utcnow())
        results.append({"uuid": str(asset.id), "xmp": rel, "outcome": "written"})
    return results


def settle_interrupted(roots: Roots, dst: str | None) -> str:
    """Recovery of a journaled XMP write: done if the file is there, else void (its
    temporary file, if any, is removed: nothing else was touched)."""
    if dst is None:
        return "void"
    try:
        path = roots.path(dst)
    except Exception:
        return "void"
    journal.tmp_name(path).unlink(missing_ok=True)
    return "done" if path.exists() else "void"
