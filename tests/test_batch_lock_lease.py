"""The batch lock is a lease: its holder renews it, and a lock left by a host that
stopped renewing is taken over, never by hand with SQL.  SQLite and a real PostgreSQL
(the shared-database case, where the holder may be another machine)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from rush.models import KeyValue
from rush.moves import lock
from rush.moves.lock import LOCK_KEY, BatchBusy, acquire_lock, release_lock
from rush.transitions import utcnow


def _foreign(lease_s: float | None = 60.0) -> dict[str, object]:
    value: dict[str, object] = {
        "batch_id": str(uuid.uuid4()),
        "kind": "apply",
        "pid": 4242,
        "host": "other-nas-that-died",
        "since": utcnow().isoformat(),
    }
    if lease_s is not None:
        value["lease_s"] = lease_s
    return value


async def test_a_lock_another_host_stopped_renewing_is_taken_over(db: str) -> None:
    await KeyValue.create(key=LOCK_KEY, value=_foreign())
    await KeyValue.filter(key=LOCK_KEY).update(updated_at=utcnow() - timedelta(minutes=5))
    mine = uuid.uuid4()
    await acquire_lock(mine, "apply")  # BatchBusy for ever before the lease existed
    try:
        held = await KeyValue.get(key=LOCK_KEY)
        assert held.value["batch_id"] == str(mine)
        assert held.value["lease_s"] > 0
    finally:
        await release_lock(mine)
    assert await KeyValue.get_or_none(key=LOCK_KEY) is None


async def test_a_renewed_lock_of_another_host_is_respected(db: str) -> None:
    await KeyValue.create(key=LOCK_KEY, value=_foreign())  # renewed just now
    with pytest.raises(BatchBusy, match="other-nas-that-died"):
        await acquire_lock(uuid.uuid4(), "apply")
    # A lock written by a version without leases is never taken over from another host.
    await KeyValue.filter(key=LOCK_KEY).update(
        value=_foreign(lease_s=None), updated_at=utcnow() - timedelta(days=1)
    )
    with pytest.raises(BatchBusy):
        await acquire_lock(uuid.uuid4(), "apply")


async def test_the_holder_renews_its_lease(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "LOCK_HEARTBEAT_S", 0.05)
    mine = uuid.uuid4()
    await acquire_lock(mine, "purge")
    try:
        first = (await KeyValue.get(key=LOCK_KEY)).updated_at
        for _ in range(200):
            await asyncio.sleep(0.05)
            if (await KeyValue.get(key=LOCK_KEY)).updated_at > first:
                break
        assert (await KeyValue.get(key=LOCK_KEY)).updated_at > first, "never renewed"
    finally:
        await release_lock(mine)
    assert await KeyValue.get_or_none(key=LOCK_KEY) is None
