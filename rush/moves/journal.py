"""The filesystem journal and the only primitives that move or delete media.

Why: users' media is irreplaceable.  Every action is written to `FsAction` before it
happens and marked after, so a crash at any point leaves enough on record for
`rush.moves.recovery` to bring each group back to exactly one complete location.

Moves never overwrite.  On one filesystem a move is `renameat2(RENAME_NOREPLACE)`
(called through ctypes: atomic, refuses an existing destination).  Where the kernel or
the filesystem lacks it (EINVAL/ENOSYS), `os.link` + `os.unlink` is used (link refuses
an existing destination too; a crash between the two leaves two names of one inode,
which recovery recognises with `os.path.samefile`).  Where hard links are not
supported either, a check-then-`os.rename` runs under the batch lock (only batch apply
and purge write to ARCHIVE/REJECTS and they hold one lock, so nobody else can create
the destination in between).  Across filesystems a move copies to a temporary name in
the destination folder, fsyncs the file and its folder, verifies size and SHA-256
against the source, renames into place without overwriting, fsyncs, then removes the
source; if the source cannot be removed, the new copy is removed again, so a move that
fails leaves the file under exactly one name, its source.  Every rename is followed by an
fsync of the folders involved (tolerated where a filesystem does not support it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import logging
import os
import shutil
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rush.config import Config
from rush.layout import UnsafePath, path_from_db, refuse_symlinks, resolve, safe_relpath
from rush.media import DERIVED_DIR, Area
from rush.models import FsAction
from rush.transitions import utcnow

log = logging.getLogger(__name__)

#: Suffix of the temporary copy of a cross-filesystem move (`.{name}.rushtmp`).
TMP_SUFFIX = ".rushtmp"
_CHUNK = 1024 * 1024


# --- crash hook (tests only) -------------------------------------------------------

_CRASH_ENV = "RUSH_TEST_CRASH_AFTER_N_FS_OPS"
_COUNT_ENV = "RUSH_TEST_FS_OPS_COUNT_FILE"
#: Signal sent at that step instead of SIGKILL (e.g. `SIGTERM`: a stop, not a crash).
_SIGNAL_ENV = "RUSH_TEST_CRASH_SIGNAL"
_steps = 0


def step(label: str) -> None:
    """Count one journaled step; the crash test SIGKILLs the process at step N.

    Why: killing right before/after each journaled step is deterministic, unlike
    killing after random delays.  Without the environment variable this is a counter.
    """
    global _steps
    _steps += 1
    limit = os.environ.get(_CRASH_ENV)
    if limit is not None and _steps >= int(limit):
        sig = signal.Signals[os.environ.get(_SIGNAL_ENV, "SIGKILL")]
        if sig is signal.SIGKILL or _steps == int(limit):  # a catchable signal: once
            log.warning("test crash hook: %s at step %d (%s)", sig.name, _steps, label)
            os.kill(os.getpid(), sig)


def report_steps() -> None:
    """Write the step count where the crash test asked (to spread its kill points)."""
    target = os.environ.get(_COUNT_ENV)
    if target:
        Path(target).write_text(str(_steps), encoding="utf-8")


# --- paths -------------------------------------------------------------------------


@dataclass(frozen=True)
class Roots:
    """Where each area lives: ARCHIVE and REJECTS may be other volumes (config)."""

    library: Path
    archive: Path
    rejects: Path

    @classmethod
    def from_config(cls, config: Config) -> Roots:
        lib = config.library
        return cls(
            lib.root,
            lib.archive_root or lib.root / Area.ARCHIVE.value,
            lib.rejects_root or lib.root / Area.REJECTS.value,
        )

    def path(self, rel: str) -> Path:
        """Absolute path of a stored library-relative path; refuses anything escaping its root.

        `rel` is the database form: names that are not valid UTF-8 get their exact bytes
        back (`layout.path_from_db`) in every area, wherever its volume is.
        """
        parts = safe_relpath(path_from_db(rel)).parts
        if parts[0] == Area.ARCHIVE.value:
            return self.archive.joinpath(*parts[1:])
        if parts[0] == Area.REJECTS.value:
            return self.rejects.joinpath(*parts[1:])
        return resolve(self.library, rel)

    def area_root(self, rel: str) -> Path:
        """The trusted root of the area holding `rel` (ARCHIVE/REJECTS may be elsewhere)."""
        head = safe_relpath(rel).parts[0]
        if head == Area.ARCHIVE.value:
            return self.archive
        if head == Area.REJECTS.value:
            return self.rejects
        return self.library / head

    def checked(self, rel: str) -> Path:
        """`path(rel)`, refusing a symbolic link among the folders below its area root.

        Does I/O (lstat): call it from a worker thread.
        """
        path = self.path(rel)
        refuse_symlinks(self.area_root(rel), path)
        return path


class MoveNotUndone(OSError):
    """A move failed half-way and could not be undone: the journal must stay pending."""


def tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


# --- primitives (synchronous; run in a worker thread) ------------------------------

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2: Any = None
_renameat2_missing = False


def _load_renameat2() -> Any:
    global _renameat2, _renameat2_missing
    if _renameat2 is None and not _renameat2_missing:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fn = libc.renameat2
            fn.argtypes = [
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_uint,
            ]
            fn.restype = ctypes.c_int
            _renameat2 = fn
        except (OSError, AttributeError):
            _renameat2_missing = True
    return _renameat2


def rename_noreplace(src: Path, dst: Path) -> None:
    """Atomically rename `src` to `dst`, raising FileExistsError if `dst` exists."""
    fn = _load_renameat2()
    if fn is not None:
        rc = fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(src), None, str(dst))
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from exc
        os.rename(src, dst)  # under the batch lock: nobody else writes there
        return
    try:
        os.unlink(src)
    except OSError:
        if not os.path.lexists(src):
            return  # the unlink did happen (a retried network call): moved
        _remove_new_name(dst, src)  # undo the link: the file keeps one name, its source
        raise


#: What a filesystem answers to a directory fsync it does not support (some network
#: shares): nothing stronger can be had there, so it is not an error.
_DIR_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP})
_dir_fsync_noted = False


def fsync_dir(path: Path) -> None:
    """Make the renames in a folder durable; tolerated where the filesystem cannot."""
    global _dir_fsync_noted
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
        if not _dir_fsync_noted:
            _dir_fsync_noted = True
            log.info("the filesystem of %s does not support folder fsync (%s)", path, exc)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def same_content(a: Path, b: Path) -> bool:
    """True when two paths are one inode, or have the same size and SHA-256."""
    try:
        if os.path.samefile(a, b):
            return True
        if a.stat().st_size != b.stat().st_size:
            return False
        return sha256_of(a) == sha256_of(b)
    except OSError:
        return False


def copy_verified(src: Path, dst: Path) -> tuple[int, str]:
    """Cross-filesystem move: copy, fsync, verify, rename without overwrite, unlink source."""
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "destination exists", str(dst))
    tmp = tmp_name(dst)
    if os.path.lexists(tmp):
        os.unlink(tmp)  # our own leftover from a crashed copy (recovery would remove it too)
    digest = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            while chunk := fin.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        step("copy:written")
        shutil.copystat(src, tmp)
        fsync_dir(tmp.parent)
        check = sha256_of(tmp)
        if check != (size, digest.hexdigest()) or src.stat().st_size != size:
            raise OSError(errno.EIO, f"verification failed for the copy of {src}", str(tmp))
        step("copy:verified")
        rename_noreplace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # From here the file has two identical names.  Until the source is gone, any failure
    # removes the copy again, so a failed move always leaves the file at its source only.
    try:
        fsync_dir(dst.parent)
        step("copy:renamed")
        os.unlink(src)
    except BaseException:
        if os.path.lexists(src):
            _remove_new_name(dst, src)
            raise
        # The source is gone (an unlink that succeeded but reported an error): moved.
        log.warning("the source of %s vanished while it was removed; the move is done", dst)
    try:
        fsync_dir(src.parent)
    except OSError as exc:
        # The move has happened: reporting it as failed would lose track of the file.
        log.warning("moved %s to %s but cannot fsync %s: %s", src, dst, src.parent, exc)
    step("copy:source-removed")
    return size, digest.hexdigest()


def _remove_new_name(dst: Path, src: Path) -> None:
    """Undo a half-done move by removing its new name (the source is intact and identical).

    Raises MoveNotUndone when that fails too: the file then has two names, which only
    recovery may settle (it compares both before removing one).
    """
    try:
        os.unlink(dst)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise MoveNotUndone(
            exc.errno or errno.EIO,
            f"cannot undo the move of {src}: {exc.strerror}; the file is at both places "
            "until recovery settles it",
            str(dst),
        ) from exc
    try:
        fsync_dir(dst.parent)
    except OSError as exc:
        log.warning("cannot fsync %s after undoing a move: %s", dst.parent, exc)


def move_file(src: Path, dst: Path) -> str:
    """Move one file without ever overwriting; returns "rename" or "copy"."""
    if not os.path.isfile(src) or os.path.islink(src):
        raise FileNotFoundError(errno.ENOENT, "source is missing or not a regular file", str(src))
    step("move:start")
    try:
        rename_noreplace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        copy_verified(src, dst)
        return "copy"
    step("rename")
    return "rename"


def remove_file(path: Path) -> bool:
    """Delete one file; a file already gone is success (idempotent purge)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    step("unlink")
    return True


