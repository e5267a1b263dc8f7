"""`rush user add|list|remove`: web UI accounts (password prompted or read from stdin)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from rush.config import Config
from rush.roles import ROLES


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser("user", help="manage web UI accounts")
    inner = parser.add_subparsers(dest="user_command", required=True)
    add = inner.add_parser("add", help="create a user (asks for the password)")
    common(add)
    add.add_argument("username")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument(
        "--replace", action="store_true", help="reset the password (and --role) of a user"
    )
    add.add_argument(
        "--role",
        choices=ROLES,
        default=None,
        help="viewer (reads), reviewer (decides, tags, bins, exports), admin (apply, "
        "purge, reprocess); a new user without it is an admin",
    )
    add.set_defaults(func=add_cmd)
    lst = inner.add_parser("list", help="list users")
    common(lst)
    lst.set_defaults(func=list_cmd)
    rm = inner.add_parser("remove", help="delete a user and end its logged-in sessions")
    common(rm)
    rm.add_argument("username")
    rm.set_defaults(func=remove_cmd)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def add_cmd(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.storage import open_db
    from rush.users import UserError, add_user

    try:
        password = _read_password(args.password_stdin)
    except (ValueError, EOFError) as exc:
        print(f"rush user add: {exc}", file=sys.stderr)
        return 2

    async def go() -> int:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        async with open_db(config.database_url()):
            try:
                user = await add_user(args.username, password, replace=args.replace, role=args.role)
            except UserError as exc:
                print(f"rush user add: {exc}", file=sys.stderr)
                return 1
        done = "updated" if args.replace else "created"
        print(f"user {args.username} {done} (role {user.role})")
        return 0

    result: int = run_async(go())  # type: ignore[assignment]
    return result


def list_cmd(_args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.models import User
    from rush.storage import open_db

    async def go() -> int:
        async with open_db(config.database_url()):
            for name, role in await User.all().order_by("username").values_list("username", "role"):
                print(f"{name}\t{role}")
        return 0

    result: int = run_async(go())  # type: ignore[assignment]
    return result


def remove_cmd(args: argparse.Namespace, config: Config) -> int:
    from rush.cli import run_async
    from rush.storage import open_db
    from rush.users import UserError, remove_user

    async def go() -> int:
        async with open_db(config.database_url()):
            try:
                ended = await remove_user(args.username)
            except UserError as exc:
                print(f"rush user remove: {exc}", file=sys.stderr)
                return 1
        print(f"user {args.username} removed ({ended} logged-in session(s) ended)")
        return 0

    result: int = run_async(go())  # type: ignore[assignment]
    return result
