"""The `rush` program's entry point: nothing heavy is imported before Ctrl-C is handled.

Why a module of its own: `rush.cli` imports pydantic and the config at import time,
which takes most of the first second; a Ctrl-C there used to print a long traceback.
Here it prints one line and exits with the shell's status for SIGINT (130).
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


def main(argv: list[str] | None = None) -> int:
    try:
        from rush.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:
        return interrupted()
