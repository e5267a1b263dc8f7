"""One middleware turns the review service's domain errors into JSON HTTP errors.

Why: every JSON handler used to wrap its call in `try/except ReviewError` and map the
error itself.  Now a handler just calls `rush.decisions`; a `ReviewError` that escapes
becomes `{"error": message}` with the status below (not found -> 404, wrong state -> 409,
bad input or wrong kind -> 400).  It is raised, not returned, exactly as the handlers did,
so the response is the same one aiohttp made from their `HTTPException`.
"""

from __future__ import annotations

import json

from aiohttp import web

from rush import decisions
from web.auth import Handler

ERROR_STATUS: dict[type[Exception], type[web.HTTPException]] = {
    decisions.NotFound: web.HTTPNotFound,
    decisions.WrongState: web.HTTPConflict,
    decisions.WrongKind: web.HTTPBadRequest,
    decisions.InvalidInput: web.HTTPBadRequest,
}


def api_error(exc: decisions.ReviewError) -> web.HTTPException:
    cls = ERROR_STATUS.get(type(exc), web.HTTPBadRequest)
    return cls(text=json.dumps({"error": str(exc)}), content_type="application/json")


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except decisions.ReviewError as exc:
        raise api_error(exc) from exc
