"""`rush seedbox run|arr-hook|mapping|stats`: the Seedbox Manager from the command line.

Also runnable as `python -m rush.cli.seedbox ...` (same arguments), which is handy in a
Sonarr/Radarr container that only needs the hook.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rush.config import Config

log = logging.getLogger("rush.seedbox.arr_hook")


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    # `--config` lives on each action only: argparse would let a sub-parser's default
    # overwrite a value given before the action.
    parser = sub.add_parser("seedbox", help="Seedbox Manager: NVMe to Synology relocation")
    seed = parser.add_subparsers(dest="seedbox_command", metavar="ACTION", required=True)

    run = seed.add_parser("run", help="relocate eligible seeding torrents now")
    common(run)
    run.add_argument("--dry-run", action="store_true", help="list what would move and why")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.epilog = "exit status: 0 done (deferrals included), 1 a torrent failed or a .state was invalid, 3 another run holds the lock"
    run.set_defaults(func=cmd_run)

    hook = seed.add_parser(
        "arr-hook", help="Sonarr/Radarr Custom Script: write a .state file for an import"
    )
    common(hook)
    hook.set_defaults(func=cmd_arr_hook)

    mapping = seed.add_parser("mapping", help="show or export the infohash <-> paths mapping")
    common(mapping)
    mapping.add_argument(
        "--export",
        nargs="?",
        const="-",
        default="-",
        metavar="PATH",
        help="write to PATH (default: standard output)",
    )
    mapping.add_argument("--format", choices=["tsv", "csv"], default="tsv")
    mapping.add_argument(
        "--include-removed",
        action="store_true",
        help="also torrents gone from qBittorrent (adds a status column)",
    )
    mapping.set_defaults(func=cmd_mapping)

    stats = seed.add_parser("stats", help="KPIs: success ratio, mean time, volume, errors")
    common(stats)
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats)


def cmd_arr_hook(_args: argparse.Namespace, config: Config) -> int:
    """Called by Sonarr/Radarr: never needs the server or the database."""
    from rush.seedbox.arr import ArrEnvError, ArrIgnored, ArrTest, parse_arr_env
    from rush.seedbox.logs import job_log
    from rush.seedbox.state import write_state

    sb = config.seedbox
    with job_log(sb.log_dir, "arr-hook", sb.log_retention_days):
        try:
            event = parse_arr_env(os.environ, int(time.time()), sb.arr_categories)
        except ArrEnvError as exc:
            log.error("arr-hook refused: %s", exc)
            print(f"rush seedbox arr-hook: {exc}; nothing written", file=sys.stderr)
            return 1
        if isinstance(event, ArrTest):
            try:
                sb.state_dir.mkdir(parents=True, exist_ok=True)
                writable = os.access(sb.state_dir, os.W_OK)
            except OSError:
                writable = False
            if not writable:
                print(
                    f"rush seedbox arr-hook: state dir {sb.state_dir} is not writable",
                    file=sys.stderr,
                )
                return 1
            log.info("arr-hook test from %s OK (state dir %s)", event.source, sb.state_dir)
            print(
                f"rush seedbox arr-hook: Test event from {event.source} OK; "
                f".state files go to {sb.state_dir}; nothing written"
            )
            return 0
        if isinstance(event, ArrIgnored):
            log.info("arr-hook: %s event %r ignored", event.source, event.event)
            print(
                f"rush seedbox arr-hook: {event.source} event {event.event!r} ignored "
                "(only Download/import events are recorded)"
            )
            return 0
        try:
            path = write_state(sb.state_dir, event)
        except OSError as exc:
            log.error("arr-hook cannot write to %s: %s", sb.state_dir, exc)
            print(f"rush seedbox arr-hook: cannot write to {sb.state_dir}: {exc}", file=sys.stderr)
            return 1
        log.info(
            "arr-hook: %s %s %s (%s) -> %s",
            event.source,
            event.kind,
            event.title,
            event.infohash,
            path.name,
        )
        print(f"rush seedbox arr-hook: wrote {path}")
        return 0


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.runlock import LockBusy
    from rush.seedbox.service import relocate
    from rush.storage import open_db

    async def go() -> Any:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        async with open_db(config.database_url()):
            return await relocate(config, dry_run=args.dry_run or config.seedbox.dry_run)

    try:
        report = run_async(go())
    except LockBusy as exc:
        print(f"rush seedbox run: {exc}", file=sys.stderr)
        return 3
    data = report.to_dict()  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        if data["syno_problem"]:
            print(f"WARNING Synology unavailable: {data['syno_problem']}")
        for o in data["outcomes"]:
            print(f"{o['action']:<10} {o['infohash'][:12]} {o['name']}: {o['reason']}")
        for bad in data["invalid_states"]:
            print(f"invalid    {bad['path']}: {bad['error']}")
        print(
            f"{'dry run: ' if data['dry_run'] else ''}{data['moved']} moved, "
            f"{data['failed']} failed, {data['deferred']} deferred"
        )
    # Deferred torrents (hard links, Synology away, too young, paused) are not failures.
    return 1 if data["failed"] or data["invalid_states"] else 0


def cmd_mapping(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.seedbox.service import export_mapping
    from rush.storage import open_db

    async def go() -> str:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        async with open_db(config.database_url()):
            return await export_mapping(args.format, include_removed=args.include_removed)

    text = str(run_async(go()))
    if args.export in ("-", None):
        sys.stdout.write(text)
    else:
        from rush.seedbox.fs import write_atomic

        write_atomic(Path(args.export), text.encode("utf-8"))
        print(f"mapping written to {args.export}")
    return 0


def cmd_stats(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.seedbox.service import seedbox_kpis
    from rush.storage import open_db

    async def go() -> dict[str, Any]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        async with open_db(config.database_url()):
            return await seedbox_kpis(config)

    kpis: Any = run_async(go())
    if args.json:
        print(json.dumps(kpis, indent=2))
        return 0
    ratio = kpis["success_ratio"]
    print(
        f"attempts: {kpis['attempts']}  successes: {kpis['successes']}  "
        f"success ratio: {'-' if ratio is None else f'{ratio:.1%}'}  "
        f"deferred (kept on NVMe on purpose): {kpis['deferred']}"
    )
    print(f"mean relocation time: {kpis['mean_relocation_s'] or '-'} s")
    print(f"moved today: {kpis['bytes_moved_today']} bytes")
    print("errors by cause: " + ", ".join(f"{k}={v}" for k, v in kpis["errors_by_cause"].items()))
    nvme = kpis["nvme"]
    if nvme["free_bytes"] is not None:
        print(f"NVMe free: {nvme['free_bytes']} bytes ({nvme['free_percent']} %)")
    print(
        f"pending .state files: {kpis['pending_states']}  mapped torrents: "
        f"{kpis['mapped_torrents']}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m rush.cli.seedbox ...`: the same commands without the other ones."""
    from rush import cli
    from rush.config import ConfigError, load_config

    parser = argparse.ArgumentParser(prog="rush")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub, cli._common)
    args = parser.parse_args(["seedbox", *(sys.argv[1:] if argv is None else argv)])
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"rush: {exc}", file=sys.stderr)
        return 2
    cli.setup_logging(config, args.log_level)
    return int(args.func(args, config) or 0)


if __name__ == "__main__":
    sys.exit(main())
