"""The review desk's JSON API: the review queue around one clip.

The asset page walks through the library's current filter and sort without page loads
(docs/web.md, "The review desk"): it asks `GET /api/review/queue` for the clips around
the current one (filmstrip, "12 of 340", the next clip to preload) and swaps pages on the
client.  Clips decided during this browser session no longer match a filter such as
`state=PROCESSED`; the page sends their ids as `also=` so they stay in the queue (dimmed,
with their flag) until the filter changes, and `K` walks back to them.

Read-only: nothing here changes an asset.  One keyset query per side, one count for the
position, and three small queries for the pictures, proxies and facts of the window.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from rush import decisions, names
from rush.models import Derivative, Facts
from web import auth, queries
from web.keys import COUNTS

#: Clips listed on each side of the current one.
WINDOW = 8
MAX_WINDOW = 30
#: Ids a page may ask to keep in its queue (clips decided in this session).
MAX_ALSO = 500
_SORT_FIELD = {"path": "rel_path", "changed": "state_changed_at"}


def sort_field(f: queries.Filters) -> str:
    """The row key the library sorts on (the SQL column without its table alias)."""
    return _SORT_FIELD.get(f.sort, f.sort)


def _key(f: queries.Filters, row: dict[str, Any]) -> tuple[Any, str]:
    return (row[sort_field(f)], str(row["id"]))


def parse_ids(raw: str, limit: int = MAX_ALSO) -> list[uuid.UUID]:
    """Comma-separated UUIDs; junk is dropped (a stale browser list must not break a page)."""
    out: list[uuid.UUID] = []
    for part in raw.split(","):
        try:
            out.append(uuid.UUID(part.strip()))
        except ValueError:
            continue
        if len(out) >= limit:
            break
    return list(dict.fromkeys(out))


def merge_side(
    f: queries.Filters,
    current: dict[str, Any],
    matching: list[dict[str, Any]],
    extras: Iterable[dict[str, Any]],
    *,
    forward: bool,
    limit: int,
) -> list[dict[str, Any]]:
    """The `limit` clips nearest to `current` on one side, from the filter's own side
    (already nearest first) and the extra clips kept for this session (pure)."""
    ascending = (f.dir == "asc") == forward
    here = _key(f, current)
    side = [
        e
        for e in extras
        if e["id"] != current["id"] and ((_key(f, e) > here) if ascending else (_key(f, e) < here))
    ]
    seen: set[uuid.UUID] = set()
    merged: list[dict[str, Any]] = []
    for row in sorted([*matching, *side], key=lambda r: _key(f, r), reverse=not ascending):
        if row["id"] not in seen:
            seen.add(row["id"])
            merged.append(row)
    return merged[:limit]


async def _rows(
    ids: list[uuid.UUID], where: str = "", sql: queries.Sql | None = None
) -> list[dict[str, Any]]:
    if not ids:
        return []
    sql = sql or queries.Sql(queries.dialect())
    marks = ", ".join(sql.uid(i) for i in ids)
    cond = (f"{where} AND " if where else "") + f"a.id IN ({marks})"
    text = f"SELECT {queries.ASSET_COLUMNS}, a.fields_data FROM asset a WHERE {cond}"
    return [queries._norm_row(r) for r in await queries.fetch(text, sql.params)]


async def _side(
    f: queries.Filters, current: dict[str, Any], *, forward: bool, limit: int
) -> list[dict[str, Any]]:
    col = queries.SORTS[f.sort]
    ascending = (f.dir == "asc") == forward
    op, d = (">", "ASC") if ascending else ("<", "DESC")
    sql = queries.Sql(queries.dialect())
    where = queries.where_clause(f, sql)
    v, cur = sql.p(current[sort_field(f)]), sql.uid(current["id"])
    text = (
        f"SELECT {queries.ASSET_COLUMNS}, a.fields_data FROM asset a WHERE {where} "
        f"AND ({col}, a.id) {op} ({v}, {cur}) ORDER BY {col} {d}, a.id {d} LIMIT {sql.p(limit)}"
    )
    return [queries._norm_row(r) for r in await queries.fetch(text, sql.params)]


async def _before_count(f: queries.Filters, current: dict[str, Any]) -> int:
    col = queries.SORTS[f.sort]
    op = "<" if f.dir == "asc" else ">"
    sql = queries.Sql(queries.dialect())
    where = queries.where_clause(f, sql)
    v, cur = sql.p(current[sort_field(f)]), sql.uid(current["id"])
    text = f"SELECT COUNT(*) AS n FROM asset a WHERE {where} AND ({col}, a.id) {op} ({v}, {cur})"
    rows = await queries.fetch(text, sql.params)
    return int(rows[0]["n"])


def _duration(data: Any) -> float | None:
    if not isinstance(data, dict):
        return None
    for key in ("duration_s", "duration"):
        try:
            value = float(data.get(key))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if value >= 0:
            return value
    return None


async def _decorate(rows: list[dict[str, Any]], qs: str) -> list[dict[str, Any]]:
    """Poster, proxy and duration of each clip in the window (three queries in all)."""
    rows = await queries.cards(rows)
    ids = [r["id"] for r in rows]
    versions = {r["id"]: r["version"] for r in rows}
    proxies: dict[uuid.UUID, tuple[bool, int]] = {}
    for d in await Derivative.filter(asset_id__in=ids, role="proxy").values(
        "id", "asset_id", "version"
    ):
        aid = uuid.UUID(str(d["asset_id"]))
        rank = (d["version"] == versions.get(aid), d["id"])
        if aid not in proxies or rank > proxies[aid]:
            proxies[aid] = rank
    durations: dict[uuid.UUID, tuple[int, float | None]] = {}
    for fa in await Facts.filter(asset_id__in=ids).values("asset_id", "version", "data"):
        aid = uuid.UUID(str(fa["asset_id"]))
        if aid not in durations or fa["version"] > durations[aid][0]:
            durations[aid] = (fa["version"], _duration(fa["data"]))
    out = []
    for r in rows:
        proxy = proxies.get(r["id"])
        out.append(
            {
                "id": str(r["id"]),
                "name": names.display(str(r["rel_path"]).rsplit("/", 1)[-1]),
                "path": names.display(str(r["rel_path"])),
                "exact": names.escape(str(r["rel_path"])),
                "kind": r["kind"],
                "state": r["state"],
                "rating": r.get("rating") or 0,
                "label": decisions.LABELS[r.get("label") or 0],
                "duration": durations.get(r["id"], (0, None))[1],
                "thumb": r["thumb"],
                "proxy": f"/derived/{r['id']}/{proxy[1]}" if proxy else None,
                "url": f"/assets/{r['id']}" + (f"?{qs}" if qs else ""),
                "extra": bool(r.get("extra")),
            }
        )
    return out


async def review_queue(request: web.Request) -> web.StreamResponse:
    """The clips around `at` in the filtered, sorted library, plus this session's extras."""
    try:
        f = queries.Filters.parse(request.query, request.query.getall("state", []))
    except queries.BadFilter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    at = parse_ids(request.query.get("at", ""), 1)
    if not at:
        raise web.HTTPBadRequest(text="at= must be an asset id")
    try:
        window = max(1, min(MAX_WINDOW, int(request.query.get("n", WINDOW))))
    except ValueError:
        window = WINDOW
    also = parse_ids(request.query.get("also", ""))
    found = await _rows(at)
    if not found:
        raise web.HTTPNotFound(text="no such asset")
    current = found[0]
    wanted = [i for i in also if i != current["id"]] + [current["id"]]
    sql = queries.Sql(queries.dialect())
    matching_ids = {r["id"] for r in await _rows(wanted, queries.where_clause(f, sql), sql)}
    extras = [r for r in await _rows(wanted) if r["id"] not in matching_ids]
    for r in extras:
        r["extra"] = True
    current = next((r for r in extras if r["id"] == current["id"]), current)
    before = merge_side(
        f, current, await _side(f, current, forward=False, limit=window), extras,
        forward=False, limit=window,
    )  # fmt: skip
    after = merge_side(
        f, current, await _side(f, current, forward=True, limit=window), extras,
        forward=True, limit=window,
    )  # fmt: skip
    here = _key(f, current)
    ascending = f.dir == "asc"
    extras_before = sum(
        1
        for e in extras
        if e["id"] != current["id"] and ((_key(f, e) < here) if ascending else (_key(f, e) > here))
    )
    total = await request.app[COUNTS].total(f) + len(extras)
    index = await _before_count(f, current) + extras_before
    qs = f.qs()
    items = await _decorate([*reversed(before), current, *after], qs)
    return web.json_response(
        {"total": total, "index": index, "offset": len(before), "qs": qs, "items": items},
        headers={"Cache-Control": "no-store"},
    )


