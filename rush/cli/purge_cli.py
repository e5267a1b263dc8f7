"""`rush purge --dry-run | --confirm`: delete long-REJECTED assets (docs/contract.md §9, workflow 10)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rush.config import Config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser(
        "purge", help="delete REJECTED assets older than purge.after_days (needs --confirm)"
    )
    common(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list what would go (default)")
    mode.add_argument("--confirm", action="store_true", help="really delete (destructive)")
    parser.add_argument("--json", action="store_true", help="print the plan or report as JSON")
    parser.add_argument("--actor", default=None, help="name recorded in the audit")
    parser.set_defaults(func=run)


async def _main(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import state_changing
    from rush.cli.apply import default_actor
    from rush.cli.progress import TerminalProgress
    from rush.moves.lock import BatchBusy
    from rush.moves.purge import plan_purge
    from rush.moves.run import run_purge

    async with state_changing(config):
        if not args.confirm:
            plan = (await plan_purge(config)).to_dict()
            if args.json:
                print(json.dumps(plan, indent=2))
                return 0
            print(
                f"{len(plan['eligible'])} REJECTED asset(s) rejected before {plan['cutoff']} "
                "would be deleted (originals, sidecars, derived files); run with --confirm"
            )
            for e in plan["eligible"]:
                print(f"  {e['rel_path']} (+{len(e['sidecars'])} sidecars) {e['uuid']}")
            for s in plan["skipped"]:
                print(f"  refused {s['rel_path']}: {s['reason']}")
            for area, problem in plan["volume_errors"].items():
                print(f"refused: {len(plan['refused'])} asset(s) in {area}: {problem}")
            return 1 if plan["refused"] else 0
        try:
            result = await run_purge(
                config, args.actor or default_actor(), confirm=True, progress=TerminalProgress()
            )
        except BatchBusy as exc:
            print(f"rush purge: {exc}", file=sys.stderr)
            return 3
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(
                f"purge {result['batch_id']}: {len(result['purged'])} purged, "
                f"{len(result['skipped'])} skipped, {len(result['failed'])} failed"
            )
            problems = set(result["volume_errors"].values())
            for f in result["failed"]:
                if f["reason"] not in problems:
                    print(f"  failed {f['uuid']}: {f['reason']}")
            for area, problem in result["volume_errors"].items():
                print(f"refused: {area}: {problem}")
        return 1 if result["failed"] else 0


def run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli.signals import run_stoppable

    return run_stoppable(_main(args, config), "rush purge")
