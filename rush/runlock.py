"""One run at a time (seedbox relocation, scan pass, `rush serve`): a lock file holding
the owner's pid, guarded by `flock`.

`flock` is released by the kernel when its holder dies, so a lock file left by a crashed
or killed run (a "dead pid") never blocks the next run; the pid is there for humans and
for the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from rush.procs import pid_alive

log = logging.getLogger(__name__)


class LockBusy(RuntimeError):
    """Another run holds the lock."""


@contextlib.contextmanager
def run_lock(lock_dir: Path, name: str = "relocator", what: str = "seedbox run") -> Iterator[Path]:
    """Hold `<lock_dir>/<name>.lock` for the block; raise LockBusy if someone else does."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise LockBusy(
                f"another {what} is in progress (pid {holder}, lock {path}); refusing to start"
            ) from None
        previous = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if previous.isdigit() and int(previous) != os.getpid():
            state = "alive but not holding it" if pid_alive(int(previous)) else "dead"
            log.info("stale lock %s from pid %s (%s) taken over", path, previous, state)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
