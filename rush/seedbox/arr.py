"""Sonarr/Radarr "Custom Script" environments turned into `.state` documents (pure).

Sonarr and Radarr pass everything through environment variables (`sonarr_*`,
`radarr_*`); the event that matters is `Download` (an import, `isupgrade` telling an
upgrade).  `Test` is what the "Test" button of the connection sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from rush.seedbox.state import SeedState, StateError, normalise_infohash


class ArrEnvError(ValueError):
    """The environment is not a usable Sonarr/Radarr import event."""


@dataclass(frozen=True)
class ArrTest:
    """The connection test: succeed, write nothing."""

    source: str


@dataclass(frozen=True)
class ArrIgnored:
    """An event this hook has nothing to do for (Grab, Rename, HealthIssue, …)."""

    source: str
    event: str


ArrEvent = SeedState | ArrTest | ArrIgnored

# Per source: (file path var, file source path var, title var).
_VARS = {
    "sonarr": ("episodefile_path", "episodefile_sourcepath", "series_title"),
    "radarr": ("moviefile_path", "moviefile_sourcepath", "movie_title"),
}


def detect_source(environ: Mapping[str, str]) -> str:
    for source in ("sonarr", "radarr"):
        if f"{source}_eventtype" in environ:
            return source
    raise ArrEnvError(
        "neither sonarr_eventtype nor radarr_eventtype is set: "
        "run this as a Sonarr/Radarr Custom Script connection"
    )


def _bool(name: str, raw: str | None) -> bool:
    if raw is None:
        raise ArrEnvError(f"{name} is missing")
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise ArrEnvError(f"{name} must be True or False, got {raw!r}")


def _paths(raw: str | None) -> list[str]:
    return [p for p in (raw or "").split("|") if p.strip()]


def parse_arr_env(
    environ: Mapping[str, str], now_epoch: int, categories: Mapping[str, str] | None = None
) -> ArrEvent:
    """The `.state` an import event should produce, or Test/Ignored; ArrEnvError if bad."""
    source = detect_source(environ)
    env = {k.lower(): v for k, v in environ.items() if k.lower().startswith(f"{source}_")}

    def get(name: str) -> str | None:
        return env.get(f"{source}_{name}")

    def need(name: str) -> str:
        value = get(name)
        if value is None or not value.strip():
            raise ArrEnvError(f"{source}_{name} is missing or empty")
        return value.strip()

    event = need("eventtype")
    if event.lower() == "test":
        return ArrTest(source)
    if event.lower() != "download":
        return ArrIgnored(source, event)
    path_var, sourcepath_var, title_var = _VARS[source]
    raw_hash = need("download_id")
    try:
        infohash = normalise_infohash(raw_hash)
    except ValueError as exc:
        raise ArrEnvError(
            f"{source}_download_id: {exc}; only torrents downloaded by qBittorrent are relocated"
        ) from exc
    imported = need(path_var)
    source_path = get(sourcepath_var) or ""
    is_upgrade = _bool(f"{source}_isupgrade", get("isupgrade"))
    deleted = _paths(get("deletedpaths"))
    if is_upgrade and not deleted:
        raise ArrEnvError(f"{source}_isupgrade is True but {source}_deletedpaths is empty")
    data: dict[str, object] = {
        "kind": "upgrade" if is_upgrade else "added",
        "infohash": infohash,
        "category": (categories or {}).get(source, ""),
        "added_epoch": now_epoch,
        "source": source,
        "title": (get(title_var) or "").strip(),
        "download_client": (get("download_client") or "").strip(),
        "imported_paths": [imported],
        "source_paths": [source_path] if source_path.strip() else [],
        "old_paths": deleted if is_upgrade else [],
        "new_paths": [imported] if is_upgrade else [],
    }
    try:
        return SeedState.model_validate(data)
    except ValidationError as exc:
        msgs = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors()
        )
        raise ArrEnvError(f"cannot build a valid .state: {msgs}") from exc


__all__ = ["ArrEnvError", "ArrEvent", "ArrIgnored", "ArrTest", "StateError", "parse_arr_env"]
