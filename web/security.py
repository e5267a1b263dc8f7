"""The web UI's edges: redirect targets, the stored login limiter, bounded JSON, caching.

Each of these answers an attack from outside (docs/web.md, "Security"):

- `safe_redirect_target`: only same-origin paths may ever be redirect targets;
- `StoredLoginLimiter`: failed logins counted per address and per user name, kept in the
  database (a restart is no fresh budget), never reset by a success;
- `parse_json_bounded`: a JSON body deeper or larger than a review form needs is a 400,
  not a `RecursionError`;
- `no_store`: pages and answers that carry user data are never kept by the browser, so
  Back after a logout shows the login page, not the library.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from typing import Any
from urllib.parse import quote, urlsplit

from rush.models import LoginFailure

# --- redirects -----------------------------------------------------------------------------

#: Characters kept as they are when a target is percent-encoded (RFC 3986 path, query,
#: fragment); everything else (non-ASCII, spaces) is encoded, so the header is plain ASCII.
_URL_SAFE = "/?&=#%:@!$'()*+,;~-._"


def safe_redirect_target(target: str | None) -> str:
    """`target` if it is a path on this site, else `/`.

    Why so strict: browsers drop tabs and newlines from a URL, read `\\` as `/`, strip
    leading spaces and control characters, and read `//host` as another host.  So any
    control, separator or format character and any backslash refuses the target outright
    (never "cleaned": cleaning is what turned `/\\t/evil.example` into `//evil.example`),
    and the rest must parse as a path with no scheme and no host.
    """
    if not target or not target.startswith("/") or len(target) > 2048:
        return "/"
    if "\\" in target or any(unicodedata.category(c)[0] in "CZ" for c in target):
        return "/"
    encoded = quote(target, safe=_URL_SAFE)
    if encoded.startswith("//"):
        return "/"
    try:
        parts = urlsplit(encoded)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"
    if parts.path.startswith("//"):
        return "/"
    return encoded


# --- login limiter -------------------------------------------------------------------------


class StoredLoginLimiter:
    """At most `max_failures` failed logins per client address and per user name per window.

    The two counts are independent and a successful login resets neither: otherwise four
    guesses on other names plus one login to one's own account, repeated, never hit the
    limit.  The per-address count covers every name tried from that address, so a spray
    of user names is limited too.  Rows older than the window are deleted on the way.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s

    @staticmethod
    def keys(client: str, username: str) -> list[str]:
        return [client[:200], f"user:{username.casefold()}"[:200]]

    async def retry_after(self, client: str, username: str, now: float | None = None) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.time() if now is None else now
        wait = 0.0
        for key in self.keys(client, username):
            rows = (
                await LoginFailure.filter(key=key, at__gt=now - self.window_s)
                .order_by("-at")
                .limit(self.max_failures)
                .values("at")
            )
            times = [float(row["at"]) for row in rows]
            if len(times) >= self.max_failures:
                oldest_counted = min(times)
                wait = max(wait, oldest_counted + self.window_s - now)
        return wait

    async def failed(self, client: str, username: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        await LoginFailure.filter(at__lte=now - self.window_s).delete()
        await LoginFailure.bulk_create(
            [LoginFailure(key=key, at=now) for key in self.keys(client, username)]
        )


# --- JSON bodies ---------------------------------------------------------------------------

#: A review form is a flat object of short values; nothing legitimate comes close.
MAX_JSON_DEPTH = 16
MAX_JSON_BYTES = 64 * 1024

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class BadJson(ValueError):
    """A JSON body that is malformed, too deep or too large; the message is for people."""


def json_depth(text: str) -> int:
    """Deepest nesting of `[`/`{` outside strings, without recursion (so it cannot overflow)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json_bounded(
    raw: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES
) -> Any:
    """`json.loads` with a size and a depth bound checked first; BadJson otherwise."""
    if len(raw) > max_bytes:
        raise BadJson(f"JSON body too large (more than {max_bytes // 1024} KB)")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise BadJson("JSON body is not UTF-8") from exc
    if json_depth(text) > max_depth:
        raise BadJson(f"JSON body nested too deeply (more than {max_depth} levels)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadJson("malformed JSON") from exc


# --- caching -------------------------------------------------------------------------------

#: Served to anyone, the same for everyone: the browser may keep them.
CACHEABLE_PREFIXES = ("/static/",)


def no_store(path: str) -> bool:
    """Whether a response must carry `Cache-Control: no-store` (all but static files)."""
    return not path.startswith(CACHEABLE_PREFIXES)
