"""A throw-away PostgreSQL database for the benchmarks' `--db postgres` runs.

The server is the one named by RUSH_BENCH_PG (default: the local server, trust auth, as
the tests use); each run creates its own database and drops it afterwards, so runs never
see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator

ADMIN_DSN = os.environ.get("RUSH_BENCH_PG", "postgres://root@127.0.0.1:5432/test")


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", ADMIN_DSN, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True
    )


@contextlib.contextmanager
def fresh_database(tag: str) -> Iterator[str]:
    """Yields the DSN of a new, empty database; drops it on exit."""
    name = f"rush_bench_{tag}_{uuid.uuid4().hex[:10]}"
    _psql(f"CREATE DATABASE {name}")
    try:
        yield f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
