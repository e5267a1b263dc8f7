"""The library query: filters, sort, pagination and counts, fast on 100k assets.

Written as SQL (one statement per page, one for the total, one for the per-state counts)
because the filters mix JSON fields, sub-selects on tags/transcripts/bins and keyset
neighbours, and the ORM would either issue more queries or hide the plan.  Both dialects
(SQLite, PostgreSQL) are handled by `Sql`; every value travels as a bound parameter.
Totals are cached for a few seconds per filter so paging does not count 100k rows again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from tortoise import connections

from rush import search
from rush.decisions import InvalidInput, parse_label
from rush.duplicates import DUPLICATE_CONDITION, duplicate_ids
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Derivative, Tag

SORTS = {
    "path": "a.rel_path",
    "mtime": "a.mtime",
    "changed": "a.state_changed_at",
    "size": "a.size",
    # When it was shot (rush/metadata/capture.py), the file date until that is known.
    "captured": "COALESCE(a.capture_ts, a.mtime)",
    "rating": "a.rating",
    "label": "a.label",
}
ASSET_COLUMNS = (
    "a.id, a.kind, a.rel_path, a.state, a.size, a.mtime, a.failed, a.missing, a.decision, "
    "a.version, a.state_changed_at, COALESCE(a.capture_ts, a.mtime) AS captured, "
    "a.capture_source, a.camera, a.rating, a.label"
)
FILTER_KEYS = (
    "state",
    "kind",
    "folder",
    "since",
    "until",
    "tag",
    "project",
    "location",
    "person",
    "camera",
    "lens",
    "rating",
    "label",
    "decision",
    "q",
    "text",
    "bin",
    "flag",
    "sort",
    "dir",
)


class BadFilter(ValueError):
    """A filter value that makes no sense (shown to the user, never a 500)."""


@dataclass(frozen=True)
class Filters:
    states: tuple[str, ...] = ()
    kind: str = ""
    folder: str = ""
    since: float | None = None
    until: float | None = None
    tag: str = ""
    project: str = ""
    location: str = ""
    person: str = ""
    camera: str = ""  # part of the camera's make/model, any case
    lens: str = ""
    rating: int | None = None  # at least this many stars
    label: int | None = None  # colour label number (rush.decisions.LABELS), 0: none
    decision: str = ""  # KEEP | REJECT | none
    q: str = ""  # the search box: name, folder, tags, fields, camera, transcript
    text: str = ""  # in the path
    bin: int | None = None
    flag: str = ""  # failed | missing | duplicate
    sort: str = "path"
    dir: str = "asc"
    raw: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, query: Mapping[str, str], multi: list[str] | None = None) -> Filters:
        states = tuple(s for s in (multi or []) if s)
        for s in states:
            if s not in AssetState.__members__:
                raise BadFilter(f"unknown state {s!r}")
        kind = query.get("kind", "")
        if kind and kind not in {k.value for k in MediaKind}:
            raise BadFilter(f"unknown media type {kind!r}")
        sort = query.get("sort", "path") or "path"
        if sort not in SORTS:
            raise BadFilter(f"unknown sort {sort!r}")
        direction = query.get("dir", "asc") or "asc"
        if direction not in ("asc", "desc"):
            raise BadFilter("dir must be asc or desc")
        decision = query.get("decision", "")
        if decision not in ("", "KEEP", "REJECT", "none"):
            raise BadFilter("decision must be KEEP, REJECT or none")
        flag = query.get("flag", "")
        if flag not in ("", "failed", "missing", "duplicate"):
            raise BadFilter("flag must be failed, missing or duplicate")
        raw = tuple(
            (k, v)
            for k in FILTER_KEYS
            for v in ([*states] if k == "state" else [query.get(k, "")])
            if v
        )
        return cls(
            states=states,
            kind=kind,
            folder=query.get("folder", "").strip().strip("/"),
            since=_date(query.get("since", ""), end=False),
            until=_date(query.get("until", ""), end=True),
            tag=query.get("tag", "").strip(),
            project=query.get("project", "").strip(),
            location=query.get("location", "").strip(),
            person=query.get("person", "").strip(),
            camera=query.get("camera", "").strip(),
            lens=query.get("lens", "").strip(),
            rating=_int(query.get("rating", ""), "rating", 0, 5),
            label=_label(query.get("label", "")),
            decision=decision,
            q=query.get("q", "").strip(),
            text=query.get("text", "").strip(),
            bin=_int(query.get("bin", ""), "bin", 0, 2**31),
            flag=flag,
            sort=sort,
            dir=direction,
            raw=raw,
        )

    def qs(self, **override: Any) -> str:
        """The query string of these filters (for links that keep the selection)."""
        items = [(k, v) for k, v in self.raw if k not in override]
        items += [(k, str(v)) for k, v in override.items() if v not in (None, "")]
        return urlencode(items)

    @property
    def key(self) -> tuple[Any, ...]:
        return tuple(sorted(self.raw))


def _date(value: str, *, end: bool) -> float | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise BadFilter(f"dates are YYYY-MM-DD, not {value!r}") from exc
    return day.timestamp() + (86400 if end else 0)


def _label(value: str) -> int | None:
    if not value:
        return None
    if value == "none":
        return 0
    try:
        return parse_label(value)
    except InvalidInput as exc:
        raise BadFilter(str(exc)) from exc


def _int(value: str, name: str, lo: int, hi: int) -> int | None:
    if not value:
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise BadFilter(f"{name} must be a number") from exc
    if not lo <= number <= hi:
        raise BadFilter(f"{name} must be between {lo} and {hi}")
    return number


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Sql:
    """Collects bound parameters with the right placeholder style for the dialect."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgres"
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.pg else "?"

    def uid(self, value: uuid.UUID) -> str:
        return self.p(value if self.pg else str(value))

    def json_text(self, column: str, key: str) -> str:
        if self.pg:
            return f"({column}::jsonb ->> '{key}')"
        return f"json_extract({column}, '$.{key}')"

    def json_has(self, column: str, key: str, value: str) -> str:
        if self.pg:
            return f"jsonb_exists(({column}::jsonb -> '{key}'), {self.p(value)})"
        return (
            f"EXISTS (SELECT 1 FROM json_each({column}, '$.{key}') WHERE value = {self.p(value)})"
        )

    def like(self) -> str:
        return "ILIKE" if self.pg else "LIKE"


