"""Set-based transitions (`rush.bulk_transitions`) on both backends, and the scanner's
READY pass written with a fixed number of statements whatever the number of assets."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from actors.scanner import Scanner
from rush import events
from rush.bulk_transitions import transition_set
from rush.config import Config
from rush.layout import init_library
from rush.lifecycle import AssetState, IllegalTransition, Trigger
from rush.models import Asset, AssetEvent
from rush.storage import sqlite_transaction
from rush.transitions import transition

S, T = AssetState, Trigger


async def _asset(name: str, state: AssetState = S.DISCOVERED) -> Asset:
    rel = f"INBOX/{name}"
    return await Asset.create(kind="video", rel_path=rel, path_key=rel, state=state)


async def test_moves_only_eligible_ones_with_history_and_events(db: str) -> None:
    a, b, c, d = [await _asset(f"{n}.mp4") for n in "abcd"]
    await transition(b.id, S.DISCOVERED, S.READY, T.STABLE, "other")
    bus = events.EventBus()
    with bus.subscribe("asset") as sub:
        moved = await transition_set(
            [str(x.id) for x in (a, b, c, d)],
            S.DISCOVERED,
            S.READY,
            T.STABLE,
            "scanner",
            updates={"stable_scans": 2},
            bus=bus,
            slice_size=2,
        )
        seen = [sub.queue.get_nowait().payload for _ in range(sub.queue.qsize())]
    assert moved == [str(a.id), str(c.id), str(d.id)]
    assert sorted(e["uuid"] for e in seen) == sorted(moved)
    assert {(e["from"], e["to"], e["trigger"], e["by"]) for e in seen} == {
        ("DISCOVERED", "READY", "stable", "scanner")
    }
    rows = await AssetEvent.filter(actor="scanner").order_by("id")
    assert sorted(str(r.asset_id) for r in rows) == sorted(moved)
    assert {(r.from_state, r.to_state, r.trigger) for r in rows} == {
        ("DISCOVERED", "READY", "stable")
    }
    for x in (a, c, d):
        await x.refresh_from_db()
        assert (x.state, x.stable_scans) == (S.READY, 2)
        assert x.updated_at == x.state_changed_at == rows[0].at
    await b.refresh_from_db()
    assert b.stable_scans == 1  # not touched by the set statement


async def test_all_moved_is_a_count(db: str) -> None:
    assets = [await _asset(f"{n}.mp4") for n in range(5)]
    moved = await transition_set(
        [str(x.id) for x in assets], S.DISCOVERED, S.READY, T.STABLE, "scanner", slice_size=3
    )
    assert moved == 5
    assert await Asset.filter(state=S.READY).count() == 5
    assert await AssetEvent.filter(actor="scanner").count() == 5


async def test_illegal_transition_changes_nothing(db: str) -> None:
    a = await _asset("a.mp4")
    with pytest.raises(IllegalTransition):
        await transition_set([str(a.id)], S.DISCOVERED, S.ARCHIVED, T.MOVE_DONE, "x")
    await a.refresh_from_db()
    assert a.state is S.DISCOVERED
    assert await AssetEvent.all().count() == 0


async def _trace(callback: Any) -> None:
    """Set SQLite's statement trace on the database's own thread."""

    def work(db: sqlite3.Connection) -> None:
        db.set_trace_callback(callback)

    await sqlite_transaction(work)


@pytest.mark.parametrize("files", [40, 400])
async def test_ready_pass_history_is_not_written_row_by_row(tmp_path: Path, files: int) -> None:
    """The DISCOVERED -> READY pass writes its history with the same few statements for
    40 files as for 400 (one executed INSERT per row made a first import slow)."""
    from rush.storage import close_db, init_db

    root = tmp_path / "lib"
    init_library(root)
    old = time.time() - 3600
    for i in range(files):
        path = root / "INBOX" / f"d{i % 7}" / f"c{i:04d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (old, old))
    config = Config.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "library": {"root": str(root)},
            "scanner": {"stable_after_s": 0},
        }
    )
    await init_db(f"sqlite://{tmp_path / 'rush.db'}")
    try:
        scanner = Scanner(config, bus=events.EventBus())
        assert (await scanner.scan_once()).new == files
        executed: list[str] = []
        await _trace(executed.append)
        try:
            report = await scanner.scan_once()
        finally:
            await _trace(None)
        assert report.ready == files
        history_writes = [s for s in executed if "INSERT INTO asset_event" in s]
        assert 1 <= len(history_writes) <= 2, history_writes[:5]
        assert await AssetEvent.filter(trigger="stable").count() == files
    finally:
        await close_db()
