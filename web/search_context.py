"""What the library page adds for the search box: the matching lines of each asset on
the page (transcript lines with their time, so a click opens the player there) and the
existing values the tag / project / location / folder filters complete from."""

from __future__ import annotations

import time
import uuid
from pathlib import PurePosixPath
from typing import Any

from tortoise import connections

from rush import search
from rush.models import Tag

#: Values offered per filter (the most common ones first would need a count; these are
#: sorted, which is what a datalist shows anyway).
MAX_COMPLETIONS = 300


async def _json_values(key: str) -> list[str]:
    pg = str(connections.get("default").capabilities.dialect) == "postgres"
    expr = f"(fields_data::jsonb ->> '{key}')" if pg else f"json_extract(fields_data, '$.{key}')"
    rows = await connections.get("default").execute_query_dict(
        f"SELECT DISTINCT {expr} AS v FROM asset WHERE {expr} IS NOT NULL "
        f"ORDER BY 1 LIMIT {MAX_COMPLETIONS}",
        [],
    )
    return [str(r["v"]) for r in rows if r["v"]]


async def _column_values(column: str) -> list[str]:
    rows = await connections.get("default").execute_query_dict(
        f"SELECT DISTINCT {column} AS v FROM asset WHERE {column} IS NOT NULL "
        f"ORDER BY 1 LIMIT {MAX_COMPLETIONS}",
        [],
    )
    return [str(r["v"]) for r in rows if r["v"]]


async def _folders() -> list[str]:
    """Folders of the assets (from the most recently changed ones: a sample on 100k)."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT rel_path FROM asset ORDER BY updated_at DESC LIMIT 5000", []
    )
    found = {str(PurePosixPath(str(r["rel_path"])).parent) for r in rows}
    return sorted(found)[:MAX_COMPLETIONS]


#: Completions are read at most once a minute: on 100k assets the distinct values are
#: full scans, and a tag typed a minute ago may wait that long to be offered.
COMPLETIONS_TTL_S = 60.0
_cache: dict[str, tuple[float, dict[str, list[str]]]] = {}


async def completions() -> dict[str, list[str]]:
    conn = connections.get("default")
    # One cache per database (tests and tools open several in one process).
    key = str(getattr(conn, "filename", None) or getattr(conn, "database", None) or id(conn))
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < COMPLETIONS_TTL_S:
        return hit[1]
    values = await _read_completions()
    _cache[key] = (time.monotonic(), values)
    return values


async def _read_completions() -> dict[str, list[str]]:
    tags = (
        await Tag.all()
        .distinct()
        .order_by("name")
        .limit(MAX_COMPLETIONS)
        .values_list("name", flat=True)
    )
    return {
        "tag": sorted({str(t) for t in tags}, key=str.lower),
        "project": await _json_values("project"),
        "location": await _json_values("location"),
        "folder": await _folders(),
        "camera": await _column_values("camera"),
        "lens": await _column_values("lens"),
    }


async def fresh_index(q: str) -> None:
    """Before a search: index what changed since the indexer's last pass (one indexed
    query when nothing did), so a tag added a second ago is found."""
    if q.strip():
        await search.index_changed()


async def search_context(q: str, ids: list[uuid.UUID]) -> dict[str, Any]:
    return {
        "hits": await search.hits_for(q, ids) if q else {},
        "completions": await completions(),
    }
