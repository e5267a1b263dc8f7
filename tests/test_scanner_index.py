"""The scanner's index rebuilt from the database: paged, complete, compact."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import actors.scanner as scanner_mod
from actors.scanner import Scanner
from rush import events
from rush.config import Config
from rush.layout import init_library


async def test_rebuilt_index_is_complete_and_shares_its_strings(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lib"
    init_library(root)
    old = time.time() - 3600
    for i in range(7):
        path = root / "INBOX" / f"d{i % 2}" / f"c{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * i)
        os.utime(path, (old, old))
    config = Config.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "library": {"root": str(root)},
            "scanner": {"stable_after_s": 0},
        }
    )
    first = Scanner(config, bus=events.EventBus())
    assert (await first.scan_once()).new == 7
    assert (await first.scan_once()).ready == 7
    # A restarted server rebuilds its index from the rows, a few at a time.
    monkeypatch.setattr(scanner_mod, "_LOAD_PAGE", 2)
    again = Scanner(config, bus=events.EventBus())
    report = await again.scan_once()
    assert report.changes() == 0 and report.skipped_reason is None
    index = again._index
    assert index is not None and len(index) == 7
    assert index.by_id.keys() == first._index.by_id.keys()  # type: ignore[union-attr]
    known = list(index.by_id.values())
    # One string object per distinct state, area and kind, not one per asset.
    assert len({id(k.state) for k in known}) == 1
    assert len({id(k.area) for k in known}) == 1
    assert len({id(k.kind) for k in known}) == 1
