"""One search box over names, folders, tags, fields, camera and transcript text.

Why a table of texts (`search_entry`) rather than LIKE over the asset rows: a LIKE on
100k transcripts reads every one of them; a full-text index (SQLite FTS5, PostgreSQL
GIN over `to_tsvector('simple', …)`, see `rush/search_schema.py`) answers in
milliseconds, and one row per transcript line gives each hit its time, so a click lands
on the second.  Case and accents are folded here, in Python, the same way for the texts
and the query (no database extension needed).  Contract: docs/web.md, "Search".

Entries are rebuilt per asset (`reindex`) by the server's indexer, which follows
`Asset.updated_at` (every writer of an asset row sets it; tags and transcripts touch it).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from rush.models import Asset, Facts, KeyValue, SearchEntry, Tag, Transcript

#: Words per transcript line (a hit shows its line; pauses also end a line).
LINE_WORDS = 12
LINE_GAP_S = 1.2
MAX_TOKENS = 8
MARK_KEY = "search_index_mark"
_WORD = re.compile(r"\w+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def normalise(text: str) -> str:
    """Lower-case, accents removed, separators to spaces: 'Santé_Anna' -> 'sante anna'."""
    decomposed = unicodedata.normalize("NFKD", _CAMEL.sub(" ", text))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_WORD.findall(bare.casefold().replace("_", " ")))


def query_tokens(text: str) -> list[str]:
    """The words of a query, normalised, at most MAX_TOKENS."""
    return normalise(text).split()[:MAX_TOKENS]


def _fact_texts(facts: dict[str, Any]) -> list[str]:
    keys = ("camera_make", "camera_model", "camera_serial", "lens_model", "title", "artist")
    return [str(facts[k]) for k in keys if facts.get(k)]


def _lines(words: Sequence[Any]) -> list[tuple[float, str]]:
    lines: list[tuple[float, str]] = []
    current: list[str] = []
    start = 0.0
    last_end: float | None = None
    for w in words:
        if not isinstance(w, dict) or not w.get("word"):
            continue
        try:
            t0, t1 = float(w.get("start", 0)), float(w.get("end", 0))
        except (TypeError, ValueError):
            continue
        if current and (
            len(current) >= LINE_WORDS or (last_end is not None and t0 - last_end > LINE_GAP_S)
        ):
            lines.append((start, " ".join(current)))
            current = []
        if not current:
            start = t0
        current.append(str(w["word"]))
        last_end = t1
    if current:
        lines.append((start, " ".join(current)))
    return lines


def entries_for(
    rel_path: str,
    tags: Iterable[str],
    fields_data: dict[str, Any] | None,
    facts: dict[str, Any] | None,
    transcripts: Iterable[tuple[str, Sequence[Any]]],
) -> list[tuple[float | None, str]]:
    """(time or None, display text) of every searchable text of one asset (pure)."""
    path = PurePosixPath(rel_path)
    meta: list[str] = [path.name, str(path.parent)]
    meta += list(tags)
    for key, value in (fields_data or {}).items():
        if key == "rating" or value in (None, ""):
            continue
        meta += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    meta += _fact_texts(facts or {})
    out: list[tuple[float | None, str]] = [(None, " · ".join(m for m in meta if m))]
    seen: set[tuple[float, str]] = set()
    for text, words in transcripts:
        lines = _lines(words) or ([(0.0, text)] if text.strip() else [])
        for start, line in lines:
            if (round(start, 1), line) not in seen:
                seen.add((round(start, 1), line))
                out.append((round(start, 3), line))
    return out


async def reindex(asset_ids: Iterable[uuid.UUID]) -> int:
    """Rebuild the entries of these assets; returns how many entries were written."""
    written = 0
    for asset_id in asset_ids:
        asset = await Asset.get_or_none(id=asset_id)
        if asset is None:
            continue
        tags = await Tag.filter(asset_id=asset.id).values_list("name", flat=True)
        facts = await Facts.filter(asset_id=asset.id).order_by("-version").first()
        rows = await Transcript.filter(asset_id=asset.id, version=asset.version).order_by(
            "-source", "id"
        )
        entries = entries_for(
            asset.rel_path,
            [str(t) for t in tags],
            asset.fields_data,
            facts.data if facts else None,
            [(r.text, r.words) for r in rows],
        )
        async with in_transaction() as conn:
            await SearchEntry.filter(asset_id=asset.id).using_db(conn).delete()
            await SearchEntry.bulk_create(
                [
                    SearchEntry(asset_id=asset.id, t=t, display=d[:2000], body=normalise(d))
                    for t, d in entries
                ],
                using_db=conn,
            )
        written += len(entries)
    return written


async def index_changed(batch: int = 500) -> int:
    """Reindex the assets changed since the last pass (all of them the first time)."""
    mark = await KeyValue.get_or_none(key=MARK_KEY)
    query = Asset.all()
    if mark is not None and mark.value.get("at"):
        query = query.filter(updated_at__gte=datetime.fromisoformat(str(mark.value["at"])))
    done = 0
    while True:
        rows = (
            await query.order_by("updated_at", "id")
            .offset(done)
            .limit(batch)
            .values("id", "updated_at")
        )
        if not rows:
            break
        await reindex(r["id"] for r in rows)
        done += len(rows)
        last = rows[-1]["updated_at"]
        await KeyValue.update_or_create(defaults={"value": {"at": last.isoformat()}}, key=MARK_KEY)
        if len(rows) < batch:
            break
    return done


async def touch(asset_id: uuid.UUID) -> None:
    """Mark an asset changed for the indexer (for writers of related tables: tags)."""
    from rush.transitions import utcnow

    await Asset.filter(id=asset_id).update(updated_at=utcnow())


# --- queries ---------------------------------------------------------------------------


def _pg() -> bool:
    return str(connections.get("default").capabilities.dialect) == "postgres"


@dataclass
class Match:
    """SQL that selects `search_entry` rows matching one token, for both dialects."""

    sql: str
    param: str


def token_match(token: str, pg: bool, placeholder: str) -> Match:
    """Prefix match of one normalised token ("ring" finds "rings")."""
    safe = re.sub(r"[^\w]", "", token)
    if pg:
        return Match(
            "SELECT e.asset_id FROM search_entry e WHERE "
            f"to_tsvector('simple', e.body) @@ to_tsquery('simple', {placeholder})",
            f"{safe}:*",
        )
    return Match(
        "SELECT e.asset_id FROM search_fts f JOIN search_entry e ON e.id = f.rowid "
        f"WHERE search_fts MATCH {placeholder}",
        f'"{safe}"*',
    )


@dataclass
class Hit:
    t: float | None
    text: str


def _snippet(display: str, tokens: list[str], width: int = 90) -> str:
    words = display.split()
    norm = [normalise(w) for w in words]
    at = next((i for i, n in enumerate(norm) if any(n.startswith(t) for t in tokens)), 0)
    start = max(0, at - 5)
    text = " ".join(words[start : start + 16])
    return ("… " if start else "") + text[:width] + ("…" if start + 16 < len(words) else "")


def hit_words(display: str, tokens: list[str]) -> bool:
    return any(n.startswith(t) for n in normalise(display).split() for t in tokens)


async def _timed_words(asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[float, str]]]:
    """Normalised words with their start, per asset (current version), in two queries."""
    versions = {
        _uid(r["id"]): r["version"]
        for r in await Asset.filter(id__in=asset_ids).values("id", "version")
    }
    out: dict[uuid.UUID, list[tuple[float, str]]] = {a: [] for a in asset_ids}
    rows = await Transcript.filter(asset_id__in=asset_ids).values("asset_id", "version", "words")
    for row in rows:
        aid = _uid(row["asset_id"])
        if versions.get(aid) != row["version"] or not isinstance(row["words"], list):
            continue
        for w in row["words"]:
            if isinstance(w, dict) and w.get("word"):
                try:
                    out[aid].append((float(w.get("start", 0)), normalise(str(w["word"]))))
                except (TypeError, ValueError):
                    continue
    for words in out.values():
        words.sort()
    return out


def _uid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _word_time(words: list[tuple[float, str]], line_start: float, tokens: list[str]) -> float:
    """Start of the first searched word at or after the line's start (else the line's)."""
    for start, word in words:
        if start + 1e-3 >= line_start and any(
            part.startswith(t) for part in word.split() for t in tokens
        ):
            return round(start, 3)
    return line_start


async def hits_for(
    q: str, asset_ids: Sequence[uuid.UUID], per_asset: int = 5
) -> dict[uuid.UUID, list[Hit]]:
    """The matching lines (transcript lines with their time first) of these assets."""
    tokens = query_tokens(q)
    if not tokens or not asset_ids:
        return {}
    rows = await SearchEntry.filter(asset_id__in=list(asset_ids)).order_by("asset_id", "t")
    matching = [r for r in rows if hit_words(r.display, tokens)]
    timed = [_uid(r.asset_id) for r in matching if r.t is not None]  # type: ignore[attr-defined]
    words = await _timed_words(sorted(set(timed))) if timed else {}
    out: dict[uuid.UUID, list[Hit]] = {}
    for row in matching:
        aid = _uid(row.asset_id)  # type: ignore[attr-defined]
        found = out.setdefault(aid, [])
        if len(found) >= per_asset:
            continue
        t = row.t
        if t is not None:  # the line's start: land on the searched word itself
            t = _word_time(words.get(aid, []), t, tokens)
        found.append(Hit(t, _snippet(row.display, tokens)))
    for found in out.values():
        found.sort(key=lambda h: (h.t is None, h.t or 0.0))
    return out


async def search_ids(q: str, limit: int = 50) -> list[uuid.UUID]:
    """Assets matching every word of `q` (anywhere in their texts), for the bench and
    the command line; the library uses `where_sql` inside its own query."""
    pg = _pg()
    params: list[Any] = []
    conds = []
    for token in query_tokens(q):
        params.append(None)
        m = token_match(token, pg, f"${len(params)}" if pg else "?")
        params[-1] = m.param
        conds.append(f"a.id IN ({m.sql})")
    if not conds:
        return []
    params.append(limit)
    sql = (
        f"SELECT a.id FROM asset a WHERE {' AND '.join(conds)} ORDER BY a.rel_path "
        f"LIMIT {'$' + str(len(params)) if pg else '?'}"
    )
    rows = await connections.get("default").execute_query_dict(sql, params)
    return [r["id"] if isinstance(r["id"], uuid.UUID) else uuid.UUID(str(r["id"])) for r in rows]
