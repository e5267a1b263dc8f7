"""Content fingerprints: what identifies a file is its bytes, not its path or name.

Two hashes, both BLAKE3 (the `blake3` package; README, "Dependencies and why"):

- the **sample** fingerprint: the size (8 bytes, little-endian) followed by the first,
  middle and last 64 KiB (the whole file when it is at most 192 KiB).  Three reads per
  file, whatever its size, so the scanner can take it for every new or changed file and
  match a missing asset to a new file by content (docs/scanner.md, "Identity");
- the **full** content hash, streamed in 1 MiB reads (bounded memory, a 200 GB file
  included), computed once per content by the `hasher` actor and used for duplicates
  and `rush verify`.  It is the plain BLAKE3 of the file: `b3sum FILE` prints the same.

Both refuse to return a hash when the file's size or mtime moved while it was read (a
half-written file never gets a hash; the caller tries again later).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from blake3 import blake3

#: Stored next to every hash (`asset.hash_algo`), so another algorithm can come later.
ALGO = "blake3"
SAMPLE_BLOCK = 64 * 1024
READ_SIZE = 1 << 20


class FileChanged(OSError):
    """The file's size or mtime changed while it was hashed: no hash was recorded."""


class Interrupted(Exception):
    """A full hash was stopped on request (shutdown); nothing was recorded."""


def _same(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)


def sample_fingerprint(path: Path | str) -> str:
    """Hex BLAKE3 of size + first/middle/last 64 KiB; OSError if unreadable, FileChanged."""
    with open(path, "rb", buffering=0) as f:
        before = os.fstat(f.fileno())
        size = before.st_size
        h = blake3(size.to_bytes(8, "little"))
        if size <= 3 * SAMPLE_BLOCK:
            h.update(f.read(size + 1))
        else:
            for offset in (0, (size - SAMPLE_BLOCK) // 2, size - SAMPLE_BLOCK):
                h.update(os.pread(f.fileno(), SAMPLE_BLOCK, offset))
        if not _same(before, os.fstat(f.fileno())) or not _same(before, os.stat(path)):
            raise FileChanged(f"{path} changed while it was fingerprinted")
    return h.hexdigest()


def full_hash(path: Path | str, stop: threading.Event | None = None) -> tuple[str, int, float]:
    """(hex BLAKE3 of the whole file, size, mtime) as it was read.

    Streams with one reused 1 MiB buffer.  `stop` (set from another thread) interrupts
    between reads with `Interrupted`; the next run starts the file again.
    """
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    h = blake3()
    with open(path, "rb", buffering=0) as f:
        before = os.fstat(f.fileno())
        while True:
            if stop is not None and stop.is_set():
                raise Interrupted(str(path))
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
        if not _same(before, os.fstat(f.fileno())) or not _same(before, os.stat(path)):
            raise FileChanged(f"{path} changed while it was hashed")
    return h.hexdigest(), before.st_size, before.st_mtime
