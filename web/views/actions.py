"""Batch apply and purge: plan, run in the background, follow a run on its page."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from typing import Any

from aiohttp import web

from rush.models import FsAction
from web import flash, reports
from web.keys import CONFIG, COUNTS, RUNS, SERVICES, ActionRun
from web.services import ActionUnavailable, jsonable
from web.template_filters import basename
from web.views.common import actor, render

log = logging.getLogger(__name__)


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
    who = actor(request)
    run = ActionRun(id=f"{int(time.time() * 1000)}-{secrets.token_hex(3)}", kind=kind, actor=who)

    async def go() -> None:
        try:
            if kind == "apply":
                result = await actions.run_apply(who)
            else:
                result = await actions.run_purge(who, confirm=True)
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
        f["renamed"] = bool(dst) and basename(src) != basename(dst)
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