def remove_tree_inside(path: Path, container: Path) -> bool:
    """rmtree `path` only when it really lies inside `container` (no symlink escape)."""
    if not os.path.lexists(path):
        return False
    real_container = os.path.realpath(container)
    if os.path.islink(path) or not os.path.realpath(path).startswith(real_container + os.sep):
        raise UnsafePath(f"{path} is not strictly inside {container}")
    shutil.rmtree(path)
    step("rmtree")
    return True


def derived_root(roots: Roots, asset_id: str) -> Path:
    """`.derived/{uuid}` of an asset (uuid validated by the caller)."""
    return resolve(roots.library, f"{DERIVED_DIR}/{asset_id}")


# --- journal rows ------------------------------------------------------------------


async def record(
    action: str,
    *,
    src: str | None = None,
    dst: str | None = None,
    batch_id: Any = None,
    asset_id: Any = None,
) -> FsAction:
    """Write one pending journal entry before the action happens."""
    row = await FsAction.create(
        action=action, src=src, dst=dst, batch_id=batch_id, asset_id=asset_id
    )
    step(f"journal:{action}")
    return row


async def record_many(rows: Sequence[FsAction]) -> None:
    if rows:
        await FsAction.bulk_create(list(rows), batch_size=500)
        step("journal:bulk")


async def finish_where(status: str = "done", error: str | None = None, **filters: Any) -> None:
    """Mark the pending journal entries matching `filters` (bulk rows have no ids back)."""
    await FsAction.filter(status="pending", **filters).update(
        status=status, error=error, done_at=utcnow()
    )


async def finish(ids: Iterable[int], status: str = "done", error: str | None = None) -> None:
    """Mark journal entries done (or failed/void) once the action has happened."""
    id_list = list(ids)
    for start in range(0, len(id_list), 500):
        await FsAction.filter(id__in=id_list[start : start + 500]).update(
            status=status, error=error, done_at=utcnow()
        )
