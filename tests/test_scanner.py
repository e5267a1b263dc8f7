"""The scanner (docs/contract.md §9, workflow 1) against real files and both database backends."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.scanner import Scanner
from rush import events
from rush.config import Config
from rush.fswalk import walk_find, walk_scandir
from rush.layout import init_library, path_from_db, resolve
from rush.lifecycle import AssetState, Trigger
from rush.models import Asset, AssetEvent, PathChange, Sidecar
from rush.transitions import transition
from tests.conftest import REPO_ROOT, rush_env
from tests.support.environment import unavailable

S = AssetState
OLD = time.time() - 3600


def make_config(tmp_path: Path, root: Path, **scanner: object) -> Config:
    return Config.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "library": {"root": str(root)},
            "scanner": {"stable_after_s": 0, **scanner},
        }
    )


def put(root: Path, rel: str | bytes, data: bytes = b"x", mtime: float | None = OLD) -> Path:
    path = Path(os.fsdecode(os.path.join(os.fsencode(root), os.fsencode(rel))))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def snapshot(root: Path) -> dict[bytes, tuple[int, int, int, str]]:
    """Every entry under root with mode, size, mtime and content hash (read-only check)."""
    out: dict[bytes, tuple[int, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = ""
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            out[path] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    init_library(root)
    return root


async def states() -> dict[str, tuple[str, bool]]:
    return {a.rel_path: (a.state.value, a.missing) for a in await Asset.all()}


async def test_discovered_then_ready_with_sidecars(db: str, tmp_path: Path, lib: Path) -> None:
    put(lib, "INBOX/day 1/clip.mp4", b"video")
    put(lib, "INBOX/day 1/clip.xmp", b"<xmp/>")
    put(lib, "INBOX/day 1/clip.mp4.srt", b"1")
    put(lib, "INBOX/day 1/clip.wav", b"scratch audio")
    put(lib, "INBOX/photo.JPG", b"jpeg")
    put(lib, "INBOX/notes.txt", b"not media")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    before = snapshot(lib)

    first = await scanner.scan_once()
    assert (first.new, first.ready, first.sidecars_added) == (2, 0, 3)
    assert await states() == {
        "INBOX/day 1/clip.mp4": ("DISCOVERED", False),
        "INBOX/photo.JPG": ("DISCOVERED", False),
    }
    clip = await Asset.get(rel_path="INBOX/day 1/clip.mp4")
    assert (clip.kind.value, clip.size, clip.area.value) == ("video", 5, "INBOX")
    assert clip.path_key == clip.rel_path
    assert sorted(s.rel_path for s in await Sidecar.filter(asset=clip)) == [
        "INBOX/day 1/clip.mp4.srt",
        "INBOX/day 1/clip.wav",
        "INBOX/day 1/clip.xmp",
    ]

    second = await scanner.scan_once()
    assert (second.new, second.ready) == (0, 2)
    assert {v[0] for v in (await states()).values()} == {"READY"}
    events_ = await AssetEvent.filter(asset_id=clip.id)
    assert [(e.from_state, e.to_state, e.trigger, e.actor) for e in events_] == [
        ("DISCOVERED", "READY", "stable", "scanner")
    ]

    third = await scanner.scan_once()
    assert third.changes() == 0
    assert snapshot(lib) == before, "the scanner must never write to the library"


async def test_young_files_wait_for_stable_after(db: str, tmp_path: Path, lib: Path) -> None:
    now = time.time()
    path = put(lib, "INBOX/fresh.mov", b"abc", mtime=now)
    scanner = Scanner(make_config(tmp_path, lib, stable_after_s=330), bus=events.EventBus())
    await scanner.scan_once()
    report = await scanner.scan_once()
    assert report.ready == 0
    asset = await Asset.get(rel_path="INBOX/fresh.mov")
    assert (asset.state, asset.stable_scans) == (S.DISCOVERED, 2)
    os.utime(path, (now - 400, now - 400))
    # The mtime moved, so this is a change: the two-scan count starts again.
    assert (await scanner.scan_once()).ready == 0
    assert (await scanner.scan_once()).ready == 1


async def test_growing_file_never_ready(db: str, tmp_path: Path, lib: Path) -> None:
    path = put(lib, "INBOX/upload.mp4", b"a")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    for i in range(3):
        with path.open("ab") as fh:
            fh.write(b"more" * (i + 1))
        os.utime(path, (OLD, OLD))
        report = await scanner.scan_once()
        assert report.ready == 0
    asset = await Asset.get(rel_path="INBOX/upload.mp4")
    assert (asset.state, asset.size, asset.stable_scans) == (S.DISCOVERED, path.stat().st_size, 1)


async def test_ready_file_that_changes_goes_back(db: str, tmp_path: Path, lib: Path) -> None:
    path = put(lib, "INBOX/a.mp4", b"1234")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()
    await scanner.scan_once()
    put(lib, "INBOX/a.mp4", b"12")  # shrinks
    report = await scanner.scan_once()
    assert report.changed == 1
    asset = await Asset.get(rel_path="INBOX/a.mp4")
    assert (asset.state, asset.size, asset.stable_scans) == (S.DISCOVERED, 2, 1)
    last = await AssetEvent.filter(asset_id=asset.id).order_by("-id").first()
    assert last is not None and (last.to_state, last.trigger) == ("DISCOVERED", "changed")
    # Replaced by another file of the same size: mtime differs, still a change.
    os.utime(path, (OLD + 10, OLD + 10))
    assert (await scanner.scan_once()).updated == 1
    assert (await scanner.scan_once()).ready == 1


async def test_processed_file_changes_keep_state(
    db: str, tmp_path: Path, lib: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put(lib, "INBOX/a.mp4", b"1234")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()
    await scanner.scan_once()
    asset = await Asset.get(rel_path="INBOX/a.mp4")
    await transition(asset.id, S.READY, S.PROCESSING_REVIEW, "claim", "agent")  # type: ignore[arg-type]
    await transition(asset.id, S.PROCESSING_REVIEW, S.PROCESSED, "processed", "agent")  # type: ignore[arg-type]
    # Touched, same bytes: the facts follow, the state stays.
    os.utime(lib / "INBOX/a.mp4", (1_700_000_000, 1_700_000_000))
    report = await scanner.scan_once()
    assert report.updated == 1 and report.content_changed == 0
    await asset.refresh_from_db()
    assert asset.state is S.PROCESSED and asset.sample_hash is not None
    # Other bytes: its processing was about another file, so it starts again.
    put(lib, "INBOX/a.mp4", b"123456")
    report = await scanner.scan_once()
    assert report.content_changed == 1 and report.changed == 0
    assert "content changed on disk" in caplog.text
    await asset.refresh_from_db()
    assert (asset.state, asset.size, asset.version) == (S.DISCOVERED, 6, 2)


async def test_decided_file_changed_in_place_is_reviewed_again_without_its_decision(
    db: str, tmp_path: Path, lib: Path
) -> None:
    from rush.actions import restore_decision_after_processing
    from rush.models import AssetEvent

    put(lib, "INBOX/card/C0001.MP4", b"first clip " * 100)
    config = make_config(tmp_path, lib)
    scanner = Scanner(config, bus=events.EventBus())
    await scanner.scan_once()
    await scanner.scan_once()
    asset = await Asset.get(rel_path="INBOX/card/C0001.MP4")
    first_sample = asset.sample_hash
    assert asset.state is S.READY and first_sample and asset.hash_algo == "blake3"
    for src, dst, trig in (
        (S.READY, S.PROCESSING_REVIEW, "claim"),
        (S.PROCESSING_REVIEW, S.PROCESSED, "processed"),
        (S.PROCESSED, S.DECIDED_REJECT, "decide_reject"),
    ):
        await transition(asset.id, src, dst, trig, "alice")  # type: ignore[arg-type]
    # Another card dumped over it: same name, same size, other bytes (its own mtime).
    put(lib, "INBOX/card/C0001.MP4", b"other clip " * 100, mtime=OLD + 100)
    report = await scanner.scan_once()
    assert report.content_changed == 1
    await asset.refresh_from_db()
    assert (asset.state, asset.decision, asset.previous_decision) == (
        S.DISCOVERED,
        None,
        "REJECT",
    )
    assert asset.sample_hash != first_sample
    ev = await AssetEvent.filter(asset_id=asset.id).order_by("-id").first()
    assert ev is not None and ev.trigger == "content_changed"
    assert "previous decision REJECT is shown, not applied" in (ev.reason or "")
    # Processed again, it waits for a human: the old decision is not restored.
    await scanner.scan_once()
    await asset.refresh_from_db()
    assert asset.state is S.READY
    await transition(asset.id, S.READY, S.PROCESSING_REVIEW, "claim", "agent")  # type: ignore[arg-type]
    await transition(asset.id, S.PROCESSING_REVIEW, S.PROCESSED, "processed", "agent")  # type: ignore[arg-type]
    assert await restore_decision_after_processing(asset.id) is None
    assert (await Asset.get(id=asset.id)).state is S.PROCESSED


async def test_other_bytes_at_a_missing_decided_path_are_a_new_asset(
    db: str, tmp_path: Path, lib: Path
) -> None:
    put(lib, "INBOX/card/C0001.MP4", b"first clip " * 100)
    put(lib, "INBOX/keep/other.mp4", b"x")
    config = make_config(tmp_path, lib).model_copy(deep=True)
    config.scanner.min_present_ratio = 0
    scanner = Scanner(config, bus=events.EventBus())
    await scanner.scan_once()
    await scanner.scan_once()
    old = await Asset.get(rel_path="INBOX/card/C0001.MP4")
    for src, dst, trig in (
        (S.READY, S.PROCESSING_REVIEW, "claim"),
        (S.PROCESSING_REVIEW, S.PROCESSED, "processed"),
        (S.PROCESSED, S.DECIDED_REJECT, "decide_reject"),
    ):
        await transition(old.id, src, dst, trig, "alice")  # type: ignore[arg-type]
    (lib / "INBOX/card/C0001.MP4").unlink()
    assert (await scanner.scan_once()).missing == 1
    put(lib, "INBOX/card/C0001.MP4", b"other clip " * 100)  # same name and size
    report = await scanner.scan_once()
    assert report.new == 1 and report.reappeared == 0
    new = await Asset.get(path_key="INBOX/card/C0001.MP4")
    assert new.id != old.id and new.state is S.DISCOVERED and new.decision is None
    await old.refresh_from_db()
    assert old.missing and old.state is S.DECIDED_REJECT and old.path_key is None
    # Its own bytes turning up elsewhere in INBOX: it is that asset again, moved.
    put(lib, "INBOX/found/C0001.MP4", b"first clip " * 100)
    report = await scanner.scan_once()
    assert report.moved == 1 and report.new == 0
    await old.refresh_from_db()
    assert (old.rel_path, old.path_key, old.missing) == (
        "INBOX/found/C0001.MP4",
        "INBOX/found/C0001.MP4",
        False,
    )


async def test_sidecars_follow_the_disk(db: str, tmp_path: Path, lib: Path) -> None:
    put(lib, "INBOX/c.mp4", b"v")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()
    asset = await Asset.get(rel_path="INBOX/c.mp4")
    put(lib, "INBOX/c.srt", b"subs")
    put(lib, "INBOX/c.thm", b"thumb")
    report = await scanner.scan_once()
    assert (report.sidecars_added, report.new) == (2, 0)
    (lib / "INBOX/c.thm").unlink()
    put(lib, "INBOX/c.srt", b"longer subs")
    report = await scanner.scan_once()
    assert report.sidecars_removed == 1
    rows = await Sidecar.filter(asset=asset)
    assert [(s.rel_path, s.size) for s in rows] == [("INBOX/c.srt", 11)]
    assert await Asset.all().count() == 1


async def test_known_asset_stays_an_asset(db: str, tmp_path: Path, lib: Path) -> None:
    """An audio file recorded first stays an asset when a video of the same name arrives."""
    put(lib, "INBOX/take.wav", b"audio")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()
    put(lib, "INBOX/take.mp4", b"video")
    put(lib, "INBOX/take.xmp", b"meta")
    await scanner.scan_once()
    assets = {a.rel_path: a for a in await Asset.all()}
    assert set(assets) == {"INBOX/take.wav", "INBOX/take.mp4"}
    sidecars = await Sidecar.all().values_list("rel_path", flat=True)
    assert sidecars == ["INBOX/take.xmp"]


async def test_missing_is_flagged_kept_and_matched_back(db: str, tmp_path: Path, lib: Path) -> None:
    for i in range(4):
        put(lib, f"INBOX/f{i}.mp4", bytes(10 + i))
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()
    await scanner.scan_once()
    gone = await Asset.get(rel_path="INBOX/f0.mp4")
    data = (lib / "INBOX/f0.mp4").read_bytes()
    (lib / "INBOX/f0.mp4").unlink()
    report = await scanner.scan_once()
    assert report.missing == 1
    await gone.refresh_from_db()
    assert gone.missing and gone.missing_since is not None and gone.state is S.READY
    assert (await scanner.scan_once()).missing == 0, "flagged once, not every pass"

    put(lib, "INBOX/f0.mp4", data)
    report = await scanner.scan_once()
    assert (report.reappeared, report.new) == (1, 0)
    await gone.refresh_from_db()
    assert not gone.missing and gone.missing_since is None

    # Moved elsewhere in INBOX (same name and size): the same UUID, path updated.
    os.rename(lib / "INBOX/f1.mp4", put(lib, "INBOX/sub/dir/keep").parent / "f1.mp4")
    report = await scanner.scan_once()
    assert (report.moved, report.new, report.missing) == (1, 0, 0)
    moved = await Asset.get(rel_path="INBOX/sub/dir/f1.mp4")
    assert moved.path_key == "INBOX/sub/dir/f1.mp4" and not moved.missing
    change = await PathChange.get(asset_id=moved.id)
    assert (change.old_path, change.new_path) == ("INBOX/f1.mp4", "INBOX/sub/dir/f1.mp4")
    assert await Asset.all().count() == 4


async def test_same_name_different_size_is_new(db: str, tmp_path: Path, lib: Path) -> None:
    for i in range(3):
        put(lib, f"INBOX/k{i}.mp4", b"abc")
    put(lib, "INBOX/a/x.mp4", b"12345")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()
    (lib / "INBOX/a/x.mp4").unlink()
    await scanner.scan_once()
    put(lib, "INBOX/b/x.mp4", b"123")
    report = await scanner.scan_once()
    assert (report.new, report.moved) == (1, 0)
    assert (await Asset.get(rel_path="INBOX/a/x.mp4")).missing


async def test_unmounted_or_empty_root_skips_the_pass(
    db: str, tmp_path: Path, lib: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(5):
        put(lib, f"INBOX/f{i}.mp4")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()

    marker = lib / ".rushes_db"
    saved = marker.read_bytes()
    marker.unlink()
    report = await scanner.scan_once()
    assert report.skipped_reason and ".rushes_db" in report.skipped_reason
    assert "scan skipped" in caplog.text
    marker.write_bytes(saved)

    hidden = tmp_path / "elsewhere"
    shutil.move(lib / "INBOX", hidden)
    report = await scanner.scan_once()
    assert report.skipped_reason and "INBOX" in report.skipped_reason

    (lib / "INBOX").mkdir()  # an empty INBOX, as when a share half-mounts
    report = await scanner.scan_once()
    assert report.skipped_reason and "min_present_ratio" in report.skipped_reason

    shutil.rmtree(lib / "INBOX")
    shutil.move(hidden, lib / "INBOX")
    os.rename(lib, tmp_path / "gone")
    report = await scanner.scan_once()
    assert report.skipped_reason and "does not exist" in report.skipped_reason
    assert await Asset.filter(missing=True).count() == 0
    assert await Asset.all().count() == 5


async def test_archive_checked_for_presence_only(db: str, tmp_path: Path, lib: Path) -> None:
    put(lib, "ARCHIVE/old/untracked.mp4")
    for i in range(3):
        put(lib, f"INBOX/f{i}.mp4")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    report = await scanner.scan_once()
    assert (report.new, report.untracked) == (3, 1)
    # Assets the batch apply moved to ARCHIVE earlier.
    archived = []
    for i in range(3):
        rel = f"ARCHIVE/2024/kept{i}.mp4"
        archived.append(
            await Asset.create(
                kind="video",
                area="ARCHIVE",
                rel_path=rel,
                path_key=rel,
                state=S.ARCHIVED,
                size=1,
                mtime=OLD,
            )
        )
        put(lib, rel)
    report = await scanner.scan_once()
    assert (report.new, report.missing, report.untracked) == (0, 0, 1)
    (lib / "ARCHIVE/2024/kept0.mp4").unlink()
    report = await scanner.scan_once()
    assert report.missing == 1
    await archived[0].refresh_from_db()
    assert archived[0].missing and archived[0].state is S.ARCHIVED
    # The ARCHIVE volume gone empty (unmounted mount point): nothing more is flagged.
    for i in (1, 2):
        (lib / f"ARCHIVE/2024/kept{i}.mp4").unlink()
    report = await scanner.scan_once()
    assert report.skipped_reason and "in ARCHIVE" in report.skipped_reason
    assert await Asset.filter(missing=True).count() == 1


async def test_batch_owned_assets_are_never_flagged(db: str, tmp_path: Path, lib: Path) -> None:
    for i in range(6):
        put(lib, f"INBOX/f{i}.mp4")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()
    batch = uuid.uuid4()
    a0 = await Asset.get(rel_path="INBOX/f0.mp4")
    await Asset.filter(id=a0.id).update(state=S.MOVE_QUEUED, updated_at=_now())
    a1 = await Asset.get(rel_path="INBOX/f1.mp4")
    await Asset.filter(id=a1.id).update(batch_id=batch, updated_at=_now())
    (lib / "INBOX/f0.mp4").unlink()
    (lib / "INBOX/f1.mp4").unlink()
    report = await scanner.scan_once()
    assert report.missing == 0
    assert await Asset.filter(missing=True).count() == 0


async def test_concurrent_path_rewrite_is_seen(db: str, tmp_path: Path, lib: Path) -> None:
    """Batch apply moves a file and rewrites rel_path: no new asset, nothing missing."""
    for i in range(3):
        put(lib, f"INBOX/f{i}.mp4")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()
    asset = await Asset.get(rel_path="INBOX/f0.mp4")
    (lib / "ARCHIVE/x").mkdir(parents=True)
    os.rename(lib / "INBOX/f0.mp4", lib / "ARCHIVE/x/f0.mp4")
    await Asset.filter(id=asset.id).update(
        rel_path="ARCHIVE/x/f0.mp4",
        path_key="ARCHIVE/x/f0.mp4",
        area="ARCHIVE",
        state=S.ARCHIVED,
        updated_at=_now(),
    )
    report = await scanner.scan_once()
    assert (report.new, report.missing, report.moved) == (0, 0, 0)
    # And the scanner now watches it at its new place: other bytes there are reviewed
    # again (docs/scanner.md, "Identity").
    put(lib, "ARCHIVE/x/f0.mp4", b"changed")
    report = await scanner.scan_once()
    assert report.content_changed == 1 and report.changed == 0
    await asset.refresh_from_db()
    assert (asset.state, asset.size, asset.previous_decision) == (S.DISCOVERED, 7, "KEEP")


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_unchanged_tree_with_rows_changed_by_others(
    db: str, tmp_path: Path, lib: Path
) -> None:
    """The tree does not change while agents change asset rows (claims, results): a pass
    must still compare the files, never report them all gone (share unmounted)."""
    for i in range(4):
        put(lib, f"INBOX/f{i}.mp4")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    await scanner.scan_once()  # DISCOVERED
    await scanner.scan_once()  # READY, the listing is kept for the next pass
    asset = await Asset.get(rel_path="INBOX/f0.mp4")
    await transition(asset.id, S.READY, S.PROCESSING_REVIEW, Trigger.CLAIM, "agent:a1")
    report = await scanner.scan_once()
    assert report.skipped_reason is None, report.skipped_reason
    assert report.missing == 0 and report.files_seen == 4
    put(lib, "INBOX/f1.mp4", b"grown")  # and a change is still seen right after
    await transition(asset.id, S.PROCESSING_REVIEW, S.READY, Trigger.RELEASED, "agent:a1")
    report = await scanner.scan_once()
    assert report.skipped_reason is None and report.changed == 1
    assert await states() == {
        "INBOX/f0.mp4": ("READY", False),
        "INBOX/f1.mp4": ("DISCOVERED", False),
        "INBOX/f2.mp4": ("READY", False),
        "INBOX/f3.mp4": ("READY", False),
    }


async def test_skipped_folders_and_hostile_names(db: str, tmp_path: Path, lib: Path) -> None:
    put(lib, "INBOX/@eaDir/x.mp4")
    put(lib, "INBOX/#recycle/x.mp4")
    put(lib, "INBOX/.hidden/x.mp4")
    put(lib, "INBOX/.x.mp4")
    put(lib, "EXPORTS/cut.mp4")
    put(lib, ".derived/abc/v1/proxy.mp4")
    weird = [
        'INBOX/with space/it\'s "quoted".mp4',
        "INBOX/new\nline.mp4",
        "INBOX/ünïcödé/東京.mov",
        "INBOX/back\\slash $HOME *?.mp4",
    ]
    for rel in weird:
        put(lib, rel, rel.encode())
    bad = b"INBOX/latin1-caf\xe9.mp4"
    put(lib, bad, b"bytes")
    os.symlink("/nonexistent/target.mp4", lib / "INBOX/broken.mp4")
    os.symlink(lib / "INBOX/.x.mp4", lib / "INBOX/link.mp4")
    os.symlink(tmp_path, lib / "INBOX/loop")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    report = await scanner.scan_once()
    assert report.symlinks_ignored == 3 and report.errors == []
    rels = set((await states()).keys())
    assert rels == {*weird, "INBOX/latin1-caf\uf7e9.mp4"}
    for rel in rels:
        path = resolve(lib, rel)
        assert path.is_file()
    stored = await Asset.get(size=5)
    assert os.fsencode(resolve(lib, stored.rel_path)) == os.fsencode(lib) + b"/" + bad
    assert os.fsencode(path_from_db(stored.rel_path)) == bad
    assert (await scanner.scan_once()).ready == 5


async def test_find_and_scandir_agree(tmp_path: Path, lib: Path) -> None:
    put(lib, "INBOX/a/b/c.mp4", b"123")
    put(lib, "INBOX/a/.h/c.mp4")
    put(lib, "INBOX/@eaDir/c.mp4")
    put(lib, b"INBOX/x\xff\nz.wav", b"1")
    os.symlink("nowhere", lib / "INBOX/l.mp4")
    areas = {"INBOX": lib / "INBOX", "ARCHIVE": lib / "ARCHIVE"}
    a = await walk_find(lib, areas, ["@eaDir"])
    b = walk_scandir(lib, areas, ["@eaDir"])
    assert a.files.keys() == b.files.keys() == {"INBOX/a/b/c.mp4", "INBOX/x\uf7ff\nz.wav"}
    for key in a.files:
        assert a.files[key][0] == b.files[key][0]
        assert abs(a.files[key][1] - b.files[key][1]) < 1e-5
    assert a.symlinks == b.symlinks == ["INBOX/l.mp4"]


async def test_scandir_fallback_scans(db: str, tmp_path: Path, lib: Path) -> None:
    put(lib, "INBOX/a.mp4")
    scanner = Scanner(make_config(tmp_path, lib), bus=events.EventBus())
    scanner.use_find = False
    assert (await scanner.scan_once()).new == 1
    assert (await scanner.scan_once()).ready == 1


@pytest.fixture
def open_lib() -> Iterator[Path]:
    """A library under a folder the unprivileged user can reach (tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="rush-perm-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for dirpath, dirnames, _ in os.walk(base):
            for name in dirnames:
                os.chmod(os.path.join(dirpath, name), 0o755)
        shutil.rmtree(base)


_AS_NOBODY = r"""
import asyncio, json, os, sys
from actors.scanner import Scanner
from rush.config import Config
from rush.storage import init_db, close_db

async def main():
    config = Config.model_validate(json.loads(sys.argv[1]))
    await init_db(config.database_url())
    from rush.storage import db_connection
    await db_connection().execute_query("SELECT 1")  # connect while still privileged
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    report = await Scanner(config).scan_once()
    await close_db()
    print(json.dumps(report.as_dict()))

asyncio.run(main())
"""


async def test_unreadable_folder_as_unprivileged_user(
    db: str, tmp_path: Path, open_lib: Path
) -> None:
    if os.geteuid() != 0:
        unavailable("needs root to drop to an unprivileged user")
    lib = open_lib / "lib"
    init_library(lib)
    for i in range(4):
        put(lib, f"INBOX/open/f{i}.mp4")
    put(lib, "INBOX/locked/secret.mp4")
    put(lib, "INBOX/private.mov").chmod(0o000)
    config = make_config(tmp_path, lib)
    config.database.dsn = db
    scanner = Scanner(config, bus=events.EventBus())
    assert (await scanner.scan_once()).new == 6
    (lib / "INBOX/locked").chmod(0o000)
    payload = json.loads(config.model_dump_json())
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _AS_NOBODY,
        json.dumps(payload),
        env=rush_env(HOME=str(open_lib)),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["skipped_reason"] is None
    assert report["missing"] == 0, "files below an unreadable folder are not missing"
    assert any("INBOX/locked" in e and "permission" in e for e in report["errors"]), report
    assert any("INBOX/private.mov" in e and "not readable" in e for e in report["errors"])
    assert await Asset.filter(missing=True).count() == 0
    assert await Asset.all().count() == 6


async def test_cli_init_then_scan_end_to_end(db: str, tmp_path: Path) -> None:
    """`rush init && rush scan` through the real CLI, on both database backends."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'data_dir = "data"\n[library]\nroot = "lib"\n[scanner]\nstable_after_s = 0\n'
        f"[database]\ndsn = {json.dumps(db)}\n",
        encoding="utf-8",
    )

    async def rush(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rush",
            *args,
            "--config",
            str(cfg),
            env=rush_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, _ = await rush("scan")
    assert code == 1 and "scan skipped" in out and "does not exist" in out
    code, out, err = await rush("init")
    assert code == 0, err
    lib = tmp_path / "lib"
    put(lib, "INBOX/shoot/A001.mp4", b"video")
    put(lib, "INBOX/shoot/A001.xmp", b"xmp")
    put(lib, "INBOX/shoot/A001.wav", b"wav")
    put(lib, "INBOX/shoot/B002.jpg", b"jpg")
    code, out, err = await rush("scan")
    assert code == 0, err
    assert "new assets:             2" in out and "sidecars added/removed: 2/0" in out
    assert {a.state for a in await Asset.all()} == {S.DISCOVERED}
    code, out, err = await rush("scan", "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert (report["new"], report["ready"], report["skipped_reason"]) == (0, 2, None)
    rows = sorted((a.rel_path, a.state.value) for a in await Asset.all())
    assert rows == [("INBOX/shoot/A001.mp4", "READY"), ("INBOX/shoot/B002.jpg", "READY")]
    sidecars = sorted(await Sidecar.all().values_list("rel_path", flat=True))
    assert sidecars == ["INBOX/shoot/A001.wav", "INBOX/shoot/A001.xmp"]


def test_init_says_when_shoots_sit_outside_inbox(tmp_path: Path) -> None:
    """A user who points RushCatalog at a folder of shoots is told that only INBOX/ is
    discovered, instead of watching an empty library."""
    root = tmp_path / "footage"
    put(root, "shoot1/a.mp4")
    put(root, ".DS_Store")
    res = subprocess.run(
        [sys.executable, "-m", "rush", "init", str(root)],
        env=rush_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "1 entry outside the library areas (shoot1)" in res.stdout
    assert f"only files under {root / 'INBOX'}/ are discovered" in res.stdout
    assert (root / "shoot1" / "a.mp4").exists()  # nothing moved
    again = subprocess.run(
        [sys.executable, "-m", "rush", "init", str(tmp_path / "clean")],
        env=rush_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "note:" not in again.stdout


async def test_two_scanners_at_once_do_not_trip_over_each_other(
    db: str, tmp_path: Path, lib: Path
) -> None:
    """`rush scan` while `rush serve` scans (two processes, two scanners): one pass waits
    for the other, so new files are recorded once, with their sidecars, and no pass fails
    (before: FOREIGN KEY constraint failed on the sidecars of the losing scanner)."""
    for i in range(200):
        put(lib, f"INBOX/race/c{i:03d}.mp4")
        put(lib, f"INBOX/race/c{i:03d}.xmp", b"<x/>")
    config = make_config(tmp_path, lib)
    one, two = Scanner(config, bus=events.EventBus()), Scanner(config, bus=events.EventBus())
    first, second = await asyncio.gather(one.scan_once(), two.scan_once())
    assert first.skipped_reason is None and second.skipped_reason is None
    assert sorted((first.new, second.new)) == [0, 200]
    assert await Asset.all().count() == 200 and await Sidecar.all().count() == 200
