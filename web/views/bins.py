"""The bins page: create, delete, and export a bin as an offline editing package."""

from __future__ import annotations

from aiohttp import web
from tortoise.exceptions import IntegrityError

from rush.models import Bin
from web import flash, queries
from web.export import OfflineError, stream_bin_package
from web.keys import CONFIG
from web.views.common import render


async def bins_page(request: web.Request) -> web.StreamResponse:
    return await _bins(request)


async def _bins(request: web.Request, error: str | None = None) -> web.Response:
    rows = await queries.fetch(
        "SELECT b.id, b.name, COUNT(ba.asset_id) AS n FROM bin b "
        "LEFT JOIN bin_asset ba ON ba.bin_id = b.id GROUP BY b.id, b.name ORDER BY b.name",
        [],
    )
    return render(
        "bins.html", request, {"bins": rows, "error": error}, status=409 if error else 200
    )


async def bin_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = " ".join(str(form.get("name", "")).split())[:128]
    if not name:
        raise flash.back_with(request, "A bin needs a name.", "/bins")
    try:
        await Bin.create(name=name)
    except IntegrityError as exc:
        text = f"A bin named “{name}” exists already: pick another name."
        raise flash.back_with(request, text, "/bins") from exc
    raise web.HTTPSeeOther("/bins")


async def bin_export(request: web.Request) -> web.StreamResponse:
    """Download a bin as an offline editing package (zip); the library is only read."""
    try:
        bin_id = int(request.match_info["bin"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    target = await Bin.get_or_none(id=bin_id)
    if target is None:
        raise web.HTTPNotFound(text="no such bin")
    form = await request.post()
    unzip_to = str(form.get("unzip_to", "")).strip()[:1024] or None
    try:
        return await stream_bin_package(
            request, request.app[CONFIG].library.root, target.name, unzip_to=unzip_to
        )
    except OfflineError as exc:
        return await _bins(request, error=f"Export of {target.name!r} not possible: {exc}")


async def bin_delete(request: web.Request) -> web.StreamResponse:
    try:
        bin_id = int(request.match_info["bin"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    await Bin.filter(id=bin_id).delete()
    raise web.HTTPSeeOther("/bins")
