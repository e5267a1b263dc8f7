"""Every MQTT topic of the contract (docs/contract.md §5), built and parsed in one place.

Why one place: a topic typo on one side of the wire is a silent, permanent outage.  The
server and the agent runtime both build their topics here, and incoming topics are
parsed here with the agent and job ids validated as topic-safe before any handler
sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COMMAND_RE = re.compile(r"^[a-z0-9_-]{1,32}(/[a-z0-9_-]{1,32}){0,2}$")

#: Per-job messages an agent sends (`…/jobs/{job_id}/{kind}`).
JOB_MESSAGES = ("heartbeat", "facts", "derivatives", "result")


class TopicKind(StrEnum):
    SERVER_STATUS = "server_status"
    AGENT_STATUS = "agent_status"
    REGISTER = "register"
    CONFIG = "config"
    CLAIM = "claim"
    JOB = "job"
    HEARTBEAT = "heartbeat"
    FACTS = "facts"
    DERIVATIVES = "derivatives"
    RESULT = "result"
    ACK = "ack"
    COMMAND = "command"
    COMMAND_RESULT = "command_result"
    EVENT_ASSET = "event_asset"


def is_topic_id(value: str) -> bool:
    """Agent and job ids: ASCII letters, digits, '-' and '_' (no wildcards, no slashes)."""
    return bool(_ID_RE.match(value))


def is_command_name(value: str) -> bool:
    return bool(_COMMAND_RE.match(value))


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    kind: TopicKind
    agent_id: str | None = None
    job_id: str | None = None
    command: str | None = None


class Topics:
    """Topic names under one prefix (`mqtt.prefix`, default `rush`)."""

    def __init__(self, prefix: str) -> None:
        if not prefix or any(c in prefix for c in "+#") or prefix.strip("/") != prefix:
            raise ValueError(f"invalid MQTT topic prefix {prefix!r}")
        self.prefix = prefix
        self._parts = len(prefix.split("/"))

    # --- server ---------------------------------------------------------------
    @property
    def server_status(self) -> str:
        return f"{self.prefix}/server/status"

    @property
    def events_asset(self) -> str:
        return f"{self.prefix}/events/asset"

    @property
    def events_batch(self) -> str:
        return f"{self.prefix}/events/batch"

    def cmd(self, command: str) -> str:
        return f"{self.prefix}/cmd/{_command(command)}"

    def cmd_result(self, command: str) -> str:
        return f"{self.prefix}/cmd/{_command(command)}/result"

    @property
    def cmd_filter(self) -> str:
        return f"{self.prefix}/cmd/#"

    # --- agents ---------------------------------------------------------------
    def agent(self, agent_id: str, leaf: str) -> str:
        return f"{self.prefix}/agents/{_id(agent_id)}/{leaf}"

    def agent_status(self, agent_id: str) -> str:
        return self.agent(agent_id, "status")

    def agent_register(self, agent_id: str) -> str:
        return self.agent(agent_id, "register")

    def agent_config(self, agent_id: str) -> str:
        return self.agent(agent_id, "config")

    def agent_claim(self, agent_id: str) -> str:
        return self.agent(agent_id, "claim")

    def agent_job(self, agent_id: str) -> str:
        return self.agent(agent_id, "job")

    def job(self, agent_id: str, job_id: str, message: str) -> str:
        if message not in (*JOB_MESSAGES, "ack"):
            raise ValueError(f"unknown job message {message!r}")
        return f"{self.prefix}/agents/{_id(agent_id)}/jobs/{_id(job_id)}/{message}"

    def job_heartbeat(self, agent_id: str, job_id: str) -> str:
        return self.job(agent_id, job_id, "heartbeat")

    def job_facts(self, agent_id: str, job_id: str) -> str:
        return self.job(agent_id, job_id, "facts")

    def job_derivatives(self, agent_id: str, job_id: str) -> str:
        return self.job(agent_id, job_id, "derivatives")

    def job_result(self, agent_id: str, job_id: str) -> str:
        return self.job(agent_id, job_id, "result")

    def job_ack(self, agent_id: str, job_id: str) -> str:
        """Server -> agent: the result was taken (or refused); the agent stops re-sending."""
        return self.job(agent_id, job_id, "ack")

    def agents_filter(self, leaf: str) -> str:
        """`{prefix}/agents/+/{leaf}`: what the server subscribes to for every agent."""
        return f"{self.prefix}/agents/+/{leaf}"

    def jobs_filter(self, message: str) -> str:
        return f"{self.prefix}/agents/+/jobs/+/{message}"

    # --- parsing --------------------------------------------------------------
    def parse(self, topic: str) -> ParsedTopic | None:
        """Classify an incoming topic; None for anything foreign or with unsafe ids."""
        parts = topic.split("/")
        if "/".join(parts[: self._parts]) != self.prefix:
            return None
        rest = parts[self._parts :]
        if rest == ["server", "status"]:
            return ParsedTopic(TopicKind.SERVER_STATUS)
        if rest == ["events", "asset"]:
            return ParsedTopic(TopicKind.EVENT_ASSET)
        if len(rest) >= 2 and rest[0] == "cmd":
            name = "/".join(rest[1:])
            if rest[-1] == "result" and len(rest) >= 3:
                name = "/".join(rest[1:-1])
                return (
                    ParsedTopic(TopicKind.COMMAND_RESULT, command=name)
                    if is_command_name(name)
                    else None
                )
            return ParsedTopic(TopicKind.COMMAND, command=name) if is_command_name(name) else None
        if len(rest) < 3 or rest[0] != "agents" or not is_topic_id(rest[1]):
            return None
        agent_id = rest[1]
        if len(rest) == 3:
            simple = {
                "status": TopicKind.AGENT_STATUS,
                "register": TopicKind.REGISTER,
                "config": TopicKind.CONFIG,
                "claim": TopicKind.CLAIM,
                "job": TopicKind.JOB,
            }.get(rest[2])
            return ParsedTopic(simple, agent_id=agent_id) if simple else None
        if len(rest) == 5 and rest[2] == "jobs" and is_topic_id(rest[3]):
            kinds = {
                "heartbeat": TopicKind.HEARTBEAT,
                "facts": TopicKind.FACTS,
                "derivatives": TopicKind.DERIVATIVES,
                "result": TopicKind.RESULT,
                "ack": TopicKind.ACK,
            }
            kind = kinds.get(rest[4])
            return ParsedTopic(kind, agent_id=agent_id, job_id=rest[3]) if kind else None
        return None


def _id(value: str) -> str:
    if not is_topic_id(value):
        raise ValueError(f"{value!r} is not a topic-safe id (letters, digits, '-', '_')")
    return value


def _command(value: str) -> str:
    if not is_command_name(value):
        raise ValueError(f"{value!r} is not a valid command name")
    return value


def topic_matches(filter_: str, topic: str) -> bool:
    """MQTT filter matching (`+` one level, `#` the rest), for routing in the bridge."""
    fparts = filter_.split("/")
    tparts = topic.split("/")
    for i, fp in enumerate(fparts):
        if fp == "#":
            return True
        if i >= len(tparts):
            return False
        if fp != "+" and fp != tparts[i]:
            return False
    return len(fparts) == len(tparts)
