"""qBittorrent Web API, the only module that knows qbittorrent-api.

qbittorrent-api is synchronous (requests), so every call runs in a worker thread; the
relocator sees a small async interface and one exception type whose `cause` feeds the
KPIs (network vs API vs permissions).  Retries are the caller's business.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import qbittorrentapi

from rush.config import QbittorrentConfig

log = logging.getLogger(__name__)
# requests/urllib3 warn on each internal retry of an unreachable qBittorrent; the
# relocator reports the failure once, with its cause.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

T = TypeVar("T")
Cause = Literal["network", "api", "permissions"]

#: qBittorrent states in which a complete torrent is (again) seeding.
SEEDING_STATES = frozenset({"stalledUP", "uploading", "queuedUP", "forcedUP"})
#: A complete torrent paused by its user (4.x "paused", 5.x "stopped").
PAUSED_COMPLETE_STATES = frozenset({"pausedUP", "stoppedUP"})


class QbitError(Exception):
    """A failed Web API call; `cause` says whether to blame the network or the API."""

    def __init__(self, cause: Cause, message: str) -> None:
        super().__init__(message)
        self.cause: Cause = cause


@dataclass(frozen=True)
class TorrentView:
    """What the relocator needs to know about one torrent."""

    infohash: str
    name: str
    state: str
    progress: float
    save_path: str
    category: str
    size: int
    #: When qBittorrent added the torrent (Unix seconds; 0 when unknown).
    added_on: int = 0
    tags: tuple[str, ...] = ()
    #: Where the data really is (libtorrent's storage): after a failed move qBittorrent
    #: 4.5 reports the requested `save_path` while `content_path` stays at the old place.
    content_path: str = ""

    def stored_under(self, folder: str) -> bool:
        """True when qBittorrent both claims `folder` and really keeps the data there."""
        path = os.path.normpath(self.save_path)
        if path != os.path.normpath(folder):
            return False
        if not self.content_path:
            return True  # a client without the field: the claim is all there is
        content = os.path.normpath(self.content_path)
        return content == path or content.startswith(path.rstrip("/") + "/")

    @property
    def seeding(self) -> bool:
        return self.state in SEEDING_STATES and self.progress >= 1.0

    @property
    def paused_complete(self) -> bool:
        return self.state in PAUSED_COMPLETE_STATES and self.progress >= 1.0


def _view(row: Any) -> TorrentView:
    tags = str(row.get("tags", "") or "")
    return TorrentView(
        infohash=str(row["hash"]).lower(),
        name=str(row.get("name", "")),
        state=str(row.get("state", "")),
        progress=float(row.get("progress", 0.0)),
        save_path=str(row.get("save_path", "")),
        category=str(row.get("category", "")),
        size=int(row.get("total_size", row.get("size", 0)) or 0),
        added_on=int(row.get("added_on", 0) or 0),
        tags=tuple(t.strip() for t in tags.split(",") if t.strip()),
        content_path=str(row.get("content_path", "") or ""),
    )


def _classify(exc: Exception) -> Cause:
    if isinstance(exc, qbittorrentapi.Forbidden403Error | qbittorrentapi.Unauthorized401Error):
        return "permissions"
    if isinstance(exc, qbittorrentapi.LoginFailed | qbittorrentapi.HTTPError):
        return "api"
    if isinstance(exc, qbittorrentapi.APIConnectionError):
        return "network"
    return "api"


def _network_reason(exc: BaseException) -> str:
    """The innermost readable reason of a connection failure ("connection refused")."""
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host name"),
        ("No route to host", "no route to host"),
        ("Temporary failure in name resolution", "host name not resolved"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__


class QbitClient:
    """Async facade over `qbittorrentapi.Client`; constructing it does no I/O."""

    def __init__(self, config: QbittorrentConfig) -> None:
        self.config = config
        self._client: qbittorrentapi.Client | None = None

    def _get(self) -> qbittorrentapi.Client:
        if self._client is None:
            password = self.config.password.get_secret_value() if self.config.password else ""
            self._client = qbittorrentapi.Client(
                host=self.config.url,
                username=self.config.username,
                password=password,
                REQUESTS_ARGS={"timeout": self.config.timeout_s},
                DISABLE_LOGGING_DEBUG_OUTPUT=True,
            )
        return self._client

    async def _call(self, what: str, fn: Callable[[qbittorrentapi.Client], T]) -> T:
        def run() -> T:
            return fn(self._get())

        try:
            return await asyncio.to_thread(run)
        except (qbittorrentapi.APIError, OSError) as exc:
            cause = _classify(exc)
            if cause == "network":
                # requests nests the reason three exceptions deep; say it plainly.
                raise QbitError(
                    cause,
                    f"{what}: qBittorrent unreachable at {self.config.url} "
                    f"({_network_reason(exc)}); is it running, is seedbox.qbittorrent.url "
                    "right?",
                ) from exc
            raise QbitError(cause, f"{what}: {type(exc).__name__}: {exc}") from exc

    async def version(self) -> str:
        return str(await self._call("app/version", lambda c: c.app_version()))

    async def refresh_interval_s(self) -> float:
        """How often qBittorrent refreshes torrent states (its `refresh_interval`)."""
        prefs: Any = await self._call("app/preferences", lambda c: c.app_preferences())
        return float(prefs.get("refresh_interval", 1500)) / 1000

    async def torrent(self, infohash: str) -> TorrentView | None:
        rows: Any = await self._call(
            "torrents/info", lambda c: c.torrents_info(torrent_hashes=infohash)
        )
        for row in rows:
            if str(row["hash"]).lower() == infohash:
                return _view(row)
        return None

    async def torrents(self) -> list[TorrentView]:
        """Every torrent qBittorrent knows (to find cross-seeds and removed torrents)."""
        rows: Any = await self._call("torrents/info", lambda c: c.torrents_info())
        return [_view(row) for row in rows]

    async def files(self, infohash: str) -> list[str]:
        """Paths of the torrent's files relative to its save path."""
        rows: Any = await self._call(
            "torrents/files", lambda c: c.torrents_files(torrent_hash=infohash)
        )
        return [str(r["name"]) for r in rows]

    async def file_sizes(self, infohash: str) -> list[tuple[str, int]]:
        """(path relative to the save path, size in bytes) of each of the torrent's files."""
        rows: Any = await self._call(
            "torrents/files", lambda c: c.torrents_files(torrent_hash=infohash)
        )
        return [(str(r["name"]), int(r.get("size", 0) or 0)) for r in rows]

    async def export(self, infohash: str) -> bytes:
        data: bytes = await self._call(
            "torrents/export", lambda c: c.torrents_export(torrent_hash=infohash)
        )
        return data

    async def set_location(self, infohash: str, location: str) -> None:
        await self._call(
            "torrents/setLocation",
            lambda c: c.torrents_set_location(location=location, torrent_hashes=infohash),
        )

    async def recheck(self, infohash: str) -> None:
        await self._call("torrents/recheck", lambda c: c.torrents_recheck(torrent_hashes=infohash))

    async def pause(self, infohash: str) -> None:
        await self._call("torrents/pause", lambda c: c.torrents_pause(torrent_hashes=infohash))

    async def resume(self, infohash: str) -> None:
        await self._call("torrents/resume", lambda c: c.torrents_resume(torrent_hashes=infohash))

    async def add_tags(self, infohashes: list[str], tags: list[str]) -> None:
        await self._call(
            "torrents/addTags",
            lambda c: c.torrents_add_tags(tags=tags, torrent_hashes=infohashes),
        )

    async def remove_tags(self, infohashes: list[str], tags: list[str]) -> None:
        await self._call(
            "torrents/removeTags",
            lambda c: c.torrents_remove_tags(tags=tags, torrent_hashes=infohashes),
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client._trigger_session_initialization)
