"""The relocation journal (`seed_move`): what each attempt planned, and how far it got.

Why: qBittorrent moves data on its own; the run that asked can die at any moment.  The
journal is written *before* setLocation and after each step, so a later run knows whether
a torrent found on the Synology was rechecked there (only then may it be finalised), and
which files at a destination an attempt of its own wrote (only those may be cleaned up).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rush.models import SeedMove

log = logging.getLogger("rush.seedbox.relocator")

#: Phases after which the copy at `dest` was rechecked complete by qBittorrent.
VERIFIED_PHASES = ("verified", "finalised")


async def start(
    run_id: str, infohash: str, src: str, dest: str, files: Sequence[tuple[str, int]]
) -> SeedMove:
    """Journal an attempt before anything is asked of qBittorrent."""
    return await SeedMove.create(
        infohash=infohash,
        run_id=run_id,
        src=src,
        dest=dest,
        files=[[name, size] for name, size in files],
        phase="planned",
    )


async def set_phase(move: SeedMove, phase: str, error: str | None = None) -> None:
    move.phase = phase
    if error is not None:
        move.error = error
    await move.save(update_fields=["phase", "error", "updated_at"])


async def verified_at(infohash: str, dest: str) -> SeedMove | None:
    """The latest attempt whose recheck at `dest` completed, if any."""
    return (
        await SeedMove.filter(infohash=infohash, dest=dest, phase__in=VERIFIED_PHASES)
        .order_by("-id")
        .first()
    )


async def record_verified(run_id: str, infohash: str, src: str, dest: str) -> SeedMove:
    """A torrent found at `dest` (earlier run, or moved by a human) rechecked there now."""
    return await SeedMove.create(
        infohash=infohash, run_id=run_id, src=src, dest=dest, files=[], phase="verified"
    )


async def own_files(infohash: str, dest: str) -> dict[str, int]:
    """Files (name -> recorded size) that failed attempts of this torrent wrote to `dest`."""
    rows = await SeedMove.filter(infohash=infohash, dest=dest, phase="failed").all()
    out: dict[str, int] = {}
    for row in rows:
        for name, size in row.files:
            out[str(name)] = max(int(size), out.get(str(name), 0))
    return out


async def fail_open(infohash: str, dest: str, error: str) -> None:
    """Attempts towards `dest` that never completed are failed (their files are ours)."""
    await SeedMove.filter(
        infohash=infohash, dest=dest, phase__in=("planned", "location_set")
    ).update(phase="failed", error=error)
