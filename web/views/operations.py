"""The operations page, its live event stream, metrics and the derived-file download."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from rush.lifecycle import AssetState
from rush.models import Agent, Asset, AssetEvent, KeyValue, Lease
from web import auth
from web.derived import derived_file
from web.keys import CLOSING, CONFIG, COUNTS, SERVICES
from web.views.common import render


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
