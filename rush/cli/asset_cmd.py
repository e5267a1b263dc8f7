"""`rush reopen|reprocess|retry UUID`: explicit human actions on one asset (Workflows 8, 9)."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from typing import Any

from rush.config import Config

HELP = {
    "reopen": "send an ARCHIVED/REJECTED asset back to DECISION_PENDING (no move)",
    "reprocess": "bump the processing version and send the asset back to READY",
    "retry": "clear the failed flag of an asset so agents may claim it again",
}


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    for name, text in HELP.items():
        parser = sub.add_parser(name, help=text)
        common(parser)
        parser.add_argument("uuid", help="the asset UUID")
        parser.add_argument("--actor", default=None, help="name recorded in the history")
        parser.set_defaults(func=run, action_name=name)


async def _main(args: argparse.Namespace, config: Config) -> int:
    from rush import actions
    from rush.cli import state_changing
    from rush.cli.apply import default_actor
    from rush.transitions import AssetNotFound, StaleState

    try:
        asset_id = uuid.UUID(args.uuid)
    except ValueError:
        print(f"rush {args.action_name}: {args.uuid!r} is not a UUID", file=sys.stderr)
        return 2
    actor = args.actor or default_actor()
    async with state_changing(config):
        try:
            if args.action_name == "reopen":
                await actions.reopen(asset_id, actor)
                print(f"{asset_id}: DECISION_PENDING (nothing moved; decide, then rush apply)")
            elif args.action_name == "reprocess":
                version = await actions.reprocess(asset_id, actor)
                print(f"{asset_id}: READY for processing version {version}")
            elif await actions.retry_failed(asset_id, actor):
                print(f"{asset_id}: failed flag cleared; agents may claim it again")
            else:
                print(f"{asset_id}: was not flagged failed; nothing changed")
        except (actions.ActionRefused, AssetNotFound, StaleState) as exc:
            print(f"rush {args.action_name}: {exc}", file=sys.stderr)
            return 1
    return 0


def run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    code = run_async(_main(args, config))
    return code if isinstance(code, int) else 1
