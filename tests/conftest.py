"""Shared fixtures.

Storage tests run against both real backends: a SQLite file and a fresh PostgreSQL
database created per test on the server configured by RUSH_TEST_PG (default: the local
server, trust auth).  Every test gets its own database, so tests and parallel sessions
never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rush.storage import close_db, init_db

PG_ADMIN_DSN = os.environ.get("RUSH_TEST_PG", "postgres://root@127.0.0.1:5432/test")
REPO_ROOT = Path(__file__).resolve().parent.parent


def _pg_base() -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0]


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN_DSN, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"rush_t_{uuid.uuid4().hex[:12]}"
    try:
        _psql(f"CREATE DATABASE {name}")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.fail(f"PostgreSQL is required for storage tests ({PG_ADMIN_DSN}): {exc}")
    try:
        yield f"{_pg_base()}/{name}"
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each backend: every storage test runs twice."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'rush.db'}"
    return str(request.getfixturevalue("pg_url"))


_MIGRATE_TEMPLATE = (
    "import asyncio, sys\n"
    "from rush.storage import close_db, init_db\n"
    "async def main():\n"
    "    await init_db(sys.argv[1])\n"
    "    await close_db()\n"
    "asyncio.run(main())\n"
)


def _migrated_template(url: str) -> None:
    """Migrate `url` from scratch in a child process (no event loop or ORM state here)."""
    run = subprocess.run(
        [sys.executable, "-c", _MIGRATE_TEMPLATE, url],
        env=rush_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        pytest.fail(f"cannot migrate the template database {url}: {run.stderr[-2000:]}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per test session (per worker), copied by `db`.

    Why: ten migrations cost one to three seconds per fresh database, and several hundred
    tests want a migrated one; the migrations themselves are tested from scratch in
    test_storage.py and by every `db_url` test that calls `init_db` itself.
    """
    path = tmp_path_factory.mktemp("template") / "rush.db"
    _migrated_template(f"sqlite://{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per session, the TEMPLATE of each `db`."""
    name = f"rush_tpl_{uuid.uuid4().hex[:12]}"
    try:
        _psql(f"CREATE DATABASE {name}")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.fail(f"PostgreSQL is required for storage tests ({PG_ADMIN_DSN}): {exc}")
    try:
        _migrated_template(f"{_pg_base()}/{name}")
        yield name
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _copy_of_template(request: pytest.FixtureRequest, db_url: str) -> None:
    """Replace the empty database behind `db_url` by a copy of the migrated template."""
    if db_url.startswith("sqlite://"):
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, db_url.removeprefix("sqlite://"))
        return
    pg_name = request.getfixturevalue("pg_template")
    name = db_url.rsplit("/", 1)[1]
    subprocess.run(
        [
            "psql", PG_ADMIN_DSN, "-v", "ON_ERROR_STOP=1", "-q",
            "-c", f"DROP DATABASE IF EXISTS {name}",
            "-c", f"CREATE DATABASE {name} TEMPLATE {pg_name}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


@pytest.fixture
async def db(request: pytest.FixtureRequest, db_url: str) -> AsyncIterator[str]:
    """An initialised, migrated database on each backend (a copy of the session template;
    `init_db` still runs and finds nothing to apply)."""
    _copy_of_template(request, db_url)
    await init_db(db_url)
    try:
        yield db_url
    finally:
        await close_db()


def rush_env(**extra: str) -> dict[str, str]:
    """Environment for `python -m rush` subprocesses that import this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSH_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port free on loopback right now (for embedded brokers and web servers)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
