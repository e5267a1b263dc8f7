"""`rush init`: create the library layout and its `.rushes_db` marker."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rush.config import Config
from rush.layout import init_library, outside_areas_hint


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser(
        "init", help="create the library layout (INBOX, ARCHIVE, ...) and marker"
    )
    common(parser)
    parser.add_argument("root", nargs="?", type=Path, help="library root (default: library.root)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    root: Path = args.root or config.library.root
    marker, created = init_library(root)
    for path in created:
        print(f"created {path}")
    print(f"library {root} ready (id {marker.library_id})")
    hint = outside_areas_hint(root)
    if hint:
        print(f"note: {hint}")
    return 0
