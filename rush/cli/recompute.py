"""`rush retranscribe` / `rush resuggest`: queue only the secondary job again.

Why: a better model, another language or a fixed suggester should not cost a new proxy.
No state changes, no file is touched; the server's agents pick the jobs up
(rush/secondary.py, docs/processing.md "Recompute").
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from typing import Any

from rush.config import Config


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    for name, text in (
        ("retranscribe", "transcribe assets again (optionally in another language)"),
        ("resuggest", "compute tag suggestions again"),
    ):
        parser = sub.add_parser(name, help=text)
        common(parser)
        parser.add_argument("uuids", nargs="*", help="asset UUIDs")
        parser.add_argument("--all", action="store_true", help="every processed asset")
        parser.add_argument(
            "--failed", action="store_true", help="the assets whose job ended in error"
        )
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="library filters, e.g. folder=INBOX/Seoul, tag=interview, q=rings",
        )
        if name == "retranscribe":
            parser.add_argument(
                "--language", default=None, help="language code, kept as the assets' choice"
            )
        parser.set_defaults(func=run, recompute=name)


async def _select(args: argparse.Namespace) -> list[uuid.UUID]:
    from rush.models import Asset
    from web import queries

    ids: list[uuid.UUID] = [uuid.UUID(u) for u in args.uuids]
    status = "transcript_status" if args.recompute == "retranscribe" else "suggestions_status"
    if args.all or args.failed:
        query = Asset.all() if args.all else Asset.filter(**{status: "error"})
        found = await query.order_by("rel_path").values_list("id", flat=True)
        ids += [uuid.UUID(str(i)) for i in found]
    if args.filter:
        pairs: dict[str, str] = {}
        states: list[str] = []
        for item in args.filter:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--filter {item!r}: expected KEY=VALUE")
            if key == "state":
                states.append(value)
            else:
                pairs[key] = value
        f = queries.Filters.parse(pairs, states)
        sql = queries.Sql(queries.dialect())
        where = queries.where_clause(f, sql)
        rows = await queries.fetch(
            f"SELECT a.id FROM asset a WHERE {where} ORDER BY a.rel_path", sql.params
        )
        ids += [uuid.UUID(str(r["id"])) for r in rows]
    return list(dict.fromkeys(ids))


async def _main(args: argparse.Namespace, config: Config) -> int:
    from rush import secondary
    from rush.storage import open_db
    from web.queries import BadFilter

    if not (args.uuids or args.all or args.failed or args.filter):
        print(f"rush {args.recompute}: give UUIDs, --all, --failed or --filter", file=sys.stderr)
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_db(config.database_url()):
        try:
            ids = await _select(args)
            if args.recompute == "retranscribe":
                report = await secondary.queue_transcription(
                    ids, config.transcription, language=args.language
                )
                what = "transcription(s)"
            else:
                report = await secondary.queue_suggestions(ids)
                what = "suggestion job(s)"
        except (ValueError, BadFilter) as exc:
            print(f"rush {args.recompute}: {exc}", file=sys.stderr)
            return 2
    for asset_id, why in list(report.skipped.items())[:50]:
        print(f"  skipped {asset_id}: {why}")
    print(report.summary(what))
    return 0 if report.queued or not report.skipped else 1


def run(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async

    code = run_async(_main(args, config))
    return code if isinstance(code, int) else 1
