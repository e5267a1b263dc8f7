"""An unchanged tree is recognised without holding its whole listing in memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from rush.fswalk import walk_find
from rush.layout import init_library


async def test_unchanged_tree_is_digested_not_loaded(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    init_library(root)
    folder = root / "INBOX" / ("a long folder name of a shoot " * 4)
    folder.mkdir(parents=True)
    for i in range(3000):
        (folder / f"clip with a long descriptive name {i:05d}.mp4").write_bytes(b"")
    areas = {"INBOX": root / "INBOX"}
    first = await walk_find(root, areas, [])
    assert first.file_count == 3000
    output_bytes = sum(len(rel) + 20 for rel in first.files)  # about the find output
    assert output_bytes > 500_000
    first.release_files()
    assert await walk_find(root, areas, [], reuse=first) is first  # warms the machinery
    tracemalloc.start()
    try:
        again = await walk_find(root, areas, [], reuse=first)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert again is first  # recognised as unchanged
    # Holding the listing once costs at least output_bytes; digesting it, a few blocks.
    assert peak < output_bytes * 2 / 3, (peak, output_bytes)
    # A changed tree is still listed in full.
    (folder / "new.mp4").write_bytes(b"")
    changed = await walk_find(root, areas, [], reuse=first)
    assert changed is not first and changed.file_count == 3001
