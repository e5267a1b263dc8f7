"""When an asset was shot, and where that came from (pure).

Order: EXIF DateTimeOriginal (`facts.taken_at`) -> QuickTime `creation_time`
(`facts.created_at`) -> XMP (`xmp:CreateDate`…) -> camera clip XML (`CreationDate`) ->
the file's mtime.  A time without a zone is taken as UTC (cameras rarely record one).
Contract: docs/processing.md, "Capture time".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_EXIF = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
#: Before film cameras had clocks, or a camera whose battery died (1970, 2000-01-01).
_EARLIEST = datetime(1980, 1, 2, tzinfo=UTC).timestamp()


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 or EXIF-style time, or None if it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    match = _EXIF.match(text)
    if match:
        text = "{}-{}-{}T{}:{}:{}".format(*match.groups()) + text[match.end() :]
    text = text.replace("Z", "+00:00").replace(" ", "T", 1)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text[:10])
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ts = when.timestamp()
    return ts if ts >= _EARLIEST else None


def capture_time(
    facts: dict[str, Any] | None,
    xmp_created: str | None,
    clip_created: str | None,
    mtime: float,
) -> tuple[float, str]:
    facts = facts or {}
    for value, source in (
        (facts.get("taken_at"), "exif"),
        (facts.get("created_at"), "quicktime"),
        (xmp_created, "xmp"),
        (clip_created, "clip_xml"),
    ):
        ts = parse_time(value)
        if ts is not None:
            return ts, source
    return mtime, "mtime"


def camera_of(facts: dict[str, Any] | None, clip: dict[str, Any] | None) -> str | None:
    """'Sony ILME-FX3': make and model, the make left out when the model repeats it."""
    for source in (facts or {}, clip or {}):
        make = str(source.get("camera_make") or "").strip()
        model = str(source.get("camera_model") or "").strip()
        if model:
            if make and not model.lower().startswith(make.lower()):
                return f"{make} {model}"[:128]
            return model[:128]
    return None
