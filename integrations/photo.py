"""Photo facts (EXIF) and oriented thumbnails with Pillow, pillow-heif and optionally rawpy.

Synchronous and CPU-bound: the processor runs these functions in a worker thread.
RAW files: with `rawpy` installed (optional; its wheels bundle LibRaw) the embedded
camera preview is used; without it Pillow opens TIFF-based RAW/DNG when their first
image is a readable preview, and anything else fails with a clear message.
"""

from __future__ import annotations

import io
import struct
import warnings
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from integrations import memory, raw_containers
from rush.jobs import JobFailed

try:  # HEIC/HEIF support; registered once at import.
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_OK = True
except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
    HEIF_OK = False

RAW_EXTENSIONS = frozenset(
    {"cr2", "cr3", "nef", "nrw", "arw", "dng", "raf", "orf", "rw2", "pef", "srw", "gpr"}
)

#: The agent's memory budget (`agent.max_memory_mb`), set by the processor before each job.
MAX_MEMORY_MB = 768


def set_memory_budget(max_memory_mb: int) -> None:
    """Decode within `max_memory_mb`: Pillow's decompression-bomb guard follows it (real
    100+ MP JPEG panoramas still open, they decode at a reduced scale)."""
    global MAX_MEMORY_MB
    MAX_MEMORY_MB = max_memory_mb
    # Pillow refuses above twice this (and warns between once and twice).
    Image.MAX_IMAGE_PIXELS = memory.pixel_limit(max_memory_mb) // 2


set_memory_budget(MAX_MEMORY_MB)

_T = ExifTags.Base


def rawpy_available() -> bool:
    try:
        import rawpy  # noqa: F401
    except ImportError:
        return False
    return True


def _ratio(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        value = value.strip("\x00 ").strip()
        return value or None
    return None


def _exif_date(value: Any, offset: Any = None) -> str | None:
    """EXIF `2024:07:14 18:03:22` (+ OffsetTime) -> ISO 8601."""
    text = _text(value)
    if not text:
        return None
    try:
        parsed = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = parsed.isoformat()
    off = _text(offset)
    if off and len(off) == 6 and off[0] in "+-":
        iso += off
    return iso


def _gps_coord(values: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(v) for v in values)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    coord = d + m / 60 + s / 3600
    if _text(ref) in ("S", "W"):
        coord = -coord
    return round(coord, 7)


def _exposure(value: Any) -> str | None:
    seconds = _ratio(value)
    if seconds is None or seconds <= 0:
        return None
    if seconds < 1:
        return f"1/{round(1 / seconds)}"
    return f"{Fraction(seconds).limit_denominator(10)}"


def exif_facts(exif: Image.Exif) -> dict[str, Any]:
    """Stable EXIF keys (None when absent); see docs/processing.md."""
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps = None
    if gps_ifd:
        lat = _gps_coord(
            gps_ifd.get(ExifTags.GPS.GPSLatitude), gps_ifd.get(ExifTags.GPS.GPSLatitudeRef)
        )
        lon = _gps_coord(
            gps_ifd.get(ExifTags.GPS.GPSLongitude), gps_ifd.get(ExifTags.GPS.GPSLongitudeRef)
        )
        if lat is not None and lon is not None:
            alt = _ratio(gps_ifd.get(ExifTags.GPS.GPSAltitude))
            gps = {"lat": lat, "lon": lon, "alt": round(alt, 2) if alt is not None else None}
    iso = sub.get(_T.ISOSpeedRatings)
    if isinstance(iso, tuple):
        iso = iso[0] if iso else None
    orientation = exif.get(_T.Orientation)
    return {
        "camera_make": _text(exif.get(_T.Make)),
        "camera_model": _text(exif.get(_T.Model)),
        "lens_model": _text(sub.get(_T.LensModel)),
        "exposure_time": _exposure(sub.get(_T.ExposureTime)),
        "f_number": _ratio(sub.get(_T.FNumber)),
        "iso": int(iso) if isinstance(iso, int | float) else None,
        "focal_length_mm": _ratio(sub.get(_T.FocalLength)),
        "taken_at": _exif_date(
            sub.get(_T.DateTimeOriginal) or exif.get(_T.DateTime), sub.get(_T.OffsetTimeOriginal)
        ),
        "orientation": int(orientation)
        if isinstance(orientation, int) and 1 <= orientation <= 8
        else 1,
        "software": _text(exif.get(_T.Software)),
        "gps": gps,
    }


#: LibRaw `sizes.flip` -> EXIF orientation.
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}


