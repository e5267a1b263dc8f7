"""One-time messages shown in the page a person comes back to (errors of form posts).

Why: a refused form post (a duplicate bin name, a refused reopen, a run already going)
used to answer a bare text page; now the handler stores a sentence for the browser's
session and redirects to the page the person was on, which shows it once, inline.
Kept in memory per session id (a restart forgets unread messages, nothing else).
"""

from __future__ import annotations

from collections import OrderedDict

from aiohttp import web

from web import auth

#: Sessions and messages kept at most (a flood of failing posts cannot grow memory).
MAX_SESSIONS = 2000
MAX_MESSAGES = 5


class FlashStore:
    def __init__(self) -> None:
        self._messages: OrderedDict[str, list[str]] = OrderedDict()

    def add(self, sid: str, text: str) -> None:
        queue = self._messages.pop(sid, [])
        queue = [*queue, text][-MAX_MESSAGES:]
        self._messages[sid] = queue
        while len(self._messages) > MAX_SESSIONS:
            self._messages.popitem(last=False)

    def take(self, sid: str) -> list[str]:
        return self._messages.pop(sid, [])


FLASHES = web.AppKey("flashes", FlashStore)


def flash(request: web.Request, text: str) -> None:
    session = request.get(auth.SESSION)
    if session is not None:
        request.app[FLASHES].add(session.sid, text)


def take(request: web.Request) -> list[str]:
    session = request.get(auth.SESSION)
    if session is None or FLASHES not in request.app:
        return []
    return request.app[FLASHES].take(session.sid)


def back_with(request: web.Request, text: str, target: str) -> web.HTTPSeeOther:
    """Store `text` and send the browser back to `target` (a same-origin path)."""
    flash(request, text)
    return web.HTTPSeeOther(auth.safe_redirect_target(target))
