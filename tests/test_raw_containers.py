"""EXIF of CR3 and RAF files (built here byte by byte: an ISO BMFF with Canon's CMT
boxes, a RAF header with an embedded JPEG) instead of the nulls they used to give."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import Image

from integrations import photo, raw_containers


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _tiff(tags: dict[int, object]) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    return exif.tobytes()[6:]  # without "Exif\0\0": a bare TIFF, as in the CMT boxes


def write_cr3(path: Path) -> None:
    cmt1 = _tiff({0x010F: "Canon", 0x0110: "Canon EOS R6m2"})
    cmt2 = _tiff({0x9003: "2026:06:14 10:31:00", 0x8827: 800, 0xA434: "RF50mm F1.8 STM"})
    canon = _box(b"uuid", raw_containers.CANON_UUID + _box(b"CMT1", cmt1) + _box(b"CMT2", cmt2))
    data = _box(b"ftyp", b"crx " + b"\x00\x00\x00\x01" + b"crx isom") + _box(b"moov", canon)
    path.write_bytes(data + b"\x00" * 1000)


def write_raf(path: Path) -> None:
    img = Image.new("RGB", (64, 48), (200, 100, 50))
    exif = Image.Exif()
    exif[0x010F] = "FUJIFILM"
    exif[0x0110] = "X-T5"
    exif[0x8769] = {0x9003: "2026:06:15 08:00:00", 0x8827: 125}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    jpeg = buf.getvalue()
    header = b"FUJIFILMCCD-RAW 0201FF383501X-T5".ljust(84, b"\x00")
    offset = 148
    head = header + struct.pack(">II", offset, len(jpeg))
    path.write_bytes(head.ljust(offset, b"\x00") + jpeg + b"\x00" * 500)


def test_cr3_and_raf_exif_is_read(tmp_path: Path) -> None:
    write_cr3(tmp_path / "IMG_0001.CR3")
    write_raf(tmp_path / "DSCF0001.RAF")
    cr3 = photo.exif_facts(photo.raw_exif(tmp_path / "IMG_0001.CR3"))
    assert (cr3["camera_make"], cr3["camera_model"]) == ("Canon", "Canon EOS R6m2")
    assert cr3["taken_at"] == "2026-06-14T10:31:00" and cr3["iso"] == 800
    assert cr3["lens_model"] == "RF50mm F1.8 STM"
    raf = photo.exif_facts(photo.raw_exif(tmp_path / "DSCF0001.RAF"))
    assert (raf["camera_make"], raf["camera_model"], raf["iso"]) == ("FUJIFILM", "X-T5", 125)
    assert raf["taken_at"] == "2026-06-15T08:00:00"


def test_damaged_containers_give_empty_exif(tmp_path: Path) -> None:
    (tmp_path / "bad.CR3").write_bytes(_box(b"ftyp", b"crx ") + b"\xff" * 40)
    (tmp_path / "bad.RAF").write_bytes(b"FUJIFILMCCD-RAW" + b"\x00" * 69 + b"\xff" * 8)
    for name in ("bad.CR3", "bad.RAF"):
        facts = photo.exif_facts(photo.raw_exif(tmp_path / name))
        assert facts["camera_model"] is None and facts["taken_at"] is None
