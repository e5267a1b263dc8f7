"""Which recordings to offer as a video's linked audio (docs/web.md, "Linked audio").

A sound recorder's files rarely sit beside the camera's: a shoot folder holds `A-cam/`
and `Sound/`.  So the candidates are the audio assets of the video's folder and of its
neighbouring folders (the siblings under the same parent), ranked by how much their
capture time overlaps the video's, then same shoot day, then same folder.  Capture time
comes from `web.words.capture_time` (the file's own creation time, else its mtime).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rush.lifecycle import AssetState
from rush.models import Asset, Facts
from web import words

#: Recordings looked at per video (a shoot folder holds a few dozen, not thousands).
SCAN_LIMIT = 300
SHOWN = 20


@dataclass(frozen=True)
class Span:
    start: datetime | None
    seconds: float

    def overlap(self, other: Span) -> float:
        if self.start is None or other.start is None:
            return 0.0
        a0, b0 = self.start.timestamp(), other.start.timestamp()
        return max(0.0, min(a0 + self.seconds, b0 + other.seconds) - max(a0, b0))


def span_of(facts: dict[str, Any] | None, mtime: Any) -> Span:
    facts = facts or {}
    try:
        seconds = float(facts.get("duration_s", facts.get("duration")) or 0)
    except (TypeError, ValueError):
        seconds = 0.0
    return Span(words.capture_time(facts, mtime), seconds)


def _dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def rank(
    video_path: str, video: Span, candidates: list[tuple[dict[str, Any], Span]]
) -> list[dict[str, Any]]:
    """Best first: capture-time overlap, same day, same folder, nearest start (pure)."""
    folder = _dirname(video_path)
    out = []
    for row, span in candidates:
        overlap = video.overlap(span)
        same_day = bool(video.start and span.start and video.start.date() == span.start.date())
        same_folder = _dirname(row["rel_path"]) == folder
        gap = (
            abs(video.start.timestamp() - span.start.timestamp())
            if video.start and span.start
            else float("inf")
        )
        why = []
        if overlap > 0:
            why.append(f"overlaps {words.duration(overlap)}")
        elif same_day:
            why.append("same day")
        why.append("same folder" if same_folder else _dirname(row["rel_path"]).rsplit("/", 1)[-1])
        out.append(
            {
                **row,
                "overlap": overlap,
                "why": " · ".join(why),
                "_key": (-overlap, not same_day, not same_folder, gap, row["rel_path"]),
            }
        )
    out.sort(key=lambda r: r["_key"])
    for r in out:
        del r["_key"]
    return out[:SHOWN]


async def _latest_facts(ids: list[Any]) -> dict[str, dict[str, Any]]:
    best: dict[str, tuple[int, dict[str, Any]]] = {}
    for fa in await Facts.filter(asset_id__in=ids).values("asset_id", "version", "data"):
        key = str(fa["asset_id"])
        if key not in best or fa["version"] > best[key][0]:
            best[key] = (fa["version"], fa["data"] if isinstance(fa["data"], dict) else {})
    return {k: v[1] for k, v in best.items()}


async def candidates(video: Asset) -> list[dict[str, Any]]:
    """Recordings to offer on a video's page, best first, each with a short reason."""
    folder = _dirname(video.rel_path)
    parent = _dirname(folder) or folder
    # A range on the indexed path ("dir/" <= p < "dir0") rather than LIKE 'dir/%'.
    rows = (
        await Asset.filter(
            rel_path__gte=parent + "/",
            rel_path__lt=parent + "0",
            kind="audio",
            state__not=AssetState.PURGED,
        )
        .order_by("rel_path")
        .limit(SCAN_LIMIT)
        .values("id", "rel_path", "mtime")
    )
    facts = await _latest_facts([video.id, *[r["id"] for r in rows]])
    mine = span_of(facts.get(str(video.id)), video.mtime)
    spans = [(r, span_of(facts.get(str(r["id"])), r["mtime"])) for r in rows]
    return rank(video.rel_path, mine, spans)
