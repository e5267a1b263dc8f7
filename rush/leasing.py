"""Agents, leases and job results: the server-side services of Workflows 2, 3, 5 and 15.

Why here and transport-free: the rules that make processing safe (one asset, one lease;
only the current `lock_token` counts; an expired lease gives the asset back and counts an
attempt) are plain async functions over the database, tested on SQLite and PostgreSQL
without a broker.  `actors/jobs.py` connects them to MQTT.

A claim creates the lease and moves the asset READY -> PROCESSING_REVIEW in one database
transaction; the unique `Lease.active_key` ("{asset}:{job_type}" while active) forbids a
second active lease even if two claims pick the same asset, and a lost race simply moves
on to the next candidate.  Secondary jobs (transcription, tag suggestions) use the same
leases but flip their own status column (`pending` -> `running`), never the main state.

An agent is only offered what its registration says it can do (`rush.capabilities`),
and every lease is for one asset version: a reprocess ends the older version's leases
(`supersede_leases`) and a result for an older version is refused (`finish_job`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from rush import actions, events, language_dispatch
from rush.capabilities import ANY, Can, agent_can
from rush.config import Config
from rush.jobs import (
    SECONDARY_STATUS_FIELD,
    DerivativeRef,
    DerivativeRole,
    JobPaths,
    JobSpec,
    JobType,
    check_required,
)
from rush.languages import TranscriptionConfig, asset_language
from rush.layout import UnsafePath, derived_dir, resolve, safe_relpath
from rush.lease_fencing import SUPERSEDED
from rush.lifecycle import AssetState, Trigger
from rush.media import MediaKind
from rush.metadata.sidecar_import import import_sidecars
from rush.models import Agent, Asset, Derivative, Facts, Lease, Sidecar, Suggestion, Transcript
from rush.storage import sqlite_transaction, uses_sqlite
from rush.transitions import (
    AssetNotFound,
    StaleState,
    TransitionSql,
    emit_transitions,
    insert_rows,
    to_uuid,
    transition,
    utcnow,
)

log = logging.getLogger(__name__)

#: Main states in which secondary jobs may run (after review, not inside a batch move).
SECONDARY_STATES = (
    AssetState.PROCESSED,
    AssetState.DECISION_PENDING,
    AssetState.DECIDED_KEEP,
    AssetState.DECIDED_REJECT,
    AssetState.ARCHIVED,
    AssetState.REJECTED,
)
#: Eligibility of a main claim besides being READY (docs/contract.md §2: no claim inside a batch,
#: never a failed or missing asset).
CLAIMABLE = {"batch_id": None, "failed": False, "missing": False}


@dataclass(frozen=True)
class LeaseSettings:
    ttl_s: float = 120.0
    heartbeat_s: float = 30.0
    max_attempts: int = 3
    default_quota: int = 1
    priorities: tuple[JobType, ...] = tuple(JobType)
    transcription: bool = True
    suggest_tags: bool = True
    library_root: Path = Path("RUSHES_DB")
    #: Languages of transcription jobs (`[transcription]`: default, folder rules).
    languages: TranscriptionConfig = field(default_factory=TranscriptionConfig)
    #: The full config when built from one (needed to clean up superseded derivatives).
    config: Config | None = None

    @classmethod
    def from_config(cls, config: Config) -> LeaseSettings:
        leases = config.leases
        return cls(
            ttl_s=leases.ttl_s,
            heartbeat_s=leases.heartbeat_s,
            max_attempts=leases.max_attempts,
            default_quota=leases.default_quota,
            priorities=tuple(JobType(p) for p in leases.priorities),
            transcription=config.secondary.transcription,
            suggest_tags=config.secondary.suggest_tags,
            library_root=config.library.root,
            languages=config.transcription,
            config=config,
        )


@dataclass(frozen=True)
class Verdict:
    """Outcome of an agent message that needs a lock token."""

    accepted: bool
    reason: str = ""
    duplicate: bool = False


REFUSED_TOKEN = Verdict(False, "unknown job, stale or wrong lock_token, or lease not active")


def superseded_verdict(lease_version: int, current: int | None) -> Verdict:
    now = f"version {current}" if current is not None else "a newer version"
    return Verdict(
        False,
        f"result for version {lease_version} refused: the asset was reprocessed ({now})",
    )


@dataclass
class JobResult:
    """A job's final report, transport-free (the actor builds it from the payload)."""

    status: str  # ok | error | released
    error: str | None = None
    facts: dict[str, Any] | None = None
    derivatives: list[DerivativeRef] | None = None
    transcript: dict[str, Any] | None = None
    suggestions: list[dict[str, Any]] | None = None
    #: The asset version the agent worked on (`job.version`); None from older agents.
    version: int | None = None


# --- agents (docs/contract.md §9, workflow 2) ----------------------------------------------------------


