"""Filesystem facts the relocator checks before asking qBittorrent to move anything.

Read-only except for the writability probe (a temporary file created and removed in
`syno_root`) and the safety copies in `backup_dir`; torrent data is never touched here.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rush.config import SeedboxConfig


def syno_unavailable_reason(cfg: SeedboxConfig) -> str | None:
    """None when the Synology share is mounted and writable, else why not (for a WARN)."""
    problem = syno_problem(cfg)
    return None if problem is None else problem[1]


def syno_problem(cfg: SeedboxConfig) -> tuple[str, str] | None:
    """None when the Synology share is mounted and writable, else (cause, why not).

    The cause is "unavailable" (not mounted, read-only, gone: a deferral, the next run
    tries again) or "permissions" (mounted, but this user may not write there: EACCES or
    EPERM, which waiting will not fix)."""
    root = cfg.syno_root
    if not root.is_dir():
        return "unavailable", f"{root} does not exist or is not a directory"
    if cfg.syno_check == "marker":
        marker = root / cfg.syno_marker
        if not marker.exists():
            return "unavailable", f"mount marker {marker} is missing (share not mounted?)"
    else:
        mountpoint = cfg.syno_mountpoint or root
        if not os.path.ismount(mountpoint):
            return "unavailable", f"{mountpoint} is not a mount point (share not mounted?)"
    probe = root / f".rush-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return (
                "permissions",
                f"{root} is mounted but not writable for this user ({exc.strerror}): "
                "check the share's rights",
            )
        return "unavailable", f"{root} is not writable: {exc.strerror}"
    return None


def free_bytes(path: Path) -> int:
    """Free space of the filesystem that will hold `path` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


@dataclass
class FileCheck:
    """The torrent's files as seen on disk, at the source and at the destination."""

    total_bytes: int = 0
    missing: list[str] = field(default_factory=list)
    hardlinked: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    #: Names that would escape the save path (absolute, `..`): never followed.
    unsafe: list[str] = field(default_factory=list)


def inspect_files(src_dir: Path, dest_dir: Path, names: list[str]) -> FileCheck:
    """Link counts and sizes at the source; files already present at the destination."""
    check = FileCheck()
    for name in names:
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts:
            check.unsafe.append(name)
            continue
        src = src_dir / name
        try:
            st = src.stat()
        except FileNotFoundError:
            check.missing.append(name)
        else:
            check.total_bytes += st.st_size
            if st.st_nlink > 1:
                check.hardlinked.append(name)
        if os.path.lexists(dest_dir / name):
            check.conflicts.append(name)
    return check


def all_present(directory: Path, names: list[str]) -> bool:
    return all((directory / n).is_file() for n in names)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def copy_atomic(src: Path, dest: Path) -> None:
    write_atomic(dest, src.read_bytes())


def nvme_footprint(src_dir: Path, files: Sequence[tuple[str, int]]) -> tuple[int, bool]:
    """(bytes a move really frees on the NVMe, whether any file is hard-linked).

    A file with another hard link (the media library's copy) stays on the NVMe under that
    name when qBittorrent moves the torrent: it frees nothing."""
    frees, linked = 0, False
    for name, size in files:
        try:
            st = (src_dir / name).stat()
        except OSError:
            continue
        if st.st_nlink > 1:
            linked = True
        else:
            frees += st.st_size or size
    return frees, linked
