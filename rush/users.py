"""Web UI accounts: argon2id password hashes, shared by `rush user` and the login page."""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rush.models import User, WebSession
from rush.roles import DEFAULT_ROLE, UnknownRole, check_role

_hasher = PasswordHasher()
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LEN = 8
#: Verified against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class UserError(Exception):
    """A refused account operation, phrased for the user."""


def check_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise UserError("username: 1-64 characters among letters, digits and . _ @ -")
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LEN:
        raise UserError(f"password: at least {MIN_PASSWORD_LEN} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_hash(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def add_user(
    username: str, password: str, *, replace: bool = False, role: str | None = None
) -> User:
    """Create a user (or reset its password, and its role if given, with `replace`);
    argon2 runs off the loop.  A new user without `role` is an admin (rush/roles.py)."""
    check_username(username)
    check_password(password)
    try:
        role = check_role(role) if role is not None else None
    except UnknownRole as exc:
        raise UserError(str(exc)) from exc
    digest = await asyncio.to_thread(hash_password, password)
    user = await User.get_or_none(username=username)
    if user is not None:
        if not replace:
            raise UserError(f"user {username!r} already exists (use --replace to reset it)")
        user.password_hash = digest
        if role is not None:
            user.role = role
        await user.save(update_fields=["password_hash", "role"])
        # A reset password is often a leaked one: every browser logged in as this user
        # must log in again.
        await WebSession.filter(user_id=user.id).delete()
        return user
    return await User.create(username=username, password_hash=digest, role=role or DEFAULT_ROLE)


async def remove_user(username: str) -> int:
    """Delete a user; its sessions go with it (cascade).  Returns how many were ended."""
    user = await User.get_or_none(username=username)
    if user is None:
        raise UserError(f"no user {username!r}")
    sessions = await WebSession.filter(user_id=user.id).count()
    await user.delete()
    return sessions


async def authenticate(username: str, password: str) -> User | None:
    """The user if the password matches; constant work whether or not the user exists."""
    user = await User.get_or_none(username=username) if USERNAME_RE.match(username) else None
    stored = user.password_hash if user is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_hash, stored, password)
    if user is None or not ok:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = await asyncio.to_thread(hash_password, password)
        await user.save(update_fields=["password_hash"])
    return user
