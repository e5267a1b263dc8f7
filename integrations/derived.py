"""Atomic writes of derivatives under `.derived/{uuid}/v{version}/` (never next to originals).

Every file is written under a temporary name in its final folder, fsynced, then renamed,
so the UI and the server never see a half-written proxy.  A failed job leaves nothing:
`DerivedWriter` removes its temporary files and whatever it had already committed.  It
refuses to write through a symbolic link below the mount's `.derived` folder.

A job that never reached its clean-up (agent killed, machine switched off) leaves
`.tmp-*` files behind; the next writer of the same folder removes them before it starts,
since the lease it holds makes it the folder's only owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
from pathlib import Path

from rush.jobs import DerivativeRef, DerivativeRole, JobContext, JobFailed
from rush.layout import SymlinkInPath, UnsafePath, refuse_symlinks, safe_relpath
from rush.media import DERIVED_DIR

TMP_PREFIX = ".tmp-"

log = logging.getLogger(__name__)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the `.tmp-*` entries of one derived folder (`.derived/{uuid}/v{n}`); each
    removal is logged.

    Only that folder is looked at and no symbolic link is followed (a link named
    `.tmp-*` is removed itself, never its target), so nothing outside it, least of all
    an original, can be touched.  Other versions' folders are left alone: a job on
    another version of the asset may be writing there right now."""
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(TMP_PREFIX)]
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove stale temporary output %s: %s", path, exc)
            continue
        removed.append(path)
        log.info("removed stale temporary output %s (left by an interrupted job)", path)
    return removed


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some network filesystems refuse directory fsync
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class DerivedWriter:
    """Writes one job's derivatives; use as a context manager to clean up on failure."""

    def __init__(self, ctx: JobContext, derived_dir: str) -> None:
        try:
            rel = safe_relpath(derived_dir)
        except UnsafePath as exc:
            raise JobFailed(f"refusing derived_dir: {exc}") from exc
        if rel.parts[0] != DERIVED_DIR or len(rel.parts) < 2:
            raise JobFailed(f"refusing derived_dir {derived_dir!r}: must be under {DERIVED_DIR}/")
        self.rel = rel.as_posix()
        self.base = ctx.abs_path(DERIVED_DIR)
        self.root = ctx.abs_path(self.rel)
        self._temps: list[Path] = []
        self._committed: list[Path] = []
        self.refs: list[DerivativeRef] = []

    def __enter__(self) -> DerivedWriter:
        self._refuse_links(self.root, last=True)
        remove_stale_temps(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._refuse_links(self.root, last=True)
        return self

    def _refuse_links(self, path: Path, *, last: bool = False) -> None:
        """Never write through a symbolic link below the mount's `.derived` folder."""
        try:
            refuse_symlinks(self.base, path, last=last)
        except SymlinkInPath as exc:
            raise JobFailed(f"refusing to write derivatives: {exc}") from exc

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.discard_temps()
        if exc_type is None:
            # One directory fsync makes every rename durable before the job reports them.
            if self._committed:
                fsync_dir(self.root)
            return
        for path in self._committed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.refs.clear()
        # Leave no empty version/asset folders behind a failed first attempt.
        for folder in (self.root, self.root.parent):
            with contextlib.suppress(OSError):
                folder.rmdir()

    def tmp(self, name: str) -> Path:
        """A fresh temporary path in the derived folder, keeping `name`'s extension."""
        path = self.root / f"{TMP_PREFIX}{secrets.token_hex(4)}-{name}"
        self._temps.append(path)
        return path

    def tmp_dir(self) -> Path:
        """A temporary sub-folder (for ffmpeg image sequences); removed at the end."""
        path = self.tmp("seq")
        path.mkdir()
        return path

    def commit(self, tmp: Path, name: str, role: DerivativeRole, mime: str) -> DerivativeRef:
        """fsync + rename `tmp` to `name`; returns its library-relative reference.

        The folder itself is fsynced once when the writer closes successfully.
        """
        final = self.root / name
        size = tmp.stat().st_size
        if size <= 0:
            raise JobFailed(f"ffmpeg produced an empty {role} ({name})")
        fsync_file(tmp)
        self._refuse_links(final)  # os.replace itself never follows a link at `final`
        os.replace(tmp, final)
        self._committed.append(final)
        ref = DerivativeRef(role=role, path=f"{self.rel}/{name}", size=size, mime=mime)
        self.refs.append(ref)
        return ref

    def write_bytes(self, name: str, data: bytes, role: DerivativeRole, mime: str) -> DerivativeRef:
        tmp = self.tmp(name)
        tmp.write_bytes(data)
        return self.commit(tmp, name, role, mime)

    async def acommit(self, tmp: Path, name: str, role: DerivativeRole, mime: str) -> DerivativeRef:
        """`commit` in a worker thread: an fsync on a NAS share must not stall heartbeats."""
        return await asyncio.to_thread(self.commit, tmp, name, role, mime)

    async def awrite_bytes(
        self, name: str, data: bytes, role: DerivativeRole, mime: str
    ) -> DerivativeRef:
        return await asyncio.to_thread(self.write_bytes, name, data, role, mime)

    def discard_temps(self) -> None:
        for path in self._temps:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        self._temps.clear()
