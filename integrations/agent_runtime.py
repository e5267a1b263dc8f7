"""The RushIndexer agent runtime behind `rush agent` (Workflows 2, 3, 4, 15).

Why this shape: an agent runs for hours on a laptop or a Raspberry Pi whose network
and broker come and go, and whose server may start after it.  It registers on every
connection, whenever the server says `online`, and with back-off until it has its
parameters; it honours the parameters the server assigns (quota, priorities, heartbeat
period) and applies new ones at once, running jobs included; it claims only with spare capacity
and with the NAS share mounted, and keeps every final result in an outbox that is
re-sent until the server acknowledges it, so a broker restart loses nothing.  Claims
are retried with the same `request_id`, which the server answers idempotently.
On SIGTERM it stops claiming, lets running jobs finish for `agent.shutdown_grace_s`,
then releases the rest (no attempt is counted for a released job).  A share that goes
away mid-job is this machine's problem, not the asset's: the job is released the same
way (checked at every heartbeat and whenever a job fails), and claiming resumes once
the share is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import re
import socket
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from integrations import memory
from integrations.mqtt.client import MqttBridge, _first_leaf
from integrations.mqtt.payloads import (
    AckPayload,
    AgentJobAnswer,
    AgentParams,
    ResultPayload,
    TranscriptData,
    decode,
    encode,
)
from integrations.mqtt.topics import TopicKind, Topics
from rush import __version__, names
from rush.config import Config
from rush.jobs import DerivativeRole, JobFailed, JobOutput, JobSpec, JobType, Processor
from rush.layout import LibraryNotMounted, read_marker, resolve
from rush.media import Area

log = logging.getLogger(__name__)

#: After this long without parameters from the server, say what may be wrong.
NO_PARAMS_WARN_S = 15.0
#: Without parameters, register again after this long, then twice as long each time
#: (at most REGISTER_BACKOFF_MAX_S): the server may have started after us.
REGISTER_BACKOFF_S = 2.0
REGISTER_BACKOFF_MAX_S = 60.0

CLAIM_TIMEOUT_S = 5.0
#: Longest wait for the share check of a heartbeat (a hung NFS server must not stall it).
SHARE_CHECK_S = 10.0
#: Idle this long after its last job, the agent gives freed memory back to the system.
IDLE_TRIM_S = 1.0


class NoProcessors(RuntimeError):
    """The configured processors could not be loaded."""


class ShareLost(Exception):
    """The library share went away under a running job (message: why)."""


def default_agent_id() -> str:
    """The host name made topic-safe (the default `agent.id`)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0])[:64]
    return name or "agent"


def acl_hint(username: str | None, agent_id: str) -> str:
    """What the shipped ACL expects of an agent's broker user (for the refusal warning)."""
    rule = "the shipped ACL grants rush/agents/<username>/..., so the username must be the agent id"
    if username and username != agent_id:
        return f"{rule}: this agent is {agent_id!r} but connects as {username!r}"
    return rule


def load_processors(config: Config) -> list[Processor]:
    """Import `agent.processors` ("module:function") lazily and build the processors."""
    spec = config.agent.processors
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        factory: Callable[[Config], Iterable[Processor]] = getattr(
            module, func_name or "processors"
        )
    except (ImportError, AttributeError) as exc:
        raise NoProcessors(
            f"cannot load processors {spec!r} (agent.processors): {exc}; "
            "this agent has nothing to run"
        ) from exc
    return list(factory(config))


def check_mount(mount: Path | None, library_id: str) -> str | None:
    """Why the library is not usable here, or None when the share is mounted."""
    if mount is None:
        return "agent.library_mount is not set"
    try:
        marker = read_marker(mount)
    except LibraryNotMounted as exc:
        return str(exc)
    if library_id and marker.library_id != library_id:
        return f"{mount} holds library {marker.library_id}, expected {library_id}"
    return None


