"""Storage on both backends: migrations, conditional transitions, history."""

from __future__ import annotations

import asyncio

import pytest

from rush import events
from rush.lifecycle import AssetState, IllegalTransition, Trigger
from rush.models import Asset, AssetEvent
from rush.storage import close_db, init_db, pending_model_changes
from rush.transitions import AssetNotFound, StaleState, history, transition, transition_many

S, T = AssetState, Trigger


async def _asset(name: str = "a.mp4", state: AssetState = S.DISCOVERED) -> Asset:
    rel = f"INBOX/{name}"
    return await Asset.create(kind="video", rel_path=rel, path_key=rel, state=state)


async def test_models_and_migrations_agree() -> None:
    assert await pending_model_changes() == [], "run: python -m rush.storage makemigrations"


async def test_transition_updates_state_and_appends_history(db: str) -> None:
    bus = events.EventBus()
    asset = await _asset()
    with bus.subscribe("asset") as sub:
        await transition(asset.id, S.DISCOVERED, S.READY, T.STABLE, "scanner", bus=bus)
        event = sub.queue.get_nowait()
    await asset.refresh_from_db()
    assert asset.state is S.READY
    rows = await history(asset.id)
    assert [(r.from_state, r.to_state, r.trigger, r.actor) for r in rows] == [
        ("DISCOVERED", "READY", "stable", "scanner")
    ]
    assert event.payload["uuid"] == str(asset.id)
    assert (event.payload["from"], event.payload["to"]) == ("DISCOVERED", "READY")


async def test_illegal_transition_changes_nothing(db: str) -> None:
    asset = await _asset()
    with pytest.raises(IllegalTransition):
        await transition(asset.id, S.DISCOVERED, S.ARCHIVED, T.MOVE_DONE, "x")
    await asset.refresh_from_db()
    assert asset.state is S.DISCOVERED
    assert await AssetEvent.filter(asset_id=asset.id).count() == 0


async def test_stale_expected_state_is_a_lost_race(db: str) -> None:
    asset = await _asset(state=S.READY)
    with pytest.raises(StaleState):
        await transition(asset.id, S.DISCOVERED, S.READY, T.STABLE, "scanner")
    with pytest.raises(AssetNotFound):
        await transition(
            "00000000-0000-0000-0000-000000000000", S.DISCOVERED, S.READY, T.STABLE, "s"
        )
    assert await AssetEvent.all().count() == 0


async def test_concurrent_claims_only_one_wins(db: str) -> None:
    asset = await _asset(state=S.READY)

    async def claim(i: int) -> bool:
        try:
            await transition(asset.id, S.READY, S.PROCESSING_REVIEW, T.CLAIM, f"agent-{i}")
        except StaleState:
            return False
        return True

    results = await asyncio.gather(*(claim(i) for i in range(10)))
    assert results.count(True) == 1
    assert await AssetEvent.filter(asset_id=asset.id).count() == 1


async def test_extra_filter_guards_batch_lock(db: str) -> None:
    import uuid

    asset = await _asset(state=S.READY)
    await Asset.filter(id=asset.id).update(batch_id=uuid.uuid4())
    with pytest.raises(StaleState):
        await transition(
            asset.id, S.READY, S.PROCESSING_REVIEW, T.CLAIM, "a", extra_filter={"batch_id": None}
        )


async def test_transition_many_skips_moved_ones(db: str) -> None:
    a, b, c = [await _asset(f"{n}.mp4") for n in "abc"]
    await transition(b.id, S.DISCOVERED, S.READY, T.STABLE, "other")
    moved = await transition_many(
        [a.id, b.id, c.id], S.DISCOVERED, S.READY, T.STABLE, "scanner", chunk=2
    )
    assert sorted(map(str, moved)) == sorted([str(a.id), str(c.id)])
    assert await Asset.filter(state=S.READY).count() == 3
    assert await AssetEvent.filter(actor="scanner").count() == 2


async def test_reopening_keeps_data(db_url: str) -> None:
    """Start-up on an existing database applies nothing twice and loses no row."""
    await init_db(db_url)
    try:
        asset = await _asset()
    finally:
        await close_db()
    await init_db(db_url)
    try:
        again = await Asset.get(id=asset.id)
        assert again.rel_path == "INBOX/a.mp4"
    finally:
        await close_db()


async def test_path_key_is_unique(db: str) -> None:
    from tortoise.exceptions import IntegrityError

    await _asset("same.mp4")
    with pytest.raises(IntegrityError):
        await _asset("same.mp4")


def test_insert_rows_numbers_parameters_per_dialect() -> None:
    from rush.transitions import insert_rows

    sql, params = insert_rows("t (a, b)", [[1, "x"], [2, "y"]], pg=True)
    assert sql == "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)" and params == [1, "x", 2, "y"]
    sql, _ = insert_rows("t (a, b)", [[1, "x"], [2, "y"]], pg=False)
    assert sql == "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"


async def test_batch_transition_sql_refuses_what_it_cannot_express(db: str) -> None:
    from datetime import UTC, datetime

    from rush.transitions import TransitionSql

    a = await _asset(state=S.READY)
    at = datetime.now(UTC)
    with pytest.raises(IllegalTransition):
        TransitionSql.plan([(a.id, "x")], S.READY, S.ARCHIVED, T.CLAIM, at=at, pg=False)
    with pytest.raises(TypeError):
        TransitionSql.plan(
            [(a.id, "x")],
            S.READY,
            S.PROCESSING_REVIEW,
            T.CLAIM,
            at=at,
            pg=False,
            extra_filter={"state__in": ["READY"]},
        )
    assert TransitionSql.plan([], S.READY, S.PROCESSING_REVIEW, T.CLAIM, at=at, pg=True) is None


async def test_sqlite_transaction_is_all_or_nothing(tmp_path: object) -> None:
    """The dispatcher's one-hop SQLite unit of work: an error rolls every statement
    back, and ordinary queries keep working around it."""
    from pathlib import Path

    from rush.storage import sqlite_transaction

    assert isinstance(tmp_path, Path)
    await init_db(f"sqlite://{tmp_path / 'u.db'}")
    try:
        a = await _asset(state=S.READY)

        def touch_then_fail(conn: object) -> None:
            conn.execute("UPDATE asset SET state = 'PROCESSING_REVIEW' WHERE id = ?", [str(a.id)])  # type: ignore[attr-defined]
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await sqlite_transaction(touch_then_fail)
        assert (await Asset.get(id=a.id)).state is S.READY

        def count(conn: object) -> int:
            row = conn.execute("SELECT COUNT(*) AS n FROM asset").fetchone()  # type: ignore[attr-defined]
            return int(row["n"])

        results = await asyncio.gather(sqlite_transaction(count), Asset.all().count())
        assert results == [1, 1]
    finally:
        await close_db()
