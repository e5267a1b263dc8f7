"""DerivedWriter on a real filesystem: atomic writes that never leave `.derived`."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from integrations.derived import DerivedWriter
from rush.jobs import DerivativeRole, JobFailed
from rush.layout import init_library
from tests.media_helpers import Ctx


def test_writer_refuses_a_symlink_below_derived(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    init_library(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    aid = uuid.uuid4()
    os.symlink(outside, root / f".derived/{aid}")
    with (
        pytest.raises(JobFailed, match="symbolic link"),
        DerivedWriter(Ctx(root), f".derived/{aid}/v1") as out,
    ):
        out.write_bytes("poster.jpg", b"jpeg", DerivativeRole.POSTER, "image/jpeg")
    assert list(outside.iterdir()) == []
    # A link one level deeper is refused too, also when it appears after the writer opened.
    real = uuid.uuid4()
    with (
        pytest.raises(JobFailed, match="symbolic link"),
        DerivedWriter(Ctx(root), f".derived/{real}/v1") as out,
    ):
        (root / f".derived/{real}/v1").rename(tmp_path / "gone")
        os.symlink(outside, root / f".derived/{real}/v1")
        out.write_bytes("poster.jpg", b"jpeg", DerivativeRole.POSTER, "image/jpeg")
    assert list(outside.iterdir()) == []


def test_derived_folder_itself_may_be_a_link(tmp_path: Path) -> None:
    """The mount's `.derived` folder is trusted (it may live on another volume)."""
    root = tmp_path / "lib"
    init_library(root)
    (root / ".derived").rmdir()
    volume = tmp_path / "derived-volume"
    volume.mkdir()
    os.symlink(volume, root / ".derived")
    aid = uuid.uuid4()
    with DerivedWriter(Ctx(root), f".derived/{aid}/v1") as out:
        ref = out.write_bytes("poster.jpg", b"jpeg", DerivativeRole.POSTER, "image/jpeg")
    assert ref.path == f".derived/{aid}/v1/poster.jpg"
    assert (volume / f"{aid}/v1/poster.jpg").read_bytes() == b"jpeg"
