"""`rush config check`: validate the configuration and say what is wrong in plain words."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from rush.config import Config, ConfigError, load_config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser("config", help="check or show the configuration")
    inner = parser.add_subparsers(dest="config_command", required=True)
    check = inner.add_parser("check", help="validate the configuration file and environment")
    common(check)
    check.set_defaults(func=check_cmd, needs_config=False)
    show = inner.add_parser("show", help="print the effective configuration (secrets hidden)")
    common(show)
    show.set_defaults(func=show_cmd)


def check_cmd(args: argparse.Namespace, _config: Config) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc)
        return 2
    where = config.source or "embedded defaults"
    print(f"configuration OK ({where})")
    for message in config.env_warnings:
        print(f"  warning: {message}")
    root = config.library.root
    if not root.is_dir():
        print(f"  note: library root {root} does not exist yet (rush init creates it)")
    return 0


def show_cmd(_args: argparse.Namespace, config: Config) -> int:
    print(json.dumps(config.model_dump(mode="json"), indent=2, default=str))
    return 0
