"""Thin request handlers: parse, call the domain service, render or answer JSON.

Domain errors map to HTTP statuses in one place (`_api_error`): not found -> 404,
wrong state -> 409, bad input or wrong kind -> 400.  Nothing here changes an asset's state
except through `rush.decisions` or the `ActionService`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from tortoise.exceptions import IntegrityError

from rush import decisions, duplicates, names
from rush.lifecycle import REPROCESSABLE, AssetState
from rush.models import (
    Agent,
    Asset,
    AssetEvent,
    Bin,
    Derivative,
    Facts,
    FsAction,
    KeyValue,
    Lease,
    PathChange,
    Sidecar,
    Suggestion,
    Transcript,
)
from rush.users import authenticate
from web import auth, flash, queries, reports, security
from web.app import CLOSING, CODEC, CONFIG, COUNTS, LIMITER, RUNS, SERVICES, ActionRun, base_context
from web.derived import derived_file
from web.search_context import fresh_index, search_context
from web.services import ActionUnavailable, jsonable
from web.transcript_context import transcript_context

log = logging.getLogger(__name__)

STATES = [s.value for s in AssetState]
ERROR_STATUS: dict[type[Exception], type[web.HTTPException]] = {
    decisions.NotFound: web.HTTPNotFound,
    decisions.WrongState: web.HTTPConflict,
    decisions.WrongKind: web.HTTPBadRequest,
    decisions.InvalidInput: web.HTTPBadRequest,
}


# --- template filters --------------------------------------------------------------------


def _size(value: int | None) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _epoch(value: float | None) -> str:
    if not value:
        return ""
    return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M")


def _dt(value: Any) -> str:
    if value is None:
        return ""
    moment: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if moment is None:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _basename(path: str) -> str:
    """The file name as shown (`names.display`: bytes that are not UTF-8 as U+FFFD)."""
    return names.display(path.rsplit("/", 1)[-1])


def _dirname(path: str) -> str:
    return names.display(path.rsplit("/", 1)[0]) if "/" in path else ""


def _shown(path: Any) -> str:
    """A stored path as people read it; `_exact` gives the name that can be typed back."""
    return names.display(str(path or ""))


def _exact(path: Any) -> str:
    return names.escape(str(path or ""))


def _clock(seconds: Any) -> str:
    try:
        total = float(seconds)
    except (TypeError, ValueError):
        return ""
    m, s = divmod(int(total), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


FILTERS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "epoch": _epoch,
    "dt": _dt,
    "basename": _basename,
    "dirname": _dirname,
    "shown": _shown,
    "exact": _exact,
    "clock": _clock,
}


# --- helpers -------------------------------------------------------------------------------


def render(
    template: str, request: web.Request, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render with the base context (user, CSRF token) every page needs."""
    return aiohttp_jinja2.render_template(
        template, request, {**base_context(request), **context}, status=status
    )


def _session(request: web.Request) -> auth.Session:
    session: auth.Session | None = request.get(auth.SESSION)
    assert session is not None and session.authenticated  # the middleware guarantees it
    return session


def _actor(request: web.Request) -> str:
    return f"user:{_session(request).user}"


def _asset_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError as exc:
        raise web.HTTPNotFound(text="no such asset") from exc


async def _body(request: web.Request) -> Mapping[str, Any]:
    if request.content_type == "application/json":
        try:
            data = security.parse_json_bounded(await request.read())
        except security.BadJson as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return data
    form = await request.post()
    return {k: v for k, v in form.items() if k != auth.CSRF_FIELD}


def _api_error(exc: decisions.ReviewError) -> web.HTTPException:
    cls = ERROR_STATUS.get(type(exc), web.HTTPBadRequest)
    return cls(text=json.dumps({"error": str(exc)}), content_type="application/json")


def _filters(request: web.Request) -> queries.Filters:
    try:
        return queries.Filters.parse(request.query, request.query.getall("state", []))
    except queries.BadFilter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc


