"""The scanner actor (docs/contract.md §9, workflow 1): discovers media on the NAS, read-only.

Each pass lists INBOX, ARCHIVE and REJECTS (`rush.fswalk`), compares the listing with an
in-memory index of known assets (`rush.scanplan`, pure), then writes the differences in
a few batched statements.  The index is kept fresh by re-reading only the rows that
other code changed since the previous pass (`asset.updated_at`), and rebuilt from
scratch now and then and whenever the row count disagrees.

Nothing on the NAS is ever written, moved or deleted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from sys import intern
from typing import Any

from actors import scan_identity as identity
from rush import events
from rush.bulk_transitions import transition_set
from rush.config import Config
from rush.fingerprint import ALGO
from rush.fswalk import Listing, find_available, walk_find, walk_scandir
from rush.layout import LibraryNotMounted, read_marker
from rush.lifecycle import AssetState, Trigger
from rush.media import Area
from rush.models import KeyValue, PathChange
from rush.runlock import LockBusy, run_lock
from rush.scanplan import DISCOVERED, MOVE_QUEUED, Index, Known, Plan, Planner
from rush.storage import db_connection
from rush.transitions import AssetNotFound, StaleState, transition

log = logging.getLogger(__name__)

ACTOR = "scanner"
#: Rows changed by others are re-read from this long before the previous pass started,
#: so a transaction that committed late is not missed.
REREAD_MARGIN = timedelta(seconds=10)
#: Passes between two full rebuilds of the index (belt and braces against writers that
#: forget to set `updated_at`).
FULL_RELOAD_EVERY = 30
#: How long a pass waits for another process's pass to finish.
PASS_WAIT_S = 120.0
#: Asset rows read per query when the index is rebuilt.
_LOAD_PAGE = 20_000
#: New assets written per transaction.
_INSERT_CHUNK = 50_000


@dataclass
class ScanReport:
    """What one pass changed.  Counts are assets unless named otherwise."""

    new: int = 0
    updated: int = 0
    ready: int = 0
    changed: int = 0
    missing: int = 0
    reappeared: int = 0
    moved: int = 0
    #: Reviewed assets whose file now holds other bytes: back to DISCOVERED.
    content_changed: int = 0
    sidecars_added: int = 0
    sidecars_removed: int = 0
    files_seen: int = 0
    untracked: int = 0
    symlinks_ignored: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    skipped_reason: str | None = None

    def changes(self) -> int:
        return (
            self.new
            + self.updated
            + self.ready
            + self.changed
            + self.missing
            + self.reappeared
            + self.moved
            + self.content_changed
            + self.sidecars_added
            + self.sidecars_removed
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Sql:
    """The few raw statements of the scanner, for SQLite and PostgreSQL.

    Raw `executemany` because the ORM's per-object path is far too slow for 200,000 rows.
    Statements are written with `?` and renumbered for asyncpg.
    """

    def __init__(self) -> None:
        self.conn = db_connection()
        self.pg = self.conn.capabilities.dialect == "postgres"

    def q(self, sql: str) -> str:
        if not self.pg:
            return sql
        parts = sql.split("?")
        out = [parts[0]]
        for i, part in enumerate(parts[1:], start=1):
            out.append(f"${i}{part}")
        return "".join(out)

    def ts(self, at: datetime) -> Any:
        # tortoise stores SQLite datetimes as str(datetime); keep the same format so
        # comparisons and ORM reads agree.
        return at if self.pg else str(at)

    def lit_ts(self, at: datetime) -> str:
        return f"'{at}'::timestamptz" if self.pg else f"'{at}'"

    def lit_bool(self, value: bool) -> str:
        if self.pg:
            return "TRUE" if value else "FALSE"
        return "1" if value else "0"

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self.conn.execute_many(self.q(sql), list(rows))  # type: ignore[arg-type]

    async def rows(self, sql: str, values: Sequence[Any] | None = None) -> list[Any]:
        _, result = await self.conn.execute_query(self.q(sql), list(values or []))
        return list(result)


_ASSET_COLS = (
    "id, rel_path, area, kind, size, mtime, state, stable_scans, missing, batch_id, sample_hash"
)


def _known(row: Any) -> Known:
    # The driver returns a fresh string per value: area, kind and state are shared
    # instead (three fewer objects per known file, about 165 bytes each time).
    state = intern(row[6])
    return Known(
        str(row[0]),
        row[1],
        intern(row[2]),
        intern(row[3]),
        int(row[4]),
        float(row[5]),
        state,
        int(row[7]),
        bool(row[8]),
        state == MOVE_QUEUED or row[9] is not None,
        row[10],
    )


class Scanner:
    """Polls the library every `scanner.interval_s` seconds; `scan_once` runs one pass."""

    name = ACTOR

    def __init__(self, config: Config, bus: events.EventBus | None = None) -> None:
        self.config = config
        self.bus = bus or events.bus
        sc = config.scanner
        self.planner = Planner(sc.classifier(), sc.stable_after_s, sc.min_present_ratio)
        self._index: Index | None = None
        self._passes = 0
        #: Start of the previous pass and the timestamps of our own recent writes.
        self._last_start: datetime | None = None
        self._own_times: list[datetime] = []
        #: The listing of the last fully compared pass, for the unchanged-tree fast path.
        self._last_listing: Listing | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.use_find = find_available()
        self.last_report: ScanReport | None = None
        self._links_logged: set[str] = set()
        self._lock_warned = False

    def request_scan(self) -> None:
        """Run the next pass now (e.g. `rush/cmd/scan`)."""
        self._wake.set()

    async def run(self) -> None:
        interval = self.config.scanner.interval_s
        while True:
            try:
                await self.scan_once()
            except Exception:
                # Rebuild the index after a failure; the supervisor restarts us.
                self._index = None
                self._last_listing = None
                raise
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            except TimeoutError:
                pass

    # -- areas -----------------------------------------------------------------------
    def _area_dirs(self) -> dict[str, Path]:
        lib = self.config.library
        return {
            Area.INBOX.value: lib.root / Area.INBOX.value,
            Area.ARCHIVE.value: lib.archive_root or lib.root / Area.ARCHIVE.value,
            Area.REJECTS.value: lib.rejects_root or lib.root / Area.REJECTS.value,
        }

    def _check_root(self) -> str | None:
        root = self.config.library.root
        if not root.is_dir():
            return f"library root {root} does not exist or is not a folder (share not mounted?)"
        try:
            read_marker(root)
        except LibraryNotMounted as exc:
            return str(exc)
        return None

    # -- the index -------------------------------------------------------------------
    async def _load_index(self, sql: _Sql) -> Index:
        index = Index()
        # In pages by id, so a large library is never held twice (all rows as driver
        # tuples plus the index built from them) when the index is rebuilt.
        after: str | None = None
        while True:
            where = "state <> 'PURGED'" + ("" if after is None else " AND id > ?")
            rows = await sql.rows(
                f"SELECT {_ASSET_COLS} FROM asset WHERE {where} ORDER BY id LIMIT {_LOAD_PAGE}",
                [] if after is None else [after],
            )
            for row in rows:
                index.put(_known(row))
            if len(rows) < _LOAD_PAGE:
                break
            after = str(rows[-1][0])
            del rows
        for aid, rel, size, mtime in await sql.rows(
            "SELECT asset_id, rel_path, size, mtime FROM sidecar"
        ):
            k = index.by_id.get(str(aid))
            if k is not None:
                k.set_sidecar(rel, int(size), float(mtime))
        return index

    async def _refresh(self, sql: _Sql, start: datetime) -> bool:
        """Bring the index up to date; True when something others changed was applied."""
        self._passes += 1
        if self._index is None or self._last_start is None or self._passes % FULL_RELOAD_EVERY == 0:
            self._index = await self._load_index(sql)
            self._own_times = []
            return True
        index = self._index
        since = self._last_start - REREAD_MARGIN
        self._own_times = [t for t in self._own_times if t >= since]
        query = f"SELECT {_ASSET_COLS} FROM asset WHERE updated_at >= ?"
        values: list[Any] = [sql.ts(since)]
        if self._own_times:
            query += f" AND updated_at NOT IN ({', '.join('?' * len(self._own_times))})"
            values += [sql.ts(t) for t in self._own_times]
        rows = await sql.rows(query, values)
        changed_ids: list[str] = []
        for row in rows:
            known = _known(row)
            old = index.by_id.get(known.id)
            if old is not None and (
                old.rel,
                old.state,
                old.size,
                old.mtime,
                old.stable,
                old.missing,
                old.busy,
                old.sample,
            ) == (
                known.rel,
                known.state,
                known.size,
                known.mtime,
                known.stable,
                known.missing,
                known.busy,
                known.sample,
            ):
                continue
            index.put(known)
            changed_ids.append(known.id)
        if changed_ids:
            for start_i in range(0, len(changed_ids), 500):
                part = changed_ids[start_i : start_i + 500]
                for aid in part:
                    k = index.by_id.get(aid)
                    if k is not None:
                        k.sidecars = None
                marks = ", ".join("?" * len(part))
                for aid, rel, size, mtime in await sql.rows(
                    f"SELECT asset_id, rel_path, size, mtime FROM sidecar WHERE asset_id IN ({marks})",
                    part,
                ):
                    k = index.by_id.get(str(aid))
                    if k is not None:
                        k.set_sidecar(rel, int(size), float(mtime))
        # Rows inserted by others or deleted outright do not show up above: count them.
        (count,) = (await sql.rows("SELECT COUNT(*) FROM asset WHERE state <> 'PURGED'"))[0]
        if int(count) != len(index):
            log.info("scanner index out of step (%d rows, %d known): reloading", count, len(index))
            self._index = await self._load_index(sql)
            return True
        return bool(changed_ids)

    @contextlib.asynccontextmanager
    async def _process_lock(self) -> AsyncIterator[str | None]:
        """One pass at a time on a library, across processes (`rush serve`, `rush scan`).

        Why: two scanners planning the same new files would both insert them; the loser's
        rows are skipped but its sidecar rows then point at ids that do not exist.  A pass
        takes seconds, so the second scanner waits for the first (up to PASS_WAIT_S) and
        then compares against what it wrote.  Yields None once held, or why not.
        """
        lock_dir = self.config.data_dir
        deadline = time.monotonic() + PASS_WAIT_S
        with contextlib.ExitStack() as held:
            while True:
                try:
                    held.enter_context(run_lock(lock_dir, "scanner", "scan"))
                    break
                except LockBusy as exc:
                    if time.monotonic() >= deadline:
                        yield f"{exc} (waited {PASS_WAIT_S:.0f} s)"
                        return
                except OSError as exc:  # data_dir not writable: scan unguarded, say so once
                    if not self._lock_warned:
                        self._lock_warned = True
                        log.warning("scanner: no cross-process lock in %s (%s)", lock_dir, exc)
                    break
                await asyncio.sleep(0.2)
            yield None

    # -- one pass --------------------------------------------------------------------
    async def scan_once(self) -> ScanReport:
        async with self._lock, self._process_lock() as busy:
            if busy is not None:
                report = ScanReport(skipped_reason=busy)
                self.last_report = report
                self._log_report(report)
                return report
            started = time.monotonic()
            # A pass allocates hundreds of thousands of small acyclic objects; the cyclic
            # collector would walk them again and again for nothing (about a fifth of a
            # first import).  Collection resumes right after the pass.
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                report = await self._scan(datetime.now(UTC))
            finally:
                if gc_was_enabled:
                    gc.enable()
            report.duration_s = round(time.monotonic() - started, 3)
        self.last_report = report
        self._log_report(report)
        self.bus.publish("scan", report.as_dict())
        if report.skipped_reason is None:
            await KeyValue.update_or_create(
                key="last_scan",
                defaults={
                    "value": {
                        "finished_at": datetime.now(UTC).isoformat(),
                        "duration_s": report.duration_s,
                    }
                },
            )
        return report

    async def _scan(self, start: datetime) -> ScanReport:
        report = ScanReport()
        reason = self._check_root()
        if reason is not None:
            report.skipped_reason = reason
            return report
        sql = _Sql()
        external = await self._refresh(sql, start)
        index = self._index
        assert index is not None
        self._last_start = start

        areas: dict[str, Path] = {}
        for area, folder in self._area_dirs().items():
            if folder.is_dir():
                areas[area] = folder
                continue
            known_there = sum(1 for k in index.by_id.values() if k.area == area and not k.busy)
            if known_there:
                report.skipped_reason = (
                    f"{area} folder {folder} is missing while {known_there} known assets live "
                    "there (share not mounted?); this pass changes nothing"
                )
                return report
            if area == Area.INBOX.value:
                report.errors.append(f"INBOX folder {folder} does not exist (run rush init)")

        if self.use_find:
            listing = await walk_find(
                self.config.library.root,
                areas,
                self.config.scanner.ignored_dirs,
                # The kept listing has released its files: it only serves a pass that
                # compares nothing (no row changed by others).  Otherwise list afresh.
                reuse=None if external else self._last_listing,
            )
        else:
            listing = await asyncio.to_thread(
                walk_scandir, self.config.library.root, areas, self.config.scanner.ignored_dirs
            )
        self._note_listing(listing, report)
        now = time.time()
        if not external and listing is self._last_listing:
            plan = self.planner.plan_unchanged(index, now)
        else:
            plan = self.planner.plan(index, listing, areas.keys(), now, self._fingerprint)
            listing.release_files()
            if plan.skipped_reason is None and listing.complete and listing.raw is not None:
                self._last_listing = listing
            else:
                self._last_listing = None
        if plan.skipped_reason is not None:
            report.skipped_reason = plan.skipped_reason
            return report
        report.warnings.extend(plan.warnings)
        report.untracked = plan.untracked
        if not plan.is_empty():
            await self._apply(sql, index, plan, report)
        return report

    def _fingerprint(self, rel: str) -> str | None:
        """The planner's window on file contents (a few files per pass, see scanplan)."""
        return identity.sample_or_none(self.config, rel)

    def _note_listing(self, listing: Listing, report: ScanReport) -> None:
        report.files_seen = listing.file_count
        report.symlinks_ignored = len(listing.symlinks)
        report.errors.extend(listing.errors)
        for rel in listing.unreadable_dirs:
            report.errors.append(
                f"cannot read folder {rel!r} (permission denied): its files are not listed "
                "and nothing below it is flagged missing"
            )
        for rel in listing.unreadable_files:
            report.errors.append(
                f"file {rel!r} is not readable by the server: recorded, but processing "
                "will fail until its permissions are fixed"
            )
        fresh = [s for s in listing.symlinks if s not in self._links_logged]
        if fresh:
            # Said once per link, not every pass.
            self._links_logged.update(fresh)
            log.info(
                "ignored %d new symbolic links (never followed), e.g. %r", len(fresh), fresh[:3]
            )
        if not listing.complete:
            report.errors.append(
                "the listing was incomplete: no asset is flagged missing in this pass"
            )

    # -- writing ---------------------------------------------------------------------
    async def _apply(self, sql: _Sql, index: Index, plan: Plan, report: ScanReport) -> None:
        at = datetime.now(UTC)
        self._own_times.append(at)
        true, false = sql.lit_bool(True), sql.lit_bool(False)
        ts = sql.lit_ts(at)

        if plan.displaced:
            # Before the inserts: the new file at that path takes over its unique path_key.
            await identity.displace(sql, plan.displaced, ts)
        if plan.new:
            insert_asset = (
                "INSERT INTO asset (id, kind, area, rel_path, path_key, size, mtime, state,"
                " state_changed_at, stable_scans, missing, version, attempts, failed,"
                " transcript_status, suggestions_status, fields_data, created_at, updated_at,"
                " sample_hash, hash_algo, rating, label)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, 'DISCOVERED', {ts}, 1, {false}, 1, 0, {false},"
                f" 'none', 'none', '{{}}', {ts}, {ts}, ?, ?, 0, 0) ON CONFLICT DO NOTHING"
            )
            insert_sidecar = (
                "INSERT INTO sidecar (asset_id, rel_path, size, mtime, missing)"
                f" VALUES (?, ?, ?, ?, {false})"
            )
            # Bounded transactions: a first import of 200,000 files never holds every row
            # twice in memory.  A crash between chunks leaves a prefix committed, which the
            # next pass's count check notices (full index reload).
            report.new = len(plan.new)
            pending = plan.new
            while pending:
                # In order (rows sorted by path and id grow every index at its end), and
                # removed from `pending` so each chunk's NewAsset objects are freed once
                # its rows are written and its index entries built.
                part = pending[:_INSERT_CHUNK]
                del pending[:_INSERT_CHUNK]
                await sql.many(
                    insert_asset,
                    [
                        (
                            n.id,
                            n.kind,
                            n.area,
                            n.rel,
                            n.rel,
                            n.size,
                            n.mtime,
                            n.sample,
                            ALGO if n.sample else None,
                        )
                        for n in part
                    ],
                )
                side_rows = [(n.id, s, size, mt) for n in part for s, size, mt in n.sidecars]
                await sql.many(insert_sidecar, side_rows)
                report.sidecars_added += len(side_rows)
                for n in part:
                    k = Known(
                        n.id,
                        n.rel,
                        n.area,
                        n.kind,
                        n.size,
                        n.mtime,
                        DISCOVERED,
                        1,
                        False,
                        False,
                        n.sample,
                    )
                    for s, size, mt in n.sidecars:
                        k.set_sidecar(s, size, mt)
                    index.put(k)
                del part

        if plan.relocations:
            moved_rows = []
            changes = []
            for r in plan.relocations:
                moved_rows.append((r.new_rel, r.new_rel, r.known.id, r.known.rel))
                changes.append(
                    PathChange(asset_id=r.known.id, old_path=r.known.rel, new_path=r.new_rel, at=at)
                )
            await sql.many(
                f"UPDATE asset SET rel_path = ?, path_key = ?, missing = {false},"
                f" missing_since = NULL, updated_at = {ts}"
                " WHERE id = ? AND rel_path = ? AND batch_id IS NULL",
                moved_rows,
            )
            await PathChange.bulk_create(changes)
            for r in plan.relocations:
                log.info(
                    "asset %s moved outside the system: %r -> %r",
                    r.known.id,
                    r.known.rel,
                    r.new_rel,
                )
                index.move(r.known, r.new_rel)
                r.known.missing = False
            report.moved = len(plan.relocations)

        if plan.facts:
            await sql.many(
                "UPDATE asset SET size = ?, mtime = ?, stable_scans = ?,"
                f" missing = {false}, missing_since = NULL, updated_at = {ts}"
                " WHERE id = ? AND state = ? AND batch_id IS NULL",
                [(f.size, f.mtime, f.stable, f.known.id, f.known.state) for f in plan.facts],
            )
            for f in plan.facts:
                k = f.known
                if k.size != f.size or abs(k.mtime - f.mtime) > 1e-5:
                    report.updated += 1
                k.size, k.mtime, k.stable, k.missing = f.size, f.mtime, f.stable, False
        for k in plan.reappeared:
            k.missing = False
        report.reappeared = len(plan.reappeared)

        if plan.missing:
            await sql.many(
                f"UPDATE asset SET missing = {true}, missing_since = {ts}, updated_at = {ts}"
                f" WHERE id = ? AND missing = {false} AND batch_id IS NULL"
                " AND state NOT IN ('MOVE_QUEUED', 'PURGED')",
                [(k.id,) for k in plan.missing],
            )
            for k in plan.missing:
                k.missing = True
                log.warning("asset %s is missing: %r is gone from the NAS", k.id, k.rel)
            report.missing = len(plan.missing)

        if plan.sidecar_add or plan.sidecar_update or plan.sidecar_remove:
            await sql.many(
                "INSERT INTO sidecar (asset_id, rel_path, size, mtime, missing)"
                f" VALUES (?, ?, ?, ?, {false})",
                plan.sidecar_add,
            )
            await sql.many(
                "UPDATE sidecar SET size = ?, mtime = ? WHERE asset_id = ? AND rel_path = ?",
                [(size, mt, aid, rel) for aid, rel, size, mt in plan.sidecar_update],
            )
            await sql.many(
                "DELETE FROM sidecar WHERE asset_id = ? AND rel_path = ?", plan.sidecar_remove
            )
            for aid, rel, size, mt in (*plan.sidecar_add, *plan.sidecar_update):
                index.by_id[aid].set_sidecar(rel, size, mt)
            for aid, rel in plan.sidecar_remove:
                known_sidecars = index.by_id[aid].sidecars
                if known_sidecars:
                    known_sidecars.pop(rel, None)
            report.sidecars_added += len(plan.sidecar_add)
            report.sidecars_removed += len(plan.sidecar_remove)

        if plan.content_changed:
            report.content_changed = await identity.send_back_to_review(
                plan.content_changed, at, ACTOR, self.bus
            )
        # Every file gets its sampled fingerprint before it is READY (before any agent or
        # reviewer sees it); one that moved while it was read waits for the next pass.
        ready = plan.ready
        if ready:
            ready, errors = await identity.sample_before_ready(sql, self.config, ready, ts)
            report.errors.extend(errors)
        if ready:
            # Set-based (rush.bulk_transitions): the ids go to the database once and the
            # history of the whole pass is written by INSERT … SELECT, not row by row.
            moved = await transition_set(
                [k.id for k in ready],
                AssetState.DISCOVERED,
                AssetState.READY,
                Trigger.STABLE,
                ACTOR,
                updates={"stable_scans": 2},
                at=at,
                bus=self.bus,
            )
            if isinstance(moved, int):
                ready_now = ready
            else:  # some changed state meanwhile (another writer): only those moved
                done = set(moved)
                ready_now = [k for k in ready if k.id in done]
            ready_state = AssetState.READY.value
            for k in ready_now:
                k.state, k.stable = ready_state, 2
            report.ready += len(ready_now)

        for f in plan.changed:
            k = f.known
            try:
                await transition(
                    k.id,
                    AssetState.READY,
                    AssetState.DISCOVERED,
                    Trigger.CHANGED,
                    ACTOR,
                    reason=f"size {k.size} -> {f.size}, mtime {k.mtime:.3f} -> {f.mtime:.3f}",
                    updates={
                        "size": f.size,
                        "mtime": f.mtime,
                        "stable_scans": 1,
                        "missing": False,
                        "missing_since": None,
                        "sample_hash": None,  # taken again when it is stable
                    },
                    extra_filter={"batch_id": None},
                    at=at,
                    bus=self.bus,
                )
            except (StaleState, AssetNotFound) as exc:
                log.info("scanner: %s", exc)
                continue
            k.state, k.size, k.mtime, k.stable, k.missing = DISCOVERED, f.size, f.mtime, 1, False
            k.sample = None
            report.changed += 1

    def _log_report(self, report: ScanReport) -> None:
        if report.skipped_reason:
            log.warning("scan skipped: %s", report.skipped_reason)
            return
        for err in report.errors:
            log.warning("scan: %s", err)
        for warn in report.warnings:
            log.warning("scan: %s", warn)
        level = logging.INFO if report.changes() else logging.DEBUG
        log.log(
            level,
            "scan: %d files, %d new, %d updated, %d ready, %d changed back, %d missing,"
            " %d reappeared, %d moved, sidecars +%d -%d in %.2f s",
            report.files_seen,
            report.new,
            report.updated,
            report.ready,
            report.changed,
            report.missing,
            report.reappeared,
            report.moved,
            report.sidecars_added,
            report.sidecars_removed,
            report.duration_s,
        )
