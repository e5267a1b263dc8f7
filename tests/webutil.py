"""Helpers shared by the web UI tests: a real app on a real database, logged-in clients."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from rush.config import Config
from rush.media import MediaKind
from rush.models import Asset, Derivative

CSRF_RE = re.compile(r'name="csrf" content="([^"]*)"')


def web_config(tmp_path: Path, root: Path) -> Config:
    return Config.model_validate(
        {"data_dir": str(tmp_path / "data"), "library": {"root": str(root)}}
    )


async def csrf_of(client: TestClient, path: str = "/login") -> str:
    resp = await client.get(path, headers={"Accept": "text/html"})
    text = await resp.text()
    match = CSRF_RE.search(text)
    assert match, text[:500]
    return match.group(1)


async def login(
    client: TestClient, username: str = "alice", password: str = "correct horse"
) -> str:
    token = await csrf_of(client)
    resp = await client.post(
        "/login",
        data={"username": username, "password": password, "_csrf": token, "next": "/"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    return await csrf_of(client, "/")


def write_derived(root: Path, asset_id: uuid.UUID, name: str, data: bytes) -> str:
    rel = f".derived/{asset_id}/v1/{name}"
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return rel


async def add_derivative(
    root: Path, asset: Asset, role: str, name: str, data: bytes, mime: str = ""
) -> Derivative:
    rel = write_derived(root, asset.id, name, data)
    return await Derivative.create(
        asset=asset, version=asset.version, role=role, rel_path=rel, size=len(data), mime=mime
    )


async def make_asset(
    state: str = "PROCESSED",
    kind: MediaKind = MediaKind.VIDEO,
    rel: str | None = None,
    **extra: Any,
) -> Asset:
    rel = rel or f"INBOX/shoot/{uuid.uuid4().hex[:8]}.mp4"
    return await Asset.create(kind=kind, rel_path=rel, path_key=rel, state=state, **extra)


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60
    )
