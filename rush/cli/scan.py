"""`rush scan`: one discovery pass against the configured database and library."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from rush.config import Config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser(
        "scan",
        help="run one discovery pass now and print what changed",
        description=(
            "List INBOX, ARCHIVE and REJECTS once, record new media, update sizes, move "
            "stable files to READY and flag vanished files missing. Read-only on the NAS. "
            "Exit code 0 when the pass ran, 1 when it was skipped (library missing or "
            "unmounted, or far fewer files than known)."
        ),
    )
    common(parser)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.set_defaults(func=run)


def format_report(report: Any) -> list[str]:
    """Human lines for a ScanReport."""
    if report.skipped_reason:
        return [f"scan skipped: {report.skipped_reason}"]
    lines = [
        f"scanned {report.files_seen} files in {report.duration_s:.2f} s",
        f"  new assets:             {report.new}",
        f"  updated (size/mtime):   {report.updated}",
        f"  became READY:           {report.ready}",
        f"  changed, back to DISCOVERED: {report.changed}",
        f"  missing:                {report.missing}",
        f"  reappeared:             {report.reappeared}",
        f"  moved outside the system: {report.moved}",
        f"  other bytes, back to review: {report.content_changed}",
        f"  sidecars added/removed: {report.sidecars_added}/{report.sidecars_removed}",
    ]
    if report.untracked:
        lines.append(f"  untracked media in ARCHIVE/REJECTS: {report.untracked}")
    if report.symlinks_ignored:
        lines.append(f"  symbolic links ignored: {report.symlinks_ignored}")
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"error: {e}" for e in report.errors]
    return lines


def run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    report = run_async(_scan(config))
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))  # type: ignore[attr-defined]
    else:
        print("\n".join(format_report(report)))
    return 1 if report.skipped_reason else 0  # type: ignore[attr-defined]


async def _scan(config: Config) -> Any:
    from actors.scanner import Scanner
    from rush.cli import state_changing

    async with state_changing(config):
        return await Scanner(config).scan_once()
