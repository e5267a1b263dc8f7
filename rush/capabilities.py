"""What an agent can do, read from its registration, and which assets that excludes.

Why a module of its own: the dispatcher must only offer a job the agent can run (a
photo-only agent without ffmpeg handed a video fails it, and after `max_attempts` a
healthy asset is flagged failed).  The rules are pure and small: the agent's
registration lists the job types it runs (`job_types`) and, per job type, what its
processor handles (`capabilities[job_type]`: `kinds`, `heif`, `raw`).  Transcription
languages stay in `rush.language_dispatch`.  Anything an agent does not say is taken as
"can" (older and third-party agents keep working as before).
Contract: docs/agents.md, "Capabilities".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q

from rush.jobs import JobType
from rush.media import MediaKind

#: Photo formats that need the HEIF decoder (`capabilities.*.heif`).
HEIF_EXTENSIONS = ("heic", "heif", "hif")
#: Camera RAW formats (`capabilities.*.raw`; false means none of them).
RAW_EXTENSIONS = (
    "cr2", "cr3", "nef", "nrw", "arw", "dng", "raf", "orf", "rw2", "pef", "srw", "gpr",
)  # fmt: skip
_KINDS = frozenset(k.value for k in MediaKind)


@dataclass(frozen=True, slots=True)
class Can:
    """What one agent can do for one job type.  `kinds` None: every kind."""

    kinds: frozenset[str] | None = None
    heif: bool = True
    raw: bool = True

    @property
    def key(self) -> tuple[tuple[str, ...] | None, bool, bool]:
        """Agents with the same key share one candidate queue (a bounded number: at most
        2^3 kind sets x 2 x 2)."""
        return (tuple(sorted(self.kinds)) if self.kinds is not None else None, self.heif, self.raw)

    @property
    def unrestricted(self) -> bool:
        return self.kinds is None and self.heif and self.raw

    def allows(self, kind: str, rel_path: str) -> bool:
        """Whether an asset of this kind at this path is a job for the agent (pure)."""
        if self.kinds is not None and kind not in self.kinds:
            return False
        ext = rel_path.rsplit(".", 1)[-1].lower() if "." in rel_path else ""
        if kind == MediaKind.PHOTO.value:
            if not self.heif and ext in HEIF_EXTENSIONS:
                return False
            if not self.raw and ext in RAW_EXTENSIONS:
                return False
        return True

    def query(self) -> Q:
        """The same rule as a filter on `Asset` (so a queue never fills with assets the
        agent would have to skip)."""
        q = Q()
        if self.kinds is not None:
            q &= Q(kind__in=sorted(self.kinds))
        excluded = (() if self.heif else HEIF_EXTENSIONS) + (() if self.raw else RAW_EXTENSIONS)
        if excluded:
            photo_ext = Q(kind=MediaKind.PHOTO.value) & Q(
                *(Q(rel_path__iendswith=f".{e}") for e in excluded), join_type="OR"
            )
            q &= ~photo_ext
        return q


ANY = Can()


def _flag(value: Any) -> bool:
    """A capability flag: explicitly false, empty or "none" means no; anything else yes."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", "none", "no", "false")
    return bool(value)


def can_for(
    capabilities: Mapping[str, Any] | None, job_types: Iterable[str], job_type: JobType
) -> Can | None:
    """What the agent can do for `job_type`, or None when it does not run that type.

    `job_types`: the types it registered (empty: not said, so any)."""
    registered = {str(t) for t in job_types}
    if registered and job_type.value not in registered:
        return None
    entry = (capabilities or {}).get(job_type.value)
    if not isinstance(entry, Mapping):
        return ANY
    kinds: frozenset[str] | None = None
    raw_kinds = entry.get("kinds")
    if isinstance(raw_kinds, list):
        kinds = frozenset(str(k) for k in raw_kinds) & _KINDS
    return Can(
        kinds=kinds,
        heif=_flag(entry.get("heif", True)),
        raw=_flag(entry.get("raw", True)),
    )


def agent_can(
    agent_params: Mapping[str, Any], capabilities: Mapping[str, Any] | None
) -> dict[JobType, Can | None]:
    """`can_for` of every job type, from a stored agent (`Agent.params["job_types"]`)."""
    types = agent_params.get("job_types")
    registered = [str(t) for t in types] if isinstance(types, list) else []
    return {t: can_for(capabilities, registered, t) for t in JobType}


#: What READY assets may need, with a sample path for `Can.allows`.
CATEGORIES: dict[str, tuple[str, str]] = {
    "video": (MediaKind.VIDEO.value, "x.mp4"),
    "audio": (MediaKind.AUDIO.value, "x.wav"),
    "photo": (MediaKind.PHOTO.value, "x.jpg"),
    "photo (HEIF)": (MediaKind.PHOTO.value, "x.heic"),
    "photo (RAW)": (MediaKind.PHOTO.value, "x.cr3"),
}


def category_query(name: str) -> Q:
    """The assets of one of `CATEGORIES`."""
    kind, _sample = CATEGORIES[name]
    heif = Q(*(Q(rel_path__iendswith=f".{e}") for e in HEIF_EXTENSIONS), join_type="OR")
    raw = Q(*(Q(rel_path__iendswith=f".{e}") for e in RAW_EXTENSIONS), join_type="OR")
    if name == "photo (HEIF)":
        return Q(kind=kind) & heif
    if name == "photo (RAW)":
        return Q(kind=kind) & raw
    if name == "photo":
        return Q(kind=kind) & ~heif & ~raw
    return Q(kind=kind)


def unserved_categories(pools: Iterable[Can | None]) -> list[str]:
    """The categories no agent of these can take (pure)."""
    agents = [p for p in pools if p is not None]
    return [
        name
        for name, (kind, sample) in CATEGORIES.items()
        if not any(a.allows(kind, sample) for a in agents)
    ]


async def unserved_ready(online_only: bool = True) -> dict[str, int]:
    """Claimable READY assets that no (online) agent can process, counted by what they
    need: the jobs would wait in silence otherwise."""
    from rush.lifecycle import AssetState
    from rush.models import Agent, Asset

    agents = Agent.filter(online=True) if online_only else Agent.all()
    pools = [
        agent_can(a.params or {}, a.capabilities or {})[JobType.PROCESS_FOR_REVIEW]
        for a in await agents
    ]
    out: dict[str, int] = {}
    for name in unserved_categories(pools):
        n = await Asset.filter(
            category_query(name),
            state=AssetState.READY,
            batch_id=None,
            failed=False,
            missing=False,
        ).count()
        if n:
            out[name] = n
    return out
