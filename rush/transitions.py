"""Persisting lifecycle transitions: the only code that writes `Asset.state`.

A transition is a conditional update (`WHERE id = ? AND state = <expected>`) plus one
history row, in one database transaction.  Zero rows updated means somebody else
moved the asset first: `StaleState` is raised and nothing is written.  That is what
makes claims, batch locks and human actions safe against each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
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

    Why: the dispatcher hands out hundreds of claims per second; one conditional UPDATE
    and one history insert per batch instead of per asset keeps SQLite fast.  Like
    `transition`, only assets still in `source` (and matching `extra_filter`) move; the
    others are skipped and left out of the returned ids, and the ids returned are
    exactly those this call moved.  Call inside an outer transaction with `emit=False` and
    emit `asset_events(...)` after the commit when more writes must be atomic with it.
    """
    check_transition(source, target, trigger)
    at = _unique_time(at or utcnow())
    values: dict[str, Any] = {"state": target, "state_changed_at": at, "updated_at": at}
    if updates:
        values.update(updates)
    actors = dict(moves)
    if not actors:
        return []
    async with in_transaction() as conn:
        # Update first, then read back which rows this very UPDATE moved: they carry
        # this batch's unique `state_changed_at`.  No row is reported that another
        # transaction moved, on either backend, without relying on row locks.
        query = Asset.filter(id__in=list(actors), state=source)
        if extra_filter:
            query = query.filter(**extra_filter)
        changed = await query.using_db(conn).update(**values)
        if not changed:
            return []
        moved = ids(
            await Asset.filter(id__in=list(actors), state=target, state_changed_at=at)
            .using_db(conn)
            .values_list("id", flat=True)
        )
        if len(moved) != changed:  # pragma: no cover - would mean a clock collision
            raise StaleState(moved[0] if moved else next(iter(actors)), source)
        await AssetEvent.bulk_create(
            [
                AssetEvent(
                    asset_id=aid,
                    from_state=source,
                    to_state=target,
                    trigger=trigger,
                    actor=actors[aid],
                    at=at,
                )
                for aid in moved
            ],
            using_db=conn,
        )
    if emit:
        emit_transitions([(aid, actors[aid]) for aid in moved], source, target, trigger, at, bus)
    return moved


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


_last_time: list[datetime] = []


def _unique_time(at: datetime) -> datetime:
    """A timestamp no earlier batch of this process used (microsecond resolution)."""
    if _last_time and at <= _last_time[0]:
        at = _last_time[0] + timedelta(microseconds=1)
    _last_time[:] = [at]
    return at
