"""The supervisor: one TaskGroup owns every long-lived actor.

An actor is anything with `name` and `async def run(self) -> None`.  A crash (any
`Exception`) is logged and the actor restarted after an exponential back-off that
resets once the actor has stayed up for a while; `CancelledError` is never swallowed.
SIGTERM/SIGINT cancel the group, and every actor gets `shutdown_timeout` seconds to
finish its `finally` blocks before the supervisor gives up on it (`abandoned`): a stuck
actor can delay shutdown, never block it.  Actors marked `stop_last = True` (the
embedded MQTT broker) are cancelled only once the others have stopped, so their clients
say goodbye instead of seeing the ground vanish under them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class Actor(Protocol):
    name: str

    async def run(self) -> None: ...


def _stops_last(actor: Actor) -> bool:
    return bool(getattr(actor, "stop_last", False))


@dataclass
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    #: An actor that ran this long before crashing is considered healthy again.
    reset_after: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


@dataclass
class ActorStatus:
    name: str
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    started_at: float | None = None


class FunctionActor:
    """Adapts a coroutine function into an actor."""

    def __init__(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._fn = fn

    async def run(self) -> None:
        await self._fn()


class Supervisor:
    def __init__(
        self,
        actors: list[Actor],
        *,
        backoff: Backoff | None = None,
        shutdown_timeout: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.actors = list(actors)
        self.backoff = backoff or Backoff()
        self.shutdown_timeout = shutdown_timeout
        self.status: dict[str, ActorStatus] = {a.name: ActorStatus(a.name) for a in self.actors}
        self._sleep = sleep
        self._clock = clock
        self._stop = asyncio.Event()
        #: The running `actor.run()` tasks (owned here: see `_supervise`).
        self._runs: set[asyncio.Task[None]] = set()
        #: Actors that ignored cancellation for longer than `shutdown_timeout`.
        self.abandoned: list[str] = []

    def stop(self) -> None:
        """Ask every actor to stop (safe to call from a signal handler)."""
        self._stop.set()

    async def _supervise(self, actor: Actor) -> None:
        status = self.status[actor.name]
        failures = 0
        while True:
            started = self._clock()
            status.running, status.started_at = True, started
            # The actor runs in a task of its own so that one which ignores cancellation
            # (a stuck `finally`, a swallowed CancelledError) cannot hold shutdown for ever:
            # we wait `shutdown_timeout` for it, then give up on it and let the group end.
            run = asyncio.get_running_loop().create_task(actor.run(), name=f"{actor.name}.run")
            self._runs.add(run)
            run.add_done_callback(self._runs.discard)
            try:
                await asyncio.wait({run})
            except asyncio.CancelledError:
                status.running = False
                run.cancel()
                _, pending = await asyncio.wait({run}, timeout=self.shutdown_timeout)
                if pending:
                    self.abandoned.append(actor.name)
                    log.error(
                        "actor %s did not stop within %.1f s; abandoning it",
                        actor.name,
                        self.shutdown_timeout,
                    )
                raise
            status.running = False
            if run.cancelled():
                # Cancelled from inside (not by us): that is a stop, never a crash to retry.
                log.info("actor %s was cancelled", actor.name)
                raise asyncio.CancelledError
            exc = run.exception()
            if exc is None:
                log.info("actor %s finished", actor.name)
                return
            if not isinstance(exc, Exception):
                raise exc  # KeyboardInterrupt, SystemExit: not ours to absorb
            if self._clock() - started >= self.backoff.reset_after:
                failures = 0
            failures += 1
            status.restarts += 1
            status.last_error = f"{type(exc).__name__}: {exc}"
            delay = self.backoff.delay(failures)
            log.error(
                "actor %s crashed; restarting in %.1f s",
                actor.name,
                delay,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            await self._sleep(delay)

    async def run(self, *, install_signals: bool = True) -> None:
        """Run until every actor returns, or until `stop()` or SIGTERM/SIGINT."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
        log.info("supervisor: started %d actors", len(self.actors))
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._supervise(a), name=a.name) for a in self.actors]
                watcher = group.create_task(self._stop.wait(), name="supervisor-stop")
                done_all = group.create_task(self._all_done(tasks))
                await watcher
                done_all.cancel()
                last = [t for t, a in zip(tasks, self.actors, strict=True) if _stops_last(a)]
                first = [t for t in tasks if t not in last]
                for task in first:
                    task.cancel()
                if last and first:
                    # `_supervise` gives up on a stuck actor after `shutdown_timeout`.
                    await asyncio.wait(first)
                for task in last:
                    task.cancel()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
        log.info("supervisor: stopped")

    async def _all_done(self, tasks: list[asyncio.Task[None]]) -> None:
        if tasks:
            await asyncio.wait(tasks)
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s; shutting down", sig.name)
        self.stop()
