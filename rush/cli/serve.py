"""`rush serve`: the NAS server (supervisor, actors, web UI, MQTT, Home Assistant)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rush.config import Config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser("serve", help="run the NAS server until SIGTERM")
    common(parser)
    parser.set_defaults(func=run)


def run(_args: argparse.Namespace, config: Config) -> int:
    import sys

    from rush.cli import run_async
    from rush.runlock import LockBusy
    from rush.server import run_server

    try:
        run_async(run_server(config, force_exit_after=2.0))
    except LockBusy as exc:
        print(f"rush serve: {exc}", file=sys.stderr)
        return 3
    return 0
