"""The one line a Ctrl-C prints, shared by the entry point and the CLI.

Why a module of its own: `rush.entry` must stay light (nothing heavy before Ctrl-C is
handled) and `rush.cli` needs the same answer; both import it from here.
"""

from __future__ import annotations

import sys
import threading


def interrupted() -> int:
    """Say "interrupted" once and return 130.

    A Ctrl-C while the database opens cancels the coroutine waiting for aiosqlite's
    thread; that thread then finds the event loop closed and would print a traceback
    of its own on the way out.  Nothing is lost there (the connection was never used),
    so that one error is kept quiet.
    """
    default = threading.excepthook

    def quiet(args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, RuntimeError) and "Event loop is closed" in str(
            args.exc_value
        ):
            return
        default(args)

    threading.excepthook = quiet
    print("rush: interrupted", file=sys.stderr)
    return 130
