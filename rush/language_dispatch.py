"""Transcription jobs go only to agents that advertise the asset's language.

Why separate from `rush/leasing.py`: the dispatcher stays language-agnostic; it asks this
module which agents may take which transcription and what language to put in the job.
The language of a job is fixed when it is queued (`Asset.transcript_language`), from
the per-asset choice, the folder rules and the default (`rush/languages.py`); an asset
queued before languages existed has an empty one and counts as the default language.
Contract: docs/processing.md, "Transcription".
"""

from __future__ import annotations

import uuid
from typing import Any

from tortoise.expressions import Q

from rush.languages import (
    TranscriptionConfig,
    advertised_languages,
    asset_language,
    can_transcribe,
)
from rush.models import Agent, Asset


async def agent_languages(agent_id: str) -> set[str] | None:
    """What the agent's registration says it transcribes (None: any, an older agent)."""
    agent = await Agent.get_or_none(id=agent_id)
    return advertised_languages(agent.capabilities if agent is not None else None)


def language_filter(languages: set[str], config: TranscriptionConfig) -> Q:
    """Query filter on `Asset` for transcriptions in these languages."""
    wanted = set(languages)
    if config.default_language not in wanted:
        return Q(transcript_language__in=sorted(wanted))
    # Not fixed yet (queued before languages were recorded): the default language.
    wanted.add("")
    return Q(transcript_language__in=sorted(wanted)) | Q(transcript_language__isnull=True)


def job_language(asset: Asset, config: TranscriptionConfig) -> str:
    """The language written into a transcription job for this asset."""
    return asset.transcript_language or asset_language(asset.rel_path, asset.fields_data, config)


def allowed(languages: set[str] | None, asset: Asset, config: TranscriptionConfig) -> bool:
    return can_transcribe(languages, job_language(asset, config))


async def candidates(
    languages: set[str],
    config: TranscriptionConfig,
    filters: dict[str, Any],
    limit: int,
    *,
    extra: Q | None = None,
) -> list[uuid.UUID]:
    """Pending transcriptions in the agent's languages, oldest change first (`extra`:
    what else the agent needs, `rush.capabilities.Can.query`)."""
    query = Asset.filter(language_filter(languages, config), **filters)
    if extra is not None:
        query = query.filter(extra)
    ids = await query.order_by("updated_at").limit(limit).values_list("id", flat=True)
    return [i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)) for i in ids]
