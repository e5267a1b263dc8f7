"""Which role each state-changing route needs (rush/roles.py), checked in one place.

Why a table: every POST of the UI is listed here with its role, and a POST that is not
listed needs `admin` (closed by default), so a new route is never open to everyone by
accident.  Reading (GET) needs a login only.  `tests/test_web_roles.py` posts to every
route with every role.
"""

from __future__ import annotations

from aiohttp import web

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
