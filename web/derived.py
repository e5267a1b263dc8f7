"""Serving derived files (proxies, thumbs, waveforms) and nothing else.

A request names an asset UUID and a derivative id; the file's path comes from the
`Derivative` row, never from the request.  The path must sit under `.derived/`, and its
resolved real path (symlinks followed) must still be inside the resolved `.derived/`
folder: a symlink planted inside `.derived` that points elsewhere gets a 404.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from aiohttp import web

from rush.layout import UnsafePath, resolve
from rush.media import DERIVED_DIR
from rush.models import Derivative

log = logging.getLogger(__name__)

MIME_FALLBACK = {
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".webm": "video/webm",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".json": "application/json",
    ".vtt": "text/vtt",
}


def safe_derived_path(root: Path, rel_path: str) -> Path | None:
    """The real file for a stored derivative path, or None if it would leave `.derived`."""
    if not rel_path.startswith(DERIVED_DIR + "/"):
        return None
    try:
        candidate = resolve(root, rel_path)
    except UnsafePath:
        return None
    try:
        base = (root / DERIVED_DIR).resolve(strict=True)
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(base) or not real.is_file():
        return None
    return real


async def derived_file(request: web.Request, root: Path) -> web.StreamResponse:
    try:
        asset_id = uuid.UUID(request.match_info["asset"])
        deriv_id = int(request.match_info["deriv"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    row = await Derivative.get_or_none(id=deriv_id, asset_id=asset_id)
    if row is None:
        raise web.HTTPNotFound()
    path = safe_derived_path(root, row.rel_path)
    if path is None:
        log.warning("refused derived file %s of asset %s: outside .derived", row.rel_path, asset_id)
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    mime = row.mime or MIME_FALLBACK.get(path.suffix.lower(), "")
    if mime:
        headers["Content-Type"] = mime
    return web.FileResponse(path, headers=headers)
