"""Work that can never finish: `.state` files of torrents gone from qBittorrent, mapping
rows of deleted torrents.

Why: a torrent removed from qBittorrent by hand (ratio reached, release replaced) left
its `.state` failing every run for ever and its mapping row looking current.  After
`seedbox.stale_after_days` such a `.state` is archived — moved, never deleted, to
`<state_dir>/archived/` next to a `<name>.reason` file saying why and when — and a
mapping row whose torrent is gone is marked `removed` (kept for the record; marked
`active` again if the torrent comes back).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Sequence

from rush.models import SeedMapping
from rush.seedbox.state import StateEntry

log = logging.getLogger("rush.seedbox.relocator")

ARCHIVE_DIR = "archived"


def is_stale(entries: Sequence[StateEntry], now: float, stale_after_days: int) -> bool:
    """True when the newest import of the torrent is older than the limit."""
    newest = max((e.state.added_epoch for e in entries if e.state), default=0)
    return now - newest >= stale_after_days * 86400


def archive(entries: Sequence[StateEntry], reason: str, now: float) -> list[str]:
    """Move the `.state` files aside with a reason; return the archived names."""
    done: list[str] = []
    for entry in entries:
        target = entry.path.parent / ARCHIVE_DIR
        try:
            target.mkdir(exist_ok=True)
            note = target / f"{entry.path.name}.reason"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            note.write_text(f"{stamp} {reason}\n", encoding="utf-8")
            os.replace(entry.path, target / entry.path.name)
            done.append(entry.path.name)
        except OSError as exc:
            log.error("cannot archive %s: %s", entry.path, exc.strerror)
    return done


async def mark_removed(present: Collection[str], now: float) -> tuple[int, int]:
    """Mapping rows: gone from qBittorrent -> removed, back again -> active.
    Returns (newly removed, back)."""
    removed = back = 0
    for row in await SeedMapping.all():
        if row.status != "removed" and row.infohash not in present:
            row.status, row.removed_epoch = "removed", int(now)
            await row.save(update_fields=["status", "removed_epoch"])
            removed += 1
        elif row.status == "removed" and row.infohash in present:
            row.status, row.removed_epoch = "active", None
            await row.save(update_fields=["status", "removed_epoch"])
            back += 1
    if removed or back:
        log.info(
            "mapping: %d torrent(s) gone from qBittorrent marked removed, %d back", removed, back
        )
    return removed, back
