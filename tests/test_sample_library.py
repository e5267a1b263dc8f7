"""The demo's sample library is real media that ffprobe and Pillow can read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from PIL import Image

from rush.layout import init_library
from rush.sample import make_sample_library


def test_sample_library_is_real_and_idempotent(tmp_path: Path) -> None:
    init_library(tmp_path)
    made = make_sample_library(tmp_path)
    kinds = {f.kind for f in made}
    assert kinds == {"video", "audio", "photo"}
    for f in made:
        path = tmp_path / "INBOX" / f.rel
        assert path.stat().st_size > 0
        if f.kind == "photo":
            with Image.open(path) as img:
                assert img.size == (1600, 1067)
        else:
            probe = subprocess.run(
                ["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            assert float(json.loads(probe.stdout)["format"]["duration"]) > 1
    # sidecars exist next to their parents
    assert list((tmp_path / "INBOX").rglob("*.XML"))
    before = {p: p.stat().st_mtime for p in (tmp_path / "INBOX").rglob("*") if p.is_file()}
    assert make_sample_library(tmp_path) == []  # second run: nothing overwritten
    after = {p: p.stat().st_mtime for p in (tmp_path / "INBOX").rglob("*") if p.is_file()}
    assert before == after