def raw_exif(path: Path) -> Image.Exif:
    """EXIF of a RAW read from its first megabytes: the TIFF header of DNG, NEF, CR2,
    ARW, PEF…, the CMT boxes of a CR3, the embedded JPEG of a RAF
    (integrations/raw_containers.py).  Anything else gives an empty result.
    """
    exif = Image.Exif()
    with path.open("rb") as fh:
        head = fh.read(4 << 20)
    if head[4:12] == b"ftypcrx ":
        return raw_containers.cr3_exif(head)
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return raw_containers.raf_exif(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        try:
            exif.load(head)
        except (OSError, ValueError, SyntaxError, struct.error):
            return Image.Exif()
    return exif


def _open_raw(
    path: Path, sizes_only: bool = False
) -> tuple[Image.Image, int, tuple[int, int]] | None:
    """(upright image, orientation, stored size) of a RAW file through rawpy/LibRaw.

    Uses the camera's embedded preview when there is one, else demosaics at half size.
    Returns None when rawpy is not installed or LibRaw does not know the file;
    `sizes_only` skips decoding (facts).
    """
    try:
        import rawpy
    except ImportError:
        return None
    try:
        with rawpy.imread(str(path)) as raw:
            orientation = _FLIP_TO_ORIENTATION.get(raw.sizes.flip, 1)
            size = (raw.sizes.width, raw.sizes.height)
            if sizes_only:
                return Image.new("L", (1, 1)), orientation, size
            try:
                thumb = raw.extract_thumb()
            except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
                # LibRaw applies the orientation itself when it renders.
                rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                return Image.fromarray(rgb), orientation, size
    except rawpy.LibRawFileUnsupportedError:
        return None  # not a RAW LibRaw knows: Pillow may still read a TIFF-based file
    except Exception as exc:  # rawpy raises its own LibRaw error classes
        raise JobFailed(f"cannot read RAW file {path.name}: {exc}") from exc
    preview: Image.Image
    if thumb.format == rawpy.ThumbFormat.JPEG:
        preview = Image.open(io.BytesIO(bytes(thumb.data)))
        preview.load()
    else:
        preview = Image.fromarray(thumb.data)  # type: ignore[arg-type]
    if preview.getexif().get(_T.Orientation, 1) in (None, 1) and orientation != 1:
        # Camera previews are stored like the sensor data: turn them as the RAW says.
        preview = _ORIENT_OPS[orientation](preview)
    else:
        preview = ImageOps.exif_transpose(preview)
    return preview, orientation, size


_ORIENT_OPS = {
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_270),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_90),
}


def open_photo(path: Path) -> Image.Image:
    """Open a photo (HEIC, RAW preview...) or raise JobFailed with the reason."""
    ext = path.suffix.lower().lstrip(".")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd but readable TIFF tags
            img = Image.open(path)
    except UnidentifiedImageError as exc:
        hint = " (install rawpy for RAW support)" if ext in RAW_EXTENSIONS else ""
        raise JobFailed(f"not a readable image{hint}: {path.name}") from exc
    except (OSError, Image.DecompressionBombError) as exc:
        raise JobFailed(f"cannot open image {path.name}: {exc}") from exc
    return img


