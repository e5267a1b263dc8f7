"""Batch and purge failures say, in words, which file or folder and what went wrong."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from rush.fserrors import describe_os_error
from rush.lifecycle import AssetState
from rush.models import Asset
from rush.moves.run import run_apply
from tests.batch_helpers import make_asset, make_config
from tests.support.environment import unavailable

S = AssetState


def chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_os_errors_in_words() -> None:
    assert (
        describe_os_error(PermissionError(errno.EPERM, "x", "/v/a")) == "permission denied on /v/a"
    )
    assert (
        describe_os_error(PermissionError(errno.EACCES, "x"), "/v/b") == "permission denied on /v/b"
    )
    assert describe_os_error(OSError(errno.ENOSPC, "x"), "/v/c") == (
        "no space left on the volume of /v/c"
    )
    assert describe_os_error(OSError(errno.EBADMSG, "Bad message"), "/v/d") == (
        "Bad message on /v/d"
    )


async def test_a_folder_that_cannot_be_created_is_permission_denied_not_a_missing_volume(
    db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    cfg = make_config(root, db)
    a = await make_asset(root, "INBOX/new/clip.mp4", S.DECIDED_KEEP)
    archive = root / "ARCHIVE"
    if not chattr("+i", archive):
        if os.environ.get("CI"):
            pytest.fail("chattr +i is needed (root on ext4/xfs/tmpfs) and is not available")
        unavailable("chattr +i is not available on this filesystem")
    try:
        report = await run_apply(cfg, "hana")
    finally:
        assert chattr("-i", archive)
    (failed,) = report.failed
    assert failed["rel_path"] == "INBOX/new/clip.mp4"
    assert failed["reason"] == (
        f"cannot create folder ARCHIVE/new: permission denied on {archive / 'new'}"
    )
    assert "volume" not in failed["reason"]
    assert (await Asset.get(id=a.id)).state is S.DECIDED_KEEP
    assert (root / "INBOX/new/clip.mp4").exists()
