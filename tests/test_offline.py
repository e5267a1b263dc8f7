"""Offline packages (docs/contract.md §9, workflow 11): export a bin, import it back through OTIO, relink by UUID.

Real ffmpeg proxies under `.derived/`, real databases (SQLite and PostgreSQL), real OTIO
adapters.  The library tree is hashed before and after: nothing on the NAS may change.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import opentimelineio as otio
import pytest

from rush.config import load_config
from rush.layout import derived_dir, init_library, read_marker, write_volume_marker
from rush.lifecycle import AssetState
from rush.media import Area, MediaKind
from rush.models import Asset, Bin, Derivative, Facts, PurgeAudit, Tag
from rush.offline import (
    ClipEntry,
    OfflineError,
    Selection,
    classify,
    export_selection,
    join_mount,
    local_media_name,
    parse_duration,
    parse_rate,
    parse_timecode,
    read_package,
    relink_package,
    render_relink,
)
from rush.storage import close_db, init_db
from tests import media_helpers as mh

DURATIONS = (1.0, 1.4, 2.0, 0.8, 1.2)
RATE = 25


@pytest.fixture(scope="module")
def proxy_sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Five real H.264 proxies of different durations, generated once per module."""
    out = tmp_path_factory.mktemp("proxies")
    files = []
    for i, dur in enumerate(DURATIONS):
        path = out / f"p{i}.mp4"
        mh.ffmpeg(
            "-f", "lavfi", "-i", f"testsrc=size=160x90:rate={RATE}:duration={dur}",
            "-f", "lavfi", "-i", f"sine=frequency={440 + 100 * i}:duration={dur}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        )  # fmt: skip
        files.append(path)
    return files


@dataclass
class Lib:
    root: Path
    assets: list[Asset]
    library_id: str


def tree_digest(root: Path) -> str:
    """Names, sizes, mtimes and contents of everything under root."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.stat()
        h.update(f"{rel}|{path.is_dir()}|{st.st_size}|{st.st_mtime_ns}|{st.st_mode}\n".encode())
        if path.is_file():
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


async def make_library(root: Path, proxies: list[Path], *, with_decisions: bool = False) -> Lib:
    """Five processed video assets in a bin, with proxies, facts and tags."""
    marker, _ = init_library(root)
    wedding = await Bin.create(name="wedding")
    assets = []
    for i, src in enumerate(proxies):
        rel = f"INBOX/2024-06 wedding/C000{i}.MP4"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"original camera file %d" % i)
        state = AssetState.PROCESSED
        extra = {}
        if with_decisions:
            state = AssetState.DECIDED_KEEP if i % 2 else AssetState.DECIDED_REJECT
            extra = {"decision": "KEEP" if i % 2 else "REJECT", "decided_by": "alice"}
        asset = await Asset.create(
            kind="video", rel_path=rel, path_key=rel, state=state, size=100, **extra
        )
        drel = f"{derived_dir(asset.id, 1)}/proxy.mp4"
        (root / drel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / drel)
        await Derivative.create(
            asset=asset, version=1, role="proxy", rel_path=drel, size=src.stat().st_size
        )
        await Derivative.create(
            asset=asset, version=1, role="thumb", rel_path=f"{derived_dir(asset.id, 1)}/t.jpg"
        )
        facts: dict[str, object] = {"duration": DURATIONS[i], "frame_rate": "25/1"}
        if i != 3:  # one asset without timecode: tolerated
            facts["timecode"] = f"01:0{i}:00:00"
        await Facts.create(asset=asset, version=1, data=facts)
        await Tag.create(asset=asset, name="ceremony" if i < 3 else "party")
        await wedding.assets.add(asset)
        assets.append(asset)
    return Lib(root=root, assets=assets, library_id=marker.library_id)


def _make_audio(path: Path) -> None:
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=0.6", str(path)]
    subprocess.run(cmd, check=True, timeout=60)


def _all_files(paths: Iterable[str]) -> bool:
    return all(Path(p).is_file() for p in paths)


def _path_of(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


async def test_bin_export_imports_back_through_otio(
    db: str, tmp_path: Path, proxy_sources: list[Path]
) -> None:
    lib = await make_library(tmp_path / "RUSHES_DB", proxy_sources)
    before = tree_digest(lib.root)
    dest = tmp_path / "laptop" / "wedding-offline"

    report = await export_selection(lib.root, Selection(bin="wedding"), dest)

    assert tree_digest(lib.root) == before, "the export wrote to the library"
    assert len(report.clips) == 5 and report.skipped == []
    by_uuid = {str(a.id): (a, i) for i, a in enumerate(lib.assets)}
    # The native OTIO file keeps the UUID, local proxy URLs and durations.
    timeline = otio.adapters.read_from_file(str(dest / "timeline.otio"))
    clips = list(timeline.find_clips())
    assert len(clips) == 5
    for clip in clips:
        uid = clip.metadata["rush"]["uuid"]
        asset, i = by_uuid[uid]
        local = _path_of(clip.media_reference.target_url)
        assert local.parent == dest / "proxies" and local.is_file()
        nas_proxy = lib.root / derived_dir(asset.id, 1) / "proxy.mp4"
        assert local.read_bytes() == nas_proxy.read_bytes()
        assert clip.source_range.duration == otio.opentime.RationalTime(
            round(DURATIONS[i] * RATE), RATE
        )
        assert clip.name == f"C000{i}.MP4"
        if i != 3:
            assert otio.opentime.to_timecode(clip.source_range.start_time, RATE) == (
                f"01:0{i}:00:00"
            )
        assert clip.metadata["rush"]["library_id"] == lib.library_id
    # FCP 7 XML (what Resolve imports as "Timeline > Import > XML") and the EDL.
    xml = otio.adapters.read_from_file(str(dest / "timeline.xml"))
    xml_clips = list(xml.find_clips())
    assert [_path_of(c.media_reference.target_url) for c in xml_clips] == [
        _path_of(c.media_reference.target_url) for c in clips
    ]
    assert [c.source_range.duration for c in xml_clips] == [c.source_range.duration for c in clips]
    comments = {c.metadata["fcp_xml"]["comments"]["mastercomment1"] for c in xml_clips}
    assert comments == {f"rush:{a.id}" for a in lib.assets}
    edl = otio.adapters.read_from_file(str(dest / "timeline.edl"), rate=RATE)
    edl_clips = list(edl.find_clips())
    assert [_path_of(c.media_reference.target_url) for c in edl_clips] == [
        _path_of(c.media_reference.target_url) for c in clips
    ]
    assert [c.source_range.duration for c in edl_clips] == [c.source_range.duration for c in clips]
    # CSV media list and manifest.
    with (dest / "media.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["uuid"] for r in rows} == set(by_uuid)
    for row in rows:
        asset, i = by_uuid[row["uuid"]]
        assert row["original_path"] == asset.rel_path
        assert (dest / row["proxy_path"]).is_file()
        assert float(row["duration_s"]) == pytest.approx(DURATIONS[i])
        assert row["tags"] == ("ceremony" if i < 3 else "party")
        assert row["timecode"] == ("" if i == 3 else f"01:0{i}:00:00")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["library_id"] == read_marker(lib.root).library_id
    assert {a["uuid"] for a in manifest["assets"]} == set(by_uuid)
    assert manifest["exported_at"]
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["manifest.json", "media.csv", "proxies", "timeline.otio", "timeline.xml", "timeline.edl"]
    )


async def test_relink_after_move_to_archive_finds_every_original(
    db: str, tmp_path: Path, proxy_sources: list[Path]
) -> None:
    lib = await make_library(tmp_path / "RUSHES_DB", proxy_sources)
    dest = tmp_path / "pkg"
    await export_selection(lib.root, Selection(bin="wedding"), dest)
    # Meanwhile the assets were archived: simulate the move (files and rows).
    for asset in lib.assets:
        new = asset.rel_path.replace("INBOX/", "ARCHIVE/", 1)
        (lib.root / new).parent.mkdir(parents=True, exist_ok=True)
        (lib.root / asset.rel_path).rename(lib.root / new)
        await Asset.filter(id=asset.id).update(
            rel_path=new, path_key=new, state=AssetState.ARCHIVED, area=Area.ARCHIVE
        )
    before = tree_digest(lib.root)

    report = await relink_package(lib.root, dest)

    assert tree_digest(lib.root) == before
    assert report.problems() == []
    assert {e.status for e in report.entries} == {"moved"}
    assert _all_files(e.original or "" for e in report.entries)
    for entry in report.entries:
        original = Path(entry.original or "")
        assert original.parent == lib.root / "ARCHIVE" / "2024-06 wedding"
        assert Path(entry.local_proxy).parent == dest / "proxies"
    as_json = json.loads(render_relink(report, "json"))
    assert {e["uuid"] for e in as_json["entries"]} == {str(a.id) for a in lib.assets}
    rows = list(csv.DictReader(render_relink(report, "csv").splitlines()))
    assert _all_files(r["original"] for r in rows) and _all_files(r["local_proxy"] for r in rows)
    edl_path = tmp_path / "relinked.edl"
    edl_path.write_text(render_relink(report, "edl"))
    relinked = list(otio.adapters.read_from_file(str(edl_path), rate=RATE).find_clips())
    assert sorted(_path_of(c.media_reference.target_url) for c in relinked) == sorted(
        Path(e.original or "") for e in report.entries
    )
    # The editing machine may see the share elsewhere.
    mounted = await relink_package(lib.root, dest, mount="/Volumes/RUSHES_DB")
    assert all(
        (e.original or "").startswith("/Volumes/RUSHES_DB/ARCHIVE/") for e in mounted.entries
    )


async def test_relink_finds_originals_on_an_archive_volume(
    db: str, tmp_path: Path, proxy_sources: list[Path]
) -> None:
    """`library.archive_root` keeps ARCHIVE on another volume: relink looks there, and
    spells it as the editing machine sees it (`--archive-as`)."""
    lib = await make_library(tmp_path / "RUSHES_DB", proxy_sources)
    dest = tmp_path / "pkg"
    await export_selection(lib.root, Selection(bin="wedding"), dest)
    volume = tmp_path / "vol2" / "ARCHIVE"
    for asset in lib.assets:
        new = asset.rel_path.replace("INBOX/", "ARCHIVE/", 1)
        target = volume / new.removeprefix("ARCHIVE/")
        target.parent.mkdir(parents=True, exist_ok=True)
        (lib.root / asset.rel_path).rename(target)
        await Asset.filter(id=asset.id).update(
            rel_path=new, path_key=new, state=AssetState.ARCHIVED, area=Area.ARCHIVE
        )

    # An ARCHIVE volume without its marker (unmounted, or never initialised) is refused:
    # every clip would look deleted.
    with pytest.raises(OfflineError, match="ARCHIVE volume not mounted or not initialised"):
        await relink_package(lib.root, dest, areas={"ARCHIVE": volume})
    write_volume_marker(volume, read_marker(lib.root).library_id, "ARCHIVE")
    here = await relink_package(lib.root, dest, areas={"ARCHIVE": volume})
    assert here.problems() == [] and {e.status for e in here.entries} == {"moved"}
    assert all(Path(e.original or "").parent == volume / "2024-06 wedding" for e in here.entries)
    assert _all_files(e.original or "" for e in here.entries)

    laptop = await relink_package(
        lib.root,
        dest,
        mount="/Volumes/RUSHES_DB",
        areas={"ARCHIVE": volume},
        area_mounts={"ARCHIVE": "/Volumes/ARCHIVE"},
    )
    assert all(
        (e.original or "").startswith("/Volumes/ARCHIVE/2024-06 wedding/") for e in laptop.entries
    )


async def test_relink_reports_purged_missing_and_unknown(
    db: str, tmp_path: Path, proxy_sources: list[Path]
) -> None:
    lib = await make_library(tmp_path / "RUSHES_DB", proxy_sources)
    dest = tmp_path / "pkg"
    await export_selection(lib.root, Selection(bin="wedding"), dest)
    purged, missing, gone, vanished = lib.assets[0], lib.assets[1], lib.assets[2], lib.assets[3]
    (lib.root / purged.rel_path).unlink()
    await Asset.filter(id=purged.id).update(path_key=None, state=AssetState.PURGED)
    await PurgeAudit.create(
        asset_id=purged.id, rel_path="REJECTS/2024-06 wedding/C0000.MP4", kind="video", actor="bob"
    )
    (lib.root / missing.rel_path).unlink()
    await Asset.filter(id=missing.id).update(missing=True)
    await Asset.filter(id=gone.id).delete()
    (lib.root / vanished.rel_path).unlink()  # not yet noticed by a scan

    report = await relink_package(lib.root, dest)

    status = {e.uuid: e for e in report.entries}
    assert status[str(purged.id)].status == "purged"
    assert "REJECTS/2024-06 wedding/C0000.MP4" in status[str(purged.id)].message
    assert status[str(missing.id)].status == "missing"
    assert status[str(gone.id)].status == "unknown"
    assert status[str(vanished.id)].status == "missing"
    assert status[str(lib.assets[4].id)].status == "ok"
    assert [e.uuid for e in report.found()] == [str(lib.assets[4].id)]
    assert all(e.original is None and e.message for e in report.problems())
    # Another library's marker: refused with a clear message.
    (lib.root / ".rushes_db").write_text(json.dumps({"library_id": "other", "version": 1}))
    with pytest.raises(OfflineError, match="comes from library"):
        await relink_package(lib.root, dest)


DECISION_WORDS = ("KEEP", "REJECT", "DECIDED", "decision", "decided", "alice", "PROCESSED")


async def test_package_never_carries_decision_data(
    db: str, tmp_path: Path, proxy_sources: list[Path]
) -> None:
    lib = await make_library(tmp_path / "RUSHES_DB", proxy_sources, with_decisions=True)
    dest = tmp_path / "pkg"
    report = await export_selection(
        lib.root, Selection(states=(AssetState.DECIDED_KEEP,), folder="INBOX/2024-06 wedding"), dest
    )
    assert {c.uuid for c in report.clips} == {str(a.id) for a in lib.assets[1::2]}
    for path in dest.rglob("*"):
        if path.is_file() and path.parent.name != "proxies":
            text = path.read_text(encoding="utf-8")
            for word in DECISION_WORDS:
                assert word not in text, f"{path.name} mentions {word!r}"
    assert json.loads((dest / "manifest.json").read_text())["selection"]["state_filter"] is True


async def test_filters_and_skips(db: str, tmp_path: Path, proxy_sources: list[Path]) -> None:
    lib = await make_library(tmp_path / "RUSHES_DB", proxy_sources)
    ids = [str(a.id) for a in lib.assets]
    unprocessed = await Asset.create(
        kind="video", rel_path="INBOX/later/new.mp4", path_key="INBOX/later/new.mp4"
    )
    await Tag.create(asset=unprocessed, name="party")
    hostile = await Asset.create(kind="video", rel_path="INBOX/x/h.mp4", path_key="INBOX/x/h.mp4")
    await Derivative.create(asset=hostile, version=1, role="proxy", rel_path="../../etc/passwd")
    await Tag.create(asset=hostile, name="party")
    thumb_only = await Asset.create(
        kind="video", rel_path="INBOX/x/t.mp4", path_key="INBOX/x/t.mp4"
    )
    await Derivative.create(asset=thumb_only, version=1, role="thumb", rel_path=".derived/t.jpg")
    await Tag.create(asset=thumb_only, name="party")

    r1 = await export_selection(lib.root, Selection(tags=("party",)), tmp_path / "p1")
    assert {c.uuid for c in r1.clips} == set(ids[3:])
    reasons = {s[0]: s[2] for s in r1.skipped}
    assert reasons[str(unprocessed.id)] == "no proxy yet (not processed)"
    assert "unsafe derivative path" in reasons[str(hostile.id)]
    assert reasons[str(thumb_only.id)] == "no proxy yet (not processed)"
    manifest = json.loads((tmp_path / "p1" / "manifest.json").read_text())
    assert {s["uuid"] for s in manifest["skipped"]} == {
        str(unprocessed.id),
        str(hostile.id),
        str(thumb_only.id),
    }
    r2 = await export_selection(
        lib.root, Selection(uuids=(lib.assets[0].id, lib.assets[4].id)), tmp_path / "p2"
    )
    assert {c.uuid for c in r2.clips} == {ids[0], ids[4]}
    r3 = await export_selection(
        lib.root, Selection(tags=("ceremony",), bin="wedding", folder="INBOX/"), tmp_path / "p3"
    )
    assert {c.uuid for c in r3.clips} == set(ids[:3])

    r5 = await export_selection(
        lib.root, Selection(uuids=(lib.assets[0].id,)), tmp_path / "p5", package_as="Z:\\off\\p5"
    )
    (clip,) = otio.adapters.read_from_file(str(tmp_path / "p5" / "timeline.otio")).find_clips()
    assert clip.media_reference.target_url == f"file:///Z:/off/p5/{r5.clips[0].proxy_path}"
    with pytest.raises(OfflineError, match="empty selection"):
        await export_selection(lib.root, Selection(), tmp_path / "p4")
    with pytest.raises(OfflineError, match="no bin named"):
        await export_selection(lib.root, Selection(bin="nope"), tmp_path / "p4")
    with pytest.raises(OfflineError, match="matches no asset"):
        await export_selection(lib.root, Selection(kinds=(MediaKind.PHOTO,)), tmp_path / "p4")
    with pytest.raises(OfflineError, match="inside the library"):
        await export_selection(lib.root, Selection(bin="wedding"), lib.root / "EXPORTS" / "off")
    with pytest.raises(OfflineError, match="not an empty folder"):
        await export_selection(lib.root, Selection(bin="wedding"), tmp_path / "p1")
    with pytest.raises(OfflineError, match="leaves the library"):
        await export_selection(lib.root, Selection(folder="../etc"), tmp_path / "p6")
    assert not (lib.root / "EXPORTS" / "off").exists()


# ----------------------------------------------------------------------- command line


def _cli(argv: list[str]) -> int:
    """Run one of this module's commands through its real argparse registration."""
    from rush.cli import _common
    from rush.cli import export as export_cli

    parser = argparse.ArgumentParser(prog="rush")
    export_cli.register(parser.add_subparsers(dest="command", required=True), _common)
    args = parser.parse_args(argv)
    config = load_config(args.config, environ={})
    return int(args.func(args, config))


def test_cli_export_then_relink(
    db_url: str, tmp_path: Path, proxy_sources: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "RUSHES_DB"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[library]\nroot = "{root}"\n[database]\ndsn = "{db_url}"\n')

    async def seed() -> Lib:
        await init_db(db_url)
        try:
            return await make_library(root, proxy_sources)
        finally:
            await close_db()

    lib = asyncio.run(seed())
    dest = tmp_path / "out"
    code = _cli(["export-selection", "--config", str(cfg), "--bin", "wedding", "--to", str(dest)])
    assert code == 0
    assert "exported 5 clip(s)" in capsys.readouterr().out
    assert len(read_package(dest).clips) == 5
    mapping = tmp_path / "relink.json"
    assert (
        _cli(["relink", "--config", str(cfg), str(dest), "--format", "json", "-o", str(mapping)])
        == 0
    )
    entries = json.loads(mapping.read_text())["entries"]
    assert {e["uuid"] for e in entries} == {str(a.id) for a in lib.assets}
    assert all(e["status"] == "ok" for e in entries)
    # A bad package and a package dir inside the library are clear errors (exit 2).
    assert _cli(["relink", "--config", str(cfg), str(tmp_path)]) == 2
    assert "not an offline package" in capsys.readouterr().err
    code = _cli(
        ["export-selection", "--config", str(cfg), "--bin", "wedding", "--to", str(root / "x")]
    )
    assert code == 2
    assert "inside the library" in capsys.readouterr().err
    nodb = tmp_path / "nodb.toml"
    nodb.write_text(f'data_dir = "{tmp_path / "nowhere"}"\n[library]\nroot = "{root}"\n')
    assert _cli(["export-selection", "--config", str(nodb), "--bin", "w", "--to", str(dest)]) == 2
    assert "no catalogue database" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()
    # ARCHIVE kept on another volume is as much the NAS as the library root: neither a
    # package nor a relink mapping is ever written there (an -o onto a clip would
    # overwrite it).
    archive = tmp_path / "vol2" / "ARCHIVE"
    archive.mkdir(parents=True)
    clip = archive / "kept.mp4"
    clip.write_bytes(b"irreplaceable")
    split = tmp_path / "split.toml"
    split.write_text(
        f'[library]\nroot = "{root}"\narchive_root = "{archive}"\n[database]\ndsn = "{db_url}"\n'
    )
    assert _cli(["relink", "--config", str(split), str(dest), "-o", str(clip)]) == 2
    assert "inside the library" in capsys.readouterr().err
    assert clip.read_bytes() == b"irreplaceable"
    code = _cli(
        ["export-selection", "--config", str(split), "--bin", "w", "--to", str(archive / "x")]
    )
    assert code == 2 and "inside the library" in capsys.readouterr().err
    assert not (archive / "x").exists()


# ----------------------------------------------------------------------- pure helpers


def test_parsers_tolerate_absent_and_odd_values() -> None:
    assert parse_rate("30000/1001") == pytest.approx(29.97, abs=0.001)
    assert parse_rate(25) == 25.0 and parse_rate("25") == 25.0
    assert parse_rate(29.97) == 30000 / 1001 and parse_rate(23.976) == 24000 / 1001
    assert parse_rate(12.5) == 12.5
    assert parse_rate(None) is None and parse_rate("x") is None and parse_rate("1/0") is None
    assert parse_rate(True) is None and parse_rate(-3) is None
    assert parse_duration("12.5") == 12.5 and parse_duration(None) is None
    assert parse_duration(0) is None and parse_duration("nan?") is None
    tc = parse_timecode("01:00:00:10", 25.0)
    assert tc == otio.opentime.RationalTime(90010, 25)
    assert parse_timecode("garbage", 25.0) is None and parse_timecode(None, 25.0) is None


def test_local_names_are_flat_unique_and_safe() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    name = local_media_name(a, "INBOX/x/C0001.MP4", ".derived/u/v1/proxy.mp4")
    assert name == f"C0001_{a.hex[:8]}.mp4"
    assert local_media_name(b, "INBOX/x/C0001.MP4", ".derived/u/v1/proxy.mp4") != name
    odd = local_media_name(a, "INBOX/y/we ird:name?.mov", ".derived/u/v1/p.MP4")
    assert "/" not in odd and ":" not in odd and odd.endswith(".mp4")


def _clip(uid: str, path: str = "INBOX/a.mp4") -> ClipEntry:
    return ClipEntry(uid, "video", path, "proxies/a.mp4", "proxy", 1.0, 25.0)


def test_classify_covers_every_case() -> None:
    c = _clip("u1")
    kw = {"local_proxy": "/l/a.mp4", "mount": "/mnt/lib"}
    assert classify(c, current=None, purged=None, **kw).status == "unknown"
    e = classify(c, current=None, purged=("2026-01-01", "REJECTS/a.mp4"), **kw)
    assert (e.status, e.original) == ("purged", None) and "REJECTS/a.mp4" in e.message
    assert classify(c, current=("PURGED", None, False, False), purged=None, **kw).status == "purged"
    assert classify(
        c, current=("PROCESSED", "INBOX/a.mp4", True, True), purged=None, **kw
    ).status == ("missing")
    assert classify(
        c, current=("PROCESSED", "INBOX/a.mp4", False, False), purged=None, **kw
    ).status == ("missing")
    ok = classify(c, current=("PROCESSED", "INBOX/a.mp4", False, True), purged=None, **kw)
    assert (ok.status, ok.original) == ("ok", "/mnt/lib/INBOX/a.mp4")
    moved = classify(c, current=("ARCHIVED", "ARCHIVE/a.mp4", False, True), purged=None, **kw)
    assert (moved.status, moved.original) == ("moved", "/mnt/lib/ARCHIVE/a.mp4")


def test_join_mount_speaks_the_editing_machines_paths() -> None:
    assert (
        join_mount("/Volumes/RUSHES_DB", "ARCHIVE/x/a.mp4") == "/Volumes/RUSHES_DB/ARCHIVE/x/a.mp4"
    )
    assert join_mount("Z:\\", "ARCHIVE/x/a.mp4") == "Z:\\ARCHIVE\\x\\a.mp4"


async def test_photo_and_audio_assets(db: str, tmp_path: Path) -> None:
    """A photo uses its poster as a 5 s still on V1; audio goes to A1, timed by ffprobe."""
    from PIL import Image

    root = tmp_path / "RUSHES_DB"
    init_library(root)
    photo = await Asset.create(
        kind="photo", rel_path="INBOX/p/IMG_1.HEIC", path_key="INBOX/p/IMG_1.HEIC"
    )
    audio = await Asset.create(
        kind="audio", rel_path="INBOX/a/ZOOM1.WAV", path_key="INBOX/a/ZOOM1.WAV"
    )
    poster = f"{derived_dir(photo.id, 1)}/poster.jpg"
    (root / poster).parent.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 30, 30)).save(root / poster)
    await Derivative.create(asset=photo, version=1, role="poster", rel_path=poster)
    await Derivative.create(asset=photo, version=1, role="thumb", rel_path=f"{poster}.t.jpg")
    aproxy = f"{derived_dir(audio.id, 1)}/proxy.m4a"
    (root / aproxy).parent.mkdir(parents=True)
    await asyncio.to_thread(_make_audio, root / aproxy)
    await Derivative.create(asset=audio, version=1, role="proxy", rel_path=aproxy)
    await Facts.create(asset=audio, version=1, data={"codec": "pcm_s24le"})  # no duration

    dest = tmp_path / "pkg"
    report = await export_selection(root, Selection(uuids=(photo.id, audio.id)), dest)

    assert "timeline-A1.edl" in report.files and "timeline.edl" in report.files
    edl_audio = otio.adapters.read_from_file(str(dest / "timeline-A1.edl"), rate=25)
    assert [_path_of(c.media_reference.target_url).suffix for c in edl_audio.find_clips()] == [
        ".m4a"
    ]
    timeline = otio.adapters.read_from_file(str(dest / "timeline.otio"))
    v1, a1 = timeline.tracks[0], timeline.tracks[1]
    assert a1.kind == otio.schema.TrackKind.Audio
    (still,) = list(v1.find_clips())
    (sound,) = list(a1.find_clips())
    assert still.metadata["rush"]["uuid"] == str(photo.id)
    assert still.source_range.duration.to_seconds() == pytest.approx(5.0)
    assert _path_of(still.media_reference.target_url).suffix == ".jpg"
    assert sound.metadata["rush"]["uuid"] == str(audio.id)
    assert sound.source_range.duration.to_seconds() == pytest.approx(0.6, abs=0.1)
    roles = {
        a["uuid"]: a["proxy_role"]
        for a in json.loads((dest / "manifest.json").read_text())["assets"]
    }
    assert roles == {str(photo.id): "poster", str(audio.id): "proxy"}


