"""The one filesystem lock of the batch flow, and the worker that runs under it.

Why its own module: apply, purge and recovery all take the same lock (a row in `kv`)
and run their file operations in a worker thread that must finish before the lock is
let go.  Keeping the lock below all three lets each import it at the top, without a
circle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError

from rush.models import KeyValue
from rush.procs import pid_alive
from rush.transitions import utcnow

log = logging.getLogger(__name__)

#: One filesystem-changing run at a time (apply or purge): a row in `kv`.
LOCK_KEY = "fs_lock"

#: Progress callback of a run: (done, total, kind).
Progress = Callable[[int, int, str], None]
T = TypeVar("T")


class BatchBusy(RuntimeError):
    """Another apply or purge holds the batch lock; nothing was done."""


# --- the lock ----------------------------------------------------------------------


#: The batch lock is a lease (docs/batch.md): its holder renews it every
#: LOCK_HEARTBEAT_S; a holder on another host that has not renewed it for `lease_s`
#: (written in the lock) is taken for dead.
LOCK_LEASE_S = 60.0
LOCK_HEARTBEAT_S = 10.0
_renewals: dict[str, asyncio.Task[None]] = {}


def lock_is_live(
    value: dict[str, Any], renewed_at: datetime | None = None, now: datetime | None = None
) -> bool:
    """A lock is live unless its holder was a process of this host that is gone, or a
    process of another host that stopped renewing its lease.

    Why: a SIGKILLed apply leaves its lock row; recovery may take over only when the
    holder is certainly dead.  On this host the pid says so; another host (a shared
    PostgreSQL) is judged by the lease.  A lock without `lease_s` was written by a
    version that did not renew it: its holder on another host is assumed alive.
    """
    if value.get("host") != socket.gethostname():
        lease = value.get("lease_s")
        if renewed_at is None or not isinstance(lease, int | float):
            return True
        return ((now or utcnow()) - renewed_at).total_seconds() < float(lease)
    pid = value.get("pid")
    return isinstance(pid, int) and pid_alive(pid)


async def _renew_lock(batch_id: uuid.UUID) -> None:
    """Renew our lease until `release_lock` cancels this; stop if someone took it."""
    while True:
        await asyncio.sleep(LOCK_HEARTBEAT_S)
        try:
            held = await KeyValue.get_or_none(key=LOCK_KEY)
            if held is None or held.value.get("batch_id") != str(batch_id):
                log.error("batch %s lost its lock (taken over?); not renewing it", batch_id)
                return
            await KeyValue.filter(key=LOCK_KEY, updated_at=held.updated_at).update(
                updated_at=utcnow()
            )
        except Exception as exc:  # a database hiccup: try again at the next beat
            log.warning("could not renew the batch lock of %s: %s", batch_id, exc)


def _start_renewing(batch_id: uuid.UUID) -> None:
    _renewals[str(batch_id)] = asyncio.get_running_loop().create_task(
        _renew_lock(batch_id), name=f"batch-lock-{batch_id}"
    )


async def acquire_lock(batch_id: uuid.UUID, kind: str) -> None:
    """Take the one filesystem lock, or take over a lock left by a dead process.

    The takeover is a conditional update on the stale row's `updated_at`, so of two
    processes finding the same stale lock only one wins; the other gets BatchBusy.
    """
    value = {
        "batch_id": str(batch_id),
        "kind": kind,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": utcnow().isoformat(),
        "lease_s": LOCK_LEASE_S,
    }
    try:
        await KeyValue.create(key=LOCK_KEY, value=value)
        _start_renewing(batch_id)
        return
    except IntegrityError:
        pass
    held = await KeyValue.get_or_none(key=LOCK_KEY)
    if held is None:
        try:
            await KeyValue.create(key=LOCK_KEY, value=value)
            _start_renewing(batch_id)
            return
        except IntegrityError:
            held = await KeyValue.get_or_none(key=LOCK_KEY)
    detail = held.value if held else {}
    if held is not None and not lock_is_live(detail, held.updated_at):
        taken = await KeyValue.filter(key=LOCK_KEY, updated_at=held.updated_at).update(
            value=value, updated_at=utcnow()
        )
        if taken:
            log.warning(
                "took over the batch lock of process %s on %s (dead, or its lease expired)",
                detail.get("pid"),
                detail.get("host"),
            )
            _start_renewing(batch_id)
            return
    raise BatchBusy(
        f"another {detail.get('kind', 'batch')} is running (batch {detail.get('batch_id')}, "
        f"pid {detail.get('pid')} on {detail.get('host')}, since {detail.get('since')}); "
        "nothing was done"
    )


async def release_lock(batch_id: uuid.UUID) -> None:
    renewal = _renewals.pop(str(batch_id), None)
    if renewal is not None:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
    held = await KeyValue.get_or_none(key=LOCK_KEY)
    if held is not None and held.value.get("batch_id") == str(batch_id):
        await held.delete()


async def in_worker(fn: Callable[..., T], *args: Any, stop: threading.Event | None = None) -> T:
    """Run `fn(*args)` in a worker thread; if cancelled, wait for it before re-raising.

    Why: the thread moves or deletes files under the batch lock, which the caller
    releases in its `finally`; it must not be released while files still move.  `stop`
    (also passed to `fn` by the caller) asks a long worker to stop at its next safe
    point, between groups.
    """
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if stop is not None:
            stop.set()
        while not future.done():
            try:
                await asyncio.wait({future})
            except asyncio.CancelledError:
                continue  # cancelled again: still wait, then re-raise below
        if not future.cancelled() and future.exception() is not None:
            log.warning("worker %s failed while cancelled: %s", fn.__name__, future.exception())
        raise
