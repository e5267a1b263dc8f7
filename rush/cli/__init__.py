"""The `rush` command line: one module per command, registered in `COMMANDS`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from rush import __version__
from rush.config import Config, ConfigError, load_config
from rush.interrupt import interrupted

#: Modules under rush.cli, each with `register(subparsers)`; a command's function
#: receives (args, config) and returns the exit code.
COMMANDS = (
    "init",
    "config_cmd",
    "scan",
    "serve",
    "status",
    "export",
    "seedbox",
    "apply",
    "purge_cli",
    "verify",
    "asset_cmd",
    "recompute",
    "user",
    "agent",
    "agents_cmd",
    "demo",
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default ./config.toml, then /etc/rush/config.toml)",
    )
    parser.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rush", description="RushCatalog, RushIndexer and Seedbox Manager"
    )
    parser.add_argument("--version", action="version", version=f"rush {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"rush.cli.{name}")
        module.register(sub, _common)
    return parser


def setup_logging(config: Config, override: str | None = None) -> None:
    level = override or config.logging.level
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.logging.dir is not None:
        from logging.handlers import TimedRotatingFileHandler

        config.logging.dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            TimedRotatingFileHandler(
                config.logging.dir / "rush.log", when="midnight", backupCount=14
            )
        )
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    for noisy in ("tortoise", "aiosqlite", "asyncio", "amqtt", "transitions", "passlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for message in config.env_warnings:
        logging.getLogger("rush.config").warning("%s", message)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "needs_config", True):
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"rush: {exc}", file=sys.stderr)
            return 2
    else:
        config = Config()
    setup_logging(config, args.log_level)
    try:
        return int(args.func(args, config) or 0)
    except ConfigError as exc:
        print(f"rush: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()


def run_async(coro: object) -> object:
    """Run a coroutine on uvloop when it is installed (faster sockets and subprocesses)."""
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop missing on some platforms
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def state_changing(config: Config) -> AsyncIterator[None]:
    """The database of a command that may change states, and the relay that carries its
    events to MQTT (only `rush serve` is connected otherwise; docs/contract.md §5 promises
    `events/asset` on every transition)."""
    from integrations.mqtt.relay import CommandEventRelay
    from rush.storage import open_db

    config.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_db(config.database_url()), CommandEventRelay(config.mqtt):
        yield
