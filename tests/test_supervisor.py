"""The supervisor: restart with back-off, cancellation, shutdown of a real `rush serve`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.supervisor import Backoff, FunctionActor, Supervisor
from tests.conftest import free_port, rush_env


class Crasher:
    """Fails `failures` times, then returns."""

    def __init__(self, failures: int, clock: list[float] | None = None, runtime: float = 0):
        self.name = "crasher"
        self.failures = failures
        self.calls = 0
        self.clock = clock
        self.runtime = runtime

    async def run(self) -> None:
        self.calls += 1
        if self.clock is not None:
            self.clock[0] += self.runtime
        if self.calls <= self.failures:
            raise RuntimeError(f"boom {self.calls}")


async def test_crashing_actor_restarts_with_exponential_backoff() -> None:
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    actor = Crasher(failures=5)
    sup = Supervisor([actor], backoff=Backoff(initial=1, maximum=8, factor=2), sleep=fake_sleep)
    await asyncio.wait_for(sup.run(install_signals=False), timeout=5)
    assert delays == [1, 2, 4, 8, 8]
    assert actor.calls == 6
    status = sup.status["crasher"]
    assert (status.restarts, status.last_error, status.running) == (
        5,
        "RuntimeError: boom 5",
        False,
    )


async def test_backoff_resets_after_a_healthy_run() -> None:
    delays: list[float] = []
    clock = [0.0]

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    # Each run "lasts" 100 s of the injected clock: longer than reset_after.
    actor = Crasher(failures=3, clock=clock, runtime=100)
    sup = Supervisor(
        [actor],
        backoff=Backoff(initial=1, factor=2, reset_after=60),
        sleep=fake_sleep,
        clock=lambda: clock[0],
    )
    await asyncio.wait_for(sup.run(install_signals=False), timeout=5)
    assert delays == [1, 1, 1]


async def test_one_crashing_actor_does_not_stop_the_others() -> None:
    ticks: list[int] = []

    async def steady() -> None:
        for i in range(3):
            ticks.append(i)
            await asyncio.sleep(0)

    async def no_sleep(_delay: float) -> None:
        await asyncio.sleep(0)

    sup = Supervisor([Crasher(failures=2), FunctionActor("steady", steady)], sleep=no_sleep)
    await asyncio.wait_for(sup.run(install_signals=False), timeout=5)
    assert ticks == [0, 1, 2]
    assert sup.status["crasher"].restarts == 2


async def test_stop_cancels_actors_and_cancellation_reaches_them() -> None:
    started = asyncio.Event()
    seen: list[str] = []

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    sup = Supervisor([FunctionActor("forever", forever)])
    task = asyncio.create_task(sup.run(install_signals=False))
    await asyncio.wait_for(started.wait(), timeout=5)
    sup.stop()
    await asyncio.wait_for(task, timeout=5)
    assert seen == ["cancelled"]
    assert sup.status["forever"].restarts == 0, "a cancellation is not a crash"
    assert sup.abandoned == []


async def test_outer_cancellation_is_not_swallowed() -> None:
    started = asyncio.Event()
    finalised: list[bool] = []

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            finalised.append(True)

    sup = Supervisor([FunctionActor("forever", forever)])
    task = asyncio.create_task(sup.run(install_signals=False))
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert finalised == [True]


async def test_actor_cancelled_from_inside_is_not_restarted() -> None:
    calls: list[int] = []

    async def cancels_itself() -> None:
        calls.append(1)
        raise asyncio.CancelledError

    sup = Supervisor([FunctionActor("self-cancel", cancels_itself)])
    await asyncio.wait_for(sup.run(install_signals=False), timeout=5)
    assert calls == [1]
    assert sup.status["self-cancel"].restarts == 0


async def test_stuck_actor_cannot_block_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # Deliberately misbehaving: ignores the cancellation until released.
            await release.wait()
            raise

    sup = Supervisor([FunctionActor("stubborn", stubborn)], shutdown_timeout=0.2)
    task = asyncio.create_task(sup.run(install_signals=False))
    await asyncio.wait_for(started.wait(), timeout=5)
    sup.stop()
    await asyncio.wait_for(task, timeout=5)
    assert sup.abandoned == ["stubborn"]
    assert "did not stop within 0.2 s" in caplog.text
    # Let it end so the test's event loop closes cleanly.
    release.set()
    for _ in range(100):
        if not sup._runs:
            break
        await asyncio.sleep(0.01)
    assert not sup._runs


# -- a real `rush serve` process -----------------------------------------------------------


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    lib = tmp_path / "lib"
    cfg = tmp_path / "config.toml"
    log = tmp_path / "serve.log"
    cfg.write_text(
        'data_dir = "data"\n[library]\nroot = "lib"\n[scanner]\ninterval_s = 0.2\n'
        'stable_after_s = 0\n[logging]\nlevel = "INFO"\n'
        f"[mqtt]\nembedded_port = {free_port()}\n[web]\nport = {free_port()}\n",
        encoding="utf-8",
    )
    subprocess.run(
        [sys.executable, "-m", "rush", "init", "--config", str(cfg)],
        env=rush_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    (lib / "INBOX" / "clip.mp4").write_bytes(b"x")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rush", "serve", "--config", str(cfg)],
            env=rush_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_rush_serve_stops_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    proc, log = _serve(tmp_path)
    try:
        assert _wait_for(lambda: "supervisor: started" in log.read_text(), 60), log.read_text()
        # Let the scanner do real work first (a pass that records the file).
        assert _wait_for(lambda: "1 new" in log.read_text(), 30), log.read_text()
        os.kill(proc.pid, sig)
        assert _wait_for(lambda: proc.poll() is not None, 12), "rush serve did not exit"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 0, text
    assert f"received {sig.name}; shutting down" in text
    assert "rush serve stopped" in text
    assert "Traceback" not in text


_STUCK_SERVE = r"""
import asyncio, sys
import rush.server

