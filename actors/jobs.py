"""Thin MQTT handlers around `rush.leasing`: registry, dispatcher, result intake, keeper.

Why thin: every rule lives in `rush.leasing` (tested on both databases without a
broker); these actors only decode payloads (bad ones are logged and dropped), call the
service and publish the answer.  They talk to the broker through `Messenger` only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from integrations.mqtt.payloads import (
    AckPayload,
    ClaimPayload,
    DerivativesPayload,
    FactsPayload,
    HeartbeatPayload,
    JobAnswer,
    RegisterPayload,
    ResultPayload,
    decode,
    progress_fraction,
    split_job_types,
)
from integrations.mqtt.topics import TopicKind, Topics, is_topic_id
from rush import events, leasing
from rush.capabilities import unserved_ready
from rush.config import Config
from rush.leasing import Dispatcher, JobResult, LeaseSettings
from rush.messaging import Messenger

log = logging.getLogger(__name__)


#: Shortest interval between two `last_seen` writes for one agent.
SEEN_EVERY_S = 5.0
#: How often the server looks for READY assets no online agent can process.
UNSERVED_CHECK_S = 30.0


class JobService:
    """Agent registry (docs/contract.md §9, workflow 2), dispatcher (docs/contract.md §9, workflow 3) and result intake."""

    name = "jobs"

    def __init__(
        self, config: Config, messenger: Messenger, *, bus: events.EventBus | None = None
    ) -> None:
        self.config = config
        self.messenger = messenger
        self.topics = Topics(config.mqtt.prefix)
        self.settings = LeaseSettings.from_config(config)
        self.bus = bus
        self.dispatcher = Dispatcher(self.settings, bus=bus)
        self.max_bytes = config.mqtt.max_payload_bytes
        self.refused = 0
        self._installed = False
        #: agent id -> monotonic time its `last_seen` was last written.
        self._seen_written: dict[str, float] = {}

    async def _seen(self, agent_id: str) -> None:
        """Record that an agent is alive (claims, heartbeats, results), at most every
        SEEN_EVERY_S per agent: the ops page calls an agent offline when it has been
        silent for three heartbeat periods, and an idle agent only claims."""
        now = time.monotonic()
        if now - self._seen_written.get(agent_id, -SEEN_EVERY_S) < SEEN_EVERY_S:
            return
        self._seen_written[agent_id] = now
        await leasing.agent_seen(agent_id)

    def install(self) -> None:
        """Subscribe the handlers (idempotent)."""
        if self._installed:
            return
        self._installed = True
        t = self.topics
        sub = self.messenger.subscribe
        sub(t.agents_filter("status"), self.on_status)
        sub(t.agents_filter("register"), self.on_register)
        sub(t.agents_filter("claim"), self.on_claim)
        for message in ("heartbeat", "facts", "derivatives", "result"):
            sub(t.jobs_filter(message), self.on_job_message)

    async def run(self) -> None:
        self.install()
        # Fresh parameters for every agent we know, at once: the retained ones on the
        # broker were computed by the previous run, perhaps with another TTL/heartbeat.
        pushed = await self.push_params()
        if pushed:
            log.info("parameters sent to %d known agent(s)", pushed)
        await self.watch_unserved()

    async def push_params(self, agent_ids: list[str] | None = None) -> int:
        """Recompute and publish (retained) the parameters of these or all agents."""
        fresh = await leasing.refresh_params(self.settings, agent_ids)
        for agent_id, params in fresh.items():
            if not is_topic_id(agent_id):
                continue
            self.dispatcher.forget_agent(agent_id)
            await self.messenger.publish(self.topics.agent_config(agent_id), params, retain=True)
        return len(fresh)

    async def cmd_refresh(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`cmd/agents/refresh` (`{"agent": id}` or `{}` for all): push parameters now,
        after `rush agents set` changed them in the database."""
        agent = payload.get("agent")
        ids = [str(agent)] if isinstance(agent, str) and agent else None
        pushed = await self.push_params(ids)
        return {"pushed": pushed}

    async def watch_unserved(self) -> None:
        """Say (once per change) when READY assets wait that no online agent can do."""
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(UNSERVED_CHECK_S)
            try:
                found = await unserved_ready()
            except Exception:
                log.exception("could not check for assets no agent can process")
                continue
            if set(found) != set(last):
                if found:
                    log.warning(
                        "no online agent can process %s; they wait until one that can "
                        "registers (see `rush agents list`, capabilities)",
                        ", ".join(f"{n} {what} asset(s)" for what, n in sorted(found.items())),
                    )
                elif last:
                    log.info("every READY asset has an agent that can process it again")
            last = found

    # --- handlers ---------------------------------------------------------------
    async def on_status(self, topic: str, payload: bytes, *, retain: bool) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.kind is not TopicKind.AGENT_STATUS or not parsed.agent_id:
            return
        text = payload.decode("utf-8", "replace").strip()
        if text not in ("online", "offline"):
            log.warning("ignored agent status %r on %s", text[:32], topic)
            return
        await leasing.set_agent_online(parsed.agent_id, text == "online")

    async def on_register(self, topic: str, payload: bytes, *, retain: bool) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.agent_id is None:
            return
        reg = decode(RegisterPayload, payload, topic=topic, max_bytes=self.max_bytes)
        if reg is None:
            return
        job_types, unknown = split_job_types(reg.job_types)
        if unknown:
            log.warning(
                "agent %s registered unknown job type(s) %s: ignored",
                parsed.agent_id,
                ", ".join(repr(u) for u in unknown)[:300],
            )
        self.dispatcher.forget_agent(parsed.agent_id)
        params = await leasing.register_agent(
            parsed.agent_id,
            self.settings,
            client_id=reg.client_id,
            version=reg.version,
            hostname=reg.hostname,
            capabilities=reg.capabilities,
            max_jobs=reg.max_jobs,
            job_types=[str(t) for t in job_types],
        )
        log.info(
            "agent %s registered (%s, %s): %s", parsed.agent_id, reg.hostname, reg.version, params
        )
        await self.messenger.publish(self.topics.agent_config(parsed.agent_id), params, retain=True)

    async def on_claim(self, topic: str, payload: bytes, *, retain: bool) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.agent_id is None:
            return
        claim = decode(ClaimPayload, payload, topic=topic, max_bytes=self.max_bytes)
        if claim is None:
            return
        await self._seen(parsed.agent_id)
        job_types, unknown = split_job_types(claim.job_types)
        if unknown:
            log.warning(
                "claim %r from agent %s: unknown job type(s) %s ignored",
                claim.request_id,
                parsed.agent_id,
                ", ".join(repr(u) for u in unknown)[:300],
            )
        job = None
        if job_types:
            job = await self.dispatcher.claim(
                parsed.agent_id, claim.request_id, [str(t) for t in job_types]
            )
        # An agent we do not know (its registration was lost: it started before us, or
        # it was removed) is asked to register again instead of claiming in vain.
        unknown_agent = job is None and not await self.dispatcher.is_registered(parsed.agent_id)
        answer = JobAnswer(request_id=claim.request_id, job=job)
        topic = self.topics.agent_job(parsed.agent_id)
        if unknown_agent:
            await self.messenger.publish(
                topic, {**answer.model_dump(mode="json"), "reregister": True}
            )
        else:
            await self.messenger.publish(topic, answer)

    async def on_job_message(self, topic: str, payload: bytes, *, retain: bool) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.agent_id is None or parsed.job_id is None:
            return
        agent, job = parsed.agent_id, parsed.job_id
        await self._seen(agent)
        mb = self.max_bytes
        verdict: leasing.Verdict
        if parsed.kind is TopicKind.HEARTBEAT:
            hb = decode(HeartbeatPayload, payload, topic=topic, max_bytes=mb)
            if hb is None:
                return
            progress = progress_fraction(hb.progress)
            if progress is None and hb.progress is not None:
                log.warning(
                    "heartbeat from agent %s for job %s: progress %r ignored (expected 0..1 "
                    "or a percentage); the lease is extended",
                    agent,
                    job,
                    hb.progress,
                )
            verdict = await leasing.heartbeat(agent, job, hb.lock_token, progress, self.settings)
        elif parsed.kind is TopicKind.FACTS:
            facts = decode(FactsPayload, payload, topic=topic, max_bytes=mb)
            if facts is None:
                return
            verdict = await leasing.store_facts(agent, job, facts.lock_token, facts.facts)
        elif parsed.kind is TopicKind.DERIVATIVES:
            der = decode(DerivativesPayload, payload, topic=topic, max_bytes=mb)
            if der is None:
                return
            verdict = await leasing.store_derivatives(
                agent, job, der.lock_token, list(der.derivatives)
            )
        elif parsed.kind is TopicKind.RESULT:
            res = decode(ResultPayload, payload, topic=topic, max_bytes=mb)
            if res is None:
                return
            verdict = await leasing.finish_job(
                agent, job, res.lock_token, to_job_result(res), self.settings, bus=self.bus
            )
            ack = AckPayload(
                lock_token=res.lock_token, accepted=verdict.accepted, reason=verdict.reason
            )
            await self.messenger.publish(self.topics.job_ack(agent, job), ack)
        else:
            return
        if not verdict.accepted:
            self.refused += 1
            log.warning(
                "refused %s from agent %s for job %s: %s", parsed.kind, agent, job, verdict.reason
            )


