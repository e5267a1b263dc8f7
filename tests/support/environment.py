"""What a test needs from the machine, and what happens when the machine lacks it.

A developer's laptop may lack root, a mount or `chattr`: those tests skip there.  A CI run
(the environment variable CI is set) runs as root on a machine that has all of them, so a
test that cannot run there fails instead of skipping: the cross-volume, crash and
immutable-file paths must never silently not run in CI.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def unavailable(reason: str) -> NoReturn:
    """Skip for lack of `reason` — or fail when CI is set."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: this test must run, not skip)")
    pytest.skip(reason)
