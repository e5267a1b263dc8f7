"""`rush user add|remove`: argon2 hashes in the database, duplicates refused, stdin password."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from rush.cli import _common
from rush.cli import user as user_cli
from rush.config import Config
from rush.models import User
from rush.storage import open_db
from rush.users import authenticate


def run_cli(argv: list[str], config: Config, stdin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    user_cli.register(sub, _common)
    args = parser.parse_args(argv)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return int(args.func(args, config))


def test_user_add_from_stdin(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Config.model_validate(
        {"data_dir": str(tmp_path / "data"), "database": {"dsn": db_url}}
    )
    assert (
        run_cli(["user", "add", "bob", "--password-stdin"], config, "s3cret-pass\n", monkeypatch)
        == 0
    )
    assert (
        run_cli(["user", "add", "bob", "--password-stdin"], config, "other-pass\n", monkeypatch)
        == 1
    )
    assert "already exists" in capsys.readouterr().err
    assert run_cli(["user", "add", "eve", "--password-stdin"], config, "short\n", monkeypatch) == 1
    assert (
        run_cli(
            ["user", "add", "bob", "--password-stdin", "--replace"],
            config,
            "new-pass-123\n",
            monkeypatch,
        )
        == 0
    )

    async def check() -> None:
        async with open_db(config.database_url()):
            user = await User.get(username="bob")
            assert user.password_hash.startswith("$argon2id$")
            assert "new-pass-123" not in user.password_hash
            assert await authenticate("bob", "new-pass-123") is not None
            assert await authenticate("bob", "s3cret-pass") is None
            assert await authenticate("nobody", "new-pass-123") is None
            assert await User.filter(username="eve").count() == 0

    import asyncio

    asyncio.run(check())
    assert run_cli(["user", "remove", "bob"], config, "", monkeypatch) == 0
    assert "bob removed" in capsys.readouterr().out
    assert run_cli(["user", "remove", "bob"], config, "", monkeypatch) == 1
    assert "no user 'bob'" in capsys.readouterr().err

    async def gone() -> None:
        async with open_db(config.database_url()):
            assert await User.filter(username="bob").count() == 0

    asyncio.run(gone())
