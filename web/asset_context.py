"""Everything the asset page shows, gathered in one call (`asset_context`).

Why apart from the view: the page reads some fifteen tables (derivatives, facts,
transcript, suggestions, tags, linked audio, duplicates, bins, sidecars, paths, history);
the handler makes this one call and renders, and the gathering can be read and tested
without a request.
"""

from __future__ import annotations

import uuid
from typing import Any

from rush import decisions, duplicates
from rush.languages import TranscriptionConfig
from rush.lifecycle import REPROCESSABLE, AssetState
from rush.models import (
    Asset,
    AssetEvent,
    Bin,
    Derivative,
    Facts,
    PathChange,
    Sidecar,
    Suggestion,
    Transcript,
)
from web import queries
from web.audio_links import candidates
from web.transcript_context import transcript_context

STATES = [s.value for s in AssetState]


def flatten(
    data: Any, prefix: str = "", out: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    out = [] if out is None else out
    if isinstance(data, dict):
        for key, value in data.items():
            flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data[:8]):
            flatten(value, f"{prefix}[{i}]", out)
    elif data is None or data == []:
        pass  # a fact the file does not have (no lens, no EXIF exposure) is not shown
    else:
        text = ", ".join(map(str, data)) if isinstance(data, list) else str(data)
        out.append((prefix, text[:300]))
    return out


def transcript_lines(
    words: list[Any], per_line: int = 12, gap: float = 1.2
) -> list[dict[str, Any]]:
    """Group timed words into readable lines (break on pauses or every `per_line` words)."""
    lines: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    last_end = None
    for w in words:
        if not isinstance(w, dict) or "word" not in w:
            continue
        try:
            start, end = float(w.get("start", 0)), float(w.get("end", 0))
        except (TypeError, ValueError):
            continue
        if current and (
            len(current) >= per_line or (last_end is not None and start - last_end > gap)
        ):
            lines.append({"start": current[0]["start"], "words": current})
            current = []
        current.append({"word": str(w["word"]), "start": start, "end": end})
        last_end = end
    if current:
        lines.append({"start": current[0]["start"], "words": current})
    return lines


async def _current_row(asset_id: uuid.UUID) -> dict[str, Any] | None:
    sql = queries.Sql(queries.dialect())
    text = f"SELECT {queries.ASSET_COLUMNS} FROM asset a WHERE a.id = {sql.uid(asset_id)}"
    rows = await queries.fetch(text, sql.params)
    return rows[0] if rows else None


async def asset_context(
    asset_id: uuid.UUID, f: queries.Filters, transcription: TranscriptionConfig
) -> dict[str, Any] | None:
    """The asset page's template context under the library filter `f` (prev/next follow
    it); None when there is no such asset."""
    asset = await Asset.get_or_none(id=asset_id)
    if asset is None:
        return None
    row = await _current_row(asset_id)
    prev_id, next_id = await queries.neighbours(f, row) if row else (None, None)
    derivs = await Derivative.filter(asset_id=asset_id).order_by("role", "id")
    current = [d for d in derivs if d.version == asset.version] or derivs
    by_role: dict[str, list[Derivative]] = {}
    for d in current:
        by_role.setdefault(d.role, []).append(d)
    facts = await Facts.filter(asset_id=asset_id).order_by("-version").first()
    # The clip's own subtitles ("sidecar") before a recognised transcript.
    transcript = (
        await Transcript.filter(asset_id=asset_id).order_by("-version", "-source", "-id").first()
    )
    suggestions = await Suggestion.filter(asset_id=asset_id).order_by("-score", "tag")
    latest_sv = max((s.version for s in suggestions), default=0)
    tags = await decisions.tags_of(asset_id)
    linked_audio = None
    linked_audio_proxy = None
    if asset.linked_audio_id is not None:  # type: ignore[attr-defined]
        linked_audio = await Asset.get_or_none(id=asset.linked_audio_id)  # type: ignore[attr-defined]
        if linked_audio is not None:
            linked_audio_proxy = (
                await Derivative.filter(asset_id=linked_audio.id, role="proxy")
                .order_by("-version", "-id")
                .first()
            )
    linked_videos = await queries.linked_videos(asset_id) if asset.kind == "audio" else []
    link_candidates: list[dict[str, Any]] = []
    if asset.kind == "video" and linked_audio is None:
        link_candidates = await candidates(asset)
    dups = await duplicates.others_of(asset)
    bins = await Bin.all().order_by("name").values("id", "name")
    in_bins = set(await Bin.filter(assets__id=asset_id).values_list("id", flat=True))
    qs = f.qs()

    def link(target: uuid.UUID | None) -> str | None:
        return f"/assets/{target}?{qs}" if target else None

    context = {
        "asset": asset,
        "f": f,
        "qs": qs,
        "prev_url": link(prev_id),
        "next_url": link(next_id),
        "by_role": by_role,
        "facts": flatten(facts.data) if facts else [],
        "transcript": transcript,
        "lines": transcript_lines(transcript.words) if transcript else [],
        "suggestions": [s for s in suggestions if s.version == latest_sv],
        "tags": tags,
        "fields": asset.fields_data or {},
        "sidecars": await Sidecar.filter(asset_id=asset_id).order_by("rel_path"),
        "paths": await PathChange.filter(asset_id=asset_id).order_by("-id").limit(100),
        "history": await AssetEvent.filter(asset_id=asset_id).order_by("-id").limit(100),
        "linked_audio": linked_audio,
        "linked_audio_proxy": linked_audio_proxy,
        "linked_videos": linked_videos,
        "link_candidates": link_candidates,
        "bins": bins,
        "in_bins": in_bins,
        "can_decide": asset.state in decisions.DECIDABLE and asset.batch_id is None,
        "can_undo": asset.state in decisions.UNDOABLE and asset.batch_id is None,
        "can_reopen": asset.state in (AssetState.ARCHIVED, AssetState.REJECTED),
        "can_reprocess": AssetState(asset.state) in REPROCESSABLE and asset.batch_id is None,
        "duplicates": dups,
        # Another copy is the first one (kept), so this one may be rejected as a duplicate.
        "can_reject_duplicate": any(kept for _, _, kept in dups)
        and asset.state in decisions.DECIDABLE
        and asset.batch_id is None,
        "states": STATES,
        **await transcript_context(asset, transcription),
    }
    return context
