"""What the asset page shows about transcription: the languages one can pick and why a
queued transcription is not being done (no agent has a model for its language)."""

from __future__ import annotations

from typing import Any

from rush import secondary
from rush.languages import TranscriptionConfig
from rush.models import Asset


async def transcript_context(asset: Asset, config: TranscriptionConfig) -> dict[str, Any]:
    pools = await secondary.agents_languages()
    languages = sorted(
        {config.default_language, *config.models}
        | {lang for pool in pools if pool for lang in pool}
    )
    problem = None
    if asset.transcript_status == "pending":
        problem = await secondary.unserved_language(
            asset.transcript_language or config.default_language
        )
    return {"languages": languages, "language_problem": problem}
