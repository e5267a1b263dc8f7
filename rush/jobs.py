"""The job contract between the server, the agent runtime and the processors (pure).

The dispatcher builds a `JobSpec` (sent as the `job` of `rush/agents/{id}/job`), the
agent runtime hands it to a `Processor` with a `JobContext`, and the result intake checks
the outcome against `required_roles` before an asset may become PROCESSED.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from rush.media import MediaKind


class JobType(StrEnum):
    PROCESS_FOR_REVIEW = "process_for_review"
    TRANSCRIPTION = "transcription"
    SUGGEST_TAGS = "suggest_tags"


#: Secondary jobs never change the main state; each has a status column on the asset.
SECONDARY_STATUS_FIELD = {
    JobType.TRANSCRIPTION: "transcript_status",
    JobType.SUGGEST_TAGS: "suggestions_status",
}


class DerivativeRole(StrEnum):
    PROXY = "proxy"
    POSTER = "poster"
    THUMB = "thumb"  # photo thumbnails (several sizes) and video strip frames
    STRIP = "strip"  # one image holding the video's thumbnail strip
    WAVEFORM_JSON = "waveform_json"
    WAVEFORM_PNG = "waveform_png"
    TRANSCRIPT_JSON = "transcript_json"
    VTT = "vtt"


def required_roles(kind: MediaKind) -> frozenset[DerivativeRole]:
    """Derivatives that must exist, non-empty, before an asset may be PROCESSED (docs/contract.md §2)."""
    if kind is MediaKind.VIDEO:
        return frozenset({DerivativeRole.PROXY, DerivativeRole.THUMB})
    if kind is MediaKind.AUDIO:
        return frozenset({DerivativeRole.PROXY})
    return frozenset({DerivativeRole.THUMB})


class JobPaths(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: Library-relative paths: the agent maps them onto its own mount point.
    main: str
    sidecars: list[str] = Field(default_factory=list)


class JobSpec(BaseModel):
    """What an agent receives; never a decision, never an absolute path."""

    model_config = ConfigDict(extra="forbid")
    job_id: str
    type: JobType
    asset_uuid: str
    kind: MediaKind
    lock_token: str
    lease_expires_at: datetime
    paths: JobPaths
    derived_dir: str
    version: int
    #: Inputs a secondary job needs (e.g. facts and transcript for suggest_tags).
    inputs: dict[str, Any] = Field(default_factory=dict)


class DerivativeRef(BaseModel):
    #: Unknown keys (`width`, `duration`… from a newer agent) are ignored, like every
    #: other agent payload; the path itself is checked where it is stored.
    model_config = ConfigDict(extra="ignore")
    role: DerivativeRole
    #: Library-relative, always under `derived_dir`.
    path: str
    size: int = Field(ge=0)
    mime: str = ""


class JobOutput(BaseModel):
    """What a processor produced; the runtime sends each part on its topic."""

    model_config = ConfigDict(extra="forbid")
    facts: dict[str, Any] | None = None
    derivatives: list[DerivativeRef] = Field(default_factory=list)
    #: transcription: {"language", "text", "words": [{word,start,end,conf}], "vtt": path}
    transcript: dict[str, Any] | None = None
    #: suggest_tags: [{"tag": str, "score": float}]
    suggestions: list[dict[str, Any]] | None = None


class JobFailed(Exception):
    """A processor's clear, reportable failure (corrupt media, timeout...)."""


class JobContext(Protocol):
    """What the agent runtime gives a processor."""

    #: Where this agent sees the library root.
    library_root: Path

    async def heartbeat(self, progress: float) -> None:
        """Report progress in [0, 1]; also extends the lease."""

    def abs_path(self, rel: str) -> Path:
        """Map a library-relative path to this agent's mount, refusing escapes."""


class Processor(Protocol):
    job_type: JobType

    def capabilities(self) -> dict[str, Any]:
        """What this processor can do on this machine (advertised at registration)."""

    async def run(self, job: JobSpec, ctx: JobContext) -> JobOutput:
        """Do the job; raise `JobFailed` with a clear message on bad input."""


@dataclass(frozen=True)
class MissingDerivatives:
    roles: frozenset[DerivativeRole]

    def __str__(self) -> str:
        return "missing required derivatives: " + ", ".join(sorted(self.roles))


def check_required(
    kind: MediaKind, present: dict[DerivativeRole, int]
) -> MissingDerivatives | None:
    """`present` maps role -> size on disk; zero-size files do not count."""
    missing = frozenset(r for r in required_roles(kind) if present.get(r, 0) <= 0)
    return MissingDerivatives(missing) if missing else None
