"""Import what an asset's sidecars say, on the server, once the asset is PROCESSED.

Why on the server: it reads the library anyway (scanner) and the result lands in its
database; an agent would only have to send the file back.  Sidecars are opened read-only
and never changed.  A subtitle sidecar with dialogue becomes a transcript with
`source = "sidecar"` (it marks the transcription done: no recognition is queued for a
clip that brings its own words, and a later recognised transcript never replaces it);
drone telemetry becomes `facts.telemetry`; a file that cannot be used is reported in
`facts.sidecar_problems` and nothing else is affected.  Contract: docs/processing.md,
"Subtitle sidecars".
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from rush.languages import TranscriptionConfig, asset_language
from rush.layout import UnsafePath, resolve
from rush.metadata import camera_import, subtitles
from rush.models import Asset, Facts, Sidecar, Transcript
from rush.transitions import utcnow

log = logging.getLogger(__name__)

SUBTITLE_EXTENSIONS = (".srt", ".vtt")


def _read_limited(path: Path, name: str) -> bytes:
    """The file, refused by its size before it is loaded (and never more than the limit
    plus one byte, should it grow meanwhile)."""
    with path.open("rb") as fh:
        subtitles.check_size(os.fstat(fh.fileno()).st_size, name)
        return fh.read(subtitles.MAX_SUBTITLE_BYTES + 1)


def _subtitle_language(rel: str, fallback: str) -> str:
    """`clip.en.srt` / `clip.mp4.ko.vtt` name their language; else the asset's."""
    parts = PurePosixPath(rel).name.lower().split(".")
    if len(parts) >= 3 and parts[-2].isalpha() and 2 <= len(parts[-2]) <= 3:
        return parts[-2]
    return fallback


async def import_sidecars(
    asset_id: uuid.UUID | str, root: Path, config: TranscriptionConfig
) -> dict[str, Any]:
    """Read the asset's sidecars; returns what was stored (for logs and tests)."""
    asset = await Asset.get_or_none(id=asset_id)
    if asset is None:
        return {}
    rows = await Sidecar.filter(asset_id=asset.id, missing=False).order_by("rel_path")
    result = await _import_subtitles(asset, rows, root, config)
    result.update(await camera_import.import_camera_metadata(asset, rows, root))
    await Asset.filter(id=asset.id).update(updated_at=utcnow())  # searchable now
    return result


async def _import_subtitles(
    asset: Asset, rows: list[Sidecar], root: Path, config: TranscriptionConfig
) -> dict[str, Any]:
    subs_rows = [r for r in rows if r.rel_path.lower().endswith(SUBTITLE_EXTENSIONS)]
    if not subs_rows:
        return {}
    problems: list[str] = []
    telemetry: dict[str, Any] | None = None
    dialogue: dict[str, Any] | None = None
    for row in subs_rows:
        name = PurePosixPath(row.rel_path).name
        try:
            path = resolve(root, row.rel_path)
            raw = await asyncio.to_thread(_read_limited, path, name)
            parsed = subtitles.parse(raw, name)
        except subtitles.SubtitleError as exc:
            problems.append(str(exc))
            continue
        except (OSError, UnsafePath) as exc:
            problems.append(f"{name}: cannot be read ({exc})")
            continue
        problems += parsed.problems
        if subtitles.is_telemetry(parsed):
            if telemetry is None:
                telemetry = {**subtitles.telemetry_facts(parsed), "file": name}
        elif dialogue is None:
            language = _subtitle_language(
                row.rel_path, asset_language(asset.rel_path, asset.fields_data, config)
            )
            dialogue = subtitles.transcript(parsed, language, name)
            dialogue["encoding"] = parsed.encoding
    if telemetry is not None or problems:
        facts = await Facts.get_or_none(asset_id=asset.id, version=asset.version)
        if facts is not None:
            data = dict(facts.data)
            if telemetry is not None:
                data["telemetry"] = telemetry
            if problems:
                data["sidecar_problems"] = problems
            await Facts.filter(id=facts.id).update(data=data)
    if dialogue is not None:
        await Transcript.filter(asset_id=asset.id, version=asset.version, source="sidecar").delete()
        await Transcript.create(
            asset_id=asset.id,
            version=asset.version,
            language=dialogue["language"][:16],
            source="sidecar",
            engine=dialogue["engine"][:128],
            text=dialogue["text"],
            words=dialogue["words"],
        )
        # The clip brings its own words: no recognition unless someone asks for one.
        await Asset.filter(id=asset.id, transcript_status__in=("pending", "none", "error")).update(
            transcript_status="done", updated_at=utcnow()
        )
    for problem in problems:
        log.warning("asset %s: %s", asset.id, problem)
    return {"dialogue": dialogue, "telemetry": telemetry, "problems": problems}