async def asset_names(request: web.Request) -> web.StreamResponse:
    """`{uuid: file name}` for `ids=` (the operations page names live transitions)."""
    ids = parse_ids(request.query.get("ids", ""), 200)
    rows = await _rows(ids)
    return web.json_response(
        {str(r["id"]): names.display(str(r["rel_path"]).rsplit("/", 1)[-1]) for r in rows}
    )


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="malformed JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


def _actor(request: web.Request) -> str:
    session = request.get(auth.SESSION)
    return f"user:{session.user}" if session is not None else "user:?"


async def set_rating(request: web.Request) -> web.StreamResponse:
    """`{"rating": 0-5}` (keys 0-5 on the review desk)."""
    body = await _json_body(request)
    asset = await decisions.set_rating(
        request.match_info["id"], body.get("rating"), _actor(request)
    )
    return web.json_response(_marks(asset))


async def set_label(request: web.Request) -> web.StreamResponse:
    """`{"label": "red" | "yellow" | "green" | "blue" | ""}` (keys 6-9)."""
    body = await _json_body(request)
    asset = await decisions.set_label(request.match_info["id"], body.get("label"), _actor(request))
    return web.json_response(_marks(asset))


def _marks(asset: Any) -> dict[str, Any]:
    return {
        "id": str(asset.id),
        "rating": asset.rating,
        "label": decisions.LABELS[asset.label],
        "state": asset.state,
    }