def assign_params(
    settings: LeaseSettings,
    *,
    requested_jobs: int,
    job_types: Iterable[str],
    quota_limit: int | None = None,
    priorities: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The parameters an agent must honour (pure): quota never above the server's limit
    (the operator's `rush agents set --quota` when set, else `leases.default_quota`),
    the operator's priorities first when set, then the server's."""
    limit = quota_limit if quota_limit is not None else settings.default_quota
    can = set(job_types)
    order = [JobType(p) for p in priorities or () if p in JOB_TYPE_VALUES]
    order += [t for t in settings.priorities if t not in order]
    return {
        "quota": max(1, min(requested_jobs, limit)),
        "priorities": [str(t) for t in order if not can or t in can],
        "lease_ttl_s": settings.ttl_s,
        "heartbeat_s": settings.heartbeat_s,
    }


JOB_TYPE_VALUES = frozenset(t.value for t in JobType)
#: Keys of `Agent.params` that are not sent to the agent: what it asked for at its last
#: registration (to compute its parameters again when the server's settings change) and
#: what the operator set (`rush agents set`).
STORED_KEYS = ("requested_jobs", "job_types", "quota_limit", "operator_priorities")


def operator_settings(params: dict[str, Any]) -> tuple[int | None, list[str] | None]:
    """(quota limit, priorities) the operator set for this agent, if any."""
    limit = params.get("quota_limit")
    prios = params.get("operator_priorities")
    return (
        int(limit) if isinstance(limit, int) and limit >= 1 else None,
        [str(p) for p in prios] if isinstance(prios, list) else None,
    )


def params_for(stored: dict[str, Any], settings: LeaseSettings) -> dict[str, Any]:
    """The parameters to send, from what is stored for the agent and today's settings."""
    limit, prios = operator_settings(stored)
    requested = stored.get("requested_jobs")
    types = stored.get("job_types")
    return assign_params(
        settings,
        requested_jobs=int(requested)
        if isinstance(requested, int)
        else int(stored.get("quota", 1) or 1),
        job_types=[str(t) for t in types] if isinstance(types, list) else [],
        quota_limit=limit,
        priorities=prios,
    )


def _stored(params: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out.update({k: v for k, v in extra.items() if k in STORED_KEYS and v is not None})
    return out


async def register_agent(
    agent_id: str,
    settings: LeaseSettings,
    *,
    client_id: str,
    version: str = "",
    hostname: str = "",
    capabilities: dict[str, Any] | None = None,
    max_jobs: int = 1,
    job_types: Iterable[str] = (),
) -> dict[str, Any]:
    """Store (or refresh) an agent and return its assigned parameters."""
    agent = await Agent.get_or_none(id=agent_id)
    previous = dict(agent.params) if agent is not None else {}
    limit, prios = operator_settings(previous)
    types = [str(t) for t in job_types]
    params = assign_params(
        settings, requested_jobs=max_jobs, job_types=types, quota_limit=limit, priorities=prios
    )
    stored = _stored(
        params,
        {
            "requested_jobs": max_jobs,
            "job_types": types,
            "quota_limit": limit,
            "operator_priorities": prios,
        },
    )
    values: dict[str, Any] = {
        "client_id": client_id,
        "version": version,
        "hostname": hostname,
        "capabilities": capabilities or {},
        "params": stored,
        "online": True,
        "last_seen": utcnow(),
    }
    if agent is None:
        try:
            await Agent.create(id=agent_id, **values)
        except IntegrityError:
            await Agent.filter(id=agent_id).update(**values)
    else:
        await Agent.filter(id=agent_id).update(**values)
    return params


async def refresh_params(
    settings: LeaseSettings, agent_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Compute every (or these) stored agent's parameters again from today's settings,
    store them and return them by agent id, for the server to publish.

    Why: parameters are retained on the broker; without this a server restarted with
    another `leases.ttl_s` leaves its agents on the old heartbeat period (and a healthy
    agent loses its lease), and an operator's `rush agents set` reaches nobody."""
    query = Agent.all() if agent_ids is None else Agent.filter(id__in=list(agent_ids))
    out: dict[str, dict[str, Any]] = {}
    for agent in await query:
        stored = dict(agent.params or {})
        params = params_for(stored, settings)
        new = _stored(params, {k: stored.get(k) for k in STORED_KEYS})
        if new != stored:
            await Agent.filter(id=agent.id).update(params=new)
        out[agent.id] = params
    return out


async def set_operator_params(
    agent_id: str,
    *,
    quota: int | None = None,
    priorities: list[str] | None = None,
    clear: bool = False,
) -> dict[str, Any] | None:
    """Store the operator's quota limit and priorities for an agent (`rush agents set`);
    None when there is no such agent.  Returns the stored parameters."""
    agent = await Agent.get_or_none(id=agent_id)
    if agent is None:
        return None
    stored = dict(agent.params or {})
    if clear:
        stored.pop("quota_limit", None)
        stored.pop("operator_priorities", None)
    if quota is not None:
        stored["quota_limit"] = int(quota)
    if priorities is not None:
        stored["operator_priorities"] = [str(JobType(p)) for p in priorities]
    await Agent.filter(id=agent_id).update(params=stored)
    return stored


async def set_agent_online(agent_id: str, online: bool) -> None:
    await Agent.filter(id=agent_id).update(online=online, last_seen=utcnow())


async def agent_seen(agent_id: str) -> None:
    """An agent spoke (claim, heartbeat, result): it is alive now."""
    await Agent.filter(id=agent_id).update(last_seen=utcnow())


async def forget_presence() -> int:
    """Mark every agent offline until it says otherwise; returns how many were online.

    For the server's start: presence comes from the broker (each agent's retained
    `online` or Last Will re-arrives on subscription, and agents say `online` again when
    they reconnect), while an `online` left in the database by the previous run may be
    stale (the embedded broker keeps nothing across restarts, a crash misses the Will).
    """
    return await Agent.filter(online=True).update(online=False)


# --- claims (docs/contract.md §9, workflows 3 and 5) ---------------------------------------------------


class _Lost(Exception):
    """A secondary claim lost its race on the status column."""


@dataclass
class _Request:
    agent_id: str
    request_id: str
    job_types: list[JobType]
    future: asyncio.Future[JobSpec | None]


class Dispatcher:
    """Hands out leases.  Keeps a small in-memory queue of candidates per job type so
    concurrent claims take different assets instead of racing for the same first row,
    and remembers recent answers so a redelivered claim gets the same answer.

    Memory is bounded and cheap for the garbage collector: only the last `answers`
    answers are kept whole; older requests that got a lease are remembered as plain
    key tuples (`known_requests` of them) and answered again from the database."""

    def __init__(
        self,
        settings: LeaseSettings,
        *,
        bus: events.EventBus | None = None,
        batch: int = 256,
        answers: int = 2_000,
        known_requests: int = 200_000,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.batch = batch
        #: Candidate queues per job type and capability key (`rush.capabilities.Can.key`,
        #: a bounded set): a photo-only agent never takes, nor skips through, videos.
        self._candidates: dict[tuple[JobType, Any], collections.deque[uuid.UUID]] = {}
        self._refill_locks: dict[tuple[JobType, Any], asyncio.Lock] = {}
        self._answers: collections.OrderedDict[tuple[str, str], JobSpec | None] = (
            collections.OrderedDict()
        )
        self._answers_max = answers
        self.lost_races = 0
        self._inflight: dict[tuple[str, str], asyncio.Future[JobSpec | None]] = {}
        self._pending: list[_Request] = []
        self._batch_lock = asyncio.Lock()
        self._agent_params: dict[str, dict[str, Any]] = {}
        #: What each agent can do per job type (None: it does not run that type).
        self._agent_can: dict[str, dict[JobType, Can | None]] = {}
        #: (agent, request_id) of leases granted; None until read from the database.
        self._known_requests: collections.OrderedDict[tuple[str, str], None] | None = None
        self._known_max = known_requests
        #: Active leases per agent, possibly too high, never too low (`_active_counts`).
        self._active: dict[str, int] = {}

    def _remember(self, key: tuple[str, str], answer: JobSpec | None) -> None:
        self._answers[key] = answer
        if len(self._answers) > self._answers_max:
            self._answers.popitem(last=False)
        if answer is not None and self._known_requests is not None:
            self._known_requests[key] = None
            if len(self._known_requests) > self._known_max:
                self._known_requests.popitem(last=False)

    async def claim(
        self, agent_id: str, request_id: str, job_types: Iterable[str]
    ) -> JobSpec | None:
        """One job for this agent, or None; the same answer again for a known request_id.

        Concurrent claims are served in batches (group commit): whoever holds the batch
        lock serves every claim queued meanwhile in one transaction."""
        key = (agent_id, request_id)
        if key in self._answers:
            return self._answers[key]
        inflight = self._inflight.get(key)
        if inflight is not None:  # the same request redelivered while being served
            return await asyncio.shield(inflight)
        future: asyncio.Future[JobSpec | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        wanted = [JobType(t) for t in job_types if t in JobType.__members__.values()]
        self._pending.append(_Request(agent_id, request_id, wanted, future))
        try:
            while not future.done():
                async with self._batch_lock:
                    if not future.done():
                        batch, self._pending = self._pending, []
                        await self._serve(batch)
            return future.result()
        finally:
            self._inflight.pop(key, None)

    async def is_registered(self, agent_id: str) -> bool:
        """Whether the agent is in the database (cached once it claimed)."""
        if agent_id in self._agent_params:
            return True
        return await Agent.exists(id=agent_id)

    def forget_agent(self, agent_id: str) -> None:
        """Drop cached parameters (the agent registered again, or the operator changed
        its quota or priorities)."""
        self._agent_params.pop(agent_id, None)
        self._agent_can.pop(agent_id, None)
        self._active.pop(agent_id, None)

    async def _serve(self, batch: list[_Request]) -> None:
        try:
            await self._serve_batch(batch)
        except Exception as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            raise

    async def _serve_batch(self, batch: list[_Request]) -> None:
        todo: list[_Request] = []
        for request in batch:
            key = (request.agent_id, request.request_id)
            if key in self._answers:
                request.future.set_result(self._answers[key])
            else:
                todo.append(request)
        if not todo:
            return
        # Idempotency (QoS 1 redelivery, restarts): recent answers are in `_answers`;
        # older requests that got a lease, and those on an active lease at start-up,
        # are in `_known_requests` and answered again from the database.
        if self._known_requests is None:
            pairs = await Lease.filter(status="active").values_list("agent_id", "request_id")
            self._known_requests = collections.OrderedDict(
                ((str(a), str(r)), None) for a, r in pairs if r
            )
        lookups = [r.request_id for r in todo if (r.agent_id, r.request_id) in self._known_requests]
        known = await Lease.filter(request_id__in=lookups) if lookups else []
        by_key = {(x.agent_id, x.request_id): x for x in known}
        fresh: list[_Request] = []
        for request in todo:
            lease = by_key.get((request.agent_id, request.request_id))
            if lease is None:
                fresh.append(request)
                continue
            spec = await spec_for_lease(lease)
            self._finish(request, spec)
        if not fresh:
            return
        missing = {r.agent_id for r in fresh} - set(self._agent_params)
        if missing:
            for agent in await Agent.filter(id__in=list(missing)):
                self._agent_params[agent.id] = dict(agent.params)
                self._agent_can[agent.id] = agent_can(agent.params or {}, agent.capabilities)
        active = await self._active_counts(fresh)
        moves: list[tuple[_Request, uuid.UUID]] = []
        taken: set[uuid.UUID] = set()
        slow: list[_Request] = []
        for request in fresh:
            params = self._agent_params.get(request.agent_id)
            if params is None:
                log.warning("claim from unregistered agent %s refused", request.agent_id)
                self._finish(request, None)
                continue
            quota = int(params.get("quota", self.settings.default_quota))
            if active.get(request.agent_id, 0) >= quota:
                self._finish(request, None)
                continue
            cans = self._agent_can.get(request.agent_id, {})
            order = [
                t for t in self._order(params, request.job_types) if cans.get(t, ANY) is not None
            ]
            if not order:
                self._finish(request, None)
                continue
            if order[0] is not JobType.PROCESS_FOR_REVIEW:
                slow.append(request)
                continue
            main_can = cans.get(JobType.PROCESS_FOR_REVIEW) or ANY
            asset_id = await self._next_candidate(JobType.PROCESS_FOR_REVIEW, taken, main_can)
            if asset_id is None:
                slow.append(request) if len(order) > 1 else self._finish(request, None)
                continue
            active[request.agent_id] = active.get(request.agent_id, 0) + 1
            taken.add(asset_id)
            moves.append((request, asset_id))
        if moves:
            await self._claim_main_batch(moves)
        for request in slow:
            if not request.future.done():
                spec = await self._claim_sequential(
                    request.agent_id, request.request_id, request.job_types
                )
                self._finish(request, spec)

    async def _active_counts(self, requests: list[_Request]) -> dict[str, int]:
        """Active leases per agent of this batch, for the quota check.

        Why a cache: counting an agent's leases on every claim grows with its backlog.
        The count is only ever too high (leases end in other code paths), never too low
        (the server's one dispatcher creates every lease), so it is re-read from the
        database only when it would refuse a claim, or for an agent not seen yet."""
        recount: set[str] = set()
        for request in requests:
            params = self._agent_params.get(request.agent_id)
            cached = self._active.get(request.agent_id)
            quota = int((params or {}).get("quota", self.settings.default_quota))
            if cached is None or cached >= quota:
                recount.add(request.agent_id)
        if recount:
            rows = (
                await Lease.filter(status="active", agent_id__in=list(recount))
                .group_by("agent_id")
                .annotate(n=Count("id"))
                .values("agent_id", "n")
            )
            counted = {str(row["agent_id"]): int(row["n"]) for row in rows}
            for agent_id in recount:
                self._active[agent_id] = counted.get(agent_id, 0)
        return {r.agent_id: self._active[r.agent_id] for r in requests}

    def _order(self, params: dict[str, Any], wanted: list[JobType]) -> list[JobType]:
        order = [JobType(p) for p in params.get("priorities", self.settings.priorities)]
        order += [t for t in self.settings.priorities if t not in order]
        return [t for t in order if t in wanted]

    def _finish(self, request: _Request, spec: JobSpec | None) -> None:
        self._remember((request.agent_id, request.request_id), spec)
        if not request.future.done():
            request.future.set_result(spec)

    async def _claim_main_batch(self, moves: list[tuple[_Request, uuid.UUID]]) -> None:
        """Claim one asset per request in one transaction; lost races are retried."""
        by_asset = {asset_id: request for request, asset_id in moves}
        batch = MainClaimBatch(
            [(a, r.agent_id, r.request_id) for r, a in moves], ttl_s=self.settings.ttl_s
        )
        try:
            granted = await batch.commit()
        except CONFLICT:
            # A leftover active lease on one of these assets: take the careful path.
            log.warning("batch claim conflicted; serving %d claims one by one", len(moves))
            for request, _asset in moves:
                spec = await self._claim_sequential(
                    request.agent_id, request.request_id, request.job_types
                )
                self._finish(request, spec)
            return
        for asset_id, spec in granted.items():
            agent_id = by_asset[asset_id].agent_id
            self._active[agent_id] = self._active.get(agent_id, 0) + 1
            self._finish(by_asset[asset_id], spec)
        # After the answers, so that the agents' jobs leave before the observers' events.
        batch.announce(granted, self.bus)
        lost = [r for r, _a in moves if not r.future.done()]
        if lost:
            self.lost_races += len(lost)
            self._pending[:0] = lost  # served again by the next batch, with other assets

    async def _claim_sequential(
        self, agent_id: str, request_id: str, job_types: Iterable[str]
    ) -> JobSpec | None:
        """The one-claim-at-a-time path (secondary jobs, and the fallback of a batch)."""
        key = (agent_id, request_id)
        if key in self._answers:
            return self._answers[key]
        existing = await Lease.get_or_none(agent_id=agent_id, request_id=request_id)
        if existing is not None:
            spec = await spec_for_lease(existing)
            self._remember(key, spec)
            return spec
        agent = await Agent.get_or_none(id=agent_id)
        if agent is None:
            log.warning("claim from unregistered agent %s refused", agent_id)
            return None
        quota = int(agent.params.get("quota", self.settings.default_quota))
        active = await Lease.filter(agent_id=agent_id, status="active").count()
        spec = None
        if active < quota:
            wanted = {JobType(t) for t in job_types if t in JobType.__members__.values()}
            order = [JobType(p) for p in agent.params.get("priorities", self.settings.priorities)]
            order += [t for t in self.settings.priorities if t not in order]
            cans = agent_can(agent.params or {}, agent.capabilities)
            for job_type in order:
                can = cans.get(job_type, ANY)
                if job_type not in wanted or can is None:
                    continue
                spec = await self._claim_type(agent_id, request_id, job_type, can)
                if spec is not None:
                    self._active.pop(agent_id, None)  # counted again when next needed
                    break
        self._remember(key, spec)
        return spec

    async def _next_candidate(
        self,
        job_type: JobType,
        exclude: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset(),
        can: Can = ANY,
    ) -> uuid.UUID | None:
        """The next asset to try; `exclude` = assets already promised in this batch."""
        key = (job_type, can.key)
        queue = self._candidates.setdefault(key, collections.deque())
        lock = self._refill_locks.setdefault(key, asyncio.Lock())
        while True:
            while queue:
                asset_id = queue.popleft()
                if asset_id not in exclude:
                    return asset_id
            async with lock:
                if not queue:
                    found = await _candidates(job_type, self.batch + len(exclude), can)
                    queue.extend(a for a in found if a not in exclude)
                    if not queue:
                        return None

    async def _claim_type(
        self, agent_id: str, request_id: str, job_type: JobType, can: Can = ANY
    ) -> JobSpec | None:
        languages = None
        if job_type is JobType.TRANSCRIPTION:
            # Only a transcription in a language the agent advertises (docs/processing.md).
            languages = await language_dispatch.agent_languages(agent_id)
        tried: set[uuid.UUID] = set()
        for _ in range(self.batch * 2):
            if languages is None:
                asset_id = await self._next_candidate(job_type, frozenset(), can)
            else:
                asset_id = await self._next_in_languages(languages, tried, can)
            if asset_id is None:
                return None
            tried.add(asset_id)
            try:
                if job_type is JobType.PROCESS_FOR_REVIEW:
                    return await self._claim_main(agent_id, request_id, asset_id)
                return await self._claim_secondary(
                    agent_id, request_id, asset_id, job_type, languages
                )
            except (StaleState, AssetNotFound, *CONFLICT, _Lost):
                self.lost_races += 1
                continue
        return None

    async def _next_in_languages(
        self, languages: set[str], tried: set[uuid.UUID], can: Can = ANY
    ) -> uuid.UUID | None:
        """The next pending transcription in one of these languages (straight from the
        database: the shared candidate queue does not know languages)."""
        found = await language_dispatch.candidates(
            languages,
            self.settings.languages,
            {
                "state__in": SECONDARY_STATES,
                "batch_id": None,
                "missing": False,
                "transcript_status": "pending",
            },
            len(tried) + 8,
            extra=None if can.unrestricted else can.query(),
        )
        return next((a for a in found if a not in tried), None)

    async def _claim_main(self, agent_id: str, request_id: str, asset_id: uuid.UUID) -> JobSpec:
        """One main claim: a batch of one (raises on a lost race or a leftover lease)."""
        batch = MainClaimBatch([(asset_id, agent_id, request_id)], ttl_s=self.settings.ttl_s)
        granted = await batch.commit()
        if asset_id not in granted:
            raise StaleState(asset_id, AssetState.READY)
        batch.announce(granted, self.bus)
        return granted[asset_id]

    async def _claim_secondary(
        self,
        agent_id: str,
        request_id: str,
        asset_id: uuid.UUID,
        job_type: JobType,
        languages: set[str] | None = None,
    ) -> JobSpec:
        now = utcnow()
        status_field = SECONDARY_STATUS_FIELD[job_type]
        async with in_transaction() as conn:
            asset = await Asset.filter(id=asset_id).using_db(conn).get()
            if job_type is JobType.TRANSCRIPTION and not language_dispatch.allowed(
                languages, asset, self.settings.languages
            ):
                raise _Lost()
            lease = await Lease.create(
                asset_id=asset_id,
                job_type=job_type,
                agent_id=agent_id,
                request_id=request_id,
                lock_token=secrets.token_hex(16),
                version=asset.version,
                active_key=f"{asset_id}:{job_type}",
                expires_at=now + timedelta(seconds=self.settings.ttl_s),
                using_db=conn,
            )
            query = Asset.filter(
                id=asset_id,
                state__in=SECONDARY_STATES,
                batch_id=None,
                missing=False,
                version=asset.version,
                **{status_field: "pending"},
            )
            if job_type is JobType.SUGGEST_TAGS:
                query = query.filter(transcript_status__not_in=("pending", "running"))
            if await query.using_db(conn).update(**{status_field: "running"}) == 0:
                raise _Lost()
            sidecars = await _sidecar_paths(asset_id, conn)
            inputs = await _secondary_inputs(asset, job_type, conn, self.settings.languages)
        return build_spec(lease, asset, sidecars, inputs)


async def _candidates(job_type: JobType, limit: int, can: Can = ANY) -> list[uuid.UUID]:
    if job_type is JobType.PROCESS_FOR_REVIEW:
        query = Asset.filter(state=AssetState.READY, **CLAIMABLE).order_by("state_changed_at")
    else:
        status_field = SECONDARY_STATUS_FIELD[job_type]
        query = Asset.filter(
            state__in=SECONDARY_STATES, batch_id=None, missing=False, **{status_field: "pending"}
        ).order_by("updated_at")
        if job_type is JobType.SUGGEST_TAGS:
            query = query.filter(transcript_status__not_in=("pending", "running"))
    if not can.unrestricted:
        query = query.filter(can.query())
    ids = await query.limit(limit).values_list("id", flat=True)
    return [i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)) for i in ids]


async def _sidecar_paths(asset_id: uuid.UUID, conn: Any = None) -> list[str]:
    query = Sidecar.filter(asset_id=asset_id, missing=False).order_by("id")
    if conn is not None:
        query = query.using_db(conn)
    return [str(p) for p in await query.values_list("rel_path", flat=True)]


async def _secondary_inputs(
    asset: Asset, job_type: JobType, conn: Any, languages: TranscriptionConfig | None = None
) -> dict[str, Any]:
    fquery = Facts.filter(asset_id=asset.id, version=asset.version)
    if conn is not None:
        fquery = fquery.using_db(conn)
    facts = await fquery.first()
    inputs: dict[str, Any] = {"facts": facts.data if facts else {}}
    if job_type is JobType.TRANSCRIPTION:
        inputs["language"] = language_dispatch.job_language(
            asset, languages or TranscriptionConfig()
        )
    if job_type is JobType.SUGGEST_TAGS:
        transcript = (
            await (
                Transcript.filter(asset_id=asset.id, version=asset.version)
                if conn is None
                else Transcript.filter(asset_id=asset.id, version=asset.version).using_db(conn)
            )
            .order_by("-id")
            .first()
        )
        inputs["transcript"] = transcript.text if transcript else ""
        inputs["language"] = transcript.language if transcript else ""
    return inputs


def build_spec(
    lease: Lease, asset: Asset, sidecars: list[str], inputs: dict[str, Any] | None = None
) -> JobSpec:
    """The job an agent receives: UUID, token, library-relative paths; never a decision."""
    return job_spec(
        job_id=lease.id,
        job_type=JobType(lease.job_type),
        asset_id=asset.id,
        kind=asset.kind,
        rel_path=asset.rel_path,
        lock_token=lease.lock_token,
        expires_at=lease.expires_at,
        version=lease.version,
        sidecars=sidecars,
        inputs=inputs,
    )


def job_spec(
    *,
    job_id: uuid.UUID,
    job_type: JobType,
    asset_id: uuid.UUID,
    kind: str,
    rel_path: str,
    lock_token: str,
    expires_at: datetime,
    version: int,
    sidecars: list[str],
    inputs: dict[str, Any] | None = None,
) -> JobSpec:
    return JobSpec(
        job_id=str(job_id),
        type=job_type,
        asset_uuid=str(asset_id),
        kind=MediaKind(kind),
        lock_token=lock_token,
        lease_expires_at=expires_at,
        paths=JobPaths(main=rel_path, sidecars=sidecars),
        derived_dir=derived_dir(asset_id, version),
        version=version,
        inputs=inputs or {},
    )


#: How a unique-key conflict surfaces: tortoise's error on PostgreSQL, sqlite3's own in
#: `sqlite_transaction` (which bypasses tortoise).
CONFLICT = (IntegrityError, sqlite3.IntegrityError)


class MainClaimBatch:
    """The statements of one batch of main claims (the hot path of workflow 3, docs/contract.md §9), for both
    backends: READY -> PROCESSING_REVIEW for each asset still eligible (one
    `UPDATE … RETURNING`, see `TransitionSql`), its history rows, one active lease per
    moved asset (the unique `active_key` forbids a second) and the sidecar paths of the
    answers.  `run` awaits them on an open transaction; `run_sqlite` runs them inside
    `sqlite_transaction`, on SQLite's own thread, in one hop.  Both return the job of
    every asset granted; assets another claim or a human took first are left out."""

    JOB_TYPE = JobType.PROCESS_FOR_REVIEW

    def __init__(self, claims: list[tuple[uuid.UUID, str, str]], *, ttl_s: float) -> None:
        #: (asset id, agent id, request id), in arrival order.
        self.claims = claims
        self.now = utcnow()
        self.expires = self.now + timedelta(seconds=ttl_s)
        #: asset id -> (lease id, lock token, agent id, request id), once moved.
        self._granted: dict[uuid.UUID, tuple[uuid.UUID, str, str, str]] = {}

    def _transition(self, pg: bool) -> TransitionSql | None:
        return TransitionSql.plan(
            [(a, f"agent:{agent}") for a, agent, _r in self.claims],
            AssetState.READY,
            AssetState.PROCESSING_REVIEW,
            Trigger.CLAIM,
            at=self.now,
            pg=pg,
            extra_filter=CLAIMABLE,
            returning=("version", "rel_path", "kind"),
        )

    def _leases(self, moved: dict[uuid.UUID, dict[str, Any]], pg: bool) -> tuple[str, list[Any]]:
        """One multi-row INSERT of an active lease per moved asset."""
        job_type = self.JOB_TYPE.value
        self._granted = {
            asset_id: (uuid.uuid4(), secrets.token_hex(16), agent, request)
            for asset_id, agent, request in self.claims
            if asset_id in moved
        }
        rows = [
            [
                str(lease_id),
                str(asset_id),
                job_type,
                agent,
                request,
                token,
                int(moved[asset_id]["version"]),
                "active",
                f"{asset_id}:{job_type}",
                0.0,
                self.expires,
                self.now,
            ]
            for asset_id, (lease_id, token, agent, request) in self._granted.items()
        ]
        return insert_rows(
            "lease (id, asset_id, job_type, agent_id, request_id, lock_token, version, status,"
            " active_key, progress, expires_at, created_at)",
            rows,
            pg=pg,
        )

    @staticmethod
    def _sidecar_sql(pg: bool, n: int) -> str:
        marks = ", ".join(f"${i}" if pg else "?" for i in range(2, n + 2))
        return (
            f"SELECT asset_id, rel_path FROM sidecar WHERE missing = {'$1' if pg else '?'}"
            f" AND asset_id IN ({marks}) ORDER BY id"
        )

    def _specs(
        self, moved: dict[uuid.UUID, dict[str, Any]], sidecar_rows: Iterable[Any]
    ) -> dict[uuid.UUID, JobSpec]:
        sidecars: dict[str, list[str]] = {}
        for row in sidecar_rows:
            sidecars.setdefault(str(row["asset_id"]), []).append(str(row["rel_path"]))
        return {
            asset_id: job_spec(
                job_id=lease_id,
                job_type=self.JOB_TYPE,
                asset_id=asset_id,
                kind=moved[asset_id]["kind"],
                rel_path=moved[asset_id]["rel_path"],
                lock_token=token,
                expires_at=self.expires,
                version=int(moved[asset_id]["version"]),
                sidecars=sidecars.get(str(asset_id), []),
            )
            for asset_id, (lease_id, token, _agent, _request) in self._granted.items()
        }

    async def commit(self) -> dict[uuid.UUID, JobSpec]:
        """Run the batch in its own transaction on whichever database is configured;
        raises one of `CONFLICT` when a leftover active lease is in the way."""
        if uses_sqlite():
            return await sqlite_transaction(self.run_sqlite)
        async with in_transaction() as conn:
            return await self.run(conn)

    def announce(self, granted: dict[uuid.UUID, JobSpec], bus: events.EventBus | None) -> None:
        """The claims' transitions on the event bus, once committed."""
        agents = {asset_id: agent for asset_id, agent, _request in self.claims}
        emit_transitions(
            [(asset_id, f"agent:{agents[asset_id]}") for asset_id in granted],
            AssetState.READY,
            AssetState.PROCESSING_REVIEW,
            Trigger.CLAIM,
            self.now,
            bus,
        )

    async def run(self, conn: Any) -> dict[uuid.UUID, JobSpec]:
        pg = conn.capabilities.dialect == "postgres"
        plan = self._transition(pg)
        if plan is None:
            return {}
        rows = await conn.execute_query_dict(plan.update_sql, plan.update_params)
        moved = {to_uuid(row["id"]): dict(row) for row in rows}
        if not moved:
            return {}
        await conn.execute_query(*plan.history(moved))
        await conn.execute_query(*self._leases(moved, pg))
        sidecar_rows = await conn.execute_query_dict(
            self._sidecar_sql(pg, len(moved)), [False, *(str(a) for a in moved)]
        )
        return self._specs(moved, sidecar_rows)

    def run_sqlite(self, db: sqlite3.Connection) -> dict[uuid.UUID, JobSpec]:
        plan = self._transition(False)
        if plan is None:
            return {}
        rows = db.execute(plan.update_sql, plan.update_params).fetchall()
        moved = {to_uuid(row["id"]): dict(row) for row in rows}
        if not moved:
            return {}
        db.execute(*plan.history(moved))
        db.execute(*self._leases(moved, False))
        sidecar_rows = db.execute(
            self._sidecar_sql(False, len(moved)), [False, *(str(a) for a in moved)]
        ).fetchall()
        return self._specs(moved, sidecar_rows)


async def spec_for_lease(lease: Lease) -> JobSpec | None:
    """Rebuild the answer of an earlier claim (QoS 1 redelivery of the same request_id)."""
    asset = await Asset.get_or_none(id=lease.asset_id)  # type: ignore[attr-defined]
    if asset is None:
        return None
    inputs: dict[str, Any] = {}
    if lease.job_type != JobType.PROCESS_FOR_REVIEW:
        inputs = await _secondary_inputs(asset, JobType(lease.job_type), None)
    return build_spec(lease, asset, await _sidecar_paths(asset.id), inputs)


# --- lease messages (heartbeat, facts, derivatives) ------------------------------


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None


async def active_lease(agent_id: str, job_id: str, lock_token: str) -> Lease | None:
    """The lease only if this agent holds it with this token and it is still active."""
    lease_id = _as_uuid(job_id)
    if lease_id is None:
        return None
    return await Lease.get_or_none(
        id=lease_id, agent_id=agent_id, lock_token=lock_token, status="active"
    )


async def heartbeat(
    agent_id: str,
    job_id: str,
    lock_token: str,
    progress: float | None,
    settings: LeaseSettings,
) -> Verdict:
    """Extend a live lease by its TTL; an already expired one cannot be revived.

    `progress` None (absent or unusable) leaves the recorded progress as it was."""
    lease_id = _as_uuid(job_id)
    if lease_id is None:
        return REFUSED_TOKEN
    now = utcnow()
    values: dict[str, Any] = {
        "expires_at": now + timedelta(seconds=settings.ttl_s),
        "heartbeat_at": now,
    }
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    changed = await Lease.filter(
        id=lease_id, agent_id=agent_id, lock_token=lock_token, status="active", expires_at__gt=now
    ).update(**values)
    return Verdict(True) if changed else REFUSED_TOKEN


async def store_facts(
    agent_id: str, job_id: str, lock_token: str, facts: dict[str, Any]
) -> Verdict:
    lease = await active_lease(agent_id, job_id, lock_token)
    if lease is None:
        return REFUSED_TOKEN
    await _save_facts(lease, facts)
    return Verdict(True)


async def _save_facts(lease: Lease, facts: dict[str, Any]) -> None:
    updated = await Facts.filter(asset_id=lease.asset_id, version=lease.version).update(  # type: ignore[attr-defined]
        data=facts
    )
    if not updated:
        try:
            await Facts.create(asset_id=lease.asset_id, version=lease.version, data=facts)  # type: ignore[attr-defined]
        except IntegrityError:
            await Facts.filter(asset_id=lease.asset_id, version=lease.version).update(data=facts)  # type: ignore[attr-defined]


def check_derivative_paths(refs: Iterable[DerivativeRef], allowed_dir: str) -> str | None:
    """Why the list is refused (a path outside the job's derived_dir), or None (pure)."""
    base = PurePosixPath(allowed_dir).parts
    for ref in refs:
        try:
            parts = safe_relpath(ref.path).parts
        except UnsafePath as exc:
            return str(exc)
        if len(parts) <= len(base) or parts[: len(base)] != base:
            return f"derivative {ref.path!r} is not under {allowed_dir}"
    return None


async def store_derivatives(
    agent_id: str, job_id: str, lock_token: str, refs: list[DerivativeRef]
) -> Verdict:
    lease = await active_lease(agent_id, job_id, lock_token)
    if lease is None:
        return REFUSED_TOKEN
    return await _save_derivatives(lease, refs)


async def _save_derivatives(lease: Lease, refs: list[DerivativeRef]) -> Verdict:
    asset_id = lease.asset_id  # type: ignore[attr-defined]
    problem = check_derivative_paths(refs, derived_dir(asset_id, lease.version))
    if problem:
        return Verdict(False, problem)
    async with in_transaction() as conn:
        for ref in refs:
            await (
                Derivative.filter(asset_id=asset_id, version=lease.version, rel_path=ref.path)
                .using_db(conn)
                .delete()
            )
            await Derivative.create(
                asset_id=asset_id,
                version=lease.version,
                role=str(ref.role),
                rel_path=ref.path,
                size=ref.size,
                mime=ref.mime,
                using_db=conn,
            )
    return Verdict(True)


# --- results and expiry ----------------------------------------------------------


def has_audio(kind: MediaKind, facts: dict[str, Any] | None) -> bool:
    """Whether a transcription makes sense: audio assets, or videos with an audio stream."""
    if kind is MediaKind.AUDIO:
        return True
    if kind is not MediaKind.VIDEO or not facts:
        return False
    for key in ("has_audio", "audio"):
        if key in facts:
            return bool(facts[key])
    if facts.get("audio_streams"):
        return True
    streams = facts.get("streams")
    if isinstance(streams, list):
        return any(isinstance(s, dict) and s.get("codec_type") == "audio" for s in streams)
    return False


def _present_roles(root: Path, rows: list[Derivative]) -> dict[DerivativeRole, int]:
    """Sizes on the server's own view of the library (blocking: run in a thread)."""
    present: dict[DerivativeRole, int] = {}
    for row in rows:
        try:
            role = DerivativeRole(row.role)
            size = resolve(root, row.rel_path).stat().st_size
        except (ValueError, OSError):
            continue
        present[role] = max(present.get(role, 0), size)
    return present


async def finish_job(
    agent_id: str,
    job_id: str,
    lock_token: str,
    result: JobResult,
    settings: LeaseSettings,
    *,
    bus: events.EventBus | None = None,
) -> Verdict:
    """Take a job's final result; refused unless the token is the current active one."""
    lease = await active_lease(agent_id, job_id, lock_token)
    if lease is None:
        lease_id = _as_uuid(job_id)
        done = lease_id and await Lease.get_or_none(
            id=lease_id, agent_id=agent_id, lock_token=lock_token
        )
        if done and done.status in ("done", "error", "released"):
            return Verdict(True, "already recorded", duplicate=True)
        if done and done.status == SUPERSEDED:
            current = await _asset_version(done.asset_id)  # type: ignore[attr-defined]
            return superseded_verdict(done.version, current)
        return REFUSED_TOKEN
    if result.version is not None and result.version != lease.version:
        return Verdict(
            False, f"result for version {result.version}, but the job is for {lease.version}"
        )
    # A main job holds its asset in PROCESSING_REVIEW, from which no version bump is
    # possible (reprocess and a content change start elsewhere): only secondary jobs
    # can be overtaken by a new version, and only they pay for this check.
    secondary = lease.job_type != JobType.PROCESS_FOR_REVIEW
    current_version = await _asset_version(lease.asset_id) if secondary else None  # type: ignore[attr-defined]
    if current_version is not None and current_version != lease.version:
        # Reprocessed meanwhile and not fenced yet (a lease from before this check).
        reason = superseded_verdict(lease.version, current_version).reason
        await Lease.filter(id=lease.id, status="active").update(
            status=SUPERSEDED, active_key=None, finished_at=utcnow(), error=reason
        )
        return Verdict(False, reason)
    job_type = JobType(lease.job_type)
    if result.status == "released":
        await end_lease(lease, "released", settings, reason="released by the agent", bus=bus)
        return Verdict(True)
    if result.status != "ok":
        await end_lease(lease, "error", settings, reason=result.error or "agent error", bus=bus)
        return Verdict(True)
    if result.facts is not None:
        await _save_facts(lease, result.facts)
    if result.derivatives:
        saved = await _save_derivatives(lease, result.derivatives)
        if not saved.accepted:
            await end_lease(lease, "error", settings, reason=saved.reason, bus=bus)
            return Verdict(True, saved.reason)
    if job_type is JobType.PROCESS_FOR_REVIEW:
        return await _finish_main(lease, settings, bus)
    if job_type is JobType.TRANSCRIPTION and result.transcript and result.transcript.get("ref"):
        loaded = await load_transcript_ref(lease, str(result.transcript["ref"]), settings)
        if isinstance(loaded, str):
            await end_lease(lease, "error", settings, reason=loaded, bus=bus)
            return Verdict(True, loaded)
        result.transcript = loaded
    try:
        return await _finish_secondary(lease, job_type, result, settings)
    except _Superseded as exc:
        return superseded_verdict(lease.version, exc.current)


#: A transcript read from disk may be long (ten hours of speech is ~20 MB of JSON), but
#: not unbounded: the agent wrote it, and agents are not trusted with the server's memory.
TRANSCRIPT_REF_MAX_BYTES = 64 * 1024 * 1024


async def load_transcript_ref(
    lease: Lease, ref: str, settings: LeaseSettings
) -> dict[str, Any] | str:
    """The transcript an agent left in the job's derived folder (too long for one MQTT
    message), read from the server's own disk; or why it cannot be taken."""
    asset_id = lease.asset_id  # type: ignore[attr-defined]
    problem = check_derivative_paths(
        [DerivativeRef(role=DerivativeRole.TRANSCRIPT_JSON, path=ref, size=0)],
        derived_dir(asset_id, lease.version),
    )
    if problem:
        return f"transcript reference refused: {problem}"

    def read() -> dict[str, Any] | str:
        path = resolve(settings.library_root, ref)
        try:
            with path.open("rb") as fh:
                raw = fh.read(TRANSCRIPT_REF_MAX_BYTES + 1)
        except OSError as exc:
            return f"transcript {ref} unreadable on the server: {exc.strerror or exc}"
        if len(raw) > TRANSCRIPT_REF_MAX_BYTES:
            return f"transcript {ref} is larger than {TRANSCRIPT_REF_MAX_BYTES} bytes"
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return f"transcript {ref} is not JSON: {exc}"
        if not isinstance(data, dict) or not isinstance(data.get("words", []), list):
            return f"transcript {ref} is not a transcript"
        return {
            "language": str(data.get("language", "")),
            "engine": str(data.get("engine", "")),
            "text": str(data.get("text", "")),
            "words": [w for w in data.get("words", []) if isinstance(w, dict)],
        }

    return await asyncio.to_thread(read)


async def _finish_main(
    lease: Lease, settings: LeaseSettings, bus: events.EventBus | None
) -> Verdict:
    asset_id = lease.asset_id  # type: ignore[attr-defined]
    asset = await Asset.get(id=asset_id)
    rows = await Derivative.filter(asset_id=asset_id, version=lease.version)
    present = await asyncio.to_thread(_present_roles, settings.library_root, rows)
    missing = check_required(MediaKind(asset.kind), present)
    if missing is not None:
        await end_lease(lease, "error", settings, reason=str(missing), bus=bus)
        return Verdict(True, str(missing))
    facts = await Facts.get_or_none(asset_id=asset_id, version=lease.version)
    if facts is None:
        # PROCESSED means "facts stored" (docs/contract.md §2): without them a batch apply would skip
        # the asset as never processed, after a human had already decided on it.
        reason = f"no facts were stored for version {lease.version}"
        await end_lease(lease, "error", settings, reason=reason, bus=bus)
        return Verdict(True, reason)
    audio = has_audio(MediaKind(asset.kind), facts.data)
    updates: dict[str, Any] = {"attempts": 0, "last_error": None}
    if settings.transcription and audio:
        updates["transcript_status"] = "pending"
        updates["transcript_language"] = asset_language(
            asset.rel_path, asset.fields_data, settings.languages
        )
    if settings.suggest_tags:
        updates["suggestions_status"] = "pending"
    now = utcnow()
    async with in_transaction() as conn:
        if not await _close_done(lease, conn, now):
            return REFUSED_TOKEN
        await transition(
            asset_id,
            AssetState.PROCESSING_REVIEW,
            AssetState.PROCESSED,
            Trigger.PROCESSED,
            f"agent:{lease.agent_id}",
            updates=updates,
            at=now,
            bus=bus,
        )
    await _after_processed(asset_id, settings, bus)
    return Verdict(True)


async def _after_processed(
    asset_id: Any, settings: LeaseSettings, bus: events.EventBus | None
) -> None:
    """A reprocessed asset gets its standing human decision back, and the superseded
    version's derivatives are removed (journaled) now that the new ones exist.  Neither
    may fail the result: the asset is PROCESSED either way, and both are retried by hand."""

    try:
        restored = await actions.restore_decision_after_processing(asset_id, bus=bus)
        if restored is not None:
            log.info("asset %s: decision restored after reprocess (%s)", asset_id, restored)
    except Exception:
        log.exception("asset %s: could not restore its decision after reprocess", asset_id)
    try:  # subtitles and other sidecars (rush/metadata); a bad one is reported in facts
        await import_sidecars(asset_id, settings.library_root, settings.languages)
    except Exception:
        log.exception("asset %s: sidecars not imported", asset_id)
    if settings.config is None:
        return
    try:
        await actions.cleanup_superseded_derivatives(asset_id, settings.config)
    except Exception:
        log.exception("asset %s: superseded derivatives not cleaned up", asset_id)


async def _close_done(lease: Lease, conn: Any, now: datetime) -> bool:
    """Mark the lease done if it is still active (a lost race means a stale token)."""
    changed = (
        await Lease.filter(id=lease.id, status="active")
        .using_db(conn)
        .update(status="done", active_key=None, finished_at=now, progress=1.0)
    )
    return bool(changed)


async def _asset_version(asset_id: Any, conn: Any = None) -> int | None:
    query = Asset.filter(id=asset_id)
    if conn is not None:
        query = query.using_db(conn)
    rows = await query.values_list("version", flat=True)
    return int(rows[0]) if rows else None  # type: ignore[call-overload]


class _Superseded(Exception):
    """The asset got a new version while the result was being stored (rolled back)."""

    def __init__(self, current: int | None) -> None:
        super().__init__(current)
        self.current = current


async def _finish_secondary(
    lease: Lease, job_type: JobType, result: JobResult, settings: LeaseSettings
) -> Verdict:
    asset_id = lease.asset_id  # type: ignore[attr-defined]
    status_field = SECONDARY_STATUS_FIELD[job_type]
    now = utcnow()
    async with in_transaction() as conn:
        if not await _close_done(lease, conn, now):
            return REFUSED_TOKEN
        if job_type is JobType.TRANSCRIPTION:
            data = result.transcript or {}
            # A sidecar transcript (the clip's own subtitles) is never replaced by this.
            await (
                Transcript.filter(asset_id=asset_id, version=lease.version, source="recognised")
                .using_db(conn)
                .delete()
            )
            await Transcript.create(
                asset_id=asset_id,
                version=lease.version,
                language=str(data.get("language", ""))[:16],
                source="recognised",
                engine=str(data.get("engine", ""))[:128],
                text=str(data.get("text", "")),
                words=list(data.get("words", [])),
                using_db=conn,
            )
        else:
            # Recomputed suggestions replace the earlier ones; accepted ones were a human's.
            await Suggestion.filter(asset_id=asset_id, accepted=False).using_db(conn).delete()
            for item in result.suggestions or []:
                await Suggestion.create(
                    asset_id=asset_id,
                    version=lease.version,
                    tag=str(item.get("tag", ""))[:128],
                    score=float(item.get("score", 0.0)),
                    source=str(item.get("source", "builtin"))[:32],
                    using_db=conn,
                )
        # updated_at: the search indexer follows it (a new transcript is searchable).
        # Only for the version the job was about: a reprocess racing this result wins.
        changed = (
            await Asset.filter(id=asset_id, version=lease.version)
            .using_db(conn)
            .update(**{status_field: "done"}, updated_at=now)
        )
        if not changed:
            raise _Superseded(await _asset_version(asset_id, conn))
    return Verdict(True)


async def end_lease(
    lease: Lease,
    outcome: str,
    settings: LeaseSettings,
    *,
    reason: str,
    bus: events.EventBus | None = None,
) -> bool:
    """Close an active lease as expired, error or released and give the asset back.

    Main job: PROCESSING_REVIEW -> READY; expiry and errors count an attempt and flag the
    asset failed after `max_attempts` (only a human retry clears it).  Secondary job:
    the status column goes back to `pending`, or to `error` after an error or too many
    expiries.  Returns False when somebody else closed the lease first.
    """
    asset_id = lease.asset_id  # type: ignore[attr-defined]
    job_type = JobType(lease.job_type)
    now = utcnow()
    async with in_transaction() as conn:
        changed = (
            await Lease.filter(id=lease.id, status="active")
            .using_db(conn)
            .update(status=outcome, active_key=None, finished_at=now, error=reason[:4000])
        )
        if not changed:
            return False
        if job_type is JobType.PROCESS_FOR_REVIEW:
            asset = await Asset.filter(id=asset_id).using_db(conn).first()
            if asset is None:
                return True
            trigger = {
                "expired": Trigger.LEASE_EXPIRED,
                "error": Trigger.AGENT_ERROR,
                "released": Trigger.RELEASED,
            }[outcome]
            updates: dict[str, Any] = {}
            if outcome != "released":
                attempts = asset.attempts + 1
                updates = {"attempts": attempts, "last_error": reason[:4000]}
                if attempts >= settings.max_attempts:
                    updates["failed"] = True
            try:
                await transition(
                    asset_id,
                    AssetState.PROCESSING_REVIEW,
                    AssetState.READY,
                    trigger,
                    f"agent:{lease.agent_id}" if outcome != "expired" else "lease-keeper",
                    reason=reason[:500],
                    updates=updates,
                    at=now,
                    bus=bus,
                )
            except StaleState:
                log.warning(
                    "lease %s ended but asset %s was not PROCESSING_REVIEW", lease.id, asset_id
                )
        else:
            status_field = SECONDARY_STATUS_FIELD[job_type]
            new_status = "error" if outcome == "error" else "pending"
            if outcome == "expired":
                failures = (
                    await Lease.filter(
                        asset_id=asset_id,
                        job_type=job_type,
                        version=lease.version,
                        status__in=("expired", "error"),
                    )
                    .using_db(conn)
                    .count()
                )
                if failures >= settings.max_attempts:
                    new_status = "error"
            await (
                Asset.filter(id=asset_id, **{status_field: "running"})
                .using_db(conn)
                .update(**{status_field: new_status})
            )
    log.info(
        "lease %s (%s, asset %s) ended: %s (%s)", lease.id, job_type, asset_id, outcome, reason
    )
    return True


async def expire_leases(
    settings: LeaseSettings,
    *,
    now: datetime | None = None,
    bus: events.EventBus | None = None,
    limit: int = 500,
) -> int:
    """Close every active lease whose TTL passed without a heartbeat; returns how many."""
    now = now or utcnow()
    expired = await Lease.filter(status="active", expires_at__lt=now).limit(limit)
    count = 0
    for lease in expired:
        if await end_lease(
            lease,
            "expired",
            settings,
            reason=f"lease expired without heartbeat (agent {lease.agent_id})",
            bus=bus,
        ):
            count += 1
    return count


@dataclass
class LeaseStats:
    active: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


async def lease_stats() -> LeaseStats:
    stats = LeaseStats()
    for status in ("active", "done", "expired", "error", "released"):
        stats.by_status[status] = await Lease.filter(status=status).count()
    stats.active = stats.by_status["active"]
    return stats
