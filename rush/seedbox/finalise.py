"""A torrent found on the Synology at the start of a run: finalise it only when proven.

An earlier run may have died between qBittorrent's setLocation and the recheck, or the
disk may have filled during the move: qBittorrent 4.5 then reports the new save path,
a seeding state and 100 % although the copy there is damaged.  "The files exist" is
therefore never enough.  The mapping is written, the `.state` files removed (and the
NVMe copy considered gone) only when qBittorrent rechecked the torrent *at this
location*, in this run or in an earlier one recorded in the journal (`seedbox.moves`).
Otherwise this run asks for the recheck; if it finds the copy incomplete, the torrent is
pointed back at its complete NVMe copy when there is one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from integrations.qbittorrent import TorrentView
from rush.models import SeedMapping, SeedMove
from rush.seedbox import fs, moves
from rush.seedbox.qbitops import Abandon, QbitOps, norm
from rush.seedbox.report import Outcome

log = logging.getLogger("rush.seedbox.relocator")

#: `record(cause, error)` journals a failed attempt (the relocator's KPI row).
Record = Callable[[str, str], Awaitable[None]]
#: `finalise(view, path_nvme, path_syno)` writes the mapping and removes the `.state`s.
Finalise = Callable[[TorrentView, str, str], Awaitable[None]]


async def nvme_path_of(infohash: str, here: str, guess: str) -> str:
    """Where the torrent seeded on the NVMe: the journal, else the mapping, else `guess`."""
    row = await SeedMove.filter(infohash=infohash, dest=here).order_by("-id").first()
    if row is not None and row.src:
        return str(row.src)
    existing = await SeedMapping.get_or_none(infohash=infohash)
    return existing.path_nvme if existing else guess


async def on_synology(
    ops: QbitOps,
    view: TorrentView,
    guess_nvme: str,
    *,
    dry_run: bool,
    run_id: str,
    record: Record,
    finalise: Finalise,
) -> Outcome:
    infohash = view.infohash
    here = norm(view.save_path)
    nvme = await nvme_path_of(infohash, here, guess_nvme)
    try:
        names = await ops.retry(f"files {infohash}", lambda: ops.qbit.files(infohash))
    except Abandon as exc:
        return Outcome(infohash, view.name, "failed", f"abandoned: {exc}", cause=exc.cause)
    moved = view.stored_under(here)
    if not moved or not await asyncio.to_thread(fs.all_present, Path(here), names):
        # qBittorrent 4.5 keeps the new save path after a failed move: the data is
        # still on the NVMe.  Point it back there rather than trust the path (a recheck
        # now would check the NVMe copy, or move the torrent onto a damaged copy).
        msg = (
            f"qBittorrent claims {here} but its data is still at {view.content_path} "
            "(the move failed; see qBittorrent's log)"
            if not moved
            else f"qBittorrent claims {here} but the files are not there"
        )
        log.error("%s (%s): %s", view.name, infohash, msg)
        if not dry_run:
            await ops.restore(view, Path(nvme), Path(here))
            await moves.fail_open(infohash, here, msg)
            await record("api", msg)
        return Outcome(infohash, view.name, "failed", msg, cause="api")
    verified = await moves.verified_at(infohash, here)
    if verified is None:
        if dry_run:
            return Outcome(
                infohash,
                view.name,
                "kept",
                f"on the Synology ({here}) but not rechecked there: a run rechecks it "
                "before finalising",
            )
        log.warning(
            "%s (%s) is at %s without a recorded recheck there (an interrupted run, or "
            "moved by hand): rechecking before anything is finalised",
            view.name,
            infohash,
            here,
        )
        try:
            await ops.recheck_at(view, Path(here))
        except Abandon as exc:
            msg = f"recheck at {here} failed, not finalised: {exc}"
            log.error("%s (%s): %s", view.name, infohash, msg)
            await ops.restore(view, Path(nvme), Path(here))
            await moves.fail_open(infohash, here, msg)
            await record(exc.cause, msg)
            return Outcome(
                infohash, view.name, "failed", msg, cause=exc.cause, path_nvme=nvme, path_syno=here
            )
        verified = await moves.record_verified(run_id, infohash, nvme, here)
        fresh = await ops.info(infohash)
        if fresh is None:
            return Outcome(infohash, view.name, "failed", "torrent left qBittorrent", cause="api")
        view = fresh
    if dry_run or not view.seeding:
        return Outcome(infohash, view.name, "kept", f"already on the Synology (state {view.state})")
    await finalise(view, nvme, here)
    await moves.set_phase(verified, "finalised")
    log.info("%s (%s) seeds from %s, rechecked there: mapping updated", view.name, infohash, here)
    return Outcome(
        infohash,
        view.name,
        "finalised",
        "already on the Synology, rechecked there",
        path_nvme=nvme,
        path_syno=here,
    )
