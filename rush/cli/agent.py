"""`rush agent`: a RushIndexer processing agent that runs until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rush.config import Config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser(
        "agent", help="run a processing agent (claims jobs over MQTT until SIGTERM)"
    )
    common(parser)
    parser.add_argument("--id", default=None, help="agent id (default agent.id, then host name)")
    parser.add_argument(
        "--library-mount", type=Path, default=None, help="where this machine sees the library"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    if args.library_mount is not None:
        config.agent.library_mount = args.library_mount
    code = run_async(_main(config, args.id))
    return code if isinstance(code, int) else 0


async def _main(config: Config, agent_id: str | None) -> int:
    from integrations.agent_runtime import AgentRuntime, NoProcessors, load_processors

    try:
        processors = load_processors(config)
    except NoProcessors as exc:
        print(f"rush agent: {exc}", file=sys.stderr)
        return 2
    runtime = AgentRuntime(config, processors, agent_id=agent_id)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.stop)
    try:
        await runtime.run()
    except NoProcessors as exc:
        print(f"rush agent: {exc}", file=sys.stderr)
        return 2
    return 0
