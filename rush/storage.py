"""Opening the database, applying migrations, closing it.

Schema changes are explicit migrations in `rush/migrations/` (tortoise's own migration
engine: dialect-independent operations, so one history serves SQLite and PostgreSQL).
Start-up applies whatever is missing; existing rows are never dropped.

Write a migration after changing `rush/models.py`:
    python -m rush.storage makemigrations [--name what_changed]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.executor import EXECUTOR_CACHE

log = logging.getLogger(__name__)
T = TypeVar("T")

APP = "rush"
MODELS_MODULE = "rush.models"
MIGRATIONS_MODULE = "rush.migrations"


def tortoise_config(db_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": db_url},
        "apps": {
            APP: {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def is_sqlite(db_url: str) -> bool:
    return db_url.startswith("sqlite://")


async def _tune_sqlite(conn: BaseDBAsyncClient) -> None:
    # WAL lets the web UI read while the scanner writes; NORMAL is durable with WAL.
    # A 32 MB page cache: the OS caches the file anyway, and twice that measured no
    # faster page (bench/ui.py) while it pushed the first scan of 200,000 files past
    # 300 MB (bench/scan.py).  The WAL may stay up to 64 MB between checkpoints instead
    # of tortoise's 16 KB, which made every checkpoint shrink and regrow the file.
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=10000",
        "PRAGMA foreign_keys=ON",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA cache_size=-32768",
        "PRAGMA journal_size_limit=67108864",
    ):
        await conn.execute_script(pragma)


async def init_db(db_url: str, *, migrate: bool = True) -> None:
    """Connect, apply pending migrations, and make models usable from every task."""
    if is_sqlite(db_url):
        path = db_url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    # tortoise caches compiled SQL per connection *name*; one process that re-opens
    # "default" on another backend (the test suite) would send SQLite SQL to PostgreSQL.
    EXECUTOR_CACHE.clear()
    config = tortoise_config(db_url)
    if migrate:
        await apply_migrations(config)
    await Tortoise.init(config=config, _enable_global_fallback=True)
    if is_sqlite(db_url):
        try:
            await _tune_sqlite(connections.get("default"))
        except BaseException:
            await Tortoise.close_connections()
            raise


async def apply_migrations(config: dict[str, Any]) -> None:
    from tortoise.migrations.api.migrate import migrate as migrate_api

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            log.info("database migration applied: %s.%s", app_label, name)

    try:
        await migrate_api(config=config, progress=progress)
    finally:
        await Tortoise.close_connections()


async def close_db() -> None:
    await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def open_db(db_url: str) -> AsyncIterator[None]:
    await init_db(db_url)
    try:
        yield
    finally:
        await close_db()


def db_connection() -> BaseDBAsyncClient:
    conn: BaseDBAsyncClient = connections.get("default")
    return conn


def uses_sqlite() -> bool:
    return db_connection().capabilities.dialect == "sqlite"


async def sqlite_transaction(work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` as one transaction on the SQLite connection's own thread.

    Why: every awaited statement is a round trip to aiosqlite's thread and back, and a
    hand-over of the GIL that waits while the event loop is busy; a hot path of several
    statements (the dispatcher's claim batch) pays that once instead of once per
    statement.  Holds the client's connection lock, like any tortoise query, so nothing
    interleaves; must not be called from inside an `in_transaction()` block.
    """
    client: Any = db_connection()
    async with client.acquire_connection() as connection:

        def unit() -> T:
            db: sqlite3.Connection = connection._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        result: T = await connection._execute(unit)
        return result


async def pending_model_changes(db_url: str = "sqlite://:memory:") -> list[str]:
    """Names of the operations a new migration would need (empty: models match migrations)."""
    from tortoise.context import TortoiseContext
    from tortoise.migrations.autodetector import MigrationAutodetector

    config = tortoise_config(db_url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        detector = MigrationAutodetector(ctx.apps, config["apps"])
        writers = await detector.changes()
    return [type(op).__name__ for w in writers for op in w.operations]


async def _makemigrations(name: str | None) -> int:
    from tortoise.context import TortoiseContext
    from tortoise.migrations.autodetector import MigrationAutodetector
    from tortoise.migrations.writer import format_migration_name

    config = tortoise_config("sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        detector = MigrationAutodetector(ctx.apps, config["apps"])
        writers = await detector.changes()
    if not writers:
        print("no changes detected")
        return 0
    for writer in writers:
        if name:
            number = int(writer.name.split("_", 1)[0])
            writer.name = format_migration_name(number, name)
        print(f"created {writer.write()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rush.storage")
    sub = parser.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("makemigrations", help="write a migration for model changes")
    mk.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.cmd == "makemigrations":
        return asyncio.run(_makemigrations(args.name))
    return 2


if __name__ == "__main__":
    sys.exit(main())
