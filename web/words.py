"""Words for people: state names, durations, sizes, picture formats (pure, no I/O).

The lifecycle states stay the contract (URLs, API, MQTT); pages show these words instead
(docs/web.md, "Words on the pages").  The same table is handed to the JavaScript, so a
badge updated live says the same thing as one rendered by the server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rush import decisions

STATE_WORDS = decisions.STATE_WORDS


def state_word(state: Any) -> str:
    """ "Awaiting decision" for DECISION_PENDING; an unknown state is shown as it is."""
    return STATE_WORDS.get(str(state), str(state))


def duration(seconds: Any) -> str:
    """`1 min 12 s`, `2 h 03 min`, `4.2 s`; "" when unknown."""
    try:
        total = float(seconds)
    except (TypeError, ValueError):
        return ""
    if total < 0:
        return ""
    if total < 10:
        return f"{total:.1f} s"
    whole = round(total)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    return f"{m} min {s:02d} s" if m else f"{s} s"


def size(value: Any) -> str:
    """Decimal units as file managers show them: `24.3 MB`, `1.20 GB`."""
    try:
        n = float(value or 0)
    except (TypeError, ValueError):
        return ""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            if unit == "B":
                return f"{n:.0f} B"
            return f"{n:.2f} {unit}" if n < 10 else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def rate(value: Any) -> float | None:
    """A frame rate from facts: 25, 29.97, or "30000/1001"."""
    if isinstance(value, str) and "/" in value:
        num, _, den = value.partition("/")
        try:
            return float(num) / float(den) if float(den) else None
        except ValueError:
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out > 0 else None


def picture(facts: dict[str, Any]) -> str:
    """`3840×2160 · 25 fps` from the facts (display size when the file is rotated)."""
    w = facts.get("display_width") or facts.get("width")
    h = facts.get("display_height") or facts.get("height")
    if not w and isinstance(facts.get("video"), dict):
        w, h = facts["video"].get("width"), facts["video"].get("height")
    if w in ("None", "") or h in ("None", ""):
        w = h = None
    parts = []
    if w and h:
        parts.append(f"{w}×{h}")
    fps = rate(facts.get("frame_rate"))
    if fps:
        parts.append(f"{fps:.3f}".rstrip("0").rstrip(".") + " fps")
    return " · ".join(parts)


def camera(facts: dict[str, Any]) -> str:
    make, model = facts.get("camera_make") or "", facts.get("camera_model") or ""
    if make and model.lower().startswith(str(make).lower()):
        return str(model)
    return " ".join(str(p) for p in (make, model) if p)


def summary(
    facts: dict[str, Any] | list[tuple[str, Any]] | None, size_bytes: Any = None
) -> list[tuple[str, str]]:
    """The facts a person reads first, in words: duration, picture, camera, size.

    Takes the facts dict or the page's flattened (key, text) rows ("video.width")."""
    if isinstance(facts, list):
        flat: dict[str, Any] = {}
        for key, value in facts:
            flat.setdefault(key, value)
            flat.setdefault(key.rsplit(".", 1)[-1], value)
        facts = flat
    facts = facts or {}
    rows = [
        ("Duration", duration(facts.get("duration_s", facts.get("duration")))),
        ("Picture", picture(facts)),
        ("Camera", camera(facts)),
        (
            "Codec",
            " / ".join(str(c) for c in (facts.get("video_codec"), facts.get("audio_codec")) if c),
        ),
        ("Size", size(size_bytes) if size_bytes else ""),
    ]
    return [(k, v) for k, v in rows if v]


#: Facts keys whose raw value reads better in words.
_FACT_WORDS = {"duration_s": duration, "duration": duration, "size_bytes": size}


def fact_value(key: str, value: str) -> str:
    """One row of the raw facts table: durations and sizes in human units."""
    fn = _FACT_WORDS.get(key.rsplit(".", 1)[-1])
    if fn is None:
        return value
    return fn(value) or value


def capture_time(facts: dict[str, Any] | None, mtime: Any = None) -> datetime | None:
    """When the clip was shot: the file's own `created_at` (ffprobe `creation_time`, EXIF)
    when the facts carry one, else the file's modification time.  The one place to
    change once a dedicated capture-time field exists."""
    raw = (facts or {}).get("created_at")
    if isinstance(raw, str) and raw:
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        seconds = float(mtime)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None


def card_facts(facts: dict[str, Any] | None, mtime: Any = None) -> dict[str, str]:
    """What a library card says about its clip, in words (empty strings when unknown)."""
    facts = facts or {}
    shot = capture_time(facts, mtime)
    return {
        "duration": duration(facts.get("duration_s", facts.get("duration"))),
        "picture": picture(facts),
        "camera": camera(facts),
        "shot": shot.strftime("%Y-%m-%d %H:%M") if shot else "",
        "day": shot.strftime("%Y-%m-%d") if shot else "",
    }


FILTERS = {
    "state_word": state_word,
    "duration": duration,
    "human_size": size,
    "fact_value": fact_value,
}
