"""Run one batch apply (or purge) in its own process, for the crash test to SIGKILL.

Usage: python tests/crash_driver.py apply|purge LIBRARY_ROOT ARCHIVE_ROOT DB_URL
The test sets RUSH_TEST_CRASH_AFTER_N_FS_OPS so the process kills itself at a step.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path


async def main(mode: str, root: str, archive: str, db_url: str) -> None:
    from rush.config import Config, DatabaseConfig, LibraryConfig
    from rush.moves.run import run_apply, run_purge
    from rush.storage import close_db, init_db

    cfg = Config(
        library=LibraryConfig(root=Path(root), archive_root=Path(archive)),
        database=DatabaseConfig(dsn=db_url),
    )
    await init_db(db_url, migrate=False)
    try:
        if mode == "apply":
            await run_apply(cfg, "crash-test")
        else:
            later = datetime.now(UTC) + timedelta(days=400)
            await run_purge(cfg, "crash-test", confirm=True, now=later)
    finally:
        await close_db()


def zygote() -> None:
    """Import once, then fork one child per request read on stdin (fast kill points).

    Safe because this parent never starts an event loop, a thread or a connection:
    each child starts from a clean, single-threaded copy.
    """
    import os
    import signal

    import rush.moves.run
    import rush.storage  # noqa: F401

    for line in sys.stdin:
        n, mode, root, archive, db_url = line.split("\t")
        pid = os.fork()
        if pid == 0:
            os.environ["RUSH_TEST_CRASH_AFTER_N_FS_OPS"] = n
            code = 0
            try:
                asyncio.run(main(mode, root, archive, db_url.strip()))
            except BaseException as exc:
                print(f"driver error: {exc!r}", file=sys.stderr)
                code = 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        print("killed" if killed else f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "zygote":
        zygote()
    else:
        asyncio.run(main(*sys.argv[1:5]))
