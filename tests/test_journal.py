"""The move primitives on real filesystems: never overwrite, verify copies, stay inside."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rush.layout import UnsafePath
from rush.moves import journal
from tests.support.environment import unavailable


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "other"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], check=False).returncode:
        unavailable("needs root to mount a tmpfs volume")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture(params=["renameat2", "link", "check-then-rename"])
def mechanism(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Exercise each same-filesystem mechanism (the fallbacks are forced, not faked)."""
    if request.param != "renameat2":
        monkeypatch.setattr(journal, "_renameat2", None)
        monkeypatch.setattr(journal, "_renameat2_missing", True)
    if request.param == "check-then-rename":

        def no_links(*_: object) -> None:
            raise OSError(errno.EPERM, "hard links not supported here")

        monkeypatch.setattr(os, "link", no_links)
    return str(request.param)


def test_rename_never_overwrites(tmp_path: Path, mechanism: str) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"mine")
    dst.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        journal.rename_noreplace(src, dst)
    assert src.read_bytes() == b"mine" and dst.read_bytes() == b"theirs"
    free = tmp_path / "c"
    assert journal.move_file(src, free) == "rename"
    assert free.read_bytes() == b"mine" and not src.exists()


def test_cross_filesystem_move_verifies_and_never_overwrites(
    tmp_path: Path, other_fs: Path
) -> None:
    src = tmp_path / "clip.mp4"
    data = os.urandom(3 << 20)
    src.write_bytes(data)
    os.utime(src, (1_000_000, 1_000_000))
    taken = other_fs / "taken.mp4"
    taken.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        journal.move_file(src, taken)
    assert taken.read_bytes() == b"theirs" and src.exists()
    dst = other_fs / "clip.mp4"
    assert journal.move_file(src, dst) == "copy"
    assert dst.read_bytes() == data and not src.exists()
    assert dst.stat().st_mtime == 1_000_000
    assert not journal.tmp_name(dst).exists()


def test_missing_or_symlinked_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        journal.move_file(tmp_path / "nope", tmp_path / "dst")
    target = tmp_path / "t"
    target.write_text("x")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(FileNotFoundError):
        journal.move_file(tmp_path / "link", tmp_path / "dst")
    assert target.exists() and not (tmp_path / "dst").exists()


def test_remove_tree_stays_inside(tmp_path: Path) -> None:
    container = tmp_path / ".derived" / "u"
    (container / "v1").mkdir(parents=True)
    (container / "v1" / "proxy.mp4").write_bytes(b"p")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("k")
    (container / "v0").symlink_to(victim)
    with pytest.raises(UnsafePath):
        journal.remove_tree_inside(container / "v0", container)
    with pytest.raises(UnsafePath):
        journal.remove_tree_inside(victim, container)
    assert (victim / "keep").exists()
    assert journal.remove_tree_inside(container / "v1", container) is True
    assert not (container / "v1").exists()
    assert journal.remove_tree_inside(container / "v1", container) is False


def test_roots_refuse_escapes(tmp_path: Path) -> None:
    roots = journal.Roots(tmp_path / "lib", tmp_path / "arch", tmp_path / "rej")
    assert roots.path("ARCHIVE/a/b.mp4") == tmp_path / "arch/a/b.mp4"
    assert roots.path("REJECTS/b.mp4") == tmp_path / "rej/b.mp4"
    assert roots.path("INBOX/c.mp4") == tmp_path / "lib/INBOX/c.mp4"
    for bad in ("ARCHIVE/../../etc/passwd", "/etc/passwd", "INBOX/../../x", ""):
        with pytest.raises(UnsafePath):
            roots.path(bad)


def chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@pytest.fixture
def dir_fsync_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem that answers EINVAL to a folder fsync (as some network shares do)."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_cross_filesystem_move_is_undone_when_the_source_cannot_be_removed(
    tmp_path: Path, other_fs: Path
) -> None:
    src = tmp_path / "clip.mp4"
    data = os.urandom(1 << 20)
    src.write_bytes(data)
    dst = other_fs / "clip.mp4"
    if not chattr("+i", src):  # immutable: even root cannot unlink it
        unavailable("chattr +i is not available on this filesystem")
    try:
        with pytest.raises(PermissionError):
            journal.move_file(src, dst)
    finally:
        assert chattr("-i", src)
    assert src.read_bytes() == data
    assert not dst.exists() and not journal.tmp_name(dst).exists()


def test_link_fallback_move_is_undone_when_the_source_cannot_be_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "_renameat2", None)
    monkeypatch.setattr(journal, "_renameat2_missing", True)
    folder = tmp_path / "in"
    folder.mkdir()
    src, dst = folder / "a.mp4", tmp_path / "a.mp4"
    src.write_bytes(b"mine")
    if not chattr("+a", folder):  # append-only folder: entries cannot be removed
        unavailable("chattr +a is not available on this filesystem")
    try:
        with pytest.raises(PermissionError):
            journal.move_file(src, dst)
    finally:
        assert chattr("-a", folder)
    assert src.read_bytes() == b"mine" and not dst.exists()


def test_unsupported_folder_fsync_does_not_fail_a_move(
    tmp_path: Path, other_fs: Path, dir_fsync_refused: None
) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"clip")
    assert journal.move_file(src, other_fs / "clip.mp4") == "copy"
    assert (other_fs / "clip.mp4").read_bytes() == b"clip" and not src.exists()
    with pytest.raises(OSError):  # a real error still is one
        journal.fsync_dir(tmp_path / "nope")
