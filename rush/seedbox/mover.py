"""Relocating one group of torrents (a torrent and its cross-seeds) to the Synology.

The group moves as one, or none of it does: every member is checked before anything
changes; the first member's setLocation moves the data, the others then find their files
already at the destination (qBittorrent does not replace existing files) and only follow;
each member is rechecked at the destination.  When any step fails, every member that was
moved is pointed back at a complete copy (the first one first: it carries the data).
Nothing here deletes torrent data: qBittorrent moves it; the only files removed are this
tool's own leftovers from a journaled failed attempt (see `leftovers`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from integrations.qbittorrent import TorrentView
from rush.config import SeedboxConfig
from rush.models import SeedMapping, SeedMove, SeedRelocation
from rush.seedbox import fs, leftovers, moves
from rush.seedbox.groups import Group
from rush.seedbox.qbitops import Abandon, QbitOps, norm
from rush.seedbox.report import Outcome
from rush.seedbox.state import StateEntry

log = logging.getLogger("rush.seedbox.relocator")


async def record_attempt(
    run_id: str,
    infohash: str,
    *,
    ok: bool,
    cause: str | None = None,
    error: str | None = None,
    started: datetime | None = None,
    nbytes: int = 0,
) -> None:
    """One row of `seed_relocation` (the KPIs)."""
    finished = datetime.now(UTC)
    await SeedRelocation.create(
        infohash=infohash,
        run_id=run_id,
        started_at=started or finished,
        finished_at=finished,
        ok=ok,
        bytes_moved=nbytes,
        error_cause=cause,
        error=error,
    )


async def save_mapping(view: TorrentView, path_nvme: str, path_syno: str, category: str) -> None:
    await SeedMapping.update_or_create(
        infohash=view.infohash,
        defaults={
            "name": view.name,
            "category": category,
            "path_nvme": path_nvme,
            "path_syno": path_syno,
            "last_update_epoch": int(time.time()),
            "status": "active",
            "removed_epoch": None,
        },
    )


def remove_states(entries: Sequence[StateEntry]) -> None:
    for entry in entries:
        entry.path.unlink(missing_ok=True)


class GroupMover:
    def __init__(self, cfg: SeedboxConfig, ops: QbitOps) -> None:
        self.cfg = cfg
        self.ops = ops
        self.qbit = ops.qbit

    async def relocate(
        self,
        group: Group,
        views: Mapping[str, TorrentView],
        files: Mapping[str, Sequence[tuple[str, int]]],
        entries: Mapping[str, list[StateEntry]],
        run_id: str,
        dry_run: bool,
    ) -> list[Outcome]:
        members = [views[h] for h in group.members]
        first = members[0]
        started = datetime.now(UTC)
        t0 = time.monotonic()
        src = Path(norm(first.save_path))
        rel = src.relative_to(norm(self.cfg.nvme_root))
        dest = Path(norm(self.cfg.syno_root / rel))
        names = [name for name, _ in group.files]
        journal: list[SeedMove] = []
        touched: list[TorrentView] = []
        try:
            self._members_ready(first, members, group, src)
            check = await asyncio.to_thread(fs.inspect_files, src, dest, names)
            own: dict[str, int] = {}
            if check.conflicts and not check.missing and not check.unsafe:
                if dry_run:
                    own = await leftovers.own_among(group, dest, check.conflicts)
                    check.conflicts = [n for n in check.conflicts if n not in own]
                else:
                    await leftovers.clean_own(group, dest, check.conflicts, run_id)
                    check = await asyncio.to_thread(fs.inspect_files, src, dest, names)
            self._precheck(first, check, dest)
            if dry_run:
                log.info(
                    "dry run: would move %s (%s) %s -> %s", first.name, first.infohash, src, dest
                )
                cleanup = f" after removing {len(own)} own leftover file(s)" if own else ""
                return [
                    self._outcome(
                        v,
                        first,
                        "would_move",
                        f"would move to {dest}{cleanup}",
                        src,
                        dest,
                        check.total_bytes if v is first else 0,
                    )
                    for v in members
                ]
            for v in members:
                await self._backup(v)
            # Journaled before anything changes on the Synology or in qBittorrent.
            for v in members:
                journal.append(
                    await moves.start(run_id, v.infohash, str(src), str(dest), files[v.infohash])
                )
            await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
            log.info(
                "moving %s (%s, %d bytes%s) %s -> %s",
                first.name,
                first.infohash,
                check.total_bytes,
                f", with {len(members) - 1} cross-seed(s)" if len(members) > 1 else "",
                src,
                dest,
            )
            for v, move in zip(members, journal, strict=True):
                touched.append(v)
                if self.pausing and not v.paused_complete:
                    await self.ops.retry(
                        f"pause {v.infohash}", partial(self.qbit.pause, v.infohash)
                    )
                await self.ops.retry(
                    f"setLocation {v.infohash}",
                    partial(self.qbit.set_location, v.infohash, str(dest)),
                )
                await moves.set_phase(move, "location_set")
                await self.ops.wait_moved(v, src, dest, [n for n, _ in files[v.infohash]])
            for v, move in zip(members, journal, strict=True):
                await self._resume(v)
                await self.ops.recheck_at(v, dest)
                await moves.set_phase(move, "verified")
                await self._pause_again(v)
        except Abandon as exc:
            return await self._failed(
                exc, first, members, touched, journal, src, dest, run_id, started, t0, dry_run
            )
        outcomes = []
        for v, move in zip(members, journal, strict=True):
            mine = entries.get(v.infohash, [])
            category = next((e.state.category for e in mine if e.state and e.state.category), "")
            await save_mapping(v, str(src), str(dest), category or v.category)
            for entry in mine:
                if entry.state is not None and entry.state.kind == "upgrade":
                    log.info(
                        "%s (%s) was an upgrade replacing %s in the library",
                        v.name,
                        v.infohash,
                        ", ".join(entry.state.old_paths),
                    )
            remove_states(mine)
            await moves.set_phase(move, "finalised")
            nbytes = check.total_bytes if v is first else 0
            await record_attempt(run_id, v.infohash, ok=True, started=started, nbytes=nbytes)
            reason = f"seeding from {dest}" + (
                "" if v is first else f" (cross-seed of {first.name}, {first.infohash[:12]})"
            )
            out = self._outcome(v, first, "moved", reason, src, dest, nbytes)
            out.seconds = time.monotonic() - t0
            outcomes.append(out)
        log.info(
            "relocated %s (%s): %d bytes in %.1f s, seeding from %s%s",
            first.name,
            first.infohash,
            check.total_bytes,
            time.monotonic() - t0,
            dest,
            f" with {len(members) - 1} cross-seed(s)" if len(members) > 1 else "",
        )
        return outcomes

    @staticmethod
    def _outcome(
        v: TorrentView,
        first: TorrentView,
        action: str,
        reason: str,
        src: Path,
        dest: Path,
        nbytes: int = 0,
    ) -> Outcome:
        return Outcome(
            v.infohash,
            v.name,
            action,
            reason,
            bytes=nbytes,
            path_nvme=str(src),
            path_syno=str(dest),
        )

    async def _failed(
        self,
        exc: Abandon,
        first: TorrentView,
        members: list[TorrentView],
        touched: list[TorrentView],
        journal: list[SeedMove],
        src: Path,
        dest: Path,
        run_id: str,
        started: datetime,
        t0: float,
        dry_run: bool,
    ) -> list[Outcome]:
        outcomes = []
        if dry_run:
            log.info("dry run: would refuse %s (%s): %s", first.name, first.infohash, exc)
            return [
                self._outcome(v, first, "kept", f"would refuse: {exc}", src, dest) for v in members
            ]
        deferred = exc.cause == "hardlink"  # kept on purpose: not a failure
        (log.warning if deferred else log.error)(
            "relocation of %s (%s) %s [%s]: %s",
            first.name,
            first.infohash,
            "deferred" if deferred else "abandoned",
            exc.cause,
            exc,
        )
        for v in touched:  # the first one carries the data back
            await self._resume(v)
            await self.ops.restore(v, src, dest)
            await self._pause_again(v)
        for move in journal:
            await moves.set_phase(move, "failed", str(exc))
        for v in members:
            prefix = "" if v is first else f"cross-seed of {first.name}: "
            await record_attempt(
                run_id,
                v.infohash,
                ok=False,
                cause=exc.cause,
                error=f"{prefix}{exc}",
                started=started,
            )
            out = self._outcome(
                v,
                first,
                "deferred" if deferred else "failed",
                f"{prefix}{'' if deferred else 'abandoned: '}{exc}",
                src,
                dest,
            )
            out.cause, out.seconds = exc.cause, time.monotonic() - t0
            outcomes.append(out)
        return outcomes

    @property
    def pausing(self) -> bool:
        """pause → move → resume (`pause_policy = "pause_move_resume"`)."""
        return self.cfg.pause_policy == "pause_move_resume"

    async def _resume(self, v: TorrentView) -> None:
        """Resumed for the recheck: only a seeding torrent proves its copy complete."""
        if self.pausing:
            try:
                await self.ops.retry(f"resume {v.infohash}", lambda: self.qbit.resume(v.infohash))
            except Abandon as exc:
                log.error("could not resume %s after its move: %s", v.infohash, exc)
                raise

    async def _pause_again(self, v: TorrentView) -> None:
        """A torrent its user had paused is left paused, as it was."""
        if self.pausing and v.paused_complete:
            try:
                await self.ops.retry(f"pause {v.infohash}", lambda: self.qbit.pause(v.infohash))
            except Abandon as exc:
                log.warning("could not pause %s again: %s", v.infohash, exc)

    def _members_ready(
        self, first: TorrentView, members: list[TorrentView], group: Group, src: Path
    ) -> None:
        """Every cross-seed must be able to follow, or the group does not move at all."""
        if group.mismatched:
            raise Abandon(
                "other",
                f"cross-seeds list {group.mismatched[0]!r} with different sizes: not the same "
                "data; the group is not moved",
            )
        for v in members[1:]:
            if norm(v.save_path) != str(src):
                raise Abandon(
                    "other",
                    f"cross-seed {v.name} ({v.infohash}) shares files with {first.name} but "
                    f"seeds from {v.save_path}: the group cannot move as one",
                )
            ready = v.seeding or (self.pausing and v.paused_complete)
            if not ready or not v.stored_under(str(src)):
                raise Abandon(
                    "other",
                    f"cross-seed {v.name} ({v.infohash}) is not seeding a complete copy "
                    f"(state {v.state}, progress {v.progress:.3f}): the group waits",
                )

    def _precheck(self, view: TorrentView, check: fs.FileCheck, dest: Path) -> None:
        if check.unsafe:
            raise Abandon("other", f"unsafe file name in the torrent: {check.unsafe[0]!r}")
        if check.missing:
            raise Abandon(
                "other", f"{len(check.missing)} file(s) missing on NVMe, e.g. {check.missing[0]!r}"
            )
        if check.conflicts:
            shown = ", ".join(repr(n) for n in check.conflicts[:5])
            more = f" and {len(check.conflicts) - 5} more" if len(check.conflicts) > 5 else ""
            raise Abandon(
                "conflict",
                f"{len(check.conflicts)} file(s) already exist at {dest}: {shown}{more}; "
                "not written by an attempt of this tool, qBittorrent would not replace "
                "them: refusing",
            )
        if check.hardlinked:
            if not self.cfg.allow_break_hardlinks:
                raise Abandon(
                    "hardlink",
                    f"{len(check.hardlinked)} file(s) are hard-linked "
                    f"(e.g. {check.hardlinked[0]!r}, probably into the media "
                    "library); a cross-filesystem move copies the data and "
                    "breaks the link; kept on NVMe "
                    "(set allow_break_hardlinks to move anyway)",
                )
            log.warning(
                "%s (%s): %d hard-linked file(s) will be copied and their link broken "
                "(allow_break_hardlinks is on)",
                view.name,
                view.infohash,
                len(check.hardlinked),
            )
        need = check.total_bytes + int(self.cfg.syno_reserve_gb * 1_000_000_000)
        free = fs.free_bytes(dest)
        if free < need:
            raise Abandon(
                "space", f"Synology has {free} bytes free, needs {need} (torrent + syno_reserve_gb)"
            )

    async def _backup(self, view: TorrentView) -> None:
        """Keep the `.torrent` (API export) and `.fastresume` before touching anything."""
        data = await self.ops.retry(
            f"export {view.infohash}", lambda: self.qbit.export(view.infohash)
        )
        backup = self.cfg.backup_dir
        try:
            await asyncio.to_thread(fs.write_atomic, backup / f"{view.infohash}.torrent", data)
            bt = self.cfg.qbittorrent.bt_backup_dir
            if bt is not None:
                resume = bt / f"{view.infohash}.fastresume"
                if resume.is_file():
                    await asyncio.to_thread(
                        fs.copy_atomic, resume, backup / f"{view.infohash}.fastresume"
                    )
                else:
                    log.warning("no %s to back up", resume)
        except OSError as exc:
            raise Abandon("permissions", f"cannot write backups to {backup}: {exc}") from exc
