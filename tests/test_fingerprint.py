"""Content fingerprints on real files: the sampled one and the full BLAKE3 hash."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from rush.fingerprint import SAMPLE_BLOCK, Interrupted, full_hash, sample_fingerprint
from rush.hashing import Hasher
from rush.lifecycle import AssetState
from rush.models import Asset, Sidecar
from tests.batch_helpers import make_asset, make_config
from tests.support.environment import unavailable

S = AssetState


def b3sum(path: Path) -> str:
    exe = shutil.which("b3sum")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("b3sum is missing (scripts/setup installs it)")
        unavailable("b3sum is not installed")
    return subprocess.run(
        [exe, "--no-names", str(path)], capture_output=True, check=True, text=True
    ).stdout.strip()


def test_sample_fingerprint_sees_the_ends_the_middle_and_the_size(tmp_path: Path) -> None:
    data = bytearray(os.urandom(10 * SAMPLE_BLOCK))
    a = tmp_path / "a.mp4"
    a.write_bytes(data)
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(data)
    assert sample_fingerprint(a) == sample_fingerprint(copy)
    for offset in (0, len(data) // 2, len(data) - 1):
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        copy.write_bytes(changed)
        assert sample_fingerprint(copy) != sample_fingerprint(a), offset
    # A byte outside the sampled blocks is not seen (the full hash is for that) ...
    changed = bytearray(data)
    changed[2 * SAMPLE_BLOCK] ^= 0xFF
    copy.write_bytes(changed)
    assert sample_fingerprint(copy) == sample_fingerprint(a)
    assert full_hash(copy)[0] != full_hash(a)[0]
    # ... and small files are read whole; the size is part of it (zeros of two lengths).
    z1, z2 = tmp_path / "z1", tmp_path / "z2"
    z1.write_bytes(b"\0" * 10)
    z2.write_bytes(b"\0" * 11)
    assert sample_fingerprint(z1) != sample_fingerprint(z2)


def test_full_hash_is_plain_blake3_and_streams(tmp_path: Path) -> None:
    big = tmp_path / "big.mov"
    with open(big, "wb") as f:
        for _ in range(5):
            f.write(os.urandom(1 << 20))
        f.write(b"tail")
    digest, size, _mtime = full_hash(big)
    assert digest == b3sum(big) and size == (5 << 20) + 4
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert full_hash(empty)[0] == b3sum(empty)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Interrupted):
        full_hash(big, stop)


async def test_hasher_records_each_content_once(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    done = await make_asset(root, "INBOX/a/clip.mp4", S.DECIDED_KEEP, sidecars=("clip.xmp",))
    fresh = await make_asset(root, "INBOX/a/new.mp4", S.PROCESSED, processed=False)
    await Asset.filter(id=fresh.id).update(state=S.DISCOVERED)  # may still be copied
    hasher = Hasher(cfg)
    try:
        run = await hasher.run_once()
        assert run.hashed == 1 and run.skipped == []
        a = await Asset.get(id=done.id)
        assert a.content_hash == b3sum(root / "INBOX/a/clip.mp4") and a.hash_algo == "blake3"
        assert a.hashed_size == a.size
        # A row from before fingerprints gets its sampled fingerprint as well.
        assert a.sample_hash == sample_fingerprint(root / "INBOX/a/clip.mp4")
        side = await Sidecar.get(asset_id=done.id)
        assert side.content_hash == b3sum(root / "INBOX/a/clip.xmp")
        assert (await Asset.get(id=fresh.id)).content_hash is None
        assert (await hasher.run_once()).hashed == 0  # once per content
        # A file whose row no longer describes it (another size) gets no hash.
        other = await make_asset(root, "INBOX/a/third.mp4", S.PROCESSED)
        (root / "INBOX/a/third.mp4").write_bytes(b"grown meanwhile" * 10)
        run = await hasher.run_once()
        assert run.hashed == 0 and run.skipped == ["INBOX/a/third.mp4"]
        assert (await Asset.get(id=other.id)).content_hash is None
    finally:
        hasher.close()
