"""`rush export-selection` and `rush relink`: offline work away from the NAS (docs/contract.md §9, workflow 11).

Both only read the library and the database; the package is written to a local folder
outside the library, and the relink mapping goes to stdout or `--output`.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rush.config import Config
from rush.lifecycle import AssetState
from rush.media import Area, MediaKind


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    exp = sub.add_parser(
        "export-selection",
        help="copy the proxies of a bin or filter into a local offline package (NAS read-only)",
        description="Build an offline package: local proxies, timelines for DaVinci Resolve "
        "(.otio, FCP 7 XML, EDL), media.csv and manifest.json.  Filters combine with AND.",
    )
    common(exp)
    exp.add_argument("--to", required=True, type=Path, metavar="DIR", help="new local folder")
    exp.add_argument("--bin", metavar="NAME", help="export the assets of this bin")
    exp.add_argument("--state", action="append", default=[], choices=[s.value for s in AssetState])
    exp.add_argument("--kind", action="append", default=[], choices=[k.value for k in MediaKind])
    exp.add_argument(
        "--tag", action="append", default=[], help="asset must carry this tag (repeatable)"
    )
    exp.add_argument("--folder", help="library-relative folder prefix, e.g. 'INBOX/2024-06'")
    exp.add_argument("--uuid", nargs="+", action="extend", default=[], help="asset UUIDs")
    exp.add_argument(
        "--xmp-decisions",
        action="store_true",
        help="also write each asset's decision as the XMP label (Keep/Reject)",
    )
    exp.add_argument("--name", help="timeline name (default: the bin name)")
    exp.add_argument(
        "--package-as",
        metavar="PATH",
        help="the --to folder as the editing machine will see it, when it differs "
        "(e.g. /Users/alice/Offline/wedding): used in the timelines' media paths",
    )
    exp.set_defaults(func=run_export)

    rel = sub.add_parser(
        "relink",
        help="map an offline package's proxies to the current originals on the NAS, by UUID",
    )
    common(rel)
    rel.add_argument("package", type=Path, metavar="PACKAGE_DIR")
    rel.add_argument("--format", choices=["csv", "json", "edl"], default="csv")
    rel.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    rel.add_argument(
        "--mount-as",
        metavar="PREFIX",
        help="the library root as the editing machine sees it (e.g. /Volumes/RUSHES_DB or Z:\\)",
    )
    rel.add_argument(
        "--archive-as",
        metavar="PREFIX",
        help="ARCHIVE as the editing machine sees it, when library.archive_root puts it on "
        "another volume",
    )
    rel.add_argument(
        "--rejects-as",
        metavar="PREFIX",
        help="REJECTS as the editing machine sees it (library.rejects_root)",
    )
    rel.set_defaults(func=run_relink)


def _uuids(values: list[str]) -> tuple[uuid.UUID, ...]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            raise SystemExit(f"rush: --uuid {value!r} is not a UUID") from None
    return tuple(out)


def run_export(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.offline import OfflineError, Selection

    selection = Selection(
        bin=args.bin,
        states=tuple(AssetState(s) for s in args.state),
        kinds=tuple(MediaKind(k) for k in args.kind),
        tags=tuple(args.tag),
        folder=args.folder,
        uuids=_uuids(args.uuid),
    )
    try:
        code = run_async(_export(config, selection, args))
    except OfflineError as exc:
        print(f"rush export-selection: {exc}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 1


async def _export(config: Config, selection: Any, args: argparse.Namespace) -> int:
    from rush.offline import export_selection
    from rush.storage import close_db, init_db

    await init_db(_existing_database(config))
    try:
        report = await export_selection(
            config.library.root,
            selection,
            args.to,
            name=args.name,
            package_as=args.package_as,
            other_areas=list(_other_areas(config).values()),
            xmp_decisions=args.xmp_decisions,
        )
    finally:
        await close_db()
    for uid, path, reason in report.skipped:
        print(f"skipped {uid} {path}: {reason}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"exported {len(report.clips)} clip(s), {report.bytes_copied / 1e6:.1f} MB, "
        f"to {report.package_dir} ({', '.join(report.files)})"
    )
    return 0 if report.clips else 1


def run_relink(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.offline import OfflineError

    try:
        code = run_async(_relink(config, args))
    except OfflineError as exc:
        print(f"rush relink: {exc}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 1


async def _relink(config: Config, args: argparse.Namespace) -> int:
    from rush.offline import read_package, relink_package, render_relink
    from rush.storage import close_db, init_db

    read_package(args.package)  # fail on a bad package before touching the database
    await init_db(_existing_database(config))
    try:
        spelled = {
            name: value
            for name, value in (
                (Area.ARCHIVE.value, args.archive_as),
                (Area.REJECTS.value, args.rejects_as),
            )
            if value
        }
        report = await relink_package(
            config.library.root,
            args.package,
            mount=args.mount_as,
            areas=_other_areas(config),
            area_mounts=spelled,
        )
    finally:
        await close_db()
    text = render_relink(report, args.format)
    if args.output is not None:
        _refuse_inside_library(args.output, config)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for entry in report.problems():
        print(
            f"{entry.status}: {entry.uuid} ({entry.local_proxy}): {entry.message}", file=sys.stderr
        )
    moved = sum(1 for e in report.entries if e.status == "moved")
    print(
        f"relink: {len(report.found())} of {len(report.entries)} original(s) found"
        f" ({moved} moved since the export), {len(report.problems())} not relinkable",
        file=sys.stderr,
    )
    return 0 if not report.problems() else 1


def _other_areas(config: Config) -> dict[str, Path]:
    """ARCHIVE / REJECTS roots kept on other volumes: as much the NAS as the library."""
    lib = config.library
    pairs = ((Area.ARCHIVE.value, lib.archive_root), (Area.REJECTS.value, lib.rejects_root))
    return {name: path for name, path in pairs if path is not None}


def _refuse_inside_library(path: Path, config: Config) -> None:
    from rush.offline import OfflineError, inside_library

    if inside_library(path, config.library.root, list(_other_areas(config).values())) is not None:
        raise OfflineError(f"{path} is inside the library: relink never writes to the NAS")


def _existing_database(config: Config) -> str:
    """The database URL, refusing to create an empty SQLite file where none was expected."""
    from rush.offline import OfflineError

    url = config.database_url()
    if url.startswith("sqlite://") and url != "sqlite://:memory:":
        path = Path(url.removeprefix("sqlite://"))
        if not path.is_file():
            raise OfflineError(
                f"no catalogue database at {path}: check --config (database.dsn, data_dir)"
            )
    return url
