"""The `rush` program's entry point: nothing heavy is imported before Ctrl-C is handled.

Why a module of its own: `rush.cli` imports pydantic and the config at import time,
which takes most of the first second; a Ctrl-C there used to print a long traceback.
Here it prints one line and exits with the shell's status for SIGINT (130).
"""

from __future__ import annotations

from rush.interrupt import interrupted


def main(argv: list[str] | None = None) -> int:
    try:
        from rush.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:
        return interrupted()
