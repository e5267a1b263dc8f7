"""The `.state` contract (STATE_SCHEMA v1): one JSON file per Sonarr/Radarr import.

Why a file and not a database row: the ARR hook runs inside Sonarr/Radarr (often another
container) and must work even when the server is down; a directory of small files written
atomically (temp + fsync + rename) is the simplest durable queue both sides can share.
Parsing and validation are pure; only `write_state` and `read_state_dir` touch the disk.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_NAME = "rush.seedbox.state"
SCHEMA_VERSION = 1
SUFFIX = ".state"
#: Largest `.state` file read; anything bigger is not ours.
MAX_STATE_BYTES = 1024 * 1024

_HASH_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")

Kind = Literal["added", "upgrade"]
Source = Literal["sonarr", "radarr", "manual"]


class StateError(ValueError):
    """A `.state` file (or the data for one) that does not follow STATE_SCHEMA v1."""


def normalise_infohash(value: str) -> str:
    """Sonarr/Radarr report the hash upper-case; qBittorrent's API uses lower-case."""
    cleaned = value.strip().lower()
    if not _HASH_RE.match(cleaned):
        raise ValueError(f"not a torrent infohash (40 or 64 hex digits): {value!r}")
    return cleaned


class SeedState(BaseModel):
    """One import of a downloaded torrent into the media library (STATE_SCHEMA v1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_name: Literal["rush.seedbox.state"] = Field("rush.seedbox.state", alias="schema")
    version: Literal[1] = 1
    kind: Kind
    infohash: str
    #: qBittorrent category; empty means "ask qBittorrent at relocation time".
    category: str = ""
    added_epoch: int = Field(ge=0)
    source: Source
    title: str = ""
    download_client: str = ""
    #: Where the ARR put the file(s) in the media library.
    imported_paths: list[str] = Field(min_length=1)
    #: The file(s) in the download folder that qBittorrent seeds from (the NVMe copy).
    source_paths: list[str] = Field(default_factory=list)
    #: Upgrades only: the library files the import replaced (deleted by the ARR).
    old_paths: list[str] = Field(default_factory=list)
    #: Upgrades only: the library files that replaced them.
    new_paths: list[str] = Field(default_factory=list)

    @field_validator("infohash")
    @classmethod
    def _hash(cls, value: str) -> str:
        return normalise_infohash(value)

    @field_validator("imported_paths", "source_paths", "old_paths", "new_paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or not item.startswith("/") or "\x00" in item:
                raise ValueError(f"paths must be absolute: {item!r}")
        return value

    @model_validator(mode="after")
    def _kind_consistent(self) -> SeedState:
        if self.kind == "upgrade" and (not self.old_paths or not self.new_paths):
            raise ValueError("an upgrade needs old_paths and new_paths")
        if self.kind == "added" and (self.old_paths or self.new_paths):
            raise ValueError("old_paths/new_paths are only for kind 'upgrade'")
        return self

    def to_json(self) -> str:
        return json.dumps(self.model_dump(by_alias=True), indent=2, ensure_ascii=False) + "\n"


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(document)"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def parse_state(text: str | bytes) -> SeedState:
    """Parse and validate one `.state` document; raise StateError saying what is wrong."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StateError("not a JSON object")
    if data.get("schema") != SCHEMA_NAME:
        raise StateError(f"schema must be {SCHEMA_NAME!r}, got {data.get('schema')!r}")
    if data.get("version") != SCHEMA_VERSION:
        raise StateError(
            f"unsupported version {data.get('version')!r} (this reader knows {SCHEMA_VERSION})"
        )
    try:
        return SeedState.model_validate(data)
    except ValidationError as exc:
        raise StateError(_describe(exc)) from exc


def state_filename(state: SeedState) -> str:
    """Unique per import (one torrent may be imported several times: season packs)."""
    return f"{state.added_epoch}-{state.infohash}-{state.source}-{secrets.token_hex(4)}{SUFFIX}"


def write_state(directory: Path, state: SeedState) -> Path:
    """Write atomically: a reader sees the whole file or nothing, even after a crash."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / state_filename(state)
    tmp = directory / f".{final.name}.tmp"
    data = state.to_json().encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, final)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


@dataclass(frozen=True)
class StateEntry:
    """A `.state` file as read from the directory: the parsed state or why it failed."""

    path: Path
    state: SeedState | None
    error: str | None = None


def read_state_dir(directory: Path) -> list[StateEntry]:
    """Every `*.state` file (temp files ignored), parsed, in name order."""
    if not directory.is_dir():
        return []
    out: list[StateEntry] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.suffix != SUFFIX or not path.is_file():
            continue
        try:
            if path.stat().st_size > MAX_STATE_BYTES:
                raise StateError(f"larger than {MAX_STATE_BYTES} bytes")
            out.append(StateEntry(path, parse_state(path.read_bytes())))
        except StateError as exc:
            out.append(StateEntry(path, None, str(exc)))
        except OSError as exc:
            out.append(StateEntry(path, None, f"cannot read: {exc.strerror}"))
    return out
