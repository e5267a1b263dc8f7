"""`rush apply [--dry-run]`: apply standing KEEP/REJECT decisions by moving files (docs/contract.md §9, workflow 7)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rush.config import Config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser(
        "apply", help="move decided assets to ARCHIVE/REJECTS (journaled; --dry-run first)"
    )
    common(parser)
    parser.add_argument("--dry-run", action="store_true", help="show the plan, move nothing")
    parser.add_argument("--json", action="store_true", help="print the plan or report as JSON")
    parser.add_argument("--actor", default=None, help="name recorded in the history")
    parser.set_defaults(func=run)


def default_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _main(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import state_changing
    from rush.cli.progress import TerminalProgress
    from rush.moves.apply import plan_apply
    from rush.moves.lock import BatchBusy
    from rush.moves.run import run_apply

    async with state_changing(config):
        if args.dry_run:
            plan = (await plan_apply(config)).to_dict()
            if args.json:
                print(json.dumps(plan, indent=2))
                return 0
            print(
                f"{plan['to_move']} group(s) to move ({plan['files']} files, "
                f"{plan['sidecars']} sidecars), {plan['noop']} already in place, "
                f"{len(plan['collisions'])} collision(s), {len(plan['skipped'])} skipped"
            )
            for item in plan["items"]:
                for m in item["moves"]:
                    print(f"  {m['src']} -> {m['dst']}")
            for c in plan["collisions"]:
                print(f"  collision: {c['uuid']} renamed to {c['new_base']}")
            for s in plan["skipped"]:
                print(f"  skipped {s['rel_path']}: {s['reason']}")
            for area, problem in plan["volume_errors"].items():
                refused = sum(1 for r in plan["refused"] if r["reason"] == problem)
                print(f"refused: {refused} group(s) for {area}: {problem}")
            return 1 if plan["refused"] else 0
        try:
            report = await run_apply(
                config, args.actor or default_actor(), progress=TerminalProgress()
            )
        except BatchBusy as exc:
            print(f"rush apply: {exc}", file=sys.stderr)
            return 3
        data = report.to_dict()
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            c = data["counts"]
            print(
                f"batch {data['batch_id']}: {c['moved']} moved, {c['noop']} already in place, "
                f"{c['skipped']} skipped, {c['failed']} failed"
            )
            problems = set(data["volume_errors"].values())
            for f in data["failed"]:
                if f["reason"] not in problems:
                    print(f"  failed {f['uuid']}: {f['reason']}")
            for area, problem in data["volume_errors"].items():
                refused = sum(1 for f in data["failed"] if f["reason"] == problem)
                print(f"refused: {refused} group(s) for {area}: {problem}")
        return 1 if report.failed else 0


def run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli.signals import run_stoppable

    return run_stoppable(_main(args, config), "rush apply")
