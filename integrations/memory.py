"""The agent's memory: its budget for decoded pixels, and giving memory back after a job.

Why: an agent often runs on a Raspberry Pi with 2 GB shared with the OS and the share's
cache.  A photo is decoded in memory at 4 bytes per pixel (Pillow keeps RGB as RGBX), so
a 25000 x 25000 PNG of 1.8 MB on disk would need 2.5 GB; and glibc keeps freed arenas
mapped, so an agent that once decoded a big image would stay big while idle.  The budget
(`agent.max_memory_mb`) decides what may be decoded; `release` returns what a job freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging

log = logging.getLogger(__name__)

#: Share of `agent.max_memory_mb` one decoded image may take: the rest is the agent
#: itself, ffmpeg of a concurrent job, and the thumbnails made from the image.
PIXEL_SHARE = 0.5

#: Bytes per pixel Pillow uses in memory, by mode (multi-band modes are padded to 4).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


def installed(module: str) -> bool:
    """Whether a module can be imported, without importing it (capabilities at start-up)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def pixel_budget_bytes(max_memory_mb: int) -> int:
    """Bytes one decoded image may take under the agent's memory budget."""
    return int(max_memory_mb * (1 << 20) * PIXEL_SHARE)


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """Memory Pillow needs to hold a `mode` image of this size, plus an RGB copy when
    the mode has to be converted for a JPEG thumbnail."""
    pixels = width * height
    own = pixels * _MODE_BYTES.get(mode, 4)
    return own if mode in ("RGB", "L") else own + pixels * 4


def pixel_limit(max_memory_mb: int) -> int:
    """Largest image (in pixels) any decoder may even open: a JPEG decoded at its smallest
    scale (1/8 per side) within the budget.  Set as Pillow's decompression-bomb guard."""
    return pixel_budget_bytes(max_memory_mb) // 4 * 64


_trim: object = None


def release() -> None:
    """Hand freed heap memory back to the system (glibc `malloc_trim`; a no-op
    elsewhere).  No `gc.collect()`: it would hold the GIL, and a job's pixels are freed
    by reference counting as soon as its images are closed."""
    global _trim
    if _trim is None:
        _trim = False
        name = ctypes.util.find_library("c")
        if name:
            try:
                _trim = ctypes.CDLL(name).malloc_trim
            except (OSError, AttributeError):
                log.debug("malloc_trim is not available (not glibc)")
    if _trim:
        _trim(0)  # type: ignore[operator]
