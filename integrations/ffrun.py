"""Running ffmpeg/ffprobe as asyncio subprocesses: progress, hard timeout, clean kill.

Every child runs in its own process group so a timeout or a cancellation kills ffmpeg
and anything it spawned, and the child is always reaped: a stuck ffmpeg can never
outlive its job (Immich #9978: ffmpeg stuck for 10 hours).

Its own session also means no signal of the agent's reaches it, so on Linux every child
asks the kernel for SIGKILL when the agent dies (`PR_SET_PDEATHSIG`): an agent killed
with SIGKILL, by the OOM killer or by a crash takes its ffmpeg along instead of leaving
it to fight the next agent for the CPU for minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from integrations import ffcmd
from rush.jobs import JobFailed

log = logging.getLogger(__name__)

Heartbeat = Callable[[float], Awaitable[None]]


class FfmpegError(JobFailed):
    """ffmpeg exited non-zero; `stderr` holds its last words."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


class FfmpegTimeout(JobFailed):
    """ffmpeg ran past its hard limit and was killed."""


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill the child's whole process group and reap it (no zombie, no orphan)."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    # Shielded: a cancelled job must still reap its child.
    await asyncio.shield(proc.wait())


PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up once here: the child between fork and exec must not load
    libraries or take locks (other threads of the agent may hold them)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A pre-exec hook: SIGKILL this child when the agent process dies.

    The death signal is tied to the thread that forked, which is the event loop's (the
    agent spawns only from the loop, never from worker threads).  A parent that died
    between fork and prctl is caught by comparing the parent pid afterwards."""
    prctl = _PRCTL
    if prctl is None:
        return None
    kill = int(signal.SIGKILL)

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return hook


async def _spawn(args: list[str], stdout: int | None) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
    except FileNotFoundError as exc:
        raise JobFailed(f"{args[0]} is not installed on this agent") from exc


async def _gather(*coros: Coroutine[Any, Any, None]) -> None:
    """Run coroutines in a TaskGroup; re-raise the first failure itself, not a group.

    A heartbeat that raises (lease lost) or a consumer error must reach the caller as
    the exception it is, so JobFailed stays JobFailed.
    """
    try:
        async with asyncio.TaskGroup() as tg:
            for coro in coros:
                tg.create_task(coro)
    except BaseExceptionGroup as group:
        first = group.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


def _tail(data: bytes, limit: int = 600) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text[-limit:]


async def run_ffmpeg(
    args: list[str],
    *,
    duration_s: float | None,
    timeout_s: float,
    heartbeat: Heartbeat | None = None,
    heartbeat_every_s: float = 2.0,
) -> float:
    """Run one ffmpeg command that has `-progress pipe:1`; raise on failure or timeout.

    Returns the seconds of media written (the last `out_time`), to spot truncated input.

    Progress (out_time / duration, capped below 1) drives `heartbeat` at most every
    `heartbeat_every_s` seconds.
    """
    proc = await _spawn(args, asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stderr_chunks: list[bytes] = []
    written = [0.0]

    async def drain_stderr() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            stderr_chunks.append(chunk)
            if len(stderr_chunks) > 64:
                del stderr_chunks[:32]

    async def follow_progress() -> None:
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()
        last = 0.0
        while raw := await proc.stdout.readline():
            parsed = ffcmd.parse_progress_line(raw.decode("ascii", "replace"))
            seconds = ffcmd.progress_seconds(*parsed) if parsed else None
            if seconds is None:
                continue
            written[0] = max(written[0], seconds)
            now = loop.time()
            if heartbeat is not None and duration_s and now - last >= heartbeat_every_s:
                last = now
                await heartbeat(min(seconds / duration_s, 0.99))

    try:
        async with asyncio.timeout(timeout_s):
            await _gather(drain_stderr(), follow_progress())
            await proc.wait()
    except TimeoutError:
        await _kill(proc)
        raise FfmpegTimeout(
            f"ffmpeg did not finish within {timeout_s:g} s and was killed"
        ) from None
    finally:
        await _kill(proc)
    if proc.returncode != 0:
        stderr = _tail(b"".join(stderr_chunks))
        raise FfmpegError(
            f"ffmpeg failed (exit {proc.returncode}): {stderr or 'no message'}", stderr
        )
    return written[0]


async def probe(path: str, timeout_s: float) -> dict[str, Any]:
    """ffprobe JSON of a file; JobFailed for unreadable, corrupt or non-media files."""
    proc = await _spawn(ffcmd.probe_args(path), asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        raise JobFailed(f"ffprobe did not answer within {timeout_s:g} s") from None
    finally:
        await _kill(proc)
    if proc.returncode != 0:
        raise JobFailed(f"not a readable media file: {_tail(err) or 'ffprobe failed'}")
    try:
        # ffprobe echoes the file name and tags byte for byte: not always UTF-8.
        data = json.loads(out.decode("utf-8", "replace"))
    except ValueError as exc:
        raise JobFailed(f"ffprobe returned unreadable output: {exc}") from exc
    if not isinstance(data, dict) or not data.get("streams"):
        raise JobFailed("not a media file: no audio or video stream found")
    return data


async def decode_pcm(
    src: str,
    sample_rate: int,
    timeout_s: float,
    consume: Callable[[bytes], Awaitable[None]],
    chunk_bytes: int = 64000,
) -> None:
    """Decode `src` to mono s16le and hand it to `consume` in chunks of `chunk_bytes`.

    Raises JobFailed when the decoder fails or runs past `timeout_s`; always reaps it.
    """
    proc = await _spawn(ffcmd.pcm_args(src, sample_rate), asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    err_buf: list[bytes] = []

    async def drain() -> None:
        while chunk := await stderr.read(65536):
            err_buf.append(chunk)
            if len(err_buf) > 64:
                del err_buf[:32]

    async def pump() -> None:
        while True:
            try:
                data = await stdout.readexactly(chunk_bytes)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    await consume(exc.partial)
                return
            await consume(data)

    try:
        async with asyncio.timeout(timeout_s):
            await _gather(drain(), pump())
            await proc.wait()
    except TimeoutError:
        raise FfmpegTimeout(f"audio decoding did not finish within {timeout_s:g} s") from None
    finally:
        await _kill(proc)
    if proc.returncode != 0:
        raise FfmpegError(
            f"audio decoding failed (exit {proc.returncode}): {_tail(b''.join(err_buf))}"
        )
