"""Which role each state-changing route needs (rush/roles.py), checked in one place.

Checked by `role_middleware`, which runs after the login and CSRF checks of
`web.auth` (a refusal there comes first, as before).

Why a table: every POST of the UI is listed here with its role, and a POST that is not
listed needs `admin` (closed by default), so a new route is never open to everyone by
accident.  Reading (GET) needs a login only.  `tests/test_web_roles.py` posts to every
route with every role.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from aiohttp import web

from rush.roles import allows
from web import auth, flash

log = logging.getLogger(__name__)

REVIEWER = "reviewer"
ADMIN = "admin"

#: (method, route template) -> the least role allowed.
REQUIRED: dict[tuple[str, str], str] = {
    ("POST", "/logout"): "viewer",
    ("POST", "/api/assets/{id}/decide"): REVIEWER,
    ("POST", "/api/assets/{id}/undo"): REVIEWER,
    ("POST", "/api/assets/{id}/tags"): REVIEWER,
    ("POST", "/api/assets/{id}/fields"): REVIEWER,
    ("POST", "/api/assets/{id}/suggestions/accept"): REVIEWER,
    ("POST", "/api/assets/{id}/link-audio"): REVIEWER,
    ("POST", "/api/assets/{id}/unlink-audio"): REVIEWER,
    ("POST", "/api/assets/{id}/bins"): REVIEWER,
    ("POST", "/api/assets/{id}/rating"): REVIEWER,
    ("POST", "/api/assets/{id}/label"): REVIEWER,
    ("POST", "/api/assets/{id}/reject-duplicate"): REVIEWER,
    ("POST", "/bins"): REVIEWER,
    ("POST", "/bins/{bin}/delete"): REVIEWER,
    ("POST", "/bins/{bin}/export"): REVIEWER,
    ("POST", "/actions/{kind}/plan"): REVIEWER,
    # Re-running a transcription or the suggestions (in another language, say) is part
    # of reviewing: it recomputes derived text and never touches a decision or a file.
    ("POST", "/assets/{id}/recompute/{job}"): REVIEWER,
    ("POST", "/actions/{kind}/run"): ADMIN,
}

#: `/assets/{id}/action/{action}`: the role depends on the action.
ASSET_ACTIONS = {"reopen": REVIEWER, "reprocess": ADMIN, "retry": ADMIN}


def required_role(request: web.Request) -> str | None:
    """The role `request` needs beyond a login (None: any logged-in user)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    route = request.match_info.route
    resource = route.resource
    template = resource.canonical if resource is not None else request.path
    if template == "/assets/{id}/action/{action}":
        return ASSET_ACTIONS.get(request.match_info.get("action", ""), ADMIN)
    return REQUIRED.get((request.method, template), ADMIN)


def check_role(request: web.Request, role: str | None) -> None:
    """Refuse a state-changing request the user's role does not allow:
    a form post goes back to its page with the reason, an API call gets a JSON 403."""
    needed = required_role(request)
    if needed is None or allows(role, needed):
        return
    text = f"Your role ({role}) cannot do this: it needs {needed}. Ask an admin."
    log.warning("refused %s %s to a %s", request.method, request.path, role)
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        referer = urlsplit(request.headers.get("Referer", "/"))
        same_site = not referer.netloc or referer.netloc == request.host
        raise flash.back_with(request, text, referer.path if same_site else "/")
    raise web.HTTPForbidden(text=json.dumps({"error": text}), content_type="application/json")


@web.middleware
async def role_middleware(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    """After `web.auth`'s middleware: state-changing requests to non-public paths."""
    if request.method in auth.UNSAFE_METHODS and not auth.is_public(request.path):
        check_role(request, request.get(auth.ROLE))
    return await handler(request)
