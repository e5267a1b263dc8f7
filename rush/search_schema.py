"""The full-text index over `search_entry.body`, per dialect (used by a migration).

Why not a model: SQLite's FTS5 is a virtual table and PostgreSQL's is an expression
index, neither of which the ORM describes.  SQLite: an external-content FTS5 table
(`search_fts`, rowid = `search_entry.id`) kept in step by triggers, tokenizer
`unicode61 remove_diacritics 2`.  PostgreSQL: a GIN index on
`to_tsvector('simple', body)`.  `body` is already lower-cased and accent-free
(`rush.search.normalise`), so both match case- and accent-insensitively.
"""

from __future__ import annotations

from typing import Any

SQLITE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(body, content='search_entry', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS search_entry_ai AFTER INSERT ON search_entry BEGIN "
    "INSERT INTO search_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER IF NOT EXISTS search_entry_ad AFTER DELETE ON search_entry BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS search_entry_au AFTER UPDATE ON search_entry BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO search_fts(rowid, body) VALUES (new.id, new.body); END",
]
POSTGRES = [
    "CREATE INDEX IF NOT EXISTS search_entry_fts ON search_entry "
    "USING GIN (to_tsvector('simple', body))",
]


def _is_pg(editor: Any) -> bool:
    return str(editor.client.capabilities.dialect) == "postgres"


async def create_fulltext(_apps: Any, editor: Any) -> None:
    for statement in POSTGRES if _is_pg(editor) else SQLITE:
        await editor.client.execute_script(statement)


async def drop_fulltext(_apps: Any, editor: Any) -> None:
    if _is_pg(editor):
        await editor.client.execute_script("DROP INDEX IF EXISTS search_entry_fts")
        return
    for name in ("search_entry_ai", "search_entry_ad", "search_entry_au"):
        await editor.client.execute_script(f"DROP TRIGGER IF EXISTS {name}")
    await editor.client.execute_script("DROP TABLE IF EXISTS search_fts")