def dialect() -> str:
    conn = connections.get("default")
    return "postgres" if conn.capabilities.dialect == "postgres" else "sqlite"


def where_clause(f: Filters, sql: Sql) -> str:
    """The WHERE of the library query (purged assets are hidden unless asked for)."""
    conds: list[str] = []
    if f.states:
        conds.append(f"a.state IN ({', '.join(sql.p(s) for s in f.states)})")
    else:
        conds.append(f"a.state <> {sql.p(AssetState.PURGED.value)}")
    if f.kind:
        conds.append(f"a.kind = {sql.p(f.kind)}")
    if f.folder:
        conds.append(f"a.rel_path {sql.like()} {sql.p(escape_like(f.folder) + '/%')} ESCAPE '\\'")
    if f.text:
        conds.append(
            f"a.rel_path {sql.like()} {sql.p('%' + escape_like(f.text) + '%')} ESCAPE '\\'"
        )
    # Dates are capture dates (the file date while the capture time is unknown).
    if f.since is not None:
        conds.append(f"{SORTS['captured']} >= {sql.p(f.since)}")
    if f.until is not None:
        conds.append(f"{SORTS['captured']} < {sql.p(f.until)}")
    for column, wanted in (("a.camera", f.camera), ("a.lens", f.lens)):
        if wanted:
            pattern = "%" + escape_like(wanted.lower()) + "%"
            conds.append(f"LOWER({column}) LIKE {sql.p(pattern)} ESCAPE '\\'")
    # Tag, project and location match whatever their case ("Ceremony" finds "ceremony").
    if f.tag:
        conds.append(
            f"a.id IN (SELECT t.asset_id FROM tag t WHERE LOWER(t.name) = {sql.p(f.tag.lower())})"
        )
    if f.project:
        project = sql.json_text("a.fields_data", "project")
        conds.append(f"LOWER({project}) = {sql.p(f.project.lower())}")
    if f.location:
        location = sql.json_text("a.fields_data", "location")
        conds.append(f"LOWER({location}) = {sql.p(f.location.lower())}")
    if f.person:
        conds.append(sql.json_has("a.fields_data", "people", f.person))
    if f.rating is not None:
        conds.append(f"a.rating >= {sql.p(f.rating)}")
    if f.label is not None:
        conds.append(f"a.label = {sql.p(f.label)}")
    if f.decision == "none":
        conds.append("a.decision IS NULL")
    elif f.decision:
        conds.append(f"a.decision = {sql.p(f.decision)}")
    for token in search.query_tokens(f.q):  # every word, anywhere in the asset's texts
        match = search.token_match(token, sql.pg, "{}")
        conds.append(f"a.id IN ({match.sql.format(sql.p(match.param))})")
    if f.bin is not None:
        conds.append(
            f"a.id IN (SELECT ba.asset_id FROM bin_asset ba WHERE ba.bin_id = {sql.p(f.bin)})"
        )
    if f.flag == "failed":
        conds.append(f"a.failed = {sql.p(True)}")
    elif f.flag == "missing":
        conds.append(f"a.missing = {sql.p(True)}")
    elif f.flag == "duplicate":
        conds.append(DUPLICATE_CONDITION)
    return " AND ".join(conds)


