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
    from rush.cli import run_async
    from rush.server import run_server

    run_async(run_server(config, force_exit_after=2.0))
    return 0
