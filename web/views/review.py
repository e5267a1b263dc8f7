"""The library, the asset page and the review actions on it (JSON API and form posts).

Nothing here changes an asset's state except through `rush.decisions`,
`rush.duplicates` or the `ActionService`; a `ReviewError` they raise becomes the HTTP
error in `web.errors`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web

from rush import decisions, duplicates
from rush.models import Asset, Bin
from web import auth, flash, queries
from web.asset_context import STATES, asset_context
from web.keys import CONFIG, COUNTS, SERVICES
from web.search_context import fresh_index, search_context
from web.template_filters import basename
from web.views.common import actor, asset_id, filters, render
from web.views.common import body as body_of

log = logging.getLogger(__name__)


# --- library -------------------------------------------------------------------------------


async def library(request: web.Request) -> web.StreamResponse:
    f = filters(request)
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


async def asset_page(request: web.Request) -> web.StreamResponse:
    context = await asset_context(
        asset_id(request), filters(request), request.app[CONFIG].transcription
    )
    if context is None:
        raise web.HTTPNotFound(text="no such asset")
    return render("asset.html", request, context)


# --- JSON API for the review page ----------------------------------------------------------


def _asset_json(asset: Asset) -> dict[str, Any]:
    return {"id": str(asset.id), "state": asset.state, "decision": asset.decision}


async def api_decide(request: web.Request) -> web.StreamResponse:
    body = await body_of(request)
    asset = await decisions.decide(asset_id(request), str(body.get("decision", "")), actor(request))
    request.app[COUNTS].invalidate()
    return web.json_response(_asset_json(asset))


async def api_reject_duplicate(request: web.Request) -> web.StreamResponse:
    asset = await duplicates.reject_as_duplicate(asset_id(request), actor(request))
    request.app[COUNTS].invalidate()
    return web.json_response(_asset_json(asset))


async def api_undo(request: web.Request) -> web.StreamResponse:
    asset = await decisions.undo_decision(asset_id(request), actor(request))
    request.app[COUNTS].invalidate()
    return web.json_response(_asset_json(asset))


async def api_tags(request: web.Request) -> web.StreamResponse:
    body = await body_of(request)
    aid, who = asset_id(request), actor(request)
    if "add" in body:
        tags = await decisions.add_tag(aid, str(body["add"]), who)
    elif "remove" in body:
        tags = await decisions.remove_tag(aid, str(body["remove"]), who)
    else:
        raw = body.get("tags", [])
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise decisions.InvalidInput("tags must be a list")
        tags = await decisions.set_tags(aid, [str(t) for t in items], who)
    return web.json_response({"tags": tags})


async def api_fields(request: web.Request) -> web.StreamResponse:
    body = await body_of(request)
    data = await decisions.set_fields(asset_id(request), dict(body), actor(request))
    return web.json_response({"fields": data})


async def api_accept_suggestion(request: web.Request) -> web.StreamResponse:
    body = await body_of(request)
    tags = await decisions.accept_suggestion(
        asset_id(request), str(body.get("tag", "")), actor(request)
    )
    return web.json_response({"tags": tags})


async def api_link_audio(request: web.Request) -> web.StreamResponse:
    body = await body_of(request)
    aid = asset_id(request)
    other = str(body.get("audio_id") or body.get("video_id") or "")
    if body.get("video_id"):  # linking from the audio's page
        asset = await decisions.link_audio(other, aid, actor(request))
    else:
        asset = await decisions.link_audio(aid, other, actor(request))
    return web.json_response({"video": str(asset.id), "audio": str(asset.linked_audio_id)})  # type: ignore[attr-defined]


async def api_unlink_audio(request: web.Request) -> web.StreamResponse:
    body = await body_of(request)
    video = str(body.get("video_id") or request.match_info["id"])
    asset = await decisions.unlink_audio(video, actor(request))
    return web.json_response({"video": str(asset.id), "audio": None})


async def api_asset_bin(request: web.Request) -> web.StreamResponse:
    body = await body_of(request)
    aid = asset_id(request)
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
    aid = asset_id(request)
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
        await calls[action](aid, actor(request))
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
    name = basename(asset.rel_path) if asset is not None else "this asset"
    reason = str(exc).replace(str(aid), name).strip() or type(exc).__name__
    label = {"retry": "Retry of processing"}.get(action, action.capitalize())
    return flash.back_with(request, f"{label} of {name} refused: {reason}", back)
