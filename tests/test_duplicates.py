"""Exact duplicates on real files: hashed by the hasher, grouped, counted, rejected by a
human with one action that keeps the first copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.scanner import Scanner
from rush import duplicates
from rush.config import Config
from rush.decisions import InvalidInput, WrongState
from rush.events import EventBus
from rush.hashing import Hasher
from rush.lifecycle import AssetState
from rush.models import Asset, AssetEvent
from rush.status import collect_status
from rush.transitions import transition
from tests.batch_helpers import make_config
from web import queries

S = AssetState
OLD = 1_700_000_000.0


def put(root: Path, rel: str, data: bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.utime(p, (OLD, OLD))
    return p


async def ingest(cfg: Config) -> dict[str, Asset]:
    """Scan twice (DISCOVERED -> READY), process, hash: what the server does."""
    scanner = Scanner(cfg, bus=EventBus())
    await scanner.scan_once()
    await scanner.scan_once()
    for a in await Asset.filter(state=S.READY):
        await transition(a.id, S.READY, S.PROCESSING_REVIEW, "claim", "agent")  # type: ignore[arg-type]
        await transition(a.id, S.PROCESSING_REVIEW, S.PROCESSED, "processed", "agent")  # type: ignore[arg-type]
    hasher = Hasher(cfg)
    try:
        while (await hasher.run_once()).hashed:
            pass
    finally:
        hasher.close()
    return {a.rel_path: a for a in await Asset.all()}


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    root = tmp_path / "lib"
    config = make_config(root, "unused")
    config.scanner.stable_after_s = 0
    return config


async def test_a_card_dumped_twice_is_one_duplicate_group(db: str, cfg: Config) -> None:
    root = cfg.library.root
    clip = os.urandom(300_000)
    put(root, "INBOX/card-1/C0001.MP4", clip)
    put(root, "INBOX/card-1 again/C0001.MP4", clip)
    put(root, "INBOX/card-2/C0001.MP4", os.urandom(300_000))  # same name, other bytes
    put(root, "INBOX/empty/a.wav", b"")
    put(root, "INBOX/empty/b.wav", b"")
    assets = await ingest(cfg)
    first = assets["INBOX/card-1/C0001.MP4"]
    again = assets["INBOX/card-1 again/C0001.MP4"]
    other = assets["INBOX/card-2/C0001.MP4"]
    assert first.content_hash and first.content_hash == again.content_hash
    assert other.content_hash != first.content_hash
    assert await duplicates.duplicate_count() == 1  # one extra copy; 0-byte files never
    assert await duplicates.duplicate_ids([first.id, again.id, other.id]) == {first.id, again.id}
    assert not await duplicates.duplicate_ids([assets["INBOX/empty/a.wav"].id])
    # The library filter and the status (Home Assistant reads the same snapshot).
    rows = await queries.page(queries.Filters.parse({"flag": "duplicate"}), 0, 50)
    assert sorted(r["rel_path"] for r in rows) == sorted([first.rel_path, again.rel_path])
    assert (await collect_status(cfg))["duplicates"] == 1
    # The review names the other copy; the first recorded copy is the one kept.
    first_row, second_row = sorted([first, again], key=lambda a: (a.created_at, a.rel_path))
    others = await duplicates.others_of(second_row)
    assert [(text, kept) for _, text, kept in others] == [
        (f"also in INBOX at {first_row.rel_path}", True)
    ]
    with pytest.raises(WrongState, match="first copy"):
        await duplicates.reject_as_duplicate(first_row.id, "alice")
    with pytest.raises(InvalidInput, match="no other copy"):
        await duplicates.reject_as_duplicate(other.id, "alice")
    done = await duplicates.reject_as_duplicate(second_row.id, "alice")
    assert done.state is S.DECIDED_REJECT and done.decision == "REJECT"
    ev = await AssetEvent.filter(asset_id=second_row.id).order_by("-id").first()
    assert ev is not None and f"duplicate of {first_row.id}" in (ev.reason or "")
    assert (await Asset.get(id=first_row.id)).state is S.PROCESSED  # never touched


async def test_hardlinks_are_duplicates_and_archive_copies_are_named(db: str, cfg: Config) -> None:
    root = cfg.library.root
    clip = os.urandom(200_000)
    put(root, "INBOX/shoot/A001.MOV", clip)
    os.link(root / "INBOX/shoot/A001.MOV", root / "INBOX/shoot/A001 link.MOV")
    assets = await ingest(cfg)
    a, b = assets["INBOX/shoot/A001.MOV"], assets["INBOX/shoot/A001 link.MOV"]
    assert a.content_hash == b.content_hash and await duplicates.duplicate_count() == 1
    # One copy already archived: the other is flagged "already in ARCHIVE as ...".
    await Asset.filter(id=a.id).update(area="ARCHIVE", rel_path="ARCHIVE/shoot/A001.MOV")
    texts = [text for _, text, _ in await duplicates.others_of(await Asset.get(id=b.id))]
    assert texts == ["already in ARCHIVE as ARCHIVE/shoot/A001.MOV"]
