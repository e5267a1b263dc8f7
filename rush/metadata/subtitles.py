"""SubRip (.srt) and WebVTT (.vtt) sidecars: dialogue becomes a transcript, drone
telemetry (DJI-style cues with FrameCnt, iso, latitude…) becomes facts.

Why pure: subtitles come from cameras, editors and phones in every encoding and state of
repair; parsing is where the bad input is, so it is tested on bytes, without I/O.
Contract: docs/processing.md, "Subtitle sidecars".
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any

#: A subtitle file larger than this is refused (a feature film's .srt is ~100 KB; a
#: ten-hour drone telemetry track at 30 cues a second is ~40 MB and still not dialogue).
MAX_SUBTITLE_BYTES = 16 * 1024 * 1024
#: Share of cues that must look like telemetry for the file to be telemetry.
TELEMETRY_SHARE = 0.5

_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_TELEMETRY = re.compile(r"FrameCnt|\[iso\s*:|latitude|GPS\s*\(|\bHOME\s*\(", re.IGNORECASE)
_NUM = r"(-?\d+(?:\.\d+)?)"


class SubtitleError(ValueError):
    """A subtitle file that cannot be used, phrased for a human."""


@dataclass
class Cue:
    start: float
    end: float
    text: str


@dataclass
class Subtitles:
    cues: list[Cue]
    encoding: str
    #: Cues skipped because their timing line was malformed (reported, not fatal).
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def decode(raw: bytes) -> tuple[str, str]:
    """(text, encoding): BOMs first (UTF-8, UTF-16 LE/BE), then UTF-8, then CP1252, the
    legacy Windows encoding most old subtitles are in (Latin-1 for its 5 holes)."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if raw.startswith(bom):
            try:
                return raw.decode(name), name
            except UnicodeDecodeError as exc:
                raise SubtitleError(f"damaged {name} text: {exc.reason}") from exc
    if b"\x00" in raw[:4096]:
        raise SubtitleError("binary data, not a subtitle file")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")[:3]) / 1000


def check_size(size: int, name: str) -> None:
    """Refuse an oversized file before reading it."""
    if size > MAX_SUBTITLE_BYTES:
        raise SubtitleError(
            f"{name} is {size / 1e6:.1f} MB, larger than the "
            f"{MAX_SUBTITLE_BYTES // (1024 * 1024)} MB a subtitle file may be; not imported"
        )


def parse(raw: bytes, name: str = "subtitles") -> Subtitles:
    """Cues of an .srt or .vtt file; SubtitleError when nothing usable is in it."""
    check_size(len(raw), name)
    text, encoding = decode(raw)
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n").strip())
    cues: list[Cue] = []
    skipped = 0
    for block in blocks:
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines or lines[0].startswith(("WEBVTT", "NOTE", "STYLE", "REGION")):
            continue
        timing_at = next((i for i, ln in enumerate(lines[:3]) if "-->" in ln), None)
        if timing_at is None:
            skipped += 1
            continue
        match = _TIMING.match(lines[timing_at])
        if match is None:
            skipped += 1
            continue
        g = match.groups()
        start, end = _seconds(*g[0:4]), _seconds(*g[4:8])
        if end < start:
            skipped += 1
            continue
        body = "\n".join(_TAG.sub("", ln).strip() for ln in lines[timing_at + 1 :]).strip()
        if body:
            cues.append(Cue(start, end, body))
    if not cues:
        raise SubtitleError(f"{name}: no valid subtitle cue ({skipped} malformed)")
    problems = [f"{name}: {skipped} cue(s) with a malformed timing skipped"] if skipped else []
    return Subtitles(cues, encoding, skipped, problems)


def is_telemetry(subs: Subtitles) -> bool:
    hits = sum(1 for c in subs.cues if _TELEMETRY.search(c.text))
    return hits >= max(1, TELEMETRY_SHARE * len(subs.cues))


def transcript(subs: Subtitles, language: str, source_name: str) -> dict[str, Any]:
    """A transcript like a recognised one; each cue's time is spread over its words, so a
    search hit lands on the right second."""
    words: list[dict[str, Any]] = []
    for cue in subs.cues:
        tokens = cue.text.split()
        step = (cue.end - cue.start) / max(len(tokens), 1)
        for n, token in enumerate(tokens):
            words.append(
                {
                    "word": token,
                    "start": round(cue.start + n * step, 3),
                    "end": round(cue.start + (n + 1) * step, 3),
                    "conf": 1.0,
                }
            )
    return {
        "language": language,
        "engine": source_name,
        "source": "sidecar",
        "text": " ".join(c.text.replace("\n", " ") for c in subs.cues),
        "words": words,
    }


def _field(text: str, *names: str) -> float | None:
    for key in names:
        match = re.search(rf"\b{key}\s*[:=]\s*{_NUM}", text, re.IGNORECASE)
        if match:
            return float(match.group(1))
    return None


def _valid_point(lat: float | None, lon: float | None) -> bool:
    """A real fix: both present, in range, not the 0,0 a drone writes before GPS lock."""
    if lat is None or lon is None or (lat, lon) == (0.0, 0.0):
        return False
    return -90 <= lat <= 90 and -180 <= lon <= 180


def telemetry_facts(subs: Subtitles) -> dict[str, Any]:
    """GPS track start/end, altitude range, duration and camera settings seen, from
    DJI-style cues (`[latitude: 45.1] [longitude: 6.1] [rel_alt: 50.2 abs_alt: 1234.5]`,
    or the older `GPS(lon,lat,alt)` form)."""
    points: list[tuple[float, float, float]] = []
    alts: list[float] = []
    rel_alts: list[float] = []
    isos: set[int] = set()
    for cue in subs.cues:
        text = cue.text
        lat, lon = _field(text, "latitude", "lat"), _field(text, "longitude", "lon", "lng")
        old = re.search(rf"GPS\s*\(\s*{_NUM}\s*,\s*{_NUM}(?:\s*,\s*{_NUM})?", text)
        if (lat is None or lon is None) and old:
            lon, lat = float(old.group(1)), float(old.group(2))
        if _valid_point(lat, lon):
            assert lat is not None and lon is not None
            points.append((cue.start, lat, lon))
        alt = _field(text, "abs_alt", "altitude", "alt")
        if alt is not None:
            alts.append(alt)
        rel = _field(text, "rel_alt", "BAROMETER", "H")
        if rel is not None:
            rel_alts.append(rel)
        iso = _field(text, "iso")
        if iso is not None:
            isos.add(int(iso))

    def point(p: tuple[float, float, float]) -> dict[str, float]:
        return {"t": round(p[0], 3), "lat": p[1], "lon": p[2]}

    return {
        "kind": "drone_telemetry",
        "cues": len(subs.cues),
        "duration_s": round(subs.cues[-1].end - subs.cues[0].start, 3),
        "gps_start": point(points[0]) if points else None,
        "gps_end": point(points[-1]) if points else None,
        "gps_points": len(points),
        "altitude_min_m": min(alts) if alts else None,
        "altitude_max_m": max(alts) if alts else None,
        "relative_altitude_min_m": min(rel_alts) if rel_alts else None,
        "relative_altitude_max_m": max(rel_alts) if rel_alts else None,
        "iso": sorted(isos),
    }