class Stubborn:
    name = "stubborn"

    async def run(self):
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass  # deliberately swallowed: the defect this test is about

rush.server.build_actors = lambda ctx: [Stubborn()]
from rush.cli import main
sys.exit(main(["serve", "--config", sys.argv[1]]))
"""


def test_rush_serve_exits_even_with_an_actor_that_ignores_cancellation(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    log = tmp_path / "serve.log"
    cfg.write_text('data_dir = "data"\n[library]\nroot = "lib"\n', encoding="utf-8")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _STUCK_SERVE, str(cfg)],
            env=rush_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert _wait_for(lambda: "supervisor: started" in log.read_text(), 60), log.read_text()
        os.kill(proc.pid, signal.SIGTERM)
        # shutdown_timeout (5 s) + the forced-exit grace (2 s), well before 15 s.
        assert _wait_for(lambda: proc.poll() is not None, 14), "rush serve hung on a stuck actor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 1, text
    assert "actor stubborn did not stop within" in text
    assert "forcing exit: actors stubborn ignored cancellation" in text


async def test_stop_last_actors_outlive_the_others() -> None:
    """The embedded broker (`stop_last`) is cancelled only after its clients stopped."""
    order: list[str] = []

    class Service:
        def __init__(self, name: str, cleanup_s: float, stop_last: bool = False) -> None:
            self.name = name
            self.cleanup_s = cleanup_s
            self.stop_last = stop_last

        async def run(self) -> None:
            try:
                await asyncio.Event().wait()
            finally:
                order.append(f"{self.name} cancelled")
                await asyncio.shield(asyncio.sleep(self.cleanup_s))
                order.append(f"{self.name} stopped")

    broker = Service("broker", 0.0, stop_last=True)
    sup = Supervisor([broker, Service("bridge", 0.2), Service("agent", 0.1)])
    runner = asyncio.create_task(sup.run(install_signals=False))
    await asyncio.sleep(0.05)
    sup.stop()
    await asyncio.wait_for(runner, timeout=5)
    assert order.index("broker cancelled") > order.index("bridge stopped")
    assert order.index("broker cancelled") > order.index("agent stopped")
    assert order[-1] == "broker stopped"


def test_a_second_rush_serve_on_the_same_data_refuses(tmp_path: Path) -> None:
    """Started twice by mistake (a unit and a shell), the second server says who runs and
    exits, instead of doubling every actor and fighting for the ports."""
    proc, log = _serve(tmp_path)
    try:
        assert _wait_for(lambda: "supervisor: started" in log.read_text(), 60), log.read_text()
        second = subprocess.run(
            [sys.executable, "-m", "rush", "serve", "--config", str(tmp_path / "config.toml")],
            env=rush_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 3, second.stderr
        assert f"another rush serve is in progress (pid {proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert proc.poll() is None  # the first one keeps running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
