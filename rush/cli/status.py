"""`rush status`: the pipeline at a glance (the same figures Home Assistant shows)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from rush.config import Config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser("status", help="show counts per state, queue, agents and last runs")
    common(parser)
    parser.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    result = run_async(_run(args, config))
    return int(result) if isinstance(result, int) else 0


async def _run(args: argparse.Namespace, config: Config) -> int:
    from rush.status import collect_status, format_status
    from rush.storage import open_db

    async with open_db(config.database_url()):
        snapshot = await collect_status(config)
    print(json.dumps(snapshot, indent=2) if args.json else format_status(snapshot))
    return 0
