"""Typed application keys (`web.AppKey`) and the state they hold.

Why a module of its own: the app factory sets these keys and every view reads them; when
they lived in `web/app.py` the views imported the factory, which imported the views
(an import cycle).  Here they depend on nothing of the UI but the types they name.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rush.config import Config
from web import auth, security
from web.queries import CountCache
from web.services import WebServices


@dataclass
class ActionRun:
    """One batch apply or purge started from the UI, followed live on its page."""

    id: str
    kind: str
    actor: str
    status: str = "running"  # running | done | error
    report: Any = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass
class RunRegistry:
    runs: dict[str, ActionRun] = field(default_factory=dict)
    group: asyncio.TaskGroup | None = None


CONFIG = web.AppKey("config", Config)
SERVICES = web.AppKey("services", WebServices)
CODEC = web.AppKey("codec", auth.SessionCodec)
LIMITER = web.AppKey("limiter", security.StoredLoginLimiter)
COUNTS = web.AppKey("counts", CountCache)
CLOSING = web.AppKey("closing", asyncio.Event)
RUNS = web.AppKey("runs", RunRegistry)
