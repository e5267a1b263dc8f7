"""`rush verify [--archive] [--sample PCT]`: re-hash files and compare with the recorded
hashes (read-only; docs/batch.md, "Verify")."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rush.config import Config


def _pct(value: str) -> float:
    try:
        pct = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from exc
    if not 0 < pct <= 100:
        raise argparse.ArgumentTypeError("a percentage: more than 0, at most 100")
    return pct


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser(
        "verify", help="re-hash files and report any whose bytes differ (reads only)"
    )
    common(parser)
    parser.add_argument(
        "--archive", action="store_true", help="only ARCHIVE (default: INBOX, ARCHIVE, REJECTS)"
    )
    parser.add_argument(
        "--sample", type=_pct, default=100.0, metavar="PCT", help="re-hash PCT %% of the files"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


async def _main(args: argparse.Namespace, config: Config) -> int:
    from rush.cli.progress import TerminalProgress
    from rush.storage import open_db
    from rush.verify import VerifyRefused, run_verify

    async with open_db(config.database_url()):
        try:
            report = await run_verify(
                config,
                archive_only=args.archive,
                sample_pct=args.sample,
                progress=TerminalProgress(),
            )
        except VerifyRefused as exc:
            print(f"rush verify: {exc}", file=sys.stderr)
            return 2
    data = report.to_dict()
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(
            f"verified {report.checked} file(s) of {report.scope} ({report.bytes} bytes, "
            f"sample {report.sample_pct:g} %): {report.ok} ok, {len(report.differs)} differ, "
            f"{len(report.missing)} missing, {len(report.extra)} unexpected, "
            f"{report.unhashed} not hashed yet"
        )
        for d in report.differs:
            why = "changed (size/mtime moved)" if d["modified"] else "corrupt (same size and mtime)"
            print(
                f"  DIFFERS {d['path']} ({d['uuid']}): {why}; recorded {d['expected'][:16]}…, now {d['actual'][:16]}…"
            )
        for m in report.missing:
            print(f"  MISSING {m['path']} ({m['uuid']})")
        for e in report.extra:
            print(f"  UNEXPECTED {e}")
        for e in report.errors:
            print(f"  ERROR {e}")
        if report.interrupted:
            print("  (interrupted: not every file was checked)")
    return 1 if report.problems else 0


def run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    code = run_async(_main(args, config))
    return code if isinstance(code, int) else 1
