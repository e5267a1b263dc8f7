"""Store what XMP and camera clip XML sidecars say (server side, after processing).

- XMP keywords become tags with `source = "xmp"` (keywords already tagged, in any
  case, are skipped; the import runs when the asset is processed or reprocessed), the
  XMP rating becomes the asset's rating unless a human set one; label, title, description go to `facts.xmp`.
- Clip XML (Sony, Panasonic, Canon) goes to `facts.clip`.
- The capture time (rush/metadata/capture.py), camera and lens are set on the asset.
Bad files are listed in `facts.sidecar_problems`; nothing else is affected.
Contract: docs/processing.md, "XMP and camera sidecars".
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path, PurePosixPath
from typing import Any

from tortoise.exceptions import IntegrityError

from rush.layout import UnsafePath, resolve
from rush.metadata import capture, clipxml, xmp
from rush.models import Asset, Facts, Sidecar, Tag
from rush.transitions import utcnow

log = logging.getLogger(__name__)


def _read(path: Path, limit: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(limit + 1)


async def import_camera_metadata(asset: Asset, rows: list[Sidecar], root: Path) -> dict[str, Any]:
    problems: list[str] = []
    found_xmp: xmp.Xmp | None = None
    clip: dict[str, Any] | None = None
    for row in rows:
        name = PurePosixPath(row.rel_path).name
        ext = name.rsplit(".", 1)[-1].lower()
        if ext not in ("xmp", "xml"):
            continue
        try:
            path = resolve(root, row.rel_path)
            if ext == "xmp":
                raw = await asyncio.to_thread(_read, path, xmp.MAX_XMP_BYTES)
                found_xmp = found_xmp or xmp.parse(raw, name)
            else:
                raw = await asyncio.to_thread(_read, path, clipxml.MAX_CLIP_XML_BYTES)
                clip = clip or clipxml.parse(raw, name)
        except (xmp.XmpError, clipxml.ClipXmlError) as exc:
            problems.append(str(exc))
        except (OSError, UnsafePath) as exc:
            problems.append(f"{name}: cannot be read ({exc})")
    facts_row = await Facts.get_or_none(asset_id=asset.id, version=asset.version)
    facts = dict(facts_row.data) if facts_row is not None else {}
    if found_xmp is not None:
        facts["xmp"] = found_xmp.as_facts()
    if clip is not None:
        facts["clip"] = clip
    if problems:
        facts["sidecar_problems"] = list(
            dict.fromkeys([*facts.get("sidecar_problems", []), *problems])
        )
    if facts_row is not None and (found_xmp or clip or problems):
        await Facts.filter(id=facts_row.id).update(data=facts)
    ts, source = capture.capture_time(
        facts,
        found_xmp.created if found_xmp else None,
        clip.get("created") if clip else None,
        asset.mtime,
    )
    updates: dict[str, Any] = {
        "capture_ts": ts,
        "capture_source": source,
        "camera": capture.camera_of(facts, clip),
        "lens": (str(facts["lens_model"])[:128] if facts.get("lens_model") else None),
        "updated_at": utcnow(),
    }
    added: list[str] = []
    if found_xmp is not None:
        fields_data = dict(asset.fields_data or {})
        if found_xmp.rating is not None and fields_data.get("rating") is None:
            fields_data["rating"] = found_xmp.rating
            updates["fields_data"] = fields_data
        existing = {
            str(n).lower()
            for n in await Tag.filter(asset_id=asset.id).values_list("name", flat=True)
        }
        for keyword in found_xmp.keywords:
            if keyword.lower() in existing:
                continue
            try:
                await Tag.create(asset_id=asset.id, name=keyword, source="xmp")
                added.append(keyword)
            except IntegrityError:
                pass
    await Asset.filter(id=asset.id).update(**updates)
    for problem in problems:
        log.warning("asset %s: %s", asset.id, problem)
    return {
        "xmp": found_xmp.as_facts() if found_xmp else None,
        "clip": clip,
        "capture": (ts, source),
        "xmp_tags": added,
        "metadata_problems": problems,
    }
