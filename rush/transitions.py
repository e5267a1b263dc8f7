"""Persisting lifecycle transitions: the only code that writes `Asset.state`.

A transition is a conditional update (`WHERE id = ? AND state = <expected>`) plus one
history row, in one database transaction.  Zero rows updated means somebody else
moved the asset first: `StaleState` is raised and nothing is written.  That is what
makes claims, batch locks and human actions safe against each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from rush import events
from rush.lifecycle import AssetState, Trigger, check_transition
from rush.models import Asset, AssetEvent


class StaleState(Exception):
    """The asset was not in the expected state any more (a lost race); nothing changed."""

    def __init__(self, asset_id: uuid.UUID | str, expected: AssetState) -> None:
        super().__init__(f"asset {asset_id} is no longer {expected}; nothing changed")
        self.asset_id = asset_id
        self.expected = expected


class AssetNotFound(Exception):
    def __init__(self, asset_id: uuid.UUID | str) -> None:
        super().__init__(f"no asset {asset_id}")
        self.asset_id = asset_id


def utcnow() -> datetime:
    return datetime.now(UTC)


async def transition(
    asset_id: uuid.UUID | str,
    source: AssetState,
    target: AssetState,
    trigger: Trigger,
    actor: str,
    *,
    reason: str | None = None,
    updates: dict[str, Any] | None = None,
    extra_filter: dict[str, Any] | None = None,
    at: datetime | None = None,
    bus: events.EventBus | None = None,
) -> datetime:
    """Move one asset from `source` to `target`, or raise; returns the transition time.

    `updates` are other columns written in the same conditional UPDATE (lease data,
    version bump...); `extra_filter` narrows the condition (e.g. `batch_id=None`).
    """
    check_transition(source, target, trigger)
    at = at or utcnow()
    values: dict[str, Any] = {"state": target, "state_changed_at": at, "updated_at": at}
    if updates:
        values.update(updates)
    async with in_transaction() as conn:
        query = Asset.filter(id=asset_id, state=source)
        if extra_filter:
            query = query.filter(**extra_filter)
        changed = await query.using_db(conn).update(**values)
        if changed == 0:
            if not await Asset.filter(id=asset_id).using_db(conn).exists():
                raise AssetNotFound(asset_id)
            raise StaleState(asset_id, source)
        await AssetEvent.create(
            asset_id=asset_id,
            from_state=source,
            to_state=target,
            trigger=trigger,
            actor=actor,
            reason=reason,
            at=at,
            using_db=conn,
        )
    (bus or events.bus).emit(
        events.asset_transitioned(str(asset_id), source, target, at, trigger, actor)
    )
    return at


async def transition_many(
    asset_ids: Sequence[uuid.UUID | str],
    source: AssetState,
    target: AssetState,
    trigger: Trigger,
    actor: str,
    *,
    reason: str | None = None,
    updates: dict[str, Any] | None = None,
    at: datetime | None = None,
    bus: events.EventBus | None = None,
    chunk: int = 500,
) -> list[uuid.UUID]:
    """Bulk form for the scanner and batch apply: returns the ids actually moved.

    Ids that were no longer in `source` are skipped (not an error): a bulk caller
    re-reads what it needs.  Written as a few raw statements per chunk (select, update,
    one executemany of history rows): the ORM's per-object path is far too slow for the
    first import of a large library.
    """
    check_transition(source, target, trigger)
    at = at or utcnow()
    values: dict[str, Any] = {"state": target, "state_changed_at": at, "updated_at": at}
    if updates:
        values.update(updates)
    columns = _raw_columns(values)
    moved: list[uuid.UUID] = []
    for start in range(0, len(asset_ids), chunk):
        part = [str(a) for a in asset_ids[start : start + chunk]]
        async with in_transaction() as conn:
            pg = conn.capabilities.dialect == "postgres"

            def ph(i: int, pg: bool = pg) -> str:
                return f"${i}" if pg else "?"

            # "+state" keeps SQLite on the primary key: with bound parameters its planner
            # otherwise walks the state index, i.e. every asset of that state per chunk.
            state_col = "state" if pg else "+state"
            marks = ", ".join(ph(i) for i in range(2, len(part) + 2))
            _, rows = await conn.execute_query(
                f"SELECT id FROM asset WHERE {state_col} = {ph(1)} AND id IN ({marks})",
                [source.value, *part],
            )
            eligible = [str(r[0]) for r in rows]
            if not eligible:
                continue
            if columns is None:
                await Asset.filter(id__in=eligible, state=source).using_db(conn).update(**values)
            else:
                sets = ", ".join(f'"{col}" = {ph(i)}' for i, col in enumerate(columns, 1))
                n = len(columns)
                marks = ", ".join(ph(i) for i in range(n + 2, n + 2 + len(eligible)))
                await conn.execute_query(
                    f"UPDATE asset SET {sets} WHERE {state_col} = {ph(n + 1)} AND id IN ({marks})",
                    [*(_raw(values[k]) for k in columns.values()), source.value, *eligible],
                )
            await conn.execute_many(
                "INSERT INTO asset_event (asset_id, from_state, to_state, trigger, actor, reason, at)"
                f" VALUES ({', '.join(ph(i) for i in range(1, 8))})",
                [
                    [aid, source.value, target.value, trigger.value, actor, reason, _raw(at)]
                    for aid in eligible
                ],
            )
        moved.extend(uuid.UUID(a) for a in eligible)
    target_bus = bus or events.bus
    for aid in moved:
        target_bus.emit(events.asset_transitioned(str(aid), source, target, at, trigger, actor))
    return moved


_RAW_TYPES = (str, int, float, bool, datetime, uuid.UUID, type(None))


def _raw_columns(values: dict[str, Any]) -> dict[str, str] | None:
    """db column -> field name when every value can be bound raw; None: use the ORM."""
    projection = Asset._meta.fields_db_projection
    out: dict[str, str] = {}
    for name, value in values.items():
        column = projection.get(name)
        if column is None or name not in Asset._meta.fields_map or name == "fields_data":
            return None
        if not isinstance(value, _RAW_TYPES):
            return None
        out[column] = name
    return out


def _raw(value: Any) -> Any:
    # sqlite3 cannot bind UUID objects; datetimes are stored in UTC like the ORM does
    # (tortoise registers the sqlite3 adapter that formats them).
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


async def history(asset_id: uuid.UUID | str) -> list[AssetEvent]:
    return await AssetEvent.filter(asset_id=asset_id).order_by("id")


def ids(values: Iterable[Any]) -> list[uuid.UUID]:
    return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in values]


async def transition_batch(
    moves: Sequence[tuple[uuid.UUID, str]],
    source: AssetState,
    target: AssetState,
    trigger: Trigger,
    *,
    extra_filter: dict[str, Any] | None = None,
    updates: dict[str, Any] | None = None,
    at: datetime | None = None,
    bus: events.EventBus | None = None,
    emit: bool = True,
) -> list[uuid.UUID]:
    """Many single-asset transitions, each with its own actor, in one transaction.

    Like `transition`, only assets still in `source` (and matching `extra_filter`) move;
    the others are skipped and left out of the returned ids (in the order of `moves`).
    Build a `TransitionSql` yourself when more writes must be atomic with the moves (the
    dispatcher's `MainClaimBatch`).
    """
    at = at or utcnow()
    moved: dict[uuid.UUID, dict[str, Any]] = {}
    async with in_transaction() as conn:
        plan = TransitionSql.plan(
            moves,
            source,
            target,
            trigger,
            at=at,
            pg=conn.capabilities.dialect == "postgres",
            extra_filter=extra_filter,
            updates=updates,
        )
        if plan is not None:
            rows = await conn.execute_query_dict(plan.update_sql, plan.update_params)
            moved = {to_uuid(row["id"]): dict(row) for row in rows}
            if moved:
                await conn.execute_query(*plan.history(moved))
    actors = {to_uuid(aid): actor for aid, actor in moves}
    done = [aid for aid in actors if aid in moved]
    if emit:
        emit_transitions([(aid, actors[aid]) for aid in done], source, target, trigger, at, bus)
    return done


@dataclass(frozen=True)
class TransitionSql:
    """The two statements of a batch transition, built once for either backend.

    Why raw SQL: the dispatcher hands out claims in batches at well over a thousand per
    second, and the ORM's query building and model instances cost more than the
    database itself.  One `UPDATE … RETURNING` (SQLite ≥ 3.35 and PostgreSQL) reports
    exactly the rows this statement moved, so a concurrent mover can never be counted
    twice; one multi-row INSERT writes the history.  `extra_filter` takes plain equality only
    (None means IS NULL); `updates` plain column values only.
    """

    update_sql: str
    update_params: list[Any]
    pg: bool
    actors: dict[uuid.UUID, str]
    source: AssetState
    target: AssetState
    trigger: Trigger
    at: datetime

    @classmethod
    def plan(
        cls,
        moves: Sequence[tuple[uuid.UUID, str]],
        source: AssetState,
        target: AssetState,
        trigger: Trigger,
        *,
        at: datetime,
        pg: bool,
        extra_filter: dict[str, Any] | None = None,
        updates: dict[str, Any] | None = None,
        returning: Sequence[str] = (),
    ) -> TransitionSql | None:
        """None when there is nothing to move; raises on a transition not in the table."""
        check_transition(source, target, trigger)
        actors = {to_uuid(aid): actor for aid, actor in moves}
        if not actors:
            return None
        values: dict[str, Any] = {"state": target, "state_changed_at": at, "updated_at": at}
        if updates:
            values.update(updates)
        columns = _raw_columns(values)
        if columns is None:
            raise TypeError("a batch transition takes plain column values only")
        params: list[Any] = []

        def bind(value: Any) -> str:
            params.append(_raw(value))
            return f"${len(params)}" if pg else "?"

        # "+col" keeps SQLite on the primary key (see `transition_many`).
        plus = "" if pg else "+"
        sets = ", ".join(f'"{col}" = {bind(values[name])}' for col, name in columns.items())
        marks = ", ".join(bind(str(a)) for a in actors)
        where = [f"id IN ({marks})", f'{plus}"state" = {bind(source.value)}']
        projection = Asset._meta.fields_db_projection
        for name, value in (extra_filter or {}).items():
            column = projection.get(name)
            if column is None or not isinstance(value, _RAW_TYPES):
                raise TypeError(f"a batch transition cannot filter on {name}={value!r}")
            if value is None:
                where.append(f'{plus}"{column}" IS NULL')
            else:
                where.append(f'{plus}"{column}" = {bind(value)}')
        wanted = ", ".join(["id", *(projection[name] for name in returning)])
        return cls(
            update_sql=f"UPDATE asset SET {sets} WHERE {' AND '.join(where)} RETURNING {wanted}",
            update_params=params,
            pg=pg,
            actors=actors,
            source=source,
            target=target,
            trigger=trigger,
            at=at,
        )

    def history(self, moved: Iterable[uuid.UUID]) -> tuple[str, list[Any]]:
        """One multi-row INSERT of the history rows of the `moved` assets."""
        at = _raw(self.at)
        rows = [
            [
                str(aid),
                self.source.value,
                self.target.value,
                self.trigger.value,
                self.actors[aid],
                None,
                at,
            ]
            for aid in moved
        ]
        return insert_rows(
            "asset_event (asset_id, from_state, to_state, trigger, actor, reason, at)",
            rows,
            pg=self.pg,
        )


def insert_rows(head: str, rows: Sequence[Sequence[Any]], *, pg: bool) -> tuple[str, list[Any]]:
    """`INSERT INTO {head} VALUES (…), (…)` with its flat parameter list.

    Why not executemany: SQLite's driver steps (and hands the GIL over) once per row;
    one statement with many rows is one step, which matters on the claim hot path."""
    params: list[Any] = []
    groups: list[str] = []
    for row in rows:
        start = len(params)
        params.extend(row)
        marks = (f"${i}" if pg else "?" for i in range(start + 1, len(params) + 1))
        groups.append(f"({', '.join(marks)})")
    return f"INSERT INTO {head} VALUES {', '.join(groups)}", params


def to_uuid(value: Any) -> uuid.UUID:
    """A UUID from a database value (SQLite gives text, asyncpg its own UUID type)."""
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


def emit_transitions(
    moved: Sequence[tuple[uuid.UUID, str]],
    source: AssetState,
    target: AssetState,
    trigger: Trigger,
    at: datetime,
    bus: events.EventBus | None = None,
) -> None:
    """Announce committed transitions on the event bus (see `transition_batch`)."""
    target_bus = bus or events.bus
    for aid, actor in moved:
        target_bus.emit(events.asset_transitioned(str(aid), source, target, at, trigger, actor))