async def test_odd_frame_rates_never_lose_the_package(
    db: str, tmp_path: Path, proxy_sources: list[Path]
) -> None:
    """29.97 drop-frame and a 12.5 fps clip: FCP XML cannot express 12.5 fps, the rest is written."""
    root = tmp_path / "RUSHES_DB"
    init_library(root)
    ids = []
    for name, facts in (
        ("ntsc.mp4", {"duration": 2.0, "frame_rate": "29.97", "timecode": "01:00:00;02"}),
        ("slow.mp4", {"duration": 2.0, "frame_rate": 12.5, "timecode": "00:00:10:00"}),
    ):
        asset = await Asset.create(kind="video", rel_path=f"INBOX/{name}", path_key=f"INBOX/{name}")
        drel = f"{derived_dir(asset.id, 1)}/proxy.mp4"
        (root / drel).parent.mkdir(parents=True)
        shutil.copyfile(proxy_sources[0], root / drel)
        await Derivative.create(asset=asset, version=1, role="proxy", rel_path=drel)
        await Facts.create(asset=asset, version=1, data=facts)
        ids.append(asset.id)
    dest = tmp_path / "pkg"

    report = await export_selection(root, Selection(uuids=tuple(ids)), dest)

    assert len(report.clips) == 2
    assert "timeline.xml" not in report.files and not (dest / "timeline.xml").exists()
    assert [w.split()[0] for w in report.warnings] == ["timeline.xml"]
    assert json.loads((dest / "manifest.json").read_text())["warnings"] == report.warnings
    assert {"timeline.otio", "timeline.edl", "media.csv"} <= set(report.files)
    clips = {
        c.metadata["rush"]["uuid"]: c
        for c in otio.adapters.read_from_file(str(dest / "timeline.otio")).find_clips()
    }
    ntsc = clips[str(ids[0])].source_range
    assert ntsc.start_time.rate == pytest.approx(30000 / 1001)
    assert otio.opentime.to_timecode(ntsc.start_time, ntsc.start_time.rate, True) == "01:00:00;02"
    assert clips[str(ids[1])].source_range.duration == otio.opentime.RationalTime(25, 12.5)


async def test_package_has_an_xmp_per_clip(
    db: str, tmp_path: Path, proxy_sources: list[Path]
) -> None:
    from rush import decisions
    from rush.metadata import xmp

    lib = await make_library(tmp_path / "RUSHES_DB", proxy_sources, with_decisions=True)
    keep = lib.assets[1]
    await decisions.set_fields(keep.id, {"rating": 4, "people": ["Anna"]}, "t")
    await decisions.add_tag(keep.id, "ceremony", "t")
    plain = await export_selection(lib.root, Selection(uuids=(keep.id,)), tmp_path / "a")
    side = (tmp_path / "a" / plain.clips[0].proxy_path).with_suffix(".xmp")
    read = xmp.parse(side.read_bytes())
    assert read.rating == 4 and {"ceremony", "Anna"} <= set(read.keywords)
    assert read.label is None and str(keep.id) in side.read_text()  # no decision by default
    labelled = await export_selection(
        lib.root, Selection(uuids=(keep.id,)), tmp_path / "b", xmp_decisions=True
    )
    side = (tmp_path / "b" / labelled.clips[0].proxy_path).with_suffix(".xmp")
    assert xmp.parse(side.read_bytes()).label == "Keep"
