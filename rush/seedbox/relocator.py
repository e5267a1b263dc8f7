"""The daily hot→warm relocation (docs/contract.md §8.3): `.state` files in, torrents seeding from the
Synology out, mapping updated, `.state` files removed.

Safety first (docs/seedbox.md, "Safety guarantees"): nothing moves unless the Synology
share is mounted and writable with room for the torrent, the destination holds none of
its files (qBittorrent's setLocation does not replace them) other than this tool's own
journaled leftovers, hard links are respected, cross-seeds move with it, and a copy of
the `.torrent`/`.fastresume` is kept.  Nothing is finalised before qBittorrent rechecked
the torrent at its new location.  Every qBittorrent call is retried `retries` times with
back-off, then abandoned in a controlled way that leaves the torrent seeding from a
complete copy.  This module never deletes torrent data: qBittorrent moves it.

This module decides (which torrents, in which groups, in which order); `mover` moves one
group, `finalise` settles a torrent found on the Synology, `qbitops` talks to qBittorrent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

from integrations.qbittorrent import QbitClient, QbitError, TorrentView
from rush.config import SeedboxConfig
from rush.models import SeedMapping
from rush.seedbox import fs, stale, tags
from rush.seedbox.finalise import on_synology
from rush.seedbox.groups import Group, cross_seed_groups
from rush.seedbox.mover import GroupMover, record_attempt, remove_states, save_mapping
from rush.seedbox.qbitops import Abandon, QbitOps
from rush.seedbox.report import Outcome, RunReport
from rush.seedbox.rules import Candidate, Decision, DiskUsage, Rules, plan
from rush.seedbox.state import StateEntry, read_state_dir

log = logging.getLogger("rush.seedbox.relocator")

#: Deferral causes recorded as attempts (KPI `deferred`); "too young" is not recorded:
#: it would add a row per torrent and run for a week.
RECORDED_DEFERRALS = frozenset({"hardlink", "unavailable", "paused"})


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
        allow_break_hardlinks=cfg.allow_break_hardlinks,
    )


def _title(entries: Sequence[StateEntry]) -> str:
    return next((e.state.title for e in entries if e.state and e.state.title), "")


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
        #: Whether each examined torrent has a hard-linked file (for the noHL tag).
        self._hardlinked: dict[str, bool] = {}

    # -- helpers ---------------------------------------------------------------------

    def _quarantine(self, entry: StateEntry) -> None:
        target = entry.path.parent / "invalid"
        try:
            target.mkdir(exist_ok=True)
            os.replace(entry.path, target / entry.path.name)
        except OSError as exc:
            log.error("cannot move invalid %s aside: %s", entry.path, exc.strerror)

    def _read_states(self, report: RunReport, dry_run: bool) -> dict[str, list[StateEntry]]:
        states: dict[str, list[StateEntry]] = {}
        for entry in read_state_dir(self.cfg.state_dir):
            if entry.state is None:
                log.error("invalid .state %s skipped: %s", entry.path, entry.error)
                report.invalid_states.append({"path": str(entry.path), "error": entry.error or ""})
                if not dry_run:
                    self._quarantine(entry)
                continue
            states.setdefault(entry.state.infohash, []).append(entry)
        return states

    async def _restore(self, view: TorrentView, src: Path, dest: Path) -> None:
        await self.ops.restore(view, src, dest)

    # -- the run -------------------------------------------------------------------------

    async def run(self, *, dry_run: bool = False, now: float | None = None) -> RunReport:
        """Read the `.state` files, decide, relocate; return what happened to each torrent."""
        now = time.time() if now is None else now
        report = RunReport(run_id=uuid.uuid4().hex[:12], dry_run=dry_run)
        self._hardlinked = {}
        await self._run(report, dry_run, now)
        outcome_hashes = {o.infohash for o in report.outcomes}
        reachable = not any(o.cause == "network" for o in report.outcomes)
        if self.cfg.tags and not dry_run and outcome_hashes and reachable:
            await tags.apply(self.qbit, self.cfg.tag_prefix, report.outcomes, self._hardlinked)
        return report

    async def _run(self, report: RunReport, dry_run: bool, now: float) -> RunReport:
        run_id = report.run_id
        log.info("seedbox run %s started%s", run_id, " (dry run)" if dry_run else "")
        states = self._read_states(report, dry_run)
        if not dry_run:
            await self._sweep_mapping(now)
        stateless: dict[str, TorrentView] = {}
        if not self.cfg.require_state:
            stateless = await self._stateless(states)
            for infohash in stateless:
                states.setdefault(infohash, [])
        if not states:
            log.info("seedbox run %s: no .state file to process", run_id)
            return report

        examined: dict[str, TorrentView] = {}
        pending = list(states)
        while pending:
            infohash = pending.pop(0)
            outcome = await self._examine(infohash, states[infohash], dry_run, run_id, now)
            if isinstance(outcome, Outcome):
                report.outcomes.append(outcome)
                if outcome.cause == "network":
                    self._unreachable(report, pending, states)
                    return self._finish(report)
                continue
            examined[infohash] = outcome
        if not examined:
            return self._finish(report)

        try:
            everything = {
                v.infohash: v for v in await self.ops.retry("torrents list", self.qbit.torrents)
            }
            groups, files = await self._groups(examined, everything)
        except Abandon as exc:
            for infohash, view in examined.items():
                report.outcomes.append(
                    Outcome(infohash, view.name, "failed", f"abandoned: {exc}", cause=exc.cause)
                )
            return self._finish(report)
        views = {**everything, **examined}

        candidates: list[Candidate] = []
        for key, group in groups.items():
            view = views[key]
            src = Path(_norm(view.save_path))
            frees, hardlinked = await asyncio.to_thread(fs.nvme_footprint, src, group.files)
            self._hardlinked.update(dict.fromkeys(group.members, hardlinked))
            mine = [e for h in group.members for e in states.get(h, [])]
            category = next((e.state.category for e in mine if e.state and e.state.category), "")
            # Without a .state (require_state = false) the age counts from qBittorrent's
            # "added on".
            added = max(
                (e.state.added_epoch for e in mine if e.state),
                default=max(views[h].added_on for h in group.members),
            )
            candidates.append(
                Candidate(
                    infohash=key,
                    category=category or view.category,
                    added_epoch=added,
                    size=group.size,
                    name=view.name,
                    frees=frees,
                    hardlinked=hardlinked,
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
        chosen: list[Candidate] = []
        for decision in decisions:
            if decision.move:
                chosen.append(decision.candidate)
            else:
                await self._stay(
                    report, decision, groups[decision.candidate.infohash], views, dry_run
                )
        if not chosen:
            return self._finish(report)

        # A hung network share must not block the event loop.
        problem = await asyncio.to_thread(fs.syno_problem, self.cfg)
        if problem is not None:
            cause, message = problem
            report.syno_problem = message
            action = "deferred" if cause == "unavailable" else "failed"
            log.warning(
                "Synology %s, nothing moves this run (%d torrent(s) wait): %s",
                "unavailable" if cause == "unavailable" else "refuses writes",
                len(chosen),
                message,
            )
            for cand in chosen:
                for h in groups[cand.infohash].members:
                    what = "Synology unavailable" if cause == "unavailable" else "rights error"
                    report.outcomes.append(
                        Outcome(h, views[h].name, action, f"{what}: {message}", cause=cause)
                    )
                    if not dry_run:
                        await record_attempt(run_id, h, ok=False, cause=cause, error=message)
            return self._finish(report)

        if not dry_run:
            await self.ops.settle_time()
        mover = GroupMover(self.cfg, self.ops)
        for i, cand in enumerate(chosen):
            outcomes = await mover.relocate(
                groups[cand.infohash], views, files, states, run_id, dry_run
            )
            report.outcomes.extend(outcomes)
            if any(o.cause == "network" for o in outcomes):
                rest = [h for c in chosen[i + 1 :] for h in groups[c.infohash].members]
                self._unreachable(report, rest, states)
                break
        return self._finish(report)

    async def _stateless(self, states: dict[str, list[StateEntry]]) -> dict[str, TorrentView]:
        """`require_state = false`: torrents on the NVMe without any `.state` whose
        category is eligible (the age rule then counts from qBittorrent's "added on")."""
        try:
            listing = await self.qbit.torrents()
        except QbitError as exc:
            log.warning("cannot list torrents without a .state: %s", exc)
            return {}
        cats = self.cfg.categories
        return {
            v.infohash: v
            for v in listing
            if v.infohash not in states
            and _under(v.save_path, self.cfg.nvme_root) is not None
            and (not cats or v.category in cats)
        }

    async def _sweep_mapping(self, now: float) -> None:
        """Mark mapping rows of torrents gone from qBittorrent (one call, no retries: an
        unreachable qBittorrent is reported by the run itself)."""
        if not await SeedMapping.exists():
            return
        try:
            present = {v.infohash for v in await self.qbit.torrents()}
        except QbitError as exc:
            log.info("mapping sweep skipped: %s", exc)
            return
        await stale.mark_removed(present, now)

    async def _groups(
        self, examined: dict[str, TorrentView], everything: dict[str, TorrentView]
    ) -> tuple[dict[str, Group], dict[str, list[tuple[str, int]]]]:
        """Each examined torrent's cross-seed group, and the file lists that were read."""

        # Only torrents that can share a file are asked for their file list: same save
        # path and same top-level entry (`content_path`), or no top-level folder at all —
        # a folder with a thousand torrents must not cost a thousand API calls per run.
        def key(v: TorrentView) -> tuple[str, str]:
            content = _norm(v.content_path) if v.content_path else ""
            return _norm(v.save_path), "" if content == _norm(v.save_path) else content

        wanted = {key(v) for v in examined.values()}
        folders = {save for save, _ in wanted}
        near = {
            h: v
            for h, v in everything.items()
            if key(v) in wanted
            or (key(v)[0] in folders and (not key(v)[1] or (key(v)[0], "") in wanted))
        }
        near.update(examined)
        files: dict[str, list[tuple[str, int]]] = {}
        for h in near:
            files[h] = await self.ops.retry(f"files {h}", partial(self.qbit.file_sizes, h))
        torrents = {h: (near[h].save_path, files[h]) for h in near}
        return cross_seed_groups(torrents, list(examined)), files

    async def _stay(
        self,
        report: RunReport,
        decision: Decision,
        group: Group,
        views: dict[str, TorrentView],
        dry_run: bool,
    ) -> None:
        """A torrent (and its cross-seeds) that stays: waits, or is deferred on purpose."""
        cand = decision.candidate
        cause = decision.deferral
        action = "deferred" if cause else "kept"
        if cause == "hardlink":
            log.warning(
                "%s (%s) deferred, stays on NVMe: %s", cand.name, cand.infohash, decision.reason
            )
        else:
            log.info("keep %s (%s) on NVMe: %s", cand.name, cand.infohash, decision.reason)
        for h in group.members:
            report.outcomes.append(Outcome(h, views[h].name, action, decision.reason, cause=cause))
            if cause in RECORDED_DEFERRALS and not dry_run:
                await record_attempt(report.run_id, h, ok=False, cause=cause, error=decision.reason)

    @staticmethod
    def _unreachable(
        report: RunReport, infohashes: list[str], states: dict[str, list[StateEntry]]
    ) -> None:
        """qBittorrent is unreachable: the other torrents wait for the next run untouched."""
        if infohashes:
            log.warning(
                "qBittorrent unreachable: %d other torrent(s) wait for the next run",
                len(infohashes),
            )
        for infohash in infohashes:
            report.outcomes.append(
                Outcome(
                    infohash,
                    _title(states.get(infohash, [])),
                    "kept",
                    "qBittorrent unreachable; next run",
                )
            )

    def _finish(self, report: RunReport) -> RunReport:
        log.info(
            "seedbox run %s finished: %d moved, %d failed, %d deferred, %d kept",
            report.run_id,
            report.moved,
            report.failed,
            report.deferred,
            sum(1 for o in report.outcomes if o.action == "kept"),
        )
        return report

    async def _examine(
        self, infohash: str, entries: list[StateEntry], dry_run: bool, run_id: str, now: float
    ) -> TorrentView | Outcome:
        """qBittorrent's view of the torrent, or the outcome that settles it already."""
        title = _title(entries)
        try:
            view = await self.ops.info(infohash)
        except Abandon as exc:
            if not dry_run:
                await record_attempt(run_id, infohash, ok=False, cause=exc.cause, error=str(exc))
            return Outcome(infohash, title, "failed", f"abandoned: {exc}", cause=exc.cause)
        if view is None and not entries:
            return Outcome(infohash, title, "kept", "torrent left qBittorrent during the run")
        if view is None:
            limit = self.cfg.stale_after_days
            if stale.is_stale(entries, now, limit):
                why = f"torrent gone from qBittorrent and import older than {limit} days"
                if dry_run:
                    return Outcome(infohash, title, "kept", f"would archive: {why}")
                names = stale.archive(entries, why, now)
                log.warning(
                    "%s (%s): %s: .state archived (%s)", title, infohash, why, ", ".join(names)
                )
                return Outcome(infohash, title, "archived", f".state archived: {why}")
            msg = (
                "torrent not found in qBittorrent; .state kept (archived once the import is "
                f"{limit} days old)"
            )
            log.error("%s (%s): %s", title, infohash, msg)
            if not dry_run:
                await record_attempt(run_id, infohash, ok=False, cause="other", error=msg)
            return Outcome(infohash, title, "failed", msg, cause="other")
        rel_syno = _under(view.save_path, self.cfg.syno_root)
        if rel_syno is not None:
            # Already on the Synology (an earlier run was interrupted after the move, or a
            # human moved it): finish the bookkeeping once proven (see `finalise`).

            async def record(cause: str, error: str) -> None:
                await record_attempt(run_id, infohash, ok=False, cause=cause, error=error)

            async def finalise(v: TorrentView, path_nvme: str, path_syno: str) -> None:
                await save_mapping(v, path_nvme, path_syno, v.category)
                remove_states(entries)

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
        if view.paused_complete:
            if self.cfg.pause_policy == "pause_move_resume":
                return view
            msg = 'paused in qBittorrent; pause_policy = "skip" leaves it on the NVMe'
            log.info("%s (%s) deferred: %s", view.name, infohash, msg)
            if not dry_run:
                await record_attempt(run_id, infohash, ok=False, cause="paused", error=msg)
            return Outcome(infohash, view.name, "deferred", msg, cause="paused")
        if not view.seeding:
            msg = f"not seeding a complete copy (state {view.state}, progress {view.progress:.3f})"
            log.info("keep %s (%s): %s", view.name, infohash, msg)
            return Outcome(infohash, view.name, "kept", msg)
        return view
