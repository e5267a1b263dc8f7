"""Fixtures shared by the seedbox tests that drive a real qbittorrent-nox.

"NVMe" is a folder under the test's tmp dir; "Synology" is a tmpfs mounted for the module
when the tests run as root (a real cross-filesystem move), else a plain folder.  Tests
that need a mount of their own call `need_mount()`: it skips without root, and fails when
the environment variable CI is set (a CI run must not skip them silently).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rush.config import Config
from rush.seedbox.state import SeedState, write_state
from rush.storage import close_db, init_db
from tests.seedbox_support import (
    Qbit,
    add_seeding,
    make_torrent,
    running_qbittorrent,
    seedbox_config,
    tmpfs,
    torrent_info,
)
from tests.support.environment import unavailable

SEEDING = {"stalledUP", "uploading", "queuedUP", "forcedUP"}


def need_mount(what: str) -> None:
    """Skip (or fail under CI) when this process cannot mount a tmpfs."""
    if os.geteuid() != 0:
        unavailable(f"{what} needs root and mount")


def mount_tmpfs(path: Path, size_kb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        unavailable(f"cannot mount a tmpfs on {path}: {res.stderr}")


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="module", name="qbit")
def qbit_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Qbit]:
    with running_qbittorrent(tmp_path_factory.mktemp("qbt")) as q:
        yield q


@pytest.fixture(scope="module", name="syno_mount")
def syno_mount_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("syno-mnt")
    with tmpfs(path) as mounted:
        if not mounted:
            # Fallback: one filesystem; qBittorrent then renames instead of copying.
            print("note: could not mount a tmpfs; NVMe and Synology share one filesystem")
        yield path


@dataclass
class Env:
    config: Config
    nvme: Path
    syno: Path
    qbit: Qbit
    base: Path

    def torrent(
        self,
        name: str,
        files: dict[str, int],
        category: str = "tv",
        sub: str = "tv",
        source: str | None = None,
    ) -> tuple[str, dict[str, bytes]]:
        """Create, add and wait for a seeding torrent; return its hash and file contents.
        The same name and files with another `source` (a private tracker's info-dict flag,
        so another infohash) make a cross-seed of the same data."""
        save = self.nvme / sub
        infohash, data = make_torrent(save, name, files, seed=hash(name) & 0xFFFF, source=source)
        add_seeding(self.qbit.client(), data, infohash, save, category)
        root = save / name
        contents = (
            {"": root.read_bytes()}
            if root.is_file()
            else {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        )
        return infohash, contents

    def state(self, infohash: str, age_s: int = 7200, kind: str = "added", **extra: object) -> Path:
        data: dict[str, object] = {
            "kind": kind,
            "infohash": infohash,
            "added_epoch": int(time.time()) - age_s,
            "source": "sonarr",
            "title": f"title-{infohash[:6]}",
            "imported_paths": [f"/media/tv/{infohash}.mkv"],
        }
        if kind == "upgrade":
            data["old_paths"] = ["/media/tv/old.mkv"]
            data["new_paths"] = data["imported_paths"]
        data.update(extra)
        return write_state(self.config.seedbox.state_dir, SeedState.model_validate(data))

    def info(self, infohash: str) -> dict[str, object]:
        return torrent_info(self.qbit.client(), infohash)

    def save_path(self, infohash: str) -> str:
        return _norm(self.info(infohash)["save_path"])

    def log_text(self) -> str:
        path = self.config.seedbox.log_dir / "relocator.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.fixture(name="env")
async def env_fixture(tmp_path: Path, qbit: Qbit, syno_mount: Path) -> AsyncIterator[Env]:
    nvme = tmp_path / "nvme"
    nvme.mkdir()
    syno = syno_mount / uuid.uuid4().hex[:8]
    syno.mkdir()
    config = seedbox_config(tmp_path, qbit.url, nvme, syno)
    (syno / config.seedbox.syno_marker).write_text("synology\n")
    await init_db(config.database_url())
    try:
        yield Env(config, nvme, syno, qbit, tmp_path)
    finally:
        await close_db()


def _norm(path: object) -> str:
    return os.path.normpath(str(path))


def _mount_read_only_tmpfs(path: Path, marker: str) -> bool:
    """A writable-looking but read-only "Synology": a tmpfs remounted read-only."""
    if os.geteuid() != 0:
        return False
    path.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)])
    if res.returncode != 0:
        return False
    (path / marker).write_text("x")
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
    return True


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False)


def assert_same_data(root: Path, contents: dict[str, bytes]) -> None:
    for rel, data in contents.items():
        path = root / rel if rel else root
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest(), path
