"""Listing the library areas for the scanner: read-only, no symlink is ever followed.

Two implementations give the same `Listing`: GNU `find -printf` in a subprocess (fast:
the traversal runs in C and Python only splits one buffer) and an `os.scandir` walk used
when GNU find is missing.  Paths come back in their stored form (`layout.path_to_db`),
relative to the library root, e.g. `INBOX/2024 shoot/C0001.MP4`.

What is never entered: hidden folders and files (name starting with "."), the configured
NAS system folders (`@eaDir`, `#recycle`, ...).  EXPORTS and `.derived` are never listed
because only INBOX, ARCHIVE and REJECTS are walked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rush.layout import path_to_db

log = logging.getLogger(__name__)

#: Bytes of find output read at a time to recognise an unchanged tree.
_DIGEST_BLOCK = 1 << 16
#: Tag bytes of the find output records.
_FILE, _UNREADABLE_FILE, _UNREADABLE_DIR, _LINK = b"f", b"r", b"D", b"L"


@dataclass
class Listing:
    """What one walk saw.  `complete` is False when something could not be listed and
    the walker cannot say exactly what (then nothing may be flagged missing)."""

    #: stored rel path -> (size, mtime)
    files: dict[str, tuple[int, float]] = field(default_factory=dict)
    unreadable_files: list[str] = field(default_factory=list)
    #: Folders that could not be listed: known assets below them are not flagged missing.
    unreadable_dirs: list[str] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    complete: bool = True
    #: Digest of the raw find output, to recognise a tree that did not change at all
    #: since the previous pass (None for the scandir walker).
    raw: bytes | None = None
    #: len(files), kept when `files` is released after use (see `release_files`).
    file_count: int = 0

    def release_files(self) -> None:
        """Drop the per-file dict (the largest structure of a pass) once compared;
        the raw output is enough to recognise an unchanged tree next time."""
        self.file_count = len(self.files)
        self.files = {}


def find_available() -> bool:
    """GNU find (with -printf and -readable) is present."""
    return shutil.which("find") is not None and _gnu_find()


_GNU: bool | None = None


def _gnu_find() -> bool:
    global _GNU
    if _GNU is None:
        import subprocess

        try:
            out = subprocess.run(
                ["find", "--version"], capture_output=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = b""
        _GNU = b"GNU findutils" in out
    return _GNU


def _glob_escape(name: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in name)


def find_command(starts: list[str], prefix: str | None, ignored: Iterable[str]) -> list[str]:
    """The find invocation listing `starts` (folder names relative to the cwd).

    With `prefix` None the printed paths are `%p` (e.g. `INBOX/x.mp4` when run in the
    library root with start `INBOX`); else `{prefix}/%P` (an area on another volume).
    """
    where = "%p" if prefix is None else f"{prefix}/%P"
    # The order matters for speed: find evaluates name tests before type tests inside a
    # conjunction, so the NAS folder names sit in a branch that files never reach (files
    # are printed by an earlier branch).  Per file: one hidden-name match, the type, and
    # the mode bits (a world-readable file needs no access(2) call for -readable).
    skip: list[str] = []
    for name in sorted(set(ignored)):
        skip += [*(["-o"] if skip else []), "-name", _glob_escape(name)]
    dirs_skipped = ["-o", "-type", "d", "(", *skip, ")", "-prune"] if skip else []
    # Records are NUL-terminated so any byte except NUL and "/" may appear in a name
    # (newlines, quotes, invalid UTF-8).  -H: an area folder that is itself a symlink is
    # entered; nothing below it is ever followed.
    return [
        "find",
        "-H",
        *starts,
        "-mindepth",
        "1",
        "-name",
        ".*",
        "-prune",
        "-o",
        "-type",
        "f",
        "(",
        "-perm",
        "-o=r",
        "-o",
        "-readable",
        ")",
        "-printf",
        f"f%s %T@ {where}\\0",
        "-o",
        "-type",
        "f",
        "-printf",
        f"r%s %T@ {where}\\0",
        *dirs_skipped,
        "-o",
        "-type",
        "d",
        "(",
        "!",
        "-readable",
        "-o",
        "!",
        "-executable",
        ")",
        "-printf",
        f"D{where}\\0",
        "-prune",
        "-o",
        "-type",
        "l",
        "-printf",
        f"L{where}\\0",
    ]


def _decode(raw: bytes) -> str:
    if raw.isascii():
        return raw.decode("ascii")
    return path_to_db(raw.decode("utf-8", "surrogateescape"))


#: A readable-file record, anchored at a record start (after a NUL or at offset 0) so a
#: name can never fake a record.
_FILE_RE = re.compile(rb"(?<![^\0])f(\d+) (-?\d+(?:\.\d*)?) ([^\0]*)\0")


def parse_find_output(data: bytes, listing: Listing) -> None:
    """Fill `listing` from NUL-terminated find records (see `find_command`).

    Readable files, by far the most records, are parsed by one regex pass in C.
    """
    files = listing.files
    # findall on ~1 MB slices (cut after a NUL): fast, without a list of every record.
    start, end = 0, len(data)
    while start < end:
        cut = data.find(b"\0", min(start + (1 << 20), end - 1))
        cut = end if cut < 0 else cut + 1
        for size_b, mtime_b, path_b in _FILE_RE.findall(data, start, cut):
            files[_decode(path_b)] = (int(size_b), float(mtime_b))
        start = cut
    if b"\0r" in data or b"\0D" in data or b"\0L" in data or data[:1] in (b"r", b"D", b"L"):
        for rec in data.split(b"\0"):
            tag = rec[:1]
            if tag == _UNREADABLE_FILE:
                size_b, mtime_b, path_b = rec[1:].split(b" ", 2)
                path = _decode(path_b)
                files[path] = (int(size_b), float(mtime_b))
                listing.unreadable_files.append(path)
            elif tag == _UNREADABLE_DIR:
                listing.unreadable_dirs.append(_decode(rec[1:]))
            elif tag == _LINK:
                listing.symlinks.append(_decode(rec[1:]))


async def walk_find(
    root: Path,
    areas: dict[str, Path],
    ignored: Iterable[str],
    reuse: Listing | None = None,
) -> Listing:
    """List every area folder with GNU find; `areas` maps area name -> folder.

    When the raw output is byte-identical to `reuse.raw`, `reuse` itself is returned
    unparsed: an unchanged tree costs the traversal and one comparison.
    """
    ignored = list(ignored)
    jobs: list[tuple[Path, list[str], str | None]] = []
    standard = [area for area, folder in areas.items() if folder == root / area]
    if standard:
        jobs.append((root, standard, None))
    for area, folder in areas.items():
        if area not in standard:
            jobs.append((folder, ["."], area))
    outputs: list[IO[bytes]] = []
    errors: list[str] = []
    digest = hashlib.blake2b(digest_size=32)
    with contextlib.ExitStack() as held:
        for cwd, starts, prefix in jobs:
            # find writes into an unlinked temporary file rather than a pipe, and the file
            # is digested block by block: an unchanged tree (most passes) is recognised
            # without ever holding its whole listing in memory (11 MB per 200,000 files).
            out_file = held.enter_context(tempfile.TemporaryFile())
            proc = await asyncio.create_subprocess_exec(
                *find_command(starts, prefix, ignored),
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_file,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await proc.communicate()
            finally:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            out_file.seek(0)
            while block := out_file.read(_DIGEST_BLOCK):
                digest.update(block)
            digest.update(b"\1")
            outputs.append(out_file)
            if proc.returncode != 0 or err:
                # Folders that vanish or fail mid-walk: find says so on stderr.  We cannot
                # map those lines back to exact paths safely, so this pass flags nothing
                # missing.
                text = os.fsdecode(err).strip() or f"find exited with status {proc.returncode}"
                errors += [f"listing {cwd}: {line}" for line in text.splitlines()[:20]]
        raw = digest.digest()
        if reuse is not None and not errors and reuse.complete and reuse.raw == raw:
            return reuse
        listing = Listing(raw=raw)
        for output in outputs:
            # One area's output in memory at a time, freed once parsed.
            output.seek(0)
            parse_find_output(output.read(), listing)
    listing.file_count = len(listing.files)
    if errors:
        listing.errors += errors
        listing.complete = False
    return listing


def walk_scandir(root: Path, areas: dict[str, Path], ignored: Iterable[str]) -> Listing:
    """Same result as `walk_find` in pure Python (slower; used when GNU find is missing)."""
    listing = Listing()
    skip = frozenset(ignored)
    files = listing.files
    for area, folder in areas.items():
        stack: list[tuple[str, str]] = [(os.fspath(folder), area)]
        while stack:
            path, rel = stack.pop()
            try:
                with os.scandir(path) as it:
                    entries = list(it)
            except OSError as exc:
                listing.unreadable_dirs.append(path_to_db(rel))
                listing.errors.append(f"cannot list folder {rel!r}: {exc.strerror}")
                continue
            for entry in entries:
                name = entry.name
                if name.startswith(".") or name in skip:
                    continue
                child = f"{rel}/{name}"
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    # Vanished between readdir and stat: not listed, not an error of ours.
                    if exc.errno is not None and exc.errno != 2:
                        listing.errors.append(f"cannot stat {child!r}: {exc.strerror}")
                        listing.complete = False
                    continue
                mode = st.st_mode
                if stat.S_ISDIR(mode):
                    if os.access(entry.path, os.R_OK | os.X_OK):
                        stack.append((entry.path, child))
                    else:
                        listing.unreadable_dirs.append(path_to_db(child))
                elif stat.S_ISREG(mode):
                    stored = path_to_db(child)
                    files[stored] = (st.st_size, st.st_mtime)
                    if not os.access(entry.path, os.R_OK):
                        listing.unreadable_files.append(stored)
                elif stat.S_ISLNK(mode):
                    listing.symlinks.append(path_to_db(child))
    listing.file_count = len(files)
    return listing
