"""Asset page buttons that queue a secondary job again: transcribe (optionally in another
language, which becomes the asset's per-asset choice) and suggest tags.

Why a module of its own: the review views are large already; these only call
`rush.secondary`.  Contract: docs/web.md, "Transcript, language and recompute".
"""

from __future__ import annotations

import uuid

from aiohttp import web

from rush import secondary
from web import auth
from web.keys import CONFIG, COUNTS


def _asset_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError as exc:
        raise web.HTTPNotFound(text="no such asset") from exc


async def asset_recompute(request: web.Request) -> web.StreamResponse:
    """POST /assets/{id}/recompute/{job}: `transcription` (form field `language`, empty
    for the folder rule or default) or `suggestions`."""
    aid = _asset_id(request)
    job = request.match_info["job"]
    form = await request.post()
    back = auth.safe_redirect_target(str(form.get("back", f"/assets/{aid}")))
    if job == "transcription":
        language = str(form.get("language", "")).strip() or None
        try:
            report = await secondary.queue_transcription(
                [aid], request.app[CONFIG].transcription, language=language
            )
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
    elif job == "suggestions":
        report = await secondary.queue_suggestions([aid])
    else:
        raise web.HTTPNotFound()
    if aid in report.skipped:
        raise web.HTTPConflict(text=f"not queued: {report.skipped[aid]}")
    request.app[COUNTS].invalidate()
    raise web.HTTPSeeOther(back)
