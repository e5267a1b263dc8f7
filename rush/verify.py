"""Fixity: does the library still hold the bytes that were reviewed? (docs/batch.md, "Verify")

Why: nothing else ever re-reads ARCHIVE, so bit rot, a failing disk or a sync tool gone
wrong would only show the day a file is needed.  `run_verify` re-hashes the files that
have a recorded full hash (`asset.content_hash`, `sidecar.content_hash`) and reports those
whose bytes differ, those that are missing, and files under ARCHIVE/REJECTS that no asset
owns.  It reads only: it never repairs, moves, rewrites or deletes anything; the one thing
it writes is its report, in the database (`kv.last_verify`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rush.config import Config
from rush.fingerprint import FileChanged, Interrupted, full_hash
from rush.hashing import library_path, lowest_priority
from rush.layout import UnsafePath, path_to_db
from rush.lifecycle import AssetState
from rush.media import VOLUME_MARKER_FILE
from rush.models import Asset, KeyValue, Sidecar
from rush.transitions import utcnow
from rush.volumes import check_volumes, destination_roots

log = logging.getLogger(__name__)
S = AssetState
LAST_KEY = "last_verify"
#: A scheduled check in progress: {"started_at", "done", "total"} (operations page).
PROGRESS_KEY = "verify_progress"
Progress = Callable[[int, int, str], None]


class VerifyRefused(RuntimeError):
    """The volumes to verify are not there (unmounted): nothing was checked."""


@dataclass
class VerifyReport:
    scope: str
    sample_pct: float
    started_at: str
    finished_at: str | None = None
    checked: int = 0
    ok: int = 0
    bytes: int = 0
    #: {"uuid", "path", "expected", "actual", "modified"}: modified = size/mtime moved too
    #: (an edit); otherwise the bytes changed under an unchanged size and mtime (bit rot).
    differs: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    #: Files under ARCHIVE/REJECTS that no asset or sidecar owns.
    extra: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Known files without a full hash yet (the hasher has not read them).
    unhashed: int = 0
    interrupted: bool = False

    @property
    def problems(self) -> int:
        return len(self.differs) + len(self.missing) + len(self.extra) + len(self.errors)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"problems": self.problems}


@dataclass(frozen=True)
class _Item:
    uuid: str
    rel: str
    expected: str
    size: int | None
    mtime: float | None


def _pick(items: list[_Item], sample_pct: float, rng: random.Random) -> list[_Item]:
    if sample_pct >= 100 or not items:
        return items
    count = max(1, round(len(items) * sample_pct / 100))
    return sorted(rng.sample(items, count), key=lambda i: i.rel)


def _extra_files(roots: dict[str, Path], known: set[str]) -> list[str]:
    """Files below each area root that nothing in the database owns (hidden ones aside)."""
    out: list[str] = []
    for area, root in roots.items():
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel_folder = os.path.relpath(folder, root)
            for name in sorted(files):
                if name.startswith(".") or name == VOLUME_MARKER_FILE:
                    continue
                sub = name if rel_folder == "." else f"{rel_folder}/{name}"
                rel = path_to_db(f"{area}/{sub}")
                if rel not in known:
                    out.append(rel)
    return out


async def run_verify(
    config: Config,
    *,
    archive_only: bool = True,
    sample_pct: float = 100.0,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    seed: int | None = None,
) -> VerifyReport:
    """Re-hash the recorded files of ARCHIVE (or of every area) and compare; read-only."""
    if not 0 < sample_pct <= 100:
        raise ValueError("the sample is a percentage: more than 0, at most 100")
    areas = ["ARCHIVE"] if archive_only else ["INBOX", "ARCHIVE", "REJECTS"]
    problems = await asyncio.to_thread(
        check_volumes, config, [a for a in areas if a != "INBOX"], verb="verified"
    )
    if problems:
        # An unmounted volume would make every file look missing: check nothing.
        raise VerifyRefused("; ".join(problems.values()))
    report = VerifyReport(
        scope="ARCHIVE" if archive_only else "library",
        sample_pct=sample_pct,
        started_at=utcnow().isoformat(),
    )
    live = Asset.filter(area__in=areas, path_key__not_isnull=True).exclude(
        state__in=[S.PURGED, S.MOVE_QUEUED]
    )
    rows = await live.filter(batch_id=None).values_list(
        "id", "rel_path", "content_hash", "hashed_size", "hashed_mtime"
    )
    items = [_Item(str(i), r, h, s, m) for i, r, h, s, m in rows if h]
    report.unhashed = sum(1 for r in rows if not r[2])
    ids = [r[0] for r in rows]
    known = {str(r[1]) for r in rows}
    for start in range(0, len(ids), 500):
        for aid, rel, h, s, m in await Sidecar.filter(
            asset_id__in=ids[start : start + 500]
        ).values_list("asset_id", "rel_path", "content_hash", "hashed_size", "hashed_mtime"):
            known.add(str(rel))
            if h:
                items.append(_Item(str(aid), str(rel), str(h), s, m))
            else:
                report.unhashed += 1
    picked = _pick(sorted(items, key=lambda i: i.rel), sample_pct, random.Random(seed))
    stop = stop or threading.Event()
    pool = ThreadPoolExecutor(1, "rush-verify", initializer=lowest_priority)
    loop = asyncio.get_running_loop()
    try:
        for n, item in enumerate(picked, 1):
            if stop.is_set():
                report.interrupted = True
                break
            try:
                path = library_path(config, item.rel)
                if not path.is_file():
                    report.missing.append({"uuid": item.uuid, "path": item.rel})
                    continue
                digest, size, mtime = await loop.run_in_executor(pool, full_hash, path, stop)
            except Interrupted:
                report.interrupted = True
                break
            except FileChanged:
                report.errors.append(f"{item.rel}: changed while it was read; check it again")
                continue
            except (OSError, UnsafePath) as exc:
                report.errors.append(f"{item.rel}: cannot read ({exc})")
                continue
            report.checked += 1
            report.bytes += size
            if digest == item.expected:
                report.ok += 1
            else:
                modified = item.size != size or (
                    item.mtime is not None and abs(item.mtime - mtime) > 1e-5
                )
                report.differs.append(
                    {
                        "uuid": item.uuid,
                        "path": item.rel,
                        "expected": item.expected,
                        "actual": digest,
                        "modified": modified,
                    }
                )
            if progress:
                progress(n, len(picked), "verify")
        if sample_pct >= 100 and not report.interrupted:
            roots = {a: r for a, r in destination_roots(config).items() if a in areas}
            report.extra = await asyncio.to_thread(_extra_files, roots, known)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    report.finished_at = utcnow().isoformat()
    await KeyValue.update_or_create(key=LAST_KEY, defaults={"value": report.to_dict()})
    for d in report.differs:
        log.error("verify: %s does not hold the recorded bytes (%s)", d["path"], d["uuid"])
    return report


async def last_verify() -> dict[str, Any]:
    row = await KeyValue.get_or_none(key=LAST_KEY)
    return dict(row.value) if row else {}