# --- login ---------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.StreamResponse:
    session: auth.Session | None = request.get(auth.SESSION)
    if session and session.authenticated:
        raise web.HTTPSeeOther(auth.safe_redirect_target(request.query.get("next")))
    if session is None:
        session = auth.new_session()
    response = render(
        "login.html",
        request,
        {
            "csrf": session.csrf,
            "next": auth.safe_redirect_target(request.query.get("next")),
            "error": None,
        },
    )
    auth.set_session_cookie(
        response, request.app[CODEC], session, request.app[CONFIG].web.secure_cookies
    )
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:128]
    password = str(form.get("password", ""))[:1024]
    target = auth.safe_redirect_target(str(form.get("next", "/")))
    limiter = request.app[LIMITER]
    client = auth.client_key(request)
    wait = await limiter.retry_after(client, username)
    session = request[auth.SESSION]
    assert session is not None  # the CSRF check needs one, so the middleware made sure
    if wait > 0:
        response = render(
            "login.html",
            request,
            {
                "csrf": session.csrf,
                "next": target,
                "error": f"Too many failed attempts; try again in {int(wait) + 1} s.",
            },
            status=429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await authenticate(username, password)
    if user is None:
        await limiter.failed(client, username)
        log.warning("failed login for %r from %s", username, request.remote)
        return render(
            "login.html",
            request,
            {"csrf": session.csrf, "next": target, "error": "Wrong username or password."},
            status=401,
        )
    fresh = auth.new_session(user.username, user.id)
    await auth.open_session(fresh)
    response = web.HTTPSeeOther(target)
    auth.set_session_cookie(
        response, request.app[CODEC], fresh, request.app[CONFIG].web.secure_cookies
    )
    log.info("user %s logged in from %s", user.username, request.remote)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await auth.close_session(_session(request))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(auth.COOKIE, path="/")
    raise response


# --- library -------------------------------------------------------------------------------


async def library(request: web.Request) -> web.StreamResponse:
    f = _filters(request)
    page_size = request.app[CONFIG].web.page_size
    try:
        page_no = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page_no = 1
    counts = request.app[COUNTS]
    await fresh_index(f.q)
    rows = await queries.page(f, (page_no - 1) * page_size, page_size)
    total = await counts.total(f)
    per_state = await counts.per_state()
    items = await queries.cards(rows)
    bins = await Bin.all().order_by("name").values("id", "name")
    extra = await search_context(f.q, [r["id"] for r in rows])
    return render(
        "library.html",
        request,
        {
            "items": items,
            "f": f,
            "total": total,
            "page": page_no,
            "pages": max(1, -(-total // page_size)),
            "per_state": per_state,
            "states": STATES,
            "bins": bins,
            "qs": f.qs(),
            **extra,
        },
    )


# --- asset page ----------------------------------------------------------------------------


def _flatten(
    data: Any, prefix: str = "", out: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    out = [] if out is None else out
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data[:8]):
            _flatten(value, f"{prefix}[{i}]", out)
    elif data is None or data == []:
        pass  # a fact the file does not have (no lens, no EXIF exposure) is not shown
    else:
        text = ", ".join(map(str, data)) if isinstance(data, list) else str(data)
        out.append((prefix, text[:300]))
    return out


def _transcript_lines(
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


async def asset_page(request: web.Request) -> web.StreamResponse:
    asset_id = _asset_id(request)
    asset = await Asset.get_or_none(id=asset_id)
    if asset is None:
        raise web.HTTPNotFound(text="no such asset")
    f = _filters(request)
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
        from web.audio_links import candidates

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
        "facts": _flatten(facts.data) if facts else [],
        "transcript": transcript,
        "lines": _transcript_lines(transcript.words) if transcript else [],
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
        **await transcript_context(asset, request.app[CONFIG].transcription),
    }
    return render("asset.html", request, context)


# --- JSON API for the review page ----------------------------------------------------------


def _asset_json(asset: Asset) -> dict[str, Any]:
    return {"id": str(asset.id), "state": asset.state, "decision": asset.decision}


async def api_decide(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    try:
        asset = await decisions.decide(
            _asset_id(request), str(body.get("decision", "")), _actor(request)
        )
    except decisions.ReviewError as exc:
        raise _api_error(exc) from exc
    request.app[COUNTS].invalidate()
    return web.json_response(_asset_json(asset))


async def api_reject_duplicate(request: web.Request) -> web.StreamResponse:
    try:
        asset = await duplicates.reject_as_duplicate(_asset_id(request), _actor(request))
    except decisions.ReviewError as exc:
        raise _api_error(exc) from exc
    request.app[COUNTS].invalidate()
    return web.json_response(_asset_json(asset))


async def api_undo(request: web.Request) -> web.StreamResponse:
    try:
        asset = await decisions.undo_decision(_asset_id(request), _actor(request))
    except decisions.ReviewError as exc:
        raise _api_error(exc) from exc
    request.app[COUNTS].invalidate()
    return web.json_response(_asset_json(asset))


async def api_tags(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    aid, actor = _asset_id(request), _actor(request)
    try:
        if "add" in body:
            tags = await decisions.add_tag(aid, str(body["add"]), actor)
        elif "remove" in body:
            tags = await decisions.remove_tag(aid, str(body["remove"]), actor)
        else:
            raw = body.get("tags", [])
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list):
                raise decisions.InvalidInput("tags must be a list")
            tags = await decisions.set_tags(aid, [str(t) for t in items], actor)
    except decisions.ReviewError as exc:
        raise _api_error(exc) from exc
    return web.json_response({"tags": tags})


async def api_fields(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    try:
        data = await decisions.set_fields(_asset_id(request), dict(body), _actor(request))
    except decisions.ReviewError as exc:
        raise _api_error(exc) from exc
    return web.json_response({"fields": data})


async def api_accept_suggestion(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    try:
        tags = await decisions.accept_suggestion(
            _asset_id(request), str(body.get("tag", "")), _actor(request)
        )
    except decisions.ReviewError as exc:
        raise _api_error(exc) from exc
    return web.json_response({"tags": tags})


async def api_link_audio(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    aid = _asset_id(request)
    other = str(body.get("audio_id") or body.get("video_id") or "")
    try:
        if body.get("video_id"):  # linking from the audio's page
            asset = await decisions.link_audio(other, aid, _actor(request))
        else:
            asset = await decisions.link_audio(aid, other, _actor(request))
    except decisions.ReviewError as exc:
        raise _api_error(exc) from exc
    return web.json_response({"video": str(asset.id), "audio": str(asset.linked_audio_id)})  # type: ignore[attr-defined]


async def api_unlink_audio(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    video = str(body.get("video_id") or request.match_info["id"])
    try:
        asset = await decisions.unlink_audio(video, _actor(request))
    except decisions.ReviewError as exc:
        raise _api_error(exc) from exc
    return web.json_response({"video": str(asset.id), "audio": None})


async def api_asset_bin(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    aid = _asset_id(request)
    asset = await Asset.get_or_none(id=aid)
    if asset is None:
        raise web.HTTPNotFound(text="no such asset")
    try:
        bin_id = int(body.get("bin", 0))
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text="bin must be a number") from exc
    target = await Bin.get_or_none(id=bin_id)
    if target is None:
        raise web.HTTPNotFound(text="no such bin")
    if body.get("remove"):
        await target.assets.remove(asset)
    elif not await Bin.filter(id=bin_id, assets__id=aid).exists():
        await target.assets.add(asset)
    ids = await Bin.filter(assets__id=aid).values_list("id", flat=True)
    return web.json_response({"bins": sorted(ids)})


async def asset_action(request: web.Request) -> web.StreamResponse:
    """Reopen / reprocess / retry from the asset page, through the ActionService."""
    aid = _asset_id(request)
    action = request.match_info["action"]
    actions = request.app[SERVICES].actions
    calls = {
        "reopen": actions.reopen,
        "reprocess": actions.reprocess,
        "retry": actions.retry_failed,
    }
    if action not in calls:
        raise web.HTTPNotFound()
    form = await request.post()
    back = auth.safe_redirect_target(str(form.get("back", f"/assets/{aid}")))
    try:
        await calls[action](aid, _actor(request))
    except Exception as exc:
        # Refused (wrong state, module missing, a domain error of another module): the
        # person sees why in the page they were on, with the file's name, not its UUID.
        log.warning("%s of %s refused: %s", action, aid, exc)
        raise await _refused(request, action, aid, exc, back) from exc
    request.app[COUNTS].invalidate()
    raise web.HTTPSeeOther(back)


async def _refused(
    request: web.Request, action: str, aid: uuid.UUID, exc: Exception, back: str
) -> web.HTTPSeeOther:
    asset = await Asset.get_or_none(id=aid)
    name = _basename(asset.rel_path) if asset is not None else "this asset"
    reason = str(exc).replace(str(aid), name).strip() or type(exc).__name__
    label = {"retry": "Retry of processing"}.get(action, action.capitalize())
    return flash.back_with(request, f"{label} of {name} refused: {reason}", back)


# --- bins ----------------------------------------------------------------------------------


async def bins_page(request: web.Request) -> web.StreamResponse:
    return await _bins(request)


async def _bins(request: web.Request, error: str | None = None) -> web.Response:
    rows = await queries.fetch(
        "SELECT b.id, b.name, COUNT(ba.asset_id) AS n FROM bin b "
        "LEFT JOIN bin_asset ba ON ba.bin_id = b.id GROUP BY b.id, b.name ORDER BY b.name",
        [],
    )
    return render(
        "bins.html", request, {"bins": rows, "error": error}, status=409 if error else 200
    )


async def bin_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = " ".join(str(form.get("name", "")).split())[:128]
    if not name:
        raise flash.back_with(request, "A bin needs a name.", "/bins")
    try:
        await Bin.create(name=name)
    except IntegrityError as exc:
        text = f"A bin named “{name}” exists already: pick another name."
        raise flash.back_with(request, text, "/bins") from exc
    raise web.HTTPSeeOther("/bins")


async def bin_export(request: web.Request) -> web.StreamResponse:
    """Download a bin as an offline editing package (zip); the library is only read."""
    from web.export import OfflineError, stream_bin_package

    try:
        bin_id = int(request.match_info["bin"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    target = await Bin.get_or_none(id=bin_id)
    if target is None:
        raise web.HTTPNotFound(text="no such bin")
    form = await request.post()
    unzip_to = str(form.get("unzip_to", "")).strip()[:1024] or None
    try:
        return await stream_bin_package(
            request, request.app[CONFIG].library.root, target.name, unzip_to=unzip_to
        )
    except OfflineError as exc:
        return await _bins(request, error=f"Export of {target.name!r} not possible: {exc}")


async def bin_delete(request: web.Request) -> web.StreamResponse:
    try:
        bin_id = int(request.match_info["bin"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    await Bin.filter(id=bin_id).delete()
    raise web.HTTPSeeOther("/bins")


# --- operations ----------------------------------------------------------------------------


async def ops_page(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    agents = await Agent.all().order_by("id")
    leases = (
        await Lease.filter(status="active")
        .order_by("created_at")
        .values(
            "id",
            "agent_id",
            "job_type",
            "asset_id",
            "asset__rel_path",
            "progress",
            "expires_at",
            "heartbeat_at",
            "created_at",
        )
    )
    jobs_by_agent: dict[str, list[dict[str, Any]]] = {}
    for lease in leases:
        jobs_by_agent.setdefault(lease["agent_id"], []).append(lease)
    per_state = await request.app[COUNTS].per_state()
    failed = (
        await Asset.filter(failed=True)
        .order_by("-updated_at")
        .limit(100)
        .values("id", "rel_path", "attempts", "last_error", "state", "updated_at")
    )
    ready = (
        await Asset.filter(state=AssetState.READY, failed=False)
        .order_by("state_changed_at")
        .limit(50)
        .values("id", "rel_path", "kind", "attempts", "state_changed_at")
    )
    events = await AssetEvent.all().order_by("-id").limit(50)
    paths = dict(
        await Asset.filter(id__in=list({e.asset_id for e in events})).values_list("id", "rel_path")
    )
    scan = await KeyValue.get_or_none(key="last_scan")
    verify_rows = {
        kv.key: kv.value for kv in await KeyValue.filter(key__in=["last_verify", "verify_progress"])
    }
    stale_after = 3 * config.leases.heartbeat_s
    now = datetime.now(UTC)
    return render(
        "ops.html",
        request,
        {
            "agents": agents,
            "jobs_by_agent": jobs_by_agent,
            "leases": leases,
            "per_state": per_state,
            "failed": failed,
            "ready": ready,
            "events": events,
            "paths": {str(k): v for k, v in paths.items()},
            "scan": scan.value if scan else None,
            "scan_at": scan.updated_at if scan else None,
            "scan_interval": config.scanner.interval_s,
            "verify": verify_rows.get("last_verify"),
            "verify_progress": verify_rows.get("verify_progress"),
            "verify_every": config.verify.interval_days,
            "online": {a.id: _online(a, now, stale_after) for a in agents},
        },
    )


def _online(agent: Agent, now: datetime, stale_after: float) -> bool:
    """Online if it said so and its last heartbeat is recent (a lost LWT must not lie)."""
    if not agent.online:
        return False
    return agent.last_seen is None or (now - agent.last_seen).total_seconds() < stale_after


async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: every asset transition, as it happens (ops page, library badges)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    closing = request.app[CLOSING]
    await response.write(b"retry: 3000\n\n")
    last_ping = time.monotonic()
    with request.app[SERVICES].bus.subscribe("asset", maxsize=1000) as sub:
        try:
            while not closing.is_set():
                try:
                    event = await asyncio.wait_for(sub.queue.get(), timeout=1.0)
                except TimeoutError:
                    if time.monotonic() - last_ping > 15:
                        await response.write(b": ping\n\n")
                        last_ping = time.monotonic()
                    continue
                data = json.dumps(event.payload, default=str)
                await response.write(f"event: asset\ndata: {data}\n\n".encode())
        except ConnectionResetError:
            pass  # the browser went away (page change): nothing to clean up but the subscription
    return response


# --- actions (batch apply, purge) ----------------------------------------------------------


async def actions_page(request: web.Request) -> web.StreamResponse:
    runs = sorted(request.app[RUNS].runs.values(), key=lambda r: r.id, reverse=True)[:20]
    per_state = await request.app[COUNTS].per_state()
    return render(
        "actions.html",
        request,
        {"runs": runs, "per_state": per_state, "purge_cfg": request.app[CONFIG].purge},
    )


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in ("apply", "purge"):
        raise web.HTTPNotFound()
    return kind


async def action_plan(request: web.Request) -> web.StreamResponse:
    kind = _kind(request)
    actions = request.app[SERVICES].actions
    try:
        report = await (actions.plan_apply() if kind == "apply" else actions.plan_purge())
    except ActionUnavailable as exc:
        return render(
            "plan.html",
            request,
            {"kind": kind, "error": str(exc), "report": None, "plan": None},
            status=503,
        )
    data = jsonable(report)
    plan: dict[str, Any] | None = None
    if isinstance(data, dict):
        if kind == "apply":
            plan = reports.apply_plan_view(data)
            root = request.app[CONFIG].library.root
            await asyncio.to_thread(reports.mark_taken, plan, root)
        else:
            plan = reports.purge_plan_view(data)
    return render(
        "plan.html",
        request,
        {"kind": kind, "error": None, "report": json.dumps(data, indent=2), "plan": plan},
    )


async def action_run(request: web.Request) -> web.StreamResponse:
    kind = _kind(request)
    form = await request.post()
    what = "batch apply" if kind == "apply" else "purge"
    if form.get("confirm") != "yes":
        text = f"Nothing was run: tick the confirmation box to run the {what}."
        raise flash.back_with(request, text, "/actions")
    registry = request.app[RUNS]
    if registry.group is None:
        raise flash.back_with(request, "The server is shutting down: try again later.", "/actions")
    running = [r for r in registry.runs.values() if r.status == "running" and r.kind == kind]
    if running:
        text = f"A {what} is already running (started by {running[0].actor}): wait for it to end."
        raise flash.back_with(request, text, f"/actions/runs/{running[0].id}")
    actions = request.app[SERVICES].actions
    actor = _actor(request)
    run = ActionRun(id=f"{int(time.time() * 1000)}-{secrets.token_hex(3)}", kind=kind, actor=actor)

    async def go() -> None:
        try:
            if kind == "apply":
                result = await actions.run_apply(actor)
            else:
                result = await actions.run_purge(actor, confirm=True)
            run.report, run.status = jsonable(result), "done"
        except ActionUnavailable as exc:
            run.error, run.status = str(exc), "error"
        except Exception as exc:
            log.exception("%s run %s failed", kind, run.id)
            run.error, run.status = f"{type(exc).__name__}: {exc}", "error"
        finally:
            request.app[COUNTS].invalidate()

    registry.runs[run.id] = run
    run.task = registry.group.create_task(go(), name=f"web-{kind}-{run.id}")
    raise web.HTTPSeeOther(f"/actions/runs/{run.id}")


def _run(request: web.Request) -> ActionRun:
    run = request.app[RUNS].runs.get(request.match_info["run"])
    if run is None:
        raise web.HTTPNotFound(text="no such run")
    return run


#: Files of a run listed on its page (the journal keeps them all).
RUN_FILES_SHOWN = 2000


async def action_run_page(request: web.Request) -> web.StreamResponse:
    run = _run(request)
    files: list[dict[str, Any]] = []
    report = run.report if isinstance(run.report, dict) else None
    batch_id = report.get("batch_id") if report else None
    if batch_id:
        try:
            bid = uuid.UUID(str(batch_id))
        except ValueError:
            bid = None
        if bid is not None:
            # Every file the run touched, from the journal: sidecars included.
            files = (
                await FsAction.filter(batch_id=bid, action__in=("move", "delete", "rmtree"))
                .order_by("id")
                .limit(RUN_FILES_SHOWN)
                .values("asset_id", "action", "src", "dst", "status", "error")
            )
    mains = (
        {str(m.get("path")) for m in report.get("moved", []) if isinstance(m, dict)}
        if report
        else set()
    )
    for f in files:
        src, dst = str(f["src"] or ""), str(f["dst"] or "")
        f["sidecar"] = bool(dst) and dst not in mains
        f["renamed"] = bool(dst) and _basename(src) != _basename(dst)
    return render(
        "run.html",
        request,
        {"run": run, "report": report, "files": files, "files_cap": RUN_FILES_SHOWN},
    )


async def action_run_report(request: web.Request) -> web.StreamResponse:
    run = _run(request)
    return web.json_response(
        {
            "id": run.id,
            "kind": run.kind,
            "status": run.status,
            "report": run.report,
            "error": run.error,
        }
    )


# --- derived files -------------------------------------------------------------------------


async def derived(request: web.Request) -> web.StreamResponse:
    return await derived_file(request, request.app[CONFIG].library.root)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; a logged-in session or `Authorization: Bearer <metrics_token>`."""
    import hmac

    from prometheus_client import CONTENT_TYPE_LATEST

    registry = request.app[SERVICES].metrics
    if registry is None:
        raise web.HTTPNotFound()
    session = request.get(auth.SESSION)
    token = request.app[CONFIG].web.metrics_token
    header = request.headers.get("Authorization", "")
    bearer_ok = token is not None and hmac.compare_digest(
        header.encode(), f"Bearer {token.get_secret_value()}".encode()
    )
    if not bearer_ok and (session is None or not session.authenticated):
        raise web.HTTPUnauthorized(text="login or bearer token required")
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
