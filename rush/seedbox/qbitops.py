"""The qBittorrent choreography of a relocation: retried calls, waiting for a move, for a
recheck, and pointing a torrent back at its complete copy after a failure.

Kept apart from the run's decisions (`relocator`) so that each half stays readable; no
torrent data is touched here, qBittorrent moves it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from integrations.qbittorrent import QbitClient, QbitError, TorrentView
from rush.config import SeedboxConfig
from rush.seedbox import fs

log = logging.getLogger("rush.seedbox.relocator")

T = TypeVar("T")

CHECKING_STATES = frozenset({"checkingUP", "checkingDL", "checkingResumeData", "moving"})
#: qBittorrent refreshes torrent states every `refresh_interval` (1.5 s by default); after
#: a recheck request the state we read may still be the old "seeding" one for that long,
#: so seeding is trusted only after a checking state was seen or this many intervals.
RECHECK_SETTLE_INTERVALS = 1.5
RECHECK_SETTLE_DEFAULT_S = 2.5


class Abandon(Exception):
    """Give up on one torrent; `cause` is one of the KPI causes."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


def norm(path: str | Path) -> str:
    return os.path.normpath(str(path))


class QbitOps:
    """Retried qBittorrent calls and the waits of a move; one instance per run."""

    def __init__(
        self,
        cfg: SeedboxConfig,
        qbit: QbitClient,
        sleep: Callable[[float], Awaitable[None]],
        recheck_settle_s: float | None,
    ) -> None:
        self.cfg = cfg
        self.qbit = qbit
        self.sleep = sleep
        self.recheck_settle_s = recheck_settle_s

    async def retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Retry a qBittorrent call `retries` times with exponential back-off."""
        attempts = self.cfg.retries
        for attempt in range(1, attempts + 1):
            try:
                return await call()
            except QbitError as exc:
                if attempt == attempts:
                    log.error(
                        "qBittorrent %s failed (attempt %d/%d), giving up: %s",
                        what,
                        attempt,
                        attempts,
                        exc,
                    )
                    raise Abandon(exc.cause, f"{what}: {exc}") from exc
                delay = self.cfg.retry_backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "qBittorrent %s failed (attempt %d/%d), retrying in %.1f s: %s",
                    what,
                    attempt,
                    attempts,
                    delay,
                    exc,
                )
                await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def info(self, infohash: str) -> TorrentView | None:
        return await self.retry(f"torrent info {infohash}", lambda: self.qbit.torrent(infohash))

    async def settle_time(self) -> None:
        """Learn qBittorrent's refresh interval once (how long a stale state may linger)."""
        if self.recheck_settle_s is not None:
            return
        try:
            interval = await self.qbit.refresh_interval_s()
            self.recheck_settle_s = RECHECK_SETTLE_INTERVALS * interval + 0.2
        except QbitError:
            self.recheck_settle_s = RECHECK_SETTLE_DEFAULT_S

    async def recheck_at(self, view: TorrentView, where: Path) -> None:
        """Ask for a recheck and wait until qBittorrent seeds a complete copy at `where`;
        Abandon when the recheck finds the data incomplete."""
        await self.settle_time()
        await self.retry(f"recheck {view.infohash}", lambda: self.qbit.recheck(view.infohash))
        await self.wait_seeding(view, where)

    async def wait_moved(self, view: TorrentView, src: Path, dest: Path, names: list[str]) -> None:
        """Wait for the move; qBittorrent 4.5 may report the new save path although its
        move failed (the data still at the source), so files are checked on disk."""
        deadline = time.monotonic() + self.cfg.move_timeout_s
        grace = time.monotonic() + max(5.0, 5 * self.cfg.poll_interval_s)
        seen_moving = False
        while True:
            now = await self.info(view.infohash)
            if now is None:
                raise Abandon("api", "torrent disappeared from qBittorrent during the move")
            where = norm(now.save_path)
            if now.state == "moving":
                seen_moving = True
            elif now.state in CHECKING_STATES:
                # qBittorrent checks what it just moved (an incomplete torrent, say); a
                # recheck asked for meanwhile can leave it checking for ever (4.5).
                pass
            elif now.stored_under(str(dest)) and await asyncio.to_thread(
                fs.all_present, dest, names
            ):
                return
            elif seen_moving or time.monotonic() > grace:
                raise Abandon(
                    "api",
                    f"qBittorrent's move failed (state {now.state}, save path {where}, files "
                    f"not at {dest}); see qBittorrent's log",
                )
            if now.state in ("error", "missingFiles"):
                raise Abandon("api", f"torrent in state {now.state} during the move")
            if time.monotonic() > deadline:
                raise Abandon("api", f"move not finished after {self.cfg.move_timeout_s} s")
            await self.sleep(self.cfg.poll_interval_s)

    async def wait_seeding(self, view: TorrentView, dest: Path) -> None:
        deadline = time.monotonic() + self.cfg.move_timeout_s
        settle = time.monotonic() + (self.recheck_settle_s or RECHECK_SETTLE_DEFAULT_S)
        seen_checking = False
        while True:
            now = await self.info(view.infohash)
            if now is None:
                raise Abandon("api", "torrent disappeared from qBittorrent during the recheck")
            if now.state in CHECKING_STATES:
                seen_checking = True
            elif (
                now.seeding
                and now.stored_under(str(dest))
                and (seen_checking or time.monotonic() >= settle)
            ):
                return
            elif (seen_checking or time.monotonic() >= settle) and now.progress < 1.0:
                raise Abandon(
                    "other",
                    f"recheck at {dest} found incomplete data "
                    f"(progress {now.progress:.3f}, state {now.state})",
                )
            if time.monotonic() > deadline:
                raise Abandon("api", f"not seeding again after {self.cfg.move_timeout_s} s")
            await self.sleep(self.cfg.poll_interval_s)

    async def restore(self, view: TorrentView, src: Path, dest: Path) -> None:
        """After a failed move, make sure qBittorrent seeds from a complete copy."""
        try:
            names = await self.retry(
                f"files {view.infohash}", lambda: self.qbit.files(view.infohash)
            )
            now = await self.info(view.infohash)
        except Abandon as exc:
            log.error(
                "cannot verify %s after the failed move (qBittorrent: %s); data untouched "
                "by rush, check qBittorrent",
                view.infohash,
                exc,
            )
            return
        if now is None:
            return
        at_src = await asyncio.to_thread(fs.all_present, src, names)
        at_dest = await asyncio.to_thread(fs.all_present, dest, names)
        where = norm(now.save_path)
        if where == str(src) and at_src:
            log.info("%s (%s) still seeds from the NVMe copy %s", view.name, view.infohash, src)
        elif where == str(dest) and at_dest and now.progress >= 1.0 and not at_src:
            log.info(
                "%s (%s) was moved to %s; the next run rechecks it there before finishing "
                "the bookkeeping",
                view.name,
                view.infohash,
                dest,
            )
        elif at_src:
            # Also when the Synology copy is all there: a complete NVMe copy always wins
            # over one that was not (or could not be) verified.
            log.warning(
                "pointing %s (%s) back at its complete NVMe copy %s", view.name, view.infohash, src
            )
            try:
                await self.retry(
                    "setLocation (restore)", lambda: self.qbit.set_location(view.infohash, str(src))
                )
                await self.wait_moved(view, dest, src, names)
                await self.recheck_at(view, src)
                log.info("%s (%s) seeds again from its NVMe copy %s", view.name, view.infohash, src)
            except Abandon as exc:
                log.error("could not point %s back at %s: %s", view.infohash, src, exc)
        elif where == str(dest) and at_dest:
            log.error(
                "%s (%s) sits at %s with incomplete data (progress %.3f) and no NVMe copy is "
                "left; nothing deleted by rush; qBittorrent can fetch the missing pieces while "
                "the torrent is still available, check it",
                view.name,
                view.infohash,
                dest,
                now.progress,
            )
        else:
            log.error(
                "%s (%s): no complete copy at %s nor %s; nothing deleted by rush, check "
                "qBittorrent",
                view.name,
                view.infohash,
                src,
                dest,
            )
