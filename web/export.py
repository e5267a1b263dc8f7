"""Download a bin as an offline package (docs/contract.md §9, workflow 11) from the bins page.

Why here and shaped so: `rush.offline.export_selection` writes a package folder; the
browser wants one file.  The package is built in a fresh temporary folder outside the
library (the NAS is only read), zipped there in a worker thread, streamed to the client
in chunks, and the temporary folder is removed whatever happens (client gone, error).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
import unicodedata
import zipfile
from pathlib import Path

from aiohttp import web

from rush.offline import ExportReport, OfflineError, Selection, export_selection, join_mount

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
#: Already-compressed media is stored as is; text files (timelines, csv, json) deflated.
_STORED_SUFFIXES = {".mp4", ".mov", ".m4a", ".mp3", ".jpg", ".jpeg", ".png", ".webp", ".mkv"}


def package_filename(name: str) -> str:
    """A safe download name for a bin: `wedding-2024-06-offline.zip`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name).strip("-.") or "bin"
    return f"{slug[:80]}-offline.zip"


def zip_package(package: Path, target: Path, top: str) -> int:
    """Zip the package folder under one top folder `top/`; returns the zip's size."""
    with zipfile.ZipFile(target, "w", allowZip64=True) as zf:
        for path in sorted(package.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(package).as_posix()
            method = (
                zipfile.ZIP_STORED
                if path.suffix.lower() in _STORED_SUFFIXES
                else zipfile.ZIP_DEFLATED
            )
            zf.write(path, f"{top}/{rel}", compress_type=method)
    return target.stat().st_size


async def stream_bin_package(
    request: web.Request,
    root: Path,
    bin_name: str,
    *,
    unzip_to: str | None = None,
    tmp_parent: Path | None = None,
) -> web.StreamResponse:
    """Export `bin_name`, zip it and stream it; raises OfflineError before any byte is sent.

    `unzip_to` is the folder the editor will unzip into, spelled for the editing machine
    (POSIX or Windows); the timelines then point at absolute paths inside it.
    """
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="rush-export-", dir=tmp_parent))
    try:
        filename = package_filename(bin_name)
        top = filename.removesuffix(".zip")
        package = work / top
        report: ExportReport = await export_selection(
            root,
            Selection(bin=bin_name),
            package,
            name=bin_name,
            # Without a path on the editing machine the timelines point at `proxies/...`
            # relative to the package, never at this server's temporary folder.
            package_as=join_mount(unzip_to, top) if unzip_to else ".",
        )
        archive = work / filename
        size = await asyncio.to_thread(zip_package, package, archive, top)
        log.info(
            "offline export of bin %r: %d clips, %d skipped, %d bytes zipped",
            bin_name,
            len(report.clips),
            len(report.skipped),
            size,
        )
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Content-Length": str(size),
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        with archive.open("rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, CHUNK):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


__all__ = ["OfflineError", "package_filename", "stream_bin_package", "zip_package"]