async def fetch(sql_text: str, params: list[Any]) -> list[dict[str, Any]]:
    conn = connections.get("default")
    rows: list[dict[str, Any]] = await conn.execute_query_dict(sql_text, params)
    return rows


def _norm_row(row: dict[str, Any]) -> dict[str, Any]:
    row["id"] = row["id"] if isinstance(row["id"], uuid.UUID) else uuid.UUID(str(row["id"]))
    row["failed"] = bool(row["failed"])
    row["missing"] = bool(row["missing"])
    return row


async def page(f: Filters, offset: int, limit: int) -> list[dict[str, Any]]:
    sql = Sql(dialect())
    where = where_clause(f, sql)
    col = SORTS[f.sort]
    d = "DESC" if f.dir == "desc" else "ASC"
    text = (
        f"SELECT {ASSET_COLUMNS} FROM asset a WHERE {where} "
        f"ORDER BY {col} {d}, a.id {d} LIMIT {sql.p(limit)} OFFSET {sql.p(offset)}"
    )
    return [_norm_row(r) for r in await fetch(text, sql.params)]


class CountCache:
    """Totals per filter and per state, reused for `ttl_s` (counting 100k rows is the cost)."""

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 256) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._totals: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._states: tuple[float, dict[str, int]] | None = None

    def invalidate(self) -> None:
        self._totals.clear()
        self._states = None

    async def total(self, f: Filters) -> int:
        now = time.monotonic()
        hit = self._totals.get(f.key)
        if hit and now - hit[0] < self.ttl_s:
            return hit[1]
        sql = Sql(dialect())
        where = where_clause(f, sql)
        rows = await fetch(f"SELECT COUNT(*) AS n FROM asset a WHERE {where}", sql.params)
        total = int(rows[0]["n"])
        if len(self._totals) >= self.max_entries:
            self._totals.clear()
        self._totals[f.key] = (now, total)
        return total

    async def per_state(self) -> dict[str, int]:
        now = time.monotonic()
        if self._states and now - self._states[0] < self.ttl_s:
            return self._states[1]
        rows = await fetch("SELECT state, COUNT(*) AS n FROM asset GROUP BY state", [])
        counts = {str(r["state"]): int(r["n"]) for r in rows}
        self._states = (now, counts)
        return counts


