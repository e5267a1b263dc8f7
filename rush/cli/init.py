"""`rush init`: create the library layout and its `.rushes_db` marker, or (`--volume`)
mark a destination volume as this library's (docs/batch.md, "Volume markers")."""

from __future__ import annotations

import argparse
import sys
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
    parser.add_argument(
        "--volume",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the marker of a destination volume (ARCHIVE, REJECTS, archive_root, "
        "rejects_root) once it is mounted",
    )
    parser.add_argument(
        "--adopt",
        action="store_true",
        help="with --volume: accept a folder that already holds files (an existing install)",
    )
    parser.set_defaults(func=run)


def _volume(args: argparse.Namespace, config: Config) -> int:
    from rush.volumes import VolumeError, init_volume

    if args.root is not None:
        config.library.root = args.root
    try:
        done = init_volume(config, args.volume, adopt=args.adopt)
    except VolumeError as exc:
        print(f"rush init: {exc}", file=sys.stderr)
        return 1
    for note in done.notes:
        print(f"note: {note}")
    if done.written:
        print(f"created {done.marker}")
    print(f"{done.area} volume {done.folder} ready")
    return 0


def run(args: argparse.Namespace, config: Config) -> int:
    if args.volume is not None:
        return _volume(args, config)
    if args.adopt:
        print("rush init: --adopt goes with --volume PATH", file=sys.stderr)
        return 2
    from rush.volumes import check_volumes, destination_roots

    root: Path = args.root or config.library.root
    marker, created = init_library(root)
    for path in created:
        print(f"created {path}")
    print(f"library {root} ready (id {marker.library_id})")
    if args.root is not None:
        config.library.root = root
    roots = destination_roots(config)
    for area in check_volumes(config):
        print(
            f"note: {area} ({roots[area]}) has no volume marker yet: nothing will be moved "
            f"there until you run `rush init --volume {roots[area]}` (with --adopt if it "
            "already holds this library's files)"
        )
    hint = outside_areas_hint(root)
    if hint:
        print(f"note: {hint}")
    return 0
