"""The narrow messaging interface domain actors use (no transport imported here).

Why: actors publish and subscribe through this protocol only, so they never import
aiomqtt; `integrations.mqtt.client.MqttBridge` is the one implementation.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from pydantic import BaseModel

PayloadLike = BaseModel | dict[str, Any] | str | bytes | None


class Handler(Protocol):
    """An incoming message handler: topic, raw payload and the broker's retain flag.

    `retain` is true only for a retained message the broker replays when we
    (re)subscribe, i.e. an old message rather than one sent just now: a handler that
    triggers an action must not act on it (see `actors.jobs.CommandService`)."""

    def __call__(self, topic: str, payload: bytes, /, *, retain: bool) -> Awaitable[None]: ...


class Messenger(Protocol):
    async def publish(
        self, topic: str, payload: PayloadLike, *, retain: bool = False, qos: int = 1
    ) -> None:
        """Queue a message; delivered when connected (the queue is bounded)."""

    def subscribe(self, filter_: str, handler: Handler) -> None:
        """Route messages matching `filter_` to `handler`; survives reconnects."""