async def neighbours(
    f: Filters, current: dict[str, Any]
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(previous, next) asset ids around `current` in the filtered, sorted list (keyset)."""
    col = SORTS[f.sort]
    key = f.sort if f.sort != "path" else "rel_path"
    key = {"changed": "state_changed_at"}.get(key, key)
    value = current[key]
    out: list[uuid.UUID | None] = []
    for forward in (False, True):
        ascending = (f.dir == "asc") == forward
        op, d = (">", "ASC") if ascending else ("<", "DESC")
        sql = Sql(dialect())
        where = where_clause(f, sql)
        v, cur = sql.p(value), sql.uid(current["id"])
        # A row-value comparison walks the (state, col, id) index from the current asset;
        # the equivalent `col > v OR (col = v AND id > cur)` makes SQLite sort every match.
        text = (
            f"SELECT a.id FROM asset a WHERE {where} AND ({col}, a.id) {op} ({v}, {cur}) "
            f"ORDER BY {col} {d}, a.id {d} LIMIT 1"
        )
        rows = await fetch(text, sql.params)
        out.append(uuid.UUID(str(rows[0]["id"])) if rows else None)
    return out[0], out[1]


async def linked_videos(audio_id: uuid.UUID) -> list[dict[str, Any]]:
    """Videos that use this recording as their linked audio (few, usually none)."""
    sql = Sql(dialect())
    cond = f"a.linked_audio_id = {sql.uid(audio_id)}"
    if not sql.pg:
        # Almost every row has NULL here, so SQLite's statistics make the index look useless;
        # `unlikely()` tells it this equality is selective (index search, not a 100k-row scan).
        cond = f"unlikely({cond})"
    rows = await fetch(f"SELECT a.id, a.rel_path, a.state FROM asset a WHERE {cond}", sql.params)
    return [{**r, "id": uuid.UUID(str(r["id"]))} for r in rows]


#: Pictures a library card may show, best first.
_CARD_ROLES = {"poster": 0, "thumb": 1, "waveform_png": 2}


async def cards(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attach a thumbnail (poster, else first thumb, else for sound its waveform), the
    tags and the latest facts (duration, picture, camera on the card): three queries."""
    if not rows:
        return rows
    ids = [r["id"] for r in rows]
    versions = {r["id"]: r["version"] for r in rows}
    derivs = await Derivative.filter(asset_id__in=ids, role__in=list(_CARD_ROLES)).values(
        "id", "asset_id", "role", "version"
    )
    best: dict[uuid.UUID, tuple[int, int]] = {}
    for d in derivs:
        aid = (
            d["asset_id"] if isinstance(d["asset_id"], uuid.UUID) else uuid.UUID(str(d["asset_id"]))
        )
        current = d["version"] == versions.get(aid)
        rank = (0 if current else len(_CARD_ROLES)) + _CARD_ROLES[d["role"]]
        if aid not in best or (rank, d["id"]) < best[aid]:
            best[aid] = (rank, d["id"])
    tags: dict[uuid.UUID, list[str]] = {}
    for t in await Tag.filter(asset_id__in=ids).order_by("name").values("asset_id", "name"):
        aid = (
            t["asset_id"] if isinstance(t["asset_id"], uuid.UUID) else uuid.UUID(str(t["asset_id"]))
        )
        tags.setdefault(aid, []).append(t["name"])
    facts: dict[uuid.UUID, tuple[int, Any]] = {}
    sql = Sql(dialect())
    marks = ", ".join(sql.uid(i) for i in ids)
    text = f"SELECT asset_id, version, data FROM facts WHERE asset_id IN ({marks})"
    for fa in await fetch(text, sql.params):
        aid = uuid.UUID(str(fa["asset_id"]))
        if aid not in facts or fa["version"] > facts[aid][0]:
            data = fa["data"]
            facts[aid] = (fa["version"], json.loads(data) if isinstance(data, str) else data)
    dups = await duplicate_ids(ids)
    for r in rows:
        b = best.get(r["id"])
        r["thumb"] = f"/derived/{r['id']}/{b[1]}" if b else None
        r["tags"] = tags.get(r["id"], [])
        data = facts.get(r["id"], (0, None))[1]
        r["facts"] = data if isinstance(data, dict) else {}
        r["duplicate"] = r["id"] in dups
    return rows
