"""qBittorrent tags that show each run's decision, the way qbit_manage users expect.

`<prefix>relocated` (moved or finalised on the Synology), `<prefix>deferred` (kept on the
NVMe on purpose: hard link, paused, Synology away, too young), `<prefix>noHL` (no file of
the torrent has another hard link, so moving it really frees space).  Each run sets and
clears them; tagging is best effort: a refused tag call is logged, never fails a move.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from integrations.qbittorrent import QbitClient, QbitError
from rush.seedbox.report import Outcome

log = logging.getLogger("rush.seedbox.relocator")


def tag_changes(
    prefix: str, outcomes: Iterable[Outcome], hardlinked: Mapping[str, bool]
) -> dict[tuple[str, str], list[str]]:
    """{(add|remove, tag): [infohash, ...]} for the run's outcomes.  Pure."""
    relocated, deferred, no_hl = f"{prefix}relocated", f"{prefix}deferred", f"{prefix}noHL"
    out: dict[tuple[str, str], list[str]] = {}

    def put(op: str, tag: str, infohash: str) -> None:
        hashes = out.setdefault((op, tag), [])
        if infohash not in hashes:
            hashes.append(infohash)

    for o in outcomes:
        if o.action in ("moved", "finalised"):
            put("add", relocated, o.infohash)
            put("remove", deferred, o.infohash)
            put("add", no_hl, o.infohash)  # a cross-filesystem copy has one link
        elif o.action == "deferred":
            put("add", deferred, o.infohash)
        elif o.action in ("kept", "failed"):
            put("remove", deferred, o.infohash)
        if o.action not in ("moved", "finalised") and o.infohash in hardlinked:
            put("remove" if hardlinked[o.infohash] else "add", no_hl, o.infohash)
    return out


async def apply(
    qbit: QbitClient, prefix: str, outcomes: Iterable[Outcome], hardlinked: Mapping[str, bool]
) -> None:
    for (op, tag), hashes in tag_changes(prefix, outcomes, hardlinked).items():
        try:
            if op == "add":
                await qbit.add_tags(hashes, [tag])
            else:
                await qbit.remove_tags(hashes, [tag])
        except QbitError as exc:
            log.warning("could not %s tag %r on %d torrent(s): %s", op, tag, len(hashes), exc)
