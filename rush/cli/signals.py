"""Stopping a state-changing command (`rush apply`, `rush purge`) with SIGTERM or Ctrl-C.

Why one helper: SIGTERM (a service manager, `kill`, a container stop) must end the run
the way Ctrl-C does, through cancellation, so the batch is recorded `interrupted`, the
batch lock is released and the files moving right now finish their group first.  The
exit status is the shell's for that signal (143 for SIGTERM, 130 for Ctrl-C), and the
person gets one line, not a traceback.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_stoppable(main: Coroutine[Any, Any, int], command: str) -> int:
    """Run `main` on the event loop; SIGTERM or SIGINT cancels it.  Returns its exit code,
    or 128 + the signal number when a signal stopped it."""
    from rush.cli import run_async

    received: list[signal.Signals] = []

    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(sig: signal.Signals) -> None:
            if not received:
                print(
                    f"{command}: {sig.name} received: stopping after the files being moved "
                    "now (a second signal does not hurry it)",
                    file=sys.stderr,
                    flush=True,
                )
            received.append(sig)
            task.cancel()

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await main
        except asyncio.CancelledError:
            if not received:
                raise
            return 128 + int(received[0])
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    code = run_async(guarded())
    if received:
        print(
            f"{command}: interrupted; the batch is recorded as interrupted and the lock "
            "released (run it again to finish)",
            file=sys.stderr,
        )
    return code if isinstance(code, int) else 1
