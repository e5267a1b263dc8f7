"""The daily hot→warm relocation (seed §3): `.state` files in, torrents seeding from the
Synology out, mapping updated, `.state` files removed.

Safety first (seed §6): nothing moves unless the Synology share is mounted and writable
with room for the torrent, the destination holds none of its files (qBittorrent's
setLocation does not replace them), hard links are respected, and a copy of the
`.torrent`/`.fastresume` is kept.  Every qBittorrent call is retried `retries` times
with back-off, then abandoned in a controlled way that leaves the torrent seeding from a
complete copy.  This module never deletes torrent data: qBittorrent moves it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from integrations.qbittorrent import QbitClient, TorrentView
from rush.config import SeedboxConfig
from rush.models import SeedMapping, SeedMove, SeedRelocation
from rush.seedbox import fs, moves
from rush.seedbox.finalise import on_synology
from rush.seedbox.qbitops import Abandon, QbitOps
from rush.seedbox.report import Outcome, RunReport
from rush.seedbox.rules import Candidate, DiskUsage, Rules, plan
from rush.seedbox.state import StateEntry, read_state_dir

log = logging.getLogger("rush.seedbox.relocator")


def _norm(path: str | Path) -> str:
    return os.path.normpath(str(path))


def _under(path: str, root: Path) -> Path | None:
    """`path` relative to `root`, or None when it lies outside."""
    try:
        return Path(_norm(path)).relative_to(_norm(root))
    except ValueError:
        return None


def rules_from_config(cfg: SeedboxConfig) -> Rules:
    return Rules(
        min_age_sec=cfg.min_age_sec,
        categories=tuple(cfg.categories),
        free_target_percent=cfg.free_target_percent,
        free_target_gb=cfg.free_target_gb,
        space_policy=cfg.space_policy,
    )


class Relocator:
    """One relocation run at a time (the caller holds the run lock)."""

    def __init__(
        self,
        cfg: SeedboxConfig,
        qbit: QbitClient,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        recheck_settle_s: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.qbit = qbit
        self.ops = QbitOps(cfg, qbit, sleep, recheck_settle_s)

    # -- helpers ---------------------------------------------------------------------

    def _quarantine(self, entry: StateEntry) -> None:
        target = entry.path.parent / "invalid"
        try:
            target.mkdir(exist_ok=True)
            os.replace(entry.path, target / entry.path.name)
        except OSError as exc:
            log.error("cannot move invalid %s aside: %s", entry.path, exc.strerror)

    @staticmethod
    def _remove_states(entries: list[StateEntry]) -> None:
        for entry in entries:
            entry.path.unlink(missing_ok=True)

    # -- the run -------------------------------------------------------------------------

    async def run(self, *, dry_run: bool = False, now: float | None = None) -> RunReport:
        """Read the `.state` files, decide, relocate; return what happened to each torrent."""
        now = time.time() if now is None else now
        report = RunReport(run_id=uuid.uuid4().hex[:12], dry_run=dry_run)
        log.info("seedbox run %s started%s", report.run_id, " (dry run)" if dry_run else "")
        groups: dict[str, list[StateEntry]] = {}
        for entry in read_state_dir(self.cfg.state_dir):
            if entry.state is None:
                log.error("invalid .state %s skipped: %s", entry.path, entry.error)
                report.invalid_states.append({"path": str(entry.path), "error": entry.error or ""})
                if not dry_run:
                    self._quarantine(entry)
                continue
            groups.setdefault(entry.state.infohash, []).append(entry)
        if not groups:
            log.info("seedbox run %s: no .state file to process", report.run_id)
            return report

        candidates: list[Candidate] = []
        views: dict[str, TorrentView] = {}
        pending = list(groups)
        while pending:
            infohash = pending.pop(0)
            entries = groups[infohash]
            outcome = await self._examine(infohash, entries, dry_run, report.run_id)
            if isinstance(outcome, Outcome):
                report.outcomes.append(outcome)
                if outcome.cause == "network":
                    self._unreachable(report, pending, groups)
                    return self._finish(report)
                continue
            views[infohash] = outcome
            category = next((e.state.category for e in entries if e.state and e.state.category), "")
            candidates.append(
                Candidate(
                    infohash=infohash,
                    category=category or outcome.category,
                    added_epoch=max(e.state.added_epoch for e in entries if e.state),
                    size=outcome.size,
                    name=outcome.name,
                )
            )

        try:
            usage = shutil.disk_usage(self.cfg.nvme_root)
        except OSError as exc:
            log.error(
                "cannot read NVMe free space at %s: %s; nothing moves",
                self.cfg.nvme_root,
                exc.strerror,
            )
            for cand in candidates:
                report.outcomes.append(
                    Outcome(cand.infohash, cand.name, "kept", f"nvme_root unreadable: {exc}")
                )
            return self._finish(report)
        decisions = plan(
            candidates,
            int(now),
            rules_from_config(self.cfg),
            DiskUsage(total=usage.total, free=usage.free),
        )
        chosen = []
        for decision in decisions:
            cand = decision.candidate
            if decision.move:
                chosen.append(cand)
            else:
                log.info("keep %s (%s) on NVMe: %s", cand.name, cand.infohash, decision.reason)
                report.outcomes.append(Outcome(cand.infohash, cand.name, "kept", decision.reason))
        if not chosen:
            return self._finish(report)

        # A hung network share must not block the event loop.
        problem = await asyncio.to_thread(fs.syno_unavailable_reason, self.cfg)
        if problem is not None:
            report.syno_problem = problem
            log.warning(
                "Synology unavailable, nothing moves this run (%d torrent(s) wait): %s",
                len(chosen),
                problem,
            )
            for cand in chosen:
                report.outcomes.append(
                    Outcome(
                        cand.infohash,
                        cand.name,
                        "kept",
                        f"Synology unavailable: {problem}",
                        cause="unavailable",
                    )
                )
                if not dry_run:
                    await self._record(
                        report.run_id, cand.infohash, ok=False, cause="unavailable", error=problem
                    )
            return self._finish(report)

        if not dry_run:
            await self.ops.settle_time()
        for i, cand in enumerate(chosen):
            entries = groups[cand.infohash]
            outcome = await self._relocate(views[cand.infohash], entries, report.run_id, dry_run)
            report.outcomes.append(outcome)
            if outcome.cause == "network":
                self._unreachable(report, [c.infohash for c in chosen[i + 1 :]], groups)
                break
        return self._finish(report)

    @staticmethod
    def _unreachable(
        report: RunReport, infohashes: list[str], groups: dict[str, list[StateEntry]]
    ) -> None:
        """qBittorrent is unreachable: the other torrents wait for the next run untouched."""
        if infohashes:
            log.warning(
                "qBittorrent unreachable: %d other torrent(s) wait for the next run",
                len(infohashes),
            )
        for infohash in infohashes:
            title = next((e.state.title for e in groups[infohash] if e.state), "")
            report.outcomes.append(
                Outcome(infohash, title, "kept", "qBittorrent unreachable; next run")
            )

    def _finish(self, report: RunReport) -> RunReport:
        log.info(
            "seedbox run %s finished: %d moved, %d failed, %d kept",
            report.run_id,
            report.moved,
            report.failed,
            sum(1 for o in report.outcomes if o.action == "kept"),
        )
        return report

    async def _record(
        self,
        run_id: str,
        infohash: str,
        *,
        ok: bool,
        cause: str | None = None,
        error: str | None = None,
        started: datetime | None = None,
        nbytes: int = 0,
    ) -> None:
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

    async def _examine(
        self, infohash: str, entries: list[StateEntry], dry_run: bool, run_id: str
    ) -> TorrentView | Outcome:
        """qBittorrent's view of the torrent, or the outcome that settles it already."""
        title = next((e.state.title for e in entries if e.state and e.state.title), "")
        try:
            view = await self.ops.info(infohash)
        except Abandon as exc:
            if not dry_run:
                await self._record(run_id, infohash, ok=False, cause=exc.cause, error=str(exc))
            return Outcome(infohash, title, "failed", f"abandoned: {exc}", cause=exc.cause)
        if view is None:
            msg = "torrent not found in qBittorrent; .state kept"
            log.error("%s (%s): %s", title, infohash, msg)
            if not dry_run:
                await self._record(run_id, infohash, ok=False, cause="other", error=msg)
            return Outcome(infohash, title, "failed", msg, cause="other")
        rel_syno = _under(view.save_path, self.cfg.syno_root)
        if rel_syno is not None:
            # Already on the Synology (an earlier run was interrupted after the move, or a
            # human moved it): finish the bookkeeping once proven (see `finalise`).

            async def record(cause: str, error: str) -> None:
                await self._record(run_id, infohash, ok=False, cause=cause, error=error)

            async def finalise(v: TorrentView, path_nvme: str, path_syno: str) -> None:
                await self._save_mapping(v, path_nvme, path_syno, v.category)
                self._remove_states(entries)

            return await on_synology(
                self.ops,
                view,
                _norm(self.cfg.nvme_root / rel_syno),
                dry_run=dry_run,
                run_id=run_id,
                record=record,
                finalise=finalise,
            )
        if _under(view.save_path, self.cfg.nvme_root) is None:
            msg = f"save path {view.save_path} is outside nvme_root {self.cfg.nvme_root}"
            log.warning("keep %s (%s): %s", view.name, infohash, msg)
            return Outcome(infohash, view.name, "kept", msg)
        if not view.seeding:
            msg = f"not seeding a complete copy (state {view.state}, progress {view.progress:.3f})"
            log.info("keep %s (%s): %s", view.name, infohash, msg)
            return Outcome(infohash, view.name, "kept", msg)
        return view

    async def _save_mapping(
        self, view: TorrentView, path_nvme: str, path_syno: str, category: str
    ) -> None:
        await SeedMapping.update_or_create(
            infohash=view.infohash,
            defaults={
                "name": view.name,
                "category": category,
                "path_nvme": path_nvme,
                "path_syno": path_syno,
                "last_update_epoch": int(time.time()),
            },
        )

    # -- one torrent ----------------------------------------------------------------------

    async def _relocate(
        self, view: TorrentView, entries: list[StateEntry], run_id: str, dry_run: bool
    ) -> Outcome:
        started = datetime.now(UTC)
        t0 = time.monotonic()
        src = Path(_norm(view.save_path))
        rel = _under(view.save_path, self.cfg.nvme_root)
        assert rel is not None
        dest = Path(_norm(self.cfg.syno_root / rel))
        out = Outcome(
            view.infohash, view.name, "failed", "", path_nvme=str(src), path_syno=str(dest)
        )
        moving = False
        move: SeedMove | None = None
        try:
            sizes = await self.ops.retry(
                f"files {view.infohash}", lambda: self.qbit.file_sizes(view.infohash)
            )
            names = [name for name, _ in sizes]
            check = await asyncio.to_thread(fs.inspect_files, src, dest, names)
            self._precheck(view, check, dest)
            if dry_run:
                out.action, out.reason, out.bytes = (
                    "would_move",
                    f"would move to {dest}",
                    check.total_bytes,
                )
                log.info(
                    "dry run: would move %s (%s) %s -> %s", view.name, view.infohash, src, dest
                )
                return out
            await self._backup(view)
            # Journaled before anything changes on the Synology or in qBittorrent.
            move = await moves.start(run_id, view.infohash, str(src), str(dest), sizes)
            await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
            log.info(
                "moving %s (%s, %d bytes) %s -> %s",
                view.name,
                view.infohash,
                check.total_bytes,
                src,
                dest,
            )
            moving = True
            await self.ops.retry(
                f"setLocation {view.infohash}",
                lambda: self.qbit.set_location(view.infohash, str(dest)),
            )
            await moves.set_phase(move, "location_set")
            await self.ops.wait_moved(view, src, dest, names)
            await self.ops.recheck_at(view, dest)
            await moves.set_phase(move, "verified")
        except Abandon as exc:
            out.reason, out.cause = f"abandoned: {exc}", exc.cause
            out.seconds = time.monotonic() - t0
            if dry_run:
                out.action, out.reason = "kept", f"would refuse: {exc}"
                log.info("dry run: would refuse %s (%s): %s", view.name, view.infohash, exc)
                return out
            log.error(
                "relocation of %s (%s) abandoned [%s]: %s", view.name, view.infohash, exc.cause, exc
            )
            if moving:
                await self._restore(view, src, dest)
            if move is not None:
                await moves.set_phase(move, "failed", str(exc))
            await self._record(
                run_id, view.infohash, ok=False, cause=exc.cause, error=str(exc), started=started
            )
            return out
        category = next((e.state.category for e in entries if e.state and e.state.category), "")
        await self._save_mapping(view, str(src), str(dest), category or view.category)
        for entry in entries:
            if entry.state is not None and entry.state.kind == "upgrade":
                log.info(
                    "%s (%s) was an upgrade replacing %s in the library",
                    view.name,
                    view.infohash,
                    ", ".join(entry.state.old_paths),
                )
        self._remove_states(entries)
        assert move is not None
        await moves.set_phase(move, "finalised")
        out.action, out.reason = "moved", f"seeding from {dest}"
        out.seconds, out.bytes = time.monotonic() - t0, check.total_bytes
        await self._record(
            run_id, view.infohash, ok=True, started=started, nbytes=check.total_bytes
        )
        log.info(
            "relocated %s (%s): %d bytes in %.1f s, seeding from %s",
            view.name,
            view.infohash,
            out.bytes,
            out.seconds,
            dest,
        )
        return out

    def _precheck(self, view: TorrentView, check: fs.FileCheck, dest: Path) -> None:
        if check.unsafe:
            raise Abandon("other", f"unsafe file name in the torrent: {check.unsafe[0]!r}")
        if check.missing:
            raise Abandon(
                "other", f"{len(check.missing)} file(s) missing on NVMe, e.g. {check.missing[0]!r}"
            )
        if check.conflicts:
            raise Abandon(
                "conflict",
                f"{len(check.conflicts)} file(s) already exist at {dest}, "
                f"e.g. {check.conflicts[0]!r}; qBittorrent would not "
                "replace them: refusing",
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

    async def _restore(self, view: TorrentView, src: Path, dest: Path) -> None:
        await self.ops.restore(view, src, dest)