def to_job_result(res: ResultPayload) -> JobResult:
    return JobResult(
        status=res.status,
        error=res.error,
        facts=res.facts,
        derivatives=list(res.derivatives) if res.derivatives is not None else None,
        transcript=res.transcript.model_dump() if res.transcript is not None else None,
        suggestions=[s.model_dump() for s in res.suggestions] if res.suggestions else None,
        version=res.version,
    )


class LeaseKeeper:
    """Expires leases whose TTL passed without a heartbeat (docs/contract.md §9, workflow 15: locks expire)."""

    name = "lease-keeper"

    def __init__(self, config: Config, *, bus: events.EventBus | None = None) -> None:
        self.settings = LeaseSettings.from_config(config)
        self.interval = config.leases.check_interval_s
        self.bus = bus

    async def run(self) -> None:
        while True:
            expired = await leasing.expire_leases(self.settings, bus=self.bus)
            if expired:
                log.info("lease keeper: %d lease(s) expired", expired)
            await asyncio.sleep(self.interval)


class CommandService:
    """`{prefix}/cmd/{name}` -> `CommandRegistry`, outcome on `{prefix}/cmd/{name}/result`.

    Commands run one at a time in this actor's own loop so a long scan never holds up
    the agents' messages.  A command never runs from a retained message: the broker
    would replay it after every reconnect (a retained confirmed purge would run again
    after each broker hiccup), so it is refused, reported and cleared from the broker."""

    name = "commands"
    #: How long the echo of our own retained-message clearing is expected back.
    CLEAR_ECHO_S = 60.0

    def __init__(self, config: Config, messenger: Messenger, registry: Any) -> None:
        self.topics = Topics(config.mqtt.prefix)
        self.messenger = messenger
        self.registry = registry
        self.max_bytes = config.mqtt.max_payload_bytes
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(100)
        self._installed = False
        #: topic -> deadlines of the clearing publishes whose echo is still to come.
        self._clearing: dict[str, list[float]] = {}

    def install(self) -> None:
        if not self._installed:
            self._installed = True
            self.messenger.subscribe(self.topics.cmd_filter, self.on_command)

    async def on_command(self, topic: str, payload: bytes, *, retain: bool) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.kind is not TopicKind.COMMAND or parsed.command is None:
            return
        if retain:
            await self._refuse_retained(topic, parsed.command)
            return
        if not payload and self._is_clear_echo(topic):
            return
        args = parse_command_payload(payload, topic=topic, max_bytes=self.max_bytes)
        if args is None:
            await self.messenger.publish(
                self.topics.cmd_result(parsed.command),
                {"command": parsed.command, "ok": False, "error": "payload must be a JSON object"},
            )
            return
        if self._queue.full():
            log.warning("command queue full: dropped %s", parsed.command)
            return
        self._queue.put_nowait((parsed.command, args))

    async def _refuse_retained(self, topic: str, command: str) -> None:
        log.warning(
            "refused command %s from a retained message on %s: commands never run from "
            "retained messages (the broker replays them on every reconnect); clearing it, "
            "send the command again without the retain flag (mosquitto_pub without -r)",
            command,
            topic,
        )
        await self.messenger.publish(
            self.topics.cmd_result(command),
            {
                "command": command,
                "ok": False,
                "refused": "retained",
                "error": "refused: the command came as a retained message and was cleared; "
                "publish it without the retain flag (mosquitto_pub without -r)",
            },
        )
        # An empty retained payload deletes the retained message; the broker also
        # forwards it to us as an ordinary empty message, which must not run `{}`.
        now = time.monotonic()
        pending = [d for d in self._clearing.get(topic, []) if d > now]
        pending.append(now + self.CLEAR_ECHO_S)
        self._clearing[topic] = pending
        await self.messenger.publish(topic, b"", retain=True)

    def _is_clear_echo(self, topic: str) -> bool:
        """True (once) for the echo of a clearing publish of ours on `topic`."""
        pending = self._clearing.pop(topic, None)
        if not pending:
            return False
        now = time.monotonic()
        pending = [d for d in pending if d > now]
        if not pending:
            return False
        pending.pop(0)
        if pending:
            self._clearing[topic] = pending
        return True

    async def run(self) -> None:
        self.install()
        while True:
            name, args = await self._queue.get()
            log.info("command %s %s", name, args)
            outcome = await self.registry.execute(name, args)
            await self.messenger.publish(self.topics.cmd_result(name), outcome)


def parse_command_payload(payload: bytes, *, topic: str, max_bytes: int) -> dict[str, Any] | None:
    """Empty payload = no arguments; otherwise a JSON object, else None (logged)."""
    import orjson

    if not payload.strip():
        return {}
    if len(payload) > max_bytes:
        log.warning("dropped oversized command on %s", topic)
        return None
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        log.warning("dropped malformed command payload on %s", topic)
        return None
    return data if isinstance(data, dict) else None
