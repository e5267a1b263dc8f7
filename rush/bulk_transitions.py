"""Set-based lifecycle transitions: many assets, a fixed number of statements.

Why: the scanner's DISCOVERED -> READY pass of a first import promotes every asset at
once (180,000 of them for a 200,000-file library).  `transitions.transition_many` binds
the ids chunk by chunk and writes one history row per bound parameter set; here the ids
go once into a temporary table and the database does the rest in two set statements per
slice: one `INSERT … SELECT` writes the history of exactly the rows the `UPDATE` moves.
On PostgreSQL both are one statement (`WITH moved AS (UPDATE … RETURNING id) INSERT …
SELECT FROM moved`); on SQLite they run in one transaction on the database's own thread
(`storage.sqlite_transaction`, which holds the write lock, so the two statements see the
same rows).

The transition is checked against the lifecycle table like any other, every moved asset
gets its history row and its `updated_at`, and an asset no longer in `source` is simply
left out, as in `transition_many`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from rush import events
from rush.lifecycle import AssetState, Trigger, check_transition
from rush.storage import sqlite_transaction, uses_sqlite
from rush.transitions import _raw, _raw_columns, utcnow

#: Ids per transaction.  Bounded for two reasons: SQLite serialises every statement of the
#: process on one connection, so the web UI and the agents' claims get the database
#: between slices of a large import; and a slice's dirty pages and statement journal stay
#: in memory until it commits (50,000 ids per slice cost 80 MB of peak memory at 200,000
#: assets, 10,000 about 35 MB, at the same speed).
SLICE = 10_000

_TEMP = "bulk_transition_ids"
_HISTORY_COLS = "asset_id, from_state, to_state, trigger, actor, reason, at"


@dataclass(frozen=True)
class _Statements:
    sets: str
    set_params: list[Any]
    history_params: list[Any]


def _statements(
    source: AssetState,
    target: AssetState,
    trigger: Trigger,
    actor: str,
    reason: str | None,
    values: dict[str, Any],
    pg: bool,
    first: int,
) -> _Statements:
    columns = _raw_columns(values)
    if columns is None:
        raise TypeError("a set-based transition takes plain column values only")
    marks = (f"${i}" if pg else "?" for i in range(first, first + len(columns)))
    sets = ", ".join(f'"{col}" = {mark}' for col, mark in zip(columns, marks, strict=False))
    return _Statements(
        sets=sets,
        set_params=[_raw(values[name]) for name in columns.values()],
        history_params=[
            source.value,
            target.value,
            trigger.value,
            actor,
            reason,
            _raw(values["state_changed_at"]),
        ],
    )


def _sqlite_slice(
    db: sqlite3.Connection, ids: Sequence[str], source: AssetState, st: _Statements
) -> list[str] | int:
    """Moves one slice; returns the moved count when every id moved, else the moved ids."""
    db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_TEMP} (id TEXT PRIMARY KEY) WITHOUT ROWID")
    db.execute(f"DELETE FROM {_TEMP}")
    db.executemany(f"INSERT OR IGNORE INTO {_TEMP} VALUES (?)", ((a,) for a in ids))
    # Keep only the rows this transition moves, so the history and the update below
    # cover the very same set.  "+state": stay on the primary key (see transition_many).
    db.execute(
        f"DELETE FROM {_TEMP} WHERE id NOT IN"
        f" (SELECT a.id FROM {_TEMP} p CROSS JOIN asset a ON a.id = p.id WHERE +a.state = ?)",
        [source.value],
    )
    db.execute(
        f"INSERT INTO asset_event ({_HISTORY_COLS})"
        f" SELECT p.id, ?, ?, ?, ?, ?, ? FROM {_TEMP} p ORDER BY p.id",
        st.history_params,
    )
    moved = db.execute(
        f"UPDATE asset SET {st.sets} WHERE id IN (SELECT id FROM {_TEMP})", st.set_params
    ).rowcount
    result: list[str] | int = moved
    if moved != len(ids):
        result = [str(row[0]) for row in db.execute(f"SELECT id FROM {_TEMP}")]
    db.execute(f"DELETE FROM {_TEMP}")
    return result


async def _pg_slice(ids: Sequence[str], source: AssetState, st: _Statements) -> list[str]:
    n = len(st.set_params)
    history = ", ".join(f"${i}" for i in range(n + 3, n + 3 + len(st.history_params)))
    sql = (
        f"WITH moved AS (UPDATE asset SET {st.sets}"
        f" WHERE state = ${n + 1} AND id = ANY(${n + 2}::uuid[]) RETURNING id)"
        f" INSERT INTO asset_event ({_HISTORY_COLS})"
        f" SELECT id, {history} FROM moved RETURNING asset_id"
    )
    async with in_transaction() as conn:
        _, rows = await conn.execute_query(
            sql, [*st.set_params, source.value, list(ids), *st.history_params]
        )
    return [str(row[0]) for row in rows]


async def transition_set(
    asset_ids: Sequence[str],
    source: AssetState,
    target: AssetState,
    trigger: Trigger,
    actor: str,
    *,
    reason: str | None = None,
    updates: dict[str, Any] | None = None,
    at: datetime | None = None,
    bus: events.EventBus | None = None,
    slice_size: int = SLICE,
) -> list[str] | int:
    """Move every asset of `asset_ids` still in `source` to `target`, with its history.

    Returns `len(asset_ids)` when all of them moved (the common case, and no list of
    180,000 ids is built for it), else the list of the ids that moved.  `updates` are
    other plain columns written with the state (e.g. `stable_scans`).
    """
    check_transition(source, target, trigger)
    at = at or utcnow()
    values: dict[str, Any] = {"state": target, "state_changed_at": at, "updated_at": at}
    if updates:
        values.update(updates)
    sqlite = uses_sqlite()
    st = _statements(source, target, trigger, actor, reason, values, not sqlite, 1)
    moved: list[str] = []
    all_moved = True
    done = 0
    for start in range(0, len(asset_ids), slice_size):
        part = [str(a) for a in asset_ids[start : start + slice_size]]
        outcome: list[str] | int
        if sqlite:

            def work(db: sqlite3.Connection, part: list[str] = part) -> list[str] | int:
                return _sqlite_slice(db, part, source, st)

            outcome = await sqlite_transaction(work)
        else:
            outcome = await _pg_slice(part, source, st)
            if len(outcome) == len(part):
                outcome = len(part)
        if isinstance(outcome, int):
            done += outcome
            if not all_moved:
                moved.extend(part)
        else:
            if all_moved:
                all_moved = False
                moved = [str(a) for a in asset_ids[:start]]
            moved.extend(outcome)
            done += len(outcome)
        announced = part if isinstance(outcome, int) else outcome
        _announce(announced, source, target, trigger, actor, at, bus)
    return done if all_moved else moved


def _announce(
    ids: Sequence[str],
    source: AssetState,
    target: AssetState,
    trigger: Trigger,
    actor: str,
    at: datetime,
    bus: events.EventBus | None,
) -> None:
    """One `asset` event per moved asset, as `transition_many` emits (timestamp formatted
    once, not per asset)."""
    target_bus = bus or events.bus
    if not target_bus.has_subscribers():
        return
    stamp = at.isoformat()
    src, dst, trig = source.value, target.value, trigger.value
    for aid in ids:
        target_bus.emit(
            events.Event(
                "asset",
                {"uuid": aid, "from": src, "to": dst, "at": stamp, "trigger": trig, "by": actor},
            )
        )