def is_raw(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in RAW_EXTENSIONS


def photo_facts(path: Path) -> dict[str, Any]:
    """Facts of one photo: format, dimensions (as displayed) and EXIF."""
    opened = _open_raw(path, sizes_only=True) if is_raw(path) else None
    if opened is not None:
        _, orientation, (width, height) = opened
        raw_facts: dict[str, Any] = {
            "format": "RAW",
            "mime": None,
            "size_bytes": path.stat().st_size,
            "mode": None,
            "width": width,
            "height": height,
        }
        raw_facts.update(exif_facts(raw_exif(path)))
        raw_facts["orientation"] = orientation
        return _display(raw_facts)
    img = open_photo(path)
    with img:
        facts: dict[str, Any] = {
            "format": img.format,
            "mime": Image.MIME.get(img.format or "", None),
            "size_bytes": path.stat().st_size,
            "mode": img.mode,
            "width": img.width,
            "height": img.height,
        }
        facts.update(exif_facts(_exif_within_budget(img)))
        if img.format == "TIFF" and facts["orientation"] in (5, 6, 7, 8):
            # Pillow's TIFF reader already reports the displayed size: keep stored pixels here.
            facts["width"], facts["height"] = img.height, img.width
    return _display(facts)


def _exif_within_budget(img: Image.Image) -> Image.Exif:
    """The image's EXIF without decoding it when that would not fit the budget: Pillow
    decodes a whole PNG to look for an eXIf chunk after the pixels."""
    if img.format == "PNG" and "exif" not in img.info:
        need = memory.decoded_bytes(img.width, img.height, img.mode)
        if need > memory.pixel_budget_bytes(MAX_MEMORY_MB):
            return Image.Exif()
    return img.getexif()


def _display(facts: dict[str, Any]) -> dict[str, Any]:
    swapped = facts["orientation"] in (5, 6, 7, 8)
    facts["display_width"] = facts["height"] if swapped else facts["width"]
    facts["display_height"] = facts["width"] if swapped else facts["height"]
    facts["has_audio"] = False
    return facts


def photo_thumbnails(path: Path, sizes: list[int], quality: int = 82) -> list[tuple[int, bytes]]:
    """JPEG thumbnails whose longest side is each of `sizes`, upright (EXIF orientation).

    Memory is bounded by `MAX_MEMORY_MB`: a JPEG is decoded at a reduced scale (`draft`:
    libjpeg scales by 1/2, 1/4 or 1/8 while decoding, which is also most of the speed);
    an image that can only be decoded at full size (PNG, TIFF, HEIF...) is refused with
    the reason when its pixels alone would not fit.  The image is reduced before it is
    turned upright or converted, so no second full-size copy is ever made.
    """
    opened = _open_raw(path) if is_raw(path) else None
    img = opened[0] if opened is not None else open_photo(path)
    try:
        biggest = max(sizes)
        if img.format == "JPEG":
            img.draft("RGB", (biggest, biggest))
        _check_budget(img, path)
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise JobFailed(f"corrupt or truncated image {path.name}: {exc}") from exc
        orientation = img.getexif().get(_T.Orientation, 1)
        if img.mode not in ("RGB", "L"):
            img = _replace(img, img.convert("RGB"))
        if max(img.size) > biggest:
            scale = biggest / max(img.size)
            target = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            img = _replace(img, img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0))
        upright = _TURN.get(orientation, lambda im: im)(img)
        out: list[tuple[int, bytes]] = []
        current = upright
        for size in sorted(set(sizes), reverse=True):
            current = current.copy()
            current.thumbnail((size, size), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            current.save(buf, "JPEG", quality=quality, optimize=False, progressive=size >= 1000)
            out.append((size, buf.getvalue()))
        return sorted(out)
    finally:
        img.close()


def _replace(old: Image.Image, new: Image.Image) -> Image.Image:
    """`new` in place of `old`, whose pixels are freed at once."""
    old.close()
    return new


def _check_budget(img: Image.Image, path: Path) -> None:
    need = memory.decoded_bytes(img.width, img.height, img.mode)
    budget = memory.pixel_budget_bytes(MAX_MEMORY_MB)
    if need > budget:
        raise JobFailed(
            f"{path.name}: a {img.width}x{img.height} {img.format or ''} image needs about "
            f"{need >> 20} MB to decode at full size ({img.format or 'this format'} cannot be "
            f"decoded at a reduced scale), over this agent's budget of {budget >> 20} MB for "
            f"one image (half of agent.max_memory_mb = {MAX_MEMORY_MB}); give an agent "
            "with more memory a larger agent.max_memory_mb, or store the image as JPEG"
        )


#: EXIF orientation -> the transposition that makes the image upright.
_TURN = {
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_270),
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_90),
}
