"""Files a failed attempt of this tool left at a destination: recognised, cleaned up.

Why: qBittorrent does not replace existing files, so a partial copy left on the Synology
by a failed move (a full disk, a lost share) would block the torrent for ever as a
"conflict".  A file is ours only when a journaled attempt (`seed_move`, phase `failed`)
of the same torrent — or of one of its cross-seeds — towards the same destination listed
it, and it is a plain file no larger than the recorded size with no other hard link.
Anything else is foreign and still blocks, named in the refusal.  Each removal is
journaled in `fs_action` (action `seed_delete`) before it happens and marked after.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from rush.models import FsAction
from rush.seedbox import moves
from rush.seedbox.groups import Group
from rush.transitions import utcnow

log = logging.getLogger("rush.seedbox.relocator")


def _is_ours(path: Path, recorded_size: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size <= recorded_size


async def own_among(group: Group, dest: Path, conflicts: Sequence[str]) -> dict[str, int]:
    """The conflicting files that are this group's own leftovers (name -> recorded size)."""
    own: dict[str, int] = {}
    for infohash in group.members:
        for name, size in (await moves.own_files(infohash, str(dest))).items():
            own[name] = max(size, own.get(name, 0))
    return {
        name: own[name]
        for name in conflicts
        if name in own and await asyncio.to_thread(_is_ours, dest / name, own[name])
    }


async def clean_own(
    group: Group,
    dest: Path,
    conflicts: Sequence[str],
    run_id: str,
) -> list[str]:
    """Remove the conflicting files a failed attempt of this group wrote; return them."""
    own = await own_among(group, dest, conflicts)
    cleaned: list[str] = []
    for name in own:
        path = dest / name
        row = await FsAction.create(action="seed_delete", src=str(path), size=own[name])
        try:
            await asyncio.to_thread(path.unlink)
        except OSError as exc:
            row.status, row.error, row.done_at = "failed", str(exc), utcnow()
            await row.save()
            log.error("cannot remove own leftover %s: %s", path, exc.strerror)
            continue
        row.status, row.done_at = "done", utcnow()
        await row.save()
        cleaned.append(name)
    if cleaned:
        log.warning(
            "removed %d file(s) that a failed earlier attempt of this tool left at %s (run %s): %s",
            len(cleaned),
            dest,
            run_id,
            ", ".join(cleaned[:5]) + (" …" if len(cleaned) > 5 else ""),
        )
    return cleaned
