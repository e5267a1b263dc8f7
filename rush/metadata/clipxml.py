"""Camera clip XML sidecars: Sony XAVC/XDCAM `NonRealTimeMeta` (`C0001M01.XML`),
Panasonic P2 (`P2Main` clip XML) and Canon Cinema EOS / XF clip XML: camera make and
model, serial number, start timecode, capture and recording frame rates, creation time.

Why by structure rather than by file name: cameras name these files differently but
each vendor's root element is stable.  Parsed with defusedxml (no DTD, no entities).
Contract: docs/processing.md, "XMP and camera sidecars".
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MAX_CLIP_XML_BYTES = 2 * 1024 * 1024


class ClipXmlError(ValueError):
    """Clip XML that cannot be used, phrased for a human."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(root: Element, *names: str) -> Element | None:
    wanted = {n.lower() for n in names}
    for el in root.iter():
        if _local(el.tag).lower() in wanted:
            return el
    return None


def _text(root: Element, *names: str) -> str | None:
    el = _find(root, *names)
    if el is None:
        return None
    text = (el.text or "").strip()
    return text or el.attrib.get("value") or None


def _fps(value: str | None) -> float | None:
    """'25p', '59.94i', '23.98', '1001/24000' (an edit unit) -> frames per second."""
    if not value:
        return None
    if "/" in value:
        num, _, den = value.partition("/")
        try:
            return round(float(den) / float(num), 3)
        except (ValueError, ZeroDivisionError):
            return None
    match = re.match(r"^\s*(\d+(?:\.\d+)?)", value)
    return float(match.group(1)) if match else None


def _sony(root: Element) -> dict[str, Any]:
    device = _find(root, "Device")
    attrs = device.attrib if device is not None else {}
    ltc = _find(root, "LtcChangeTable")
    start_tc = None
    if ltc is not None:
        for change in ltc:
            if change.attrib.get("status") == "increment" or start_tc is None:
                start_tc = change.attrib.get("value")
                break
    video = _find(root, "VideoFrame")
    created = _find(root, "CreationDate")
    return {
        "camera_make": attrs.get("manufacturer"),
        "camera_model": attrs.get("modelName"),
        "camera_serial": attrs.get("serialNo"),
        "start_timecode": _sony_tc(start_tc),
        "capture_fps": _fps(video.attrib.get("captureFps")) if video is not None else None,
        "format_fps": _fps(video.attrib.get("formatFps")) if video is not None else None,
        "timecode_fps": _fps(ltc.attrib.get("tcFps")) if ltc is not None else None,
        "created": created.attrib.get("value") if created is not None else None,
    }


def _sony_tc(value: str | None) -> str | None:
    """Sony writes LTC as 8 hex-ish digits FFSSMMHH (frames first): '00000001' -> 01:00:00:00."""
    if not value or not re.fullmatch(r"\d{8}", value):
        return value
    ff, ss, mm, hh = value[0:2], value[2:4], value[4:6], value[6:8]
    return f"{hh}:{mm}:{ss}:{ff}"


def _panasonic(root: Element) -> dict[str, Any]:
    return {
        "camera_make": _text(root, "Manufacturer"),
        "camera_model": _text(root, "ModelName"),
        "camera_serial": _text(root, "SerialNo.", "SerialNo"),
        "start_timecode": _text(root, "StartTimecode"),
        "capture_fps": _fps(_text(root, "FrameRate")) or _fps(_text(root, "EditUnit")),
        "format_fps": _fps(_text(root, "EditUnit")),
        "timecode_fps": None,
        "created": _text(root, "CreationDate", "StartDate"),
    }


def _canon(root: Element) -> dict[str, Any]:
    return {
        "camera_make": _text(root, "Manufacturer", "Maker") or "Canon",
        "camera_model": _text(root, "ModelName", "Model", "CameraModel"),
        "camera_serial": _text(root, "SerialNumber", "BodySerialNumber", "SerialNo"),
        "start_timecode": _text(root, "StartTimecode", "StartTC", "TimeCode"),
        "capture_fps": _fps(_text(root, "CaptureFrameRate", "ShootingFrameRate", "FrameRate")),
        "format_fps": _fps(_text(root, "FrameRate", "RecordingFrameRate")),
        "timecode_fps": None,
        "created": _text(root, "ShootingDate", "CreationDate", "RecordingDate", "StartDate"),
    }


VENDORS = {"NonRealTimeMeta": _sony, "P2Main": _panasonic}


def parse(raw: bytes, name: str = "clip.xml") -> dict[str, Any]:
    """The camera facts of a clip XML; ClipXmlError for bad or unknown files."""
    if len(raw) > MAX_CLIP_XML_BYTES:
        raise ClipXmlError(f"{name} is {len(raw) / 1e6:.1f} MB, too large for clip XML")
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ClipXmlError(f"{name}: refused, it declares a DTD or entities") from exc
    except SafeET.ParseError as exc:
        raise ClipXmlError(f"{name}: not valid XML ({exc})") from exc
    tag = _local(root.tag)
    reader = VENDORS.get(tag)
    if reader is None and (
        "canon" in (SafeET.tostring(root, encoding="unicode")[:4000]).lower()
        or tag in ("ClipInfo", "CanonClipMeta", "XF_Clip")
    ):
        reader = _canon
    if reader is None:
        raise ClipXmlError(f"{name}: clip XML from an unknown camera (root element <{tag}>)")
    facts = reader(root)
    facts["vendor_format"] = tag
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in facts.items()}
