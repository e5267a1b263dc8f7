"""Every route of the web UI, in one table: method, path, handler, route name.

Why one table: the URLs of the whole UI can be read in one place, and the views do not
register themselves.  Who may call a state-changing route is in `web/roles.py`
(`tests/test_web_roles.py` checks that every POST listed here has a role there).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from aiohttp import web

from web.auth import Handler
from web.views import actions, bins, desk, operations, recompute, review, session

STATIC_DIR = Path(__file__).resolve().parent / "static"


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    name: str | None = None


ROUTES: list[Route] = [
    Route("GET", "/login", session.login_page, "login"),
    Route("POST", "/login", session.login_submit),
    Route("POST", "/logout", session.logout),
    Route("GET", "/", review.library, "library"),
    Route("GET", "/assets/{id}", review.asset_page, "asset"),
    Route("POST", "/api/assets/{id}/decide", review.api_decide),
    Route("POST", "/api/assets/{id}/undo", review.api_undo),
    Route("POST", "/api/assets/{id}/reject-duplicate", review.api_reject_duplicate),
    Route("POST", "/api/assets/{id}/tags", review.api_tags),
    Route("POST", "/api/assets/{id}/fields", review.api_fields),
    Route("POST", "/api/assets/{id}/suggestions/accept", review.api_accept_suggestion),
    Route("POST", "/api/assets/{id}/link-audio", review.api_link_audio),
    Route("POST", "/api/assets/{id}/unlink-audio", review.api_unlink_audio),
    Route("POST", "/api/assets/{id}/bins", review.api_asset_bin),
    Route("POST", "/assets/{id}/action/{action}", review.asset_action),
    Route("POST", "/assets/{id}/recompute/{job}", recompute.asset_recompute),
    Route("GET", "/bins", bins.bins_page, "bins"),
    Route("POST", "/bins", bins.bin_create),
    Route("POST", "/bins/{bin}/delete", bins.bin_delete),
    Route("POST", "/bins/{bin}/export", bins.bin_export),
    Route("GET", "/ops", operations.ops_page, "ops"),
    Route("GET", "/events", operations.event_stream),
    Route("GET", "/metrics", operations.metrics),
    Route("GET", "/actions", actions.actions_page, "actions"),
    Route("POST", "/actions/{kind}/plan", actions.action_plan),
    Route("POST", "/actions/{kind}/run", actions.action_run),
    Route("GET", "/actions/runs/{run}", actions.action_run_page),
    Route("GET", "/actions/runs/{run}/report", actions.action_run_report),
    Route(
        "GET",
        r"/derived/{asset:[0-9a-fA-F-]{32,36}}/{deriv:[0-9]{1,18}}",
        operations.derived,
        "derived",
    ),
    # The review desk (docs/web.md, "The review desk").
    Route("GET", "/api/assets/names", desk.asset_names),
    Route("GET", "/api/review/queue", desk.review_queue),
    Route("POST", "/api/assets/{id}/rating", desk.set_rating),
    Route("POST", "/api/assets/{id}/label", desk.set_label),
]


def setup_routes(app: web.Application) -> None:
    """Register `ROUTES` and the static files (versioned URLs)."""
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