class _Context:
    """`rush.jobs.JobContext` for one job."""

    def __init__(
        self, runtime: AgentRuntime, job: JobSpec, root: Path, areas: dict[str, Path]
    ) -> None:
        self.library_root = root
        self._areas = areas
        self._runtime = runtime
        self._job = job
        self.progress = 0.0

    async def heartbeat(self, progress: float) -> None:
        self.progress = max(0.0, min(1.0, progress))
        await self._runtime.send_heartbeat(self._job, self.progress)

    def abs_path(self, rel: str) -> Path:
        """Job paths are relative to the library root; ARCHIVE and REJECTS may be
        mounted elsewhere on this machine (`agent.archive_mount` / `rejects_mount`)."""
        return resolve(self.library_root, rel, self._areas)


class AgentRuntime:
    name = "agent"

    def __init__(
        self,
        config: Config,
        processors: Iterable[Processor],
        *,
        agent_id: str | None = None,
        host: str | None = None,
        port: int | None = None,
        resend_s: float = 2.0,
    ) -> None:
        self.config = config
        self.agent_id = agent_id or config.agent.id or default_agent_id()
        self.topics = Topics(config.mqtt.prefix)
        self.processors: dict[JobType, Processor] = {p.job_type: p for p in processors}
        mqtt = config.mqtt
        broker_host, broker_port = mqtt.broker_address()
        self.bridge = MqttBridge(
            mqtt,
            status_topic=self.topics.agent_status(self.agent_id),
            name=f"agent-{self.agent_id}",
            host=host or broker_host,
            port=port or broker_port,
            identifier=f"rush-agent-{self.agent_id}-{uuid.uuid4().hex[:6]}",
            workers=1,
            # MQTT 5: a publish the ACL refuses comes back with a reason code, where
            # 3.1.1 would drop it silently and leave the agent waiting for ever.  Only
            # with a username: an ACL needs one, and the embedded broker (amqtt, no
            # users) misreads an MQTT 5 CONNECT and keeps its half-read socket.
            mqtt5=bool(mqtt.username),
            refusal_hint=acl_hint(mqtt.username, self.agent_id),
        )
        self.resend_s = resend_s
        self.params: AgentParams | None = None
        self.completed = 0
        self.failed = 0
        self.released = 0
        self._config_event = asyncio.Event()
        #: Set (then replaced) whenever new parameters arrive: running jobs' heartbeat
        #: loops wake up, beat at once and go on with the new period.
        self._params_changed = asyncio.Event()
        self.registrations = 0
        self._stopping = asyncio.Event()
        self._job_finished = asyncio.Event()
        self._pending_claim: tuple[str, asyncio.Future[JobSpec | None]] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._outbox: dict[str, tuple[str, bytes, str]] = {}
        self._outbox_empty = asyncio.Event()
        self._outbox_empty.set()
        self._mount_warned = False
        self._trim_handle: asyncio.TimerHandle | None = None

    # --- public -------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming, finish or release running jobs, flush results, disconnect."""
        self._stopping.set()

    @property
    def running_jobs(self) -> int:
        return len(self._running)

    async def run(self) -> None:
        if not self.processors:
            raise NoProcessors("no processors: nothing to run")
        t = self.topics
        self.bridge.subscribe(t.agent_config(self.agent_id), self._on_config)
        self.bridge.subscribe(t.server_status, self._on_server_status)
        self.bridge.subscribe(t.agent_job(self.agent_id), self._on_answer)
        self.bridge.subscribe(f"{t.prefix}/agents/{self.agent_id}/jobs/+/ack", self._on_ack)
        self.bridge.add_on_connect(self._on_connect)
        async with asyncio.TaskGroup() as outer:
            bridge = outer.create_task(self.bridge.run(), name=f"{self.agent_id}-mqtt")
            resender = outer.create_task(self._resender())
            async with asyncio.TaskGroup() as jobs:
                await self._claim_loop(jobs)
                await self._drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_empty.wait(), timeout=10)
            if self._outbox:
                log.warning(
                    "agent %s stops with %d unacknowledged result(s)",
                    self.agent_id,
                    len(self._outbox),
                )
            resender.cancel()
            bridge.cancel()

    # --- MQTT handlers ----------------------------------------------------------------
    async def _on_connect(self) -> None:
        await self._register()
        for topic, payload, _token in list(self._outbox.values()):
            await self.bridge.publish(topic, payload)

    async def _register(self) -> None:
        """Tell the server who we are; it answers with our parameters on `…/config`.

        Sent on every connection, whenever the server says `online` (it may have started
        after us, or restarted), when it answers a claim with `reregister: true`, and with
        back-off while no parameters came (`_wait_for_params`)."""
        self.registrations += 1
        register = {
            "client_id": self.bridge.identifier,
            "version": __version__,
            "hostname": socket.gethostname(),
            "capabilities": {str(t): p.capabilities() for t, p in self.processors.items()},
            "max_jobs": self.config.agent.max_jobs,
            "job_types": [str(t) for t in self._job_types()],
        }
        await self.bridge.publish(self.topics.agent_register(self.agent_id), register)

    async def _on_server_status(self, topic: str, payload: bytes, *, retain: bool) -> None:
        if payload.strip() == b"online":
            log.info("agent %s: the server is online; registering", self.agent_id)
            await self._register()

    async def _on_config(self, topic: str, payload: bytes, *, retain: bool) -> None:
        params = decode(
            AgentParams, payload, topic=topic, max_bytes=self.config.mqtt.max_payload_bytes
        )
        if params is None:
            return
        changed = params != self.params
        if changed:
            log.info("agent %s parameters: %s", self.agent_id, params.model_dump(mode="json"))
        self.params = params
        self._config_event.set()
        if changed:
            # At once, jobs in flight included: a shorter TTL must not find us beating at
            # the old period, and a larger quota lets the claim loop take more now.
            event, self._params_changed = self._params_changed, asyncio.Event()
            event.set()
            self._job_finished.set()

    async def _on_answer(self, topic: str, payload: bytes, *, retain: bool) -> None:
        answer = decode(
            AgentJobAnswer, payload, topic=topic, max_bytes=self.config.mqtt.max_payload_bytes
        )
        if answer is None:
            return
        if answer.reregister:
            log.info("agent %s: the server does not know us; registering", self.agent_id)
            await self._register()
        pending = self._pending_claim
        if pending is not None and pending[0] == answer.request_id:
            if not pending[1].done():
                pending[1].set_result(answer.job)
            return
        job = answer.job
        if job is not None and job.job_id not in self._running:
            # An answer to a claim we gave up on: give the job back at once.
            log.warning(
                "agent %s got an unexpected job %s; releasing it", self.agent_id, job.job_id
            )
            await self._send_result(
                job, ResultPayload(lock_token=job.lock_token, status="released")
            )

    async def _on_ack(self, topic: str, payload: bytes, *, retain: bool) -> None:
        parsed = self.topics.parse(topic)
        ack = decode(AckPayload, payload, topic=topic, max_bytes=self.config.mqtt.max_payload_bytes)
        if parsed is None or parsed.kind is not TopicKind.ACK or ack is None or not parsed.job_id:
            return
        entry = self._outbox.get(parsed.job_id)
        if entry is not None and entry[2] == ack.lock_token:
            del self._outbox[parsed.job_id]
            if not ack.accepted:
                log.warning(
                    "server refused the result of job %s: %s", parsed.job_id, ack.reason or "?"
                )
            if not self._outbox:
                self._outbox_empty.set()

    # --- claiming -------------------------------------------------------------------
    def _job_types(self) -> list[JobType]:
        wanted = [JobType(t) for t in self.config.agent.job_types]
        return [t for t in wanted if t in self.processors]

    def _capacity(self) -> int:
        quota = self.params.quota if self.params else 1
        return min(quota, self.config.agent.max_jobs) - len(self._running)

    async def _sleep_or_stop(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _claim_loop(self, jobs: asyncio.TaskGroup) -> None:
        # Said at once, not only once the server answers: the share is this machine's.
        problem = check_mount(self.config.agent.library_mount, self.config.agent.library_id)
        if problem:
            log.warning("agent %s will not claim until this is fixed: %s", self.agent_id, problem)
            self._mount_warned = True
        await self._wait_for_params()
        idle = self.config.agent.idle_poll_s
        while not self._stopping.is_set():
            if self._capacity() <= 0:
                self._job_finished.clear()
                await self._wait_job_or_stop()
                continue
            problem = check_mount(self.config.agent.library_mount, self.config.agent.library_id)
            if problem:
                if not self._mount_warned:
                    log.warning("agent %s not claiming: %s", self.agent_id, problem)
                    self._mount_warned = True
                await self._sleep_or_stop(idle)
                continue
            if self._mount_warned:
                log.info("agent %s: the share is back; claiming again", self.agent_id)
            self._mount_warned = False
            job = await self._claim()
            if job is None:
                await self._sleep_or_stop(idle)
                continue
            log.info(
                "agent %s took job %s (%s) for asset %s",
                self.agent_id,
                job.job_id,
                job.type,
                job.asset_uuid,
            )
            self._running[job.job_id] = jobs.create_task(self._run_job(job))

    async def _wait_for_params(self) -> None:
        """Until the server's parameters arrive (or stop), registering again with
        back-off: a registration sent before `rush serve` was up reached nobody."""
        loop = asyncio.get_running_loop()
        warn_at = loop.time() + NO_PARAMS_WARN_S
        delay = REGISTER_BACKOFF_S
        next_register = loop.time() + delay
        warned = False
        while not (self._config_event.is_set() or self._stopping.is_set()):
            wake = next_register if warned else min(next_register, warn_at)
            await self._wait_either(self._config_event, within=max(0.0, wake - loop.time()))
            if self._config_event.is_set() or self._stopping.is_set():
                return
            now = loop.time()
            if not warned and now >= warn_at and self.bridge.stats.refused:
                warned = True
                log.warning(
                    "agent %s: no parameters from the server after %.0f s: the broker "
                    "refused this agent's messages (see above); check the ACL / username. "
                    "Still waiting.",
                    self.agent_id,
                    NO_PARAMS_WARN_S,
                )
            elif not warned and now >= warn_at:
                warned = True
                log.warning(
                    "agent %s: no parameters from the server after %.0f s on %s; is `rush "
                    "serve` running against this broker with mqtt.prefix = %r? Still waiting "
                    "(registering again now and then, and as soon as the server says online).",
                    self.agent_id,
                    NO_PARAMS_WARN_S,
                    self.topics.agent_config(self.agent_id),
                    self.config.mqtt.prefix,
                )
            if now >= next_register:
                if self.bridge.connected.is_set():
                    await self._register()
                delay = min(REGISTER_BACKOFF_MAX_S, delay * 2)
                next_register = now + delay

    async def _wait_job_or_stop(self) -> None:
        await self._wait_either(self._job_finished)

    async def _wait_either(self, event: asyncio.Event, within: float | None = None) -> None:
        """Until `event` is set, the agent is asked to stop, or `within` seconds passed."""
        a = asyncio.ensure_future(event.wait())
        b = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({a, b}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            a.cancel()
            b.cancel()

    async def _claim(self) -> JobSpec | None:
        """One claim, re-sent with the same request_id until answered or stopping."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[JobSpec | None] = asyncio.get_running_loop().create_future()
        self._pending_claim = (request_id, future)
        payload = {"request_id": request_id, "job_types": [str(t) for t in self._job_types()]}
        try:
            while not self._stopping.is_set():
                if not self.bridge.connected.is_set():
                    await self._wait_either(self.bridge.connected)
                    continue
                await self.bridge.publish(self.topics.agent_claim(self.agent_id), payload)
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(future), CLAIM_TIMEOUT_S)
                log.info("agent %s: claim %s unanswered; asking again", self.agent_id, request_id)
            return None
        finally:
            self._pending_claim = None

    # --- jobs -------------------------------------------------------------------------
    async def send_heartbeat(self, job: JobSpec, progress: float) -> None:
        await self.bridge.publish(
            self.topics.job_heartbeat(self.agent_id, job.job_id),
            {"lock_token": job.lock_token, "progress": progress},
        )

    async def _heartbeats(self, job: JobSpec, ctx: _Context) -> None:
        """One heartbeat every `heartbeat_s`, and one at once when new parameters come
        (their period applies from then on: the server's TTL may have just shrunk)."""
        while True:
            period = self.params.heartbeat_s if self.params else 30.0
            changed = self._params_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), period)
            problem = await self._share_problem()
            if problem:
                raise ShareLost(problem)
            await self.send_heartbeat(job, ctx.progress)

    async def _share_problem(self) -> str | None:
        """Why the share is unusable now, or None (also None when the check hangs:
        the job itself then decides)."""
        agent = self.config.agent
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(check_mount, agent.library_mount, agent.library_id),
                SHARE_CHECK_S,
            )
        except TimeoutError:
            return None

    def _share_lost(self, job: JobSpec, problem: str) -> ResultPayload:
        """The job goes back uncharged; said once until the share is back."""
        self.released += 1
        if not self._mount_warned:
            log.warning(
                "agent %s: share not mounted (%s); job %s released without charging the "
                "asset an attempt; claiming again once the share is back",
                self.agent_id,
                problem,
                job.job_id,
            )
            self._mount_warned = True
        return ResultPayload(lock_token=job.lock_token, status="released")

    async def _run_job(self, job: JobSpec) -> None:
        root = self.config.agent.library_mount or Path(".")
        agent = self.config.agent
        areas = {
            name: mount
            for name, mount in (
                (Area.ARCHIVE.value, agent.archive_mount),
                (Area.REJECTS.value, agent.rejects_mount),
            )
            if mount is not None
        }
        ctx = _Context(self, job, root, areas)
        processor = self.processors.get(job.type)
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    beats = group.create_task(self._heartbeats(job, ctx))
                    try:
                        result = await self._process(processor, job, ctx)
                    finally:
                        beats.cancel()
            except Exception as exc:  # one bad job never stops the agent
                # Not `except*` (see integrations.mqtt.client).  A group holding only
                # ShareLost: the heartbeat saw the share go and the processor (and its
                # ffmpeg) has been cancelled; anything else fails this job alone.
                lost, rest = (
                    exc.split(ShareLost) if isinstance(exc, ExceptionGroup) else (None, exc)
                )
                if lost is not None and rest is None:
                    result = self._share_lost(job, str(_first_leaf(lost)))
                else:
                    leaf = _first_leaf(exc) if isinstance(exc, ExceptionGroup) else exc
                    self.failed += 1
                    log.exception("agent %s: job %s broke", self.agent_id, job.job_id)
                    result = _error(job, f"agent error: {type(leaf).__name__}: {leaf}")
            await self._send_result(job, result)
        except asyncio.CancelledError:
            log.info("agent %s releases job %s", self.agent_id, job.job_id)
            self.released += 1
            await self._send_result(
                job, ResultPayload(lock_token=job.lock_token, status="released")
            )
            raise
        finally:
            self._running.pop(job.job_id, None)
            if not self._running:
                self._trim_when_idle()
            self._job_finished.set()

    def _trim_when_idle(self) -> None:
        """Once the agent has been idle for a second, what its jobs decoded goes back to
        the system, not only to the heap (in a worker thread: malloc_trim releases the
        GIL; never between two jobs of a busy agent)."""
        if self._trim_handle is not None:
            self._trim_handle.cancel()
        loop = asyncio.get_running_loop()

        def trim() -> None:
            self._trim_handle = None
            if not self._running:
                loop.run_in_executor(None, memory.release)

        self._trim_handle = loop.call_later(IDLE_TRIM_S, trim)

    async def _process(
        self, processor: Processor | None, job: JobSpec, ctx: _Context
    ) -> ResultPayload:
        if processor is None:
            self.failed += 1
            return ResultPayload(
                lock_token=job.lock_token, status="error", error=f"no processor for {job.type}"
            )
        try:
            output: JobOutput = await processor.run(job, ctx)
        except JobFailed as exc:
            # ENOENT/EIO on the input, ffmpeg's I/O errors: first ask whether the share
            # is still there, so a healthy asset is not charged for this machine's mount.
            if problem := await self._share_problem():
                return self._share_lost(job, problem)
            self.failed += 1
            log.warning("job %s failed: %s", job.job_id, names.safe_text(str(exc)))
            return _error(job, str(exc))
        except Exception as exc:
            if problem := await self._share_problem():
                return self._share_lost(job, problem)
            self.failed += 1
            log.exception("processor %s crashed on job %s", job.type, job.job_id)
            return _error(job, f"processor crashed: {type(exc).__name__}: {exc}")
        token = job.lock_token
        try:
            # Everything is encoded before anything is sent: a result that JSON cannot
            # carry (a name that is not valid UTF-8, as a lone surrogate) fails this job
            # with a clear error instead of reaching the broker half-sent.
            facts = None
            if output.facts is not None:
                facts = encode({"lock_token": token, "facts": output.facts})
            derivatives = None
            if output.derivatives:
                derivatives = encode(
                    {
                        "lock_token": token,
                        "derivatives": [d.model_dump(mode="json") for d in output.derivatives],
                    }
                )
            data: dict[str, Any] = {
                "lock_token": token,
                "status": "ok",
                "facts": output.facts,
                "derivatives": output.derivatives,
                "transcript": output.transcript,
                "suggestions": output.suggestions,
            }
            result = fit_result(
                ResultPayload.model_validate(data), self.config.mqtt.max_payload_bytes
            )
            result.model_dump_json(exclude_none=True)
        except (TypeError, ValueError) as exc:
            self.failed += 1
            log.warning("job %s: result cannot be encoded: %s", job.job_id, exc)
            return _error(job, f"the result cannot be encoded (sent as JSON): {exc}")
        if facts is not None:
            await self.bridge.publish(self.topics.job_facts(self.agent_id, job.job_id), facts)
        if derivatives is not None:
            await self.bridge.publish(
                self.topics.job_derivatives(self.agent_id, job.job_id), derivatives
            )
        self.completed += 1
        return result

    async def _send_result(self, job: JobSpec, result: ResultPayload) -> None:
        topic = self.topics.job_result(self.agent_id, job.job_id)
        if result.version is None:  # the server refuses a result for an older version
            result = result.model_copy(update={"version": job.version})
        payload = encode(result.model_dump_json(exclude_none=True))
        self._outbox[job.job_id] = (topic, payload, job.lock_token)
        self._outbox_empty.clear()
        await self.bridge.publish(topic, payload)

    async def _resender(self) -> None:
        """Results stay in the outbox until acknowledged; re-send them now and then."""
        while True:
            await asyncio.sleep(self.resend_s)
            if self.bridge.connected.is_set():
                for topic, payload, _token in list(self._outbox.values()):
                    await self.bridge.publish(topic, payload)

    async def _drain(self) -> None:
        """After stop: give running jobs the grace period, then cancel (= release) them."""
        if not self._running:
            return
        grace = self.config.agent.shutdown_grace_s
        log.info(
            "agent %s: waiting up to %.0f s for %d job(s)", self.agent_id, grace, len(self._running)
        )
        tasks = list(self._running.values())
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


def _error(job: JobSpec, message: str) -> ResultPayload:
    """An error result; the message made encodable (it may quote a file name that is not
    valid UTF-8) and bounded."""
    return ResultPayload(
        lock_token=job.lock_token, status="error", error=names.safe_text(message)[:4000]
    )


def fit_result(result: ResultPayload, max_bytes: int) -> ResultPayload:
    """The result as sent: a transcript too long for one message goes by reference to
    its `transcript.json` derivative (already on the shared disk), not inline.

    Why: the server drops payloads over `mqtt.max_payload_bytes`, and an interview of
    an hour easily makes a megabyte of words with timings; without this the result
    would be re-sent for ever and the transcription fail on every attempt."""
    if result.transcript is None or len(result.model_dump_json(exclude_none=True)) <= max_bytes:
        return result
    ref = next(
        (d.path for d in result.derivatives or () if d.role is DerivativeRole.TRANSCRIPT_JSON),
        None,
    )
    if ref is None:
        return result
    slim = TranscriptData(
        language=result.transcript.language, engine=result.transcript.engine, ref=ref
    )
    return result.model_copy(update={"transcript": slim})
