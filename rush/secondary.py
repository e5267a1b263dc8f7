"""Queue a secondary job again (transcription, tag suggestions) without reprocessing.

Why: a better model, another language or a fixed suggester should not cost a new proxy
and a new version.  Queuing only flips the job's status column back to `pending` (and,
for a transcription, fixes its language); the main state never changes, so this is not
a lifecycle transition.  Used by `rush retranscribe` / `rush resuggest`, the asset page
and the per-asset language choice.  Contract: docs/processing.md, "Recompute".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rush.jobs import JobType
from rush.languages import (
    LANGUAGE_FIELD,
    TranscriptionConfig,
    advertised_languages,
    asset_language,
    can_transcribe,
    check_language,
)
from rush.leasing import SECONDARY_STATES, has_audio
from rush.media import MediaKind
from rush.models import Agent, Asset, Facts
from rush.transitions import utcnow


@dataclass
class QueueReport:
    queued: list[uuid.UUID] = field(default_factory=list)
    #: asset id -> why it was not queued
    skipped: dict[uuid.UUID, str] = field(default_factory=dict)
    #: languages queued that no registered agent advertises (the jobs wait for one)
    unserved: list[str] = field(default_factory=list)

    def summary(self, what: str) -> str:
        text = f"{len(self.queued)} {what} queued, {len(self.skipped)} skipped"
        if self.unserved:
            text += (
                f"; no agent transcribes {', '.join(self.unserved)} yet: those jobs wait "
                "until an agent with a model for that language registers"
            )
        return text


def _uid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _why_not(asset: Asset, status: str) -> str | None:
    if asset.state not in SECONDARY_STATES:
        return f"state {asset.state} (only processed assets get secondary jobs)"
    if asset.batch_id is not None:
        return "inside a running batch apply"
    if asset.missing:
        return "file missing"
    if status == "running":
        return "a job is running now; queue it again when it ends"
    return None


async def agents_languages() -> list[set[str] | None]:
    """The languages each registered agent that transcribes advertises."""
    out: list[set[str] | None] = []
    for caps in await Agent.all().values_list("capabilities", flat=True):
        if isinstance(caps, dict) and JobType.TRANSCRIPTION.value in caps:
            out.append(advertised_languages(caps))
    return out


async def unserved_language(language: str) -> str | None:
    """Why no agent will take a transcription in `language`, or None."""
    pools = await agents_languages()
    if any(can_transcribe(p, language) for p in pools):
        return None
    offered = sorted({lang for p in pools if p for lang in p})
    return (
        f"no agent has a transcription model for {language!r}"
        + (f" (agents offer: {', '.join(offered)})" if offered else "")
        + "; set [transcription] models on an agent"
    )


async def queue_transcription(
    ids: Iterable[uuid.UUID],
    config: TranscriptionConfig,
    *,
    language: str | None = None,
    resuggest: bool = True,
) -> QueueReport:
    """Transcribe these assets again; `language` is also stored as their per-asset choice."""
    chosen = check_language(language) if language else None
    report = QueueReport()
    wanted: set[str] = set()
    for asset_id in ids:
        asset = await Asset.get_or_none(id=asset_id)
        if asset is None:
            report.skipped[_uid(asset_id)] = "no such asset"
            continue
        facts = await Facts.filter(asset_id=asset.id, version=asset.version).first()
        why = _why_not(asset, asset.transcript_status)
        if why is None and not has_audio(MediaKind(asset.kind), facts.data if facts else None):
            why = "no audio to transcribe"
        fields_data: dict[str, Any] = dict(asset.fields_data or {})
        if chosen is not None:
            fields_data[LANGUAGE_FIELD] = chosen
        if why is not None:
            report.skipped[asset.id] = why
            if chosen is not None:  # the choice is kept for when it can be transcribed
                await Asset.filter(id=asset.id).update(fields_data=fields_data, updated_at=utcnow())
            continue
        target = asset_language(asset.rel_path, fields_data, config)
        updates: dict[str, Any] = {
            "transcript_status": "pending",
            "transcript_language": target,
            "fields_data": fields_data,
            "updated_at": utcnow(),
        }
        if resuggest and asset.suggestions_status != "running":
            updates["suggestions_status"] = "pending"  # waits for the new transcript
        await Asset.filter(id=asset.id).update(**updates)
        report.queued.append(asset.id)
        wanted.add(target)
    pools = await agents_languages()
    report.unserved = sorted(w for w in wanted if not any(can_transcribe(p, w) for p in pools))
    return report


async def queue_suggestions(ids: Iterable[uuid.UUID]) -> QueueReport:
    """Suggest tags again (accepted suggestions, which are a human's tags, stay)."""
    report = QueueReport()
    for asset_id in ids:
        asset = await Asset.get_or_none(id=asset_id)
        if asset is None:
            report.skipped[asset_id] = "no such asset"
            continue
        why = _why_not(asset, asset.suggestions_status)
        if why is not None:
            report.skipped[asset.id] = why
            continue
        await Asset.filter(id=asset.id).update(suggestions_status="pending", updated_at=utcnow())
        report.queued.append(asset.id)
    return report


async def backfill(
    config: TranscriptionConfig, *, transcription: bool, suggest_tags: bool, batch: int = 500
) -> tuple[int, int]:
    """Queue the secondary jobs that never ran for processed assets (`[secondary]` was
    off when they were processed); returns (transcriptions, suggestions) queued."""
    transcribed = suggested = 0
    if transcription:
        last = None
        while True:
            query = Asset.filter(
                state__in=SECONDARY_STATES,
                transcript_status="none",
                batch_id=None,
                missing=False,
                kind__in=(MediaKind.VIDEO.value, MediaKind.AUDIO.value),
            )
            if last is not None:
                query = query.filter(id__gt=last)
            ids = await query.order_by("id").limit(batch).values_list("id", flat=True)
            if not ids:
                break
            last = ids[-1]
            report = await queue_transcription([_uid(i) for i in ids], config, resuggest=False)
            transcribed += len(report.queued)
    if suggest_tags:
        suggested = await Asset.filter(
            state__in=SECONDARY_STATES, suggestions_status="none", batch_id=None, missing=False
        ).update(suggestions_status="pending", updated_at=utcnow())
    return transcribed, suggested
