"""EXIF of the RAW containers that are not TIFF-based: Canon CR3 (ISO base media file
with the EXIF in `CMT1`…`CMT4` boxes) and Fujifilm RAF (EXIF in its embedded JPEG).

Why by hand: Pillow reads a TIFF header, which covers DNG/NEF/CR2/ARW, but these two
wrap theirs differently; LibRaw (rawpy) decodes them but does not hand out EXIF.  Only
the first megabytes are read; a file that is not what it claims gives an empty result.
Contract: docs/processing.md, "Photo formats and their limits".
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from PIL import ExifTags, Image

#: The Canon metadata box inside a CR3's `moov`.
CANON_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISO BMFF boxes in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _tiff(data: bytes) -> Image.Exif:
    exif = Image.Exif()
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        try:
            exif.load(data)
        except (OSError, ValueError, SyntaxError, struct.error):
            return Image.Exif()
    return exif


def cr3_exif(head: bytes) -> Image.Exif:
    if head[4:8] != b"ftyp" or head[8:12] != b"crx ":
        return Image.Exif()
    cmt: dict[bytes, Image.Exif] = {}
    for kind, a, b in _boxes(head):
        if kind != b"moov":
            continue
        for inner, c, d in _boxes(head, a, b):
            if inner == b"uuid" and head[c : c + 16] == CANON_UUID:
                for box, e, f in _boxes(head, c + 16, d):
                    if box in (b"CMT1", b"CMT2", b"CMT4"):
                        cmt[box] = _tiff(head[e:f])
    if b"CMT1" not in cmt:
        return Image.Exif()
    merged = Image.Exif()
    for tag, value in cmt[b"CMT1"].items():
        if tag not in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
            merged[tag] = value
    if cmt.get(b"CMT2"):
        merged[ExifTags.IFD.Exif] = dict(cmt[b"CMT2"])
    if cmt.get(b"CMT4"):
        merged[ExifTags.IFD.GPSInfo] = dict(cmt[b"CMT4"])
    out = Image.Exif()
    try:
        out.load(merged.tobytes())
    except (OSError, ValueError, SyntaxError, struct.error):
        return Image.Exif()
    return out


def raf_exif(head: bytes) -> Image.Exif:
    """The APP1 EXIF segment of the JPEG a RAF embeds (offset at byte 84, big-endian)."""
    if not head.startswith(b"FUJIFILMCCD-RAW") or len(head) < 92:
        return Image.Exif()
    offset, length = struct.unpack(">II", head[84:92])
    jpeg = head[offset : offset + min(length, 1 << 20)]
    if jpeg[:2] != b"\xff\xd8":
        return Image.Exif()
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        size = struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        segment = jpeg[pos + 4 : pos + 2 + size]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return _tiff(segment[6:])
        if marker in (0xDA, 0xD9):  # image data: no EXIF before it
            break
        pos += 2 + size
    return Image.Exif()
