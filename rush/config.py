"""Typed configuration: one strict pydantic model per TOML section.

Why strict: a typo in `config.toml` must fail at start-up with the key's name, not be
silently ignored for months.  Secrets never need to live in the TOML: every secret field
also reads `RUSH_<SECTION>__<KEY>` or a file named by `RUSH_<SECTION>__<KEY>_FILE`.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
import types
from collections.abc import Mapping
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from rush import media
from rush.languages import TranscriptionConfig

ENV_PREFIX = "RUSH_"
#: RUSH_ variables that are not configuration keys but that the project itself reads or
#: documents; they are never reported as misspelt keys.
OTHER_ENV_VARIABLES = frozenset(
    {
        # `rush demo`
        "RUSH_DEMO_PASSWORD",
        "RUSH_DEMO_VOSK_MODEL",
        # crash injection in the journal, and the PostgreSQL server of the test suite
        "RUSH_TEST_CRASH_AFTER_N_FS_OPS",
        "RUSH_TEST_FS_OPS_COUNT_FILE",
        "RUSH_TEST_CRASH_SIGNAL",
        "RUSH_TEST_PG",
        # the Mosquitto of the test suite (host:port)
        "RUSH_TEST_MQTT",
        # the number of pytest workers of scripts/test
        "RUSH_TEST_WORKERS",
        # the PostgreSQL server of the benchmarks (bench/pgdb.py)
        "RUSH_BENCH_PG",
        # settings of deploy/compose.yaml (deploy/env.example), read by docker compose
        "RUSH_LIBRARY",
        "RUSH_DATA",
        "RUSH_UID",
        "RUSH_GID",
        "RUSH_WEB_PORT",
        "RUSH_MQTT_PORT",
        "RUSH_BASE_URL",
        "RUSH_DATABASE_DSN",
    }
)

JobType = Literal["process_for_review", "transcription", "suggest_tags"]
JOB_TYPES: tuple[JobType, ...] = ("process_for_review", "transcription", "suggest_tags")
DEFAULT_CONFIG_PATHS = (Path("config.toml"), Path("/etc/rush/config.toml"))


class _UnderDataDir:
    """Marks a folder the program writes at run time: a relative value lives in `data_dir`."""


#: A relative path given for a field marked with this lands under `data_dir` (where the
#: service may write), not next to the config file (often read-only, e.g. /etc/rush).
UNDER_DATA_DIR = _UnderDataDir()


class ConfigError(Exception):
    """A configuration problem, already phrased for a human."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class LibraryConfig(Section):
    #: The library root on the NAS (RUSHES_DB); holds INBOX, ARCHIVE, REJECTS, EXPORTS.
    root: Path = Path("RUSHES_DB")
    #: Optional other volumes for the destinations (cross-filesystem moves are copy+verify).
    archive_root: Path | None = None
    rejects_root: Path | None = None


class ScannerConfig(Section):
    interval_s: float = Field(60.0, gt=0)
    #: A file must be older than this (mtime) and keep its size over 2 scans to be READY.
    stable_after_s: float = Field(330.0, ge=0)
    video_extensions: list[str] = Field(
        default_factory=lambda: list(media.DEFAULT_VIDEO_EXTENSIONS)
    )
    photo_extensions: list[str] = Field(
        default_factory=lambda: list(media.DEFAULT_PHOTO_EXTENSIONS)
    )
    audio_extensions: list[str] = Field(
        default_factory=lambda: list(media.DEFAULT_AUDIO_EXTENSIONS)
    )
    sidecar_extensions: list[str] = Field(
        default_factory=lambda: list(media.DEFAULT_SIDECAR_EXTENSIONS)
    )
    ignored_dirs: list[str] = Field(default_factory=lambda: list(media.DEFAULT_IGNORED_DIRS))
    #: A pass that finds fewer than this fraction of the known files is treated as an
    #: unmounted or failing share: nothing is flagged missing (Immich #30817).
    min_present_ratio: float = Field(0.5, ge=0, le=1)

    @field_validator(
        "video_extensions", "photo_extensions", "audio_extensions", "sidecar_extensions"
    )
    @classmethod
    def _normalise_exts(cls, value: list[str]) -> list[str]:
        return sorted({v.lower().lstrip(".") for v in value if v.strip()})

    def classifier(self) -> media.Classifier:
        return media.Classifier(
            self.video_extensions,
            self.photo_extensions,
            self.audio_extensions,
            self.sidecar_extensions,
        )


class DatabaseConfig(Section):
    #: `sqlite:///path/rush.db` (default, WAL) or `postgres://user:pass@host:5432/db`.
    #: A relative SQLite path is relative to `data_dir`.
    dsn: str = "sqlite://rush.db"


class MqttConfig(Section):
    #: Empty host: the server starts an embedded broker (amqtt) on loopback.
    host: str = ""
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    prefix: str = "rush"
    client_id: str | None = None
    keepalive_s: int = Field(30, ge=5)
    #: Port of the embedded broker when `host` is empty.
    embedded_port: int = Field(1883, ge=1, le=65535)
    #: Refuse payloads larger than this (bytes) before parsing them.
    max_payload_bytes: int = Field(256 * 1024, ge=1024)

    def broker_address(self) -> tuple[str, int]:
        """Where every client of this install connects: the configured broker, else the
        embedded one that `rush serve` starts on loopback."""
        if self.host:
            return self.host, self.port
        return "127.0.0.1", self.embedded_port

    @field_validator("prefix")
    @classmethod
    def _prefix_ok(cls, value: str) -> str:
        if (
            not value
            or any(c in value for c in "+#")
            or value.startswith("/")
            or value.endswith("/")
        ):
            raise ValueError("must be a non-empty topic prefix without wildcards or edge slashes")
        return value


class LeaseConfig(Section):
    ttl_s: float = Field(120.0, gt=0)
    heartbeat_s: float = Field(30.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    #: Concurrent jobs an agent may hold unless its registration asks for fewer.
    default_quota: int = Field(1, ge=1)
    #: How often the lease keeper looks for expired leases.
    check_interval_s: float = Field(5.0, gt=0)
    #: Job types in order of priority (first served first).
    priorities: list[JobType] = Field(default_factory=lambda: list(JOB_TYPES))

    @model_validator(mode="after")
    def _heartbeat_below_ttl(self) -> LeaseConfig:
        if self.heartbeat_s >= self.ttl_s:
            raise ValueError("heartbeat_s must be shorter than ttl_s, or every lease expires")
        return self


class ApplyConfig(Section):
    #: Write an XMP (decision label, rating, tags, fields) beside each original a batch
    #: apply moves into ARCHIVE; journaled, never replaces a file, never in INBOX.
    write_xmp: bool = False


class SecondaryJobsConfig(Section):
    transcription: bool = True
    suggest_tags: bool = True


class ProxyConfig(Section):
    #: Height of the video proxy in pixels (width follows the aspect ratio).
    video_height: int = Field(540, ge=144, le=2160)
    video_crf: int = Field(28, ge=0, le=51)
    video_preset: str = "veryfast"
    audio_bitrate_k: int = Field(96, ge=16, le=512)
    thumb_count: int = Field(8, ge=1, le=100)
    thumb_width: int = Field(320, ge=32)
    photo_sizes: list[int] = Field(default_factory=lambda: [320, 1600])
    #: "none", "vaapi", "v4l2m2m" (Raspberry Pi), "videotoolbox"; software fallback on failure.
    hwaccel: Literal["none", "vaapi", "v4l2m2m", "videotoolbox"] = "none"
    vaapi_device: str = "/dev/dri/renderD128"
    #: ffmpeg hard timeout: base + factor x media duration.
    timeout_base_s: float = Field(120.0, gt=0)
    timeout_factor: float = Field(10.0, gt=0)


class AgentConfig(Section):
    #: Stable agent id (topic-safe); defaults to the host name.
    id: str | None = None
    #: Where this agent sees the library root (SMB/NFS mount point).
    library_mount: Path | None = None
    #: Where this agent sees ARCHIVE and REJECTS when the server keeps them on other
    #: volumes (`library.archive_root` / `rejects_root`); unset: under library_mount.
    archive_mount: Path | None = None
    rejects_mount: Path | None = None
    #: Library id expected in the `.rushes_db` marker; empty accepts any.
    library_id: str = ""
    job_types: list[JobType] = Field(default_factory=lambda: list(JOB_TYPES))
    max_jobs: int = Field(1, ge=1, le=64)
    #: Seconds between claims when the server had nothing to give.
    idle_poll_s: float = Field(10.0, gt=0)
    work_dir: Annotated[Path | None, UNDER_DATA_DIR] = None
    vosk_model: Path | None = None
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    #: "module:function" returning the agent's processors (given the Config); a plug-in
    #: point for custom processors.
    processors: str = "integrations.processors:default_processors"
    #: On SIGTERM, running jobs get this long to finish before they are released.
    shutdown_grace_s: float = Field(30.0, ge=0)
    #: Memory this agent may use, in MB (the default suits a Raspberry Pi 4 with 2 GB):
    #: half of it bounds one decoded image, and images that could only be decoded above
    #: that are refused with the reason (docs/agents.md, "Memory budget").
    max_memory_mb: int = Field(768, ge=128, le=1 << 20)

    @field_validator("id")
    @classmethod
    def _id_topic_safe(cls, value: str | None) -> str | None:
        if value is not None:
            _check_topic_id(value)
        return value


class SuggesterConfig(Section):
    backend: Literal["builtin", "openai"] = "builtin"
    #: OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 for Ollama.
    url: str = ""
    model: str = ""
    api_key: SecretStr | None = None
    timeout_s: float = Field(60.0, gt=0)
    max_tags: int = Field(12, ge=1)


class PurgeConfig(Section):
    after_days: int = Field(180, ge=1)
    #: Purge without a human confirmation; off unless explicitly enabled.
    auto: bool = False
    #: When `auto` is on, how often the purger looks.
    interval_s: float = Field(86400.0, gt=0)


class HashingConfig(Section):
    """The `hasher` actor: the full content hash of every file, once (docs/scanner.md)."""

    enabled: bool = True
    #: How long the hasher rests when nothing is left to hash.
    interval_s: float = Field(60.0, gt=0)


class VerifyConfig(Section):
    """The fixity check (`rush verify`) on a schedule; off unless set (docs/batch.md)."""

    #: Days between two scheduled checks of ARCHIVE; 0 (the default) never runs it.
    interval_days: float = Field(0.0, ge=0)
    #: Percentage of ARCHIVE files a scheduled check re-hashes (100: all of them).
    sample_pct: float = Field(100.0, gt=0, le=100)


class WebConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    #: Public URL of the UI (Home Assistant configuration_url, links in notifications).
    base_url: str = ""
    session_secret: SecretStr | None = None
    #: Bearer token that lets Prometheus scrape /metrics without a session (unset: login only).
    metrics_token: SecretStr | None = None
    #: Mark cookies Secure (turn on behind HTTPS).
    secure_cookies: bool = False
    page_size: int = Field(60, ge=10, le=500)


class HomeAssistantConfig(Section):
    enabled: bool = True
    discovery_prefix: str = "homeassistant"
    node_id: str = "rushcatalog"
    state_interval_s: float = Field(60.0, gt=0)

    @field_validator("node_id")
    @classmethod
    def _node_id_ok(cls, value: str) -> str:
        _check_topic_id(value)
        return value


class QbittorrentConfig(Section):
    url: str = "http://127.0.0.1:8080"
    username: str = "admin"
    password: SecretStr | None = None
    timeout_s: float = Field(30.0, gt=0)
    #: Where qBittorrent keeps `.torrent`/`.fastresume` (BT_backup), for safety copies.
    bt_backup_dir: Path | None = None


class SeedboxConfig(Section):
    enabled: bool = False
    #: Where `rush seedbox arr-hook` writes `.state` files and the relocator reads them.
    state_dir: Annotated[Path, UNDER_DATA_DIR] = Path("seedbox/state")
    nvme_root: Path = Path("/mnt/nvme/torrents")
    syno_root: Path = Path("/mnt/syno/torrents")
    min_age_sec: int = Field(7 * 86400, ge=0)
    categories: list[str] = Field(default_factory=lambda: ["tv", "movies", "tv-sonarr", "radarr"])
    #: Relocate (oldest first) until the NVMe has at least this much free space.
    free_target_percent: float | None = Field(20.0, ge=0, le=100)
    free_target_gb: float | None = Field(None, ge=0)
    #: Daily run time (local time, HH:MM).
    run_at: dtime = dtime(4, 30)
    allow_break_hardlinks: bool = False
    dry_run: bool = False
    backup_dir: Annotated[Path, UNDER_DATA_DIR] = Path("seedbox/backup")
    log_dir: Annotated[Path, UNDER_DATA_DIR] = Path("seedbox/log")
    lock_dir: Annotated[Path, UNDER_DATA_DIR] = Path("seedbox/locks")
    log_retention_days: int = Field(10, ge=7, le=15)
    retries: int = Field(3, ge=1, le=10)
    retry_backoff_s: float = Field(5.0, ge=0)
    #: How long to wait for the move, the recheck and seeding to resume.
    move_timeout_s: float = Field(6 * 3600, gt=0)
    #: "until_target": move (oldest first) only while the NVMe is below its free-space
    #: target; "all_eligible": move every torrent old enough in an eligible category.
    space_policy: Literal["until_target", "all_eligible"] = "until_target"
    #: How the Synology mount is recognised before any action: "marker" (the file
    #: `syno_marker` exists in `syno_root`; create it once on the share) or "mountpoint"
    #: (`syno_mountpoint`, default `syno_root`, is a mount point: `os.path.ismount`).
    syno_check: Literal["marker", "mountpoint"] = "marker"
    syno_marker: str = ".seedbox_syno"
    syno_mountpoint: Path | None = None
    #: Free space kept on the Synology on top of each torrent's size.
    syno_reserve_gb: float = Field(1.0, ge=0)
    #: Category written into `.state` files by the ARR hook, per source (`sonarr`,
    #: `radarr`); absent: the relocator asks qBittorrent for the torrent's category.
    arr_categories: dict[str, str] = Field(default_factory=dict)
    #: Polling period while waiting for qBittorrent (move, recheck, seeding).
    poll_interval_s: float = Field(2.0, gt=0)
    #: A `.state` whose torrent is gone from qBittorrent is archived (moved to
    #: `<state_dir>/archived/` with a reason) once its import is this many days old.
    stale_after_days: int = Field(14, ge=1)
    #: "skip": a paused torrent stays where it is (deferred, cause "paused");
    #: "pause_move_resume": every torrent is paused before its move and resumed for the
    #: recheck afterwards, so paused torrents move too (and are paused again after).
    pause_policy: Literal["skip", "pause_move_resume"] = "skip"
    #: Show each decision as qBittorrent tags: `<prefix>relocated`, `<prefix>noHL` (no
    #: file hard-linked elsewhere), `<prefix>deferred`; set and cleared by each run.
    tags: bool = True
    tag_prefix: str = Field("rush:", min_length=1, max_length=32)
    #: `rush serve` also starts a run when the NVMe's free space falls under this (%).
    trigger_free_percent: float | None = Field(None, ge=0, le=100)
    #: How often `rush serve` checks the NVMe's free space for the trigger.
    trigger_check_s: float = Field(300.0, gt=0)
    #: Least time between two triggered runs (a run that cannot free space is not
    #: repeated every check).
    trigger_cooldown_s: float = Field(3600.0, ge=0)
    #: false: torrents without any `.state` (added by hand, Lidarr/Readarr, cross-seed
    #: tools) are eligible by category and age (since qBittorrent added them).
    require_state: bool = True
    qbittorrent: QbittorrentConfig = Field(default_factory=QbittorrentConfig)

    @model_validator(mode="after")
    def _roots_apart(self) -> SeedboxConfig:
        nvme, syno = self.nvme_root.absolute(), self.syno_root.absolute()
        if nvme == syno or nvme in syno.parents or syno in nvme.parents:
            raise ValueError("nvme_root and syno_root must be two separate, non-nested folders")
        return self


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Empty: log to stderr only.
    dir: Annotated[Path | None, UNDER_DATA_DIR] = None


class Config(Section):
    #: Where the server keeps its own files (SQLite database, state, logs); not on the NAS share.
    data_dir: Path = Path("rush-data")
    library: LibraryConfig = Field(default_factory=LibraryConfig)
    scanner: ScannerConfig = Field(default_factory=ScannerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    leases: LeaseConfig = Field(default_factory=LeaseConfig)
    secondary: SecondaryJobsConfig = Field(default_factory=SecondaryJobsConfig)
    apply: ApplyConfig = Field(default_factory=ApplyConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    suggester: SuggesterConfig = Field(default_factory=SuggesterConfig)
    transcription: TranscriptionConfig = Field(default_factory=TranscriptionConfig)
    purge: PurgeConfig = Field(default_factory=PurgeConfig)
    hashing: HashingConfig = Field(default_factory=HashingConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    seedbox: SeedboxConfig = Field(default_factory=SeedboxConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    #: Where the config was read from (None: embedded defaults). Not a TOML key.
    source: Path | None = Field(default=None, exclude=True)
    _env_warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def env_warnings(self) -> list[str]:
        """RUSH_ variables that were ignored (misspelt keys), phrased for a human."""
        return list(self._env_warnings)

    @model_validator(mode="after")
    def _qbittorrent_is_not_the_web_ui(self) -> Config:
        if self.seedbox.enabled:
            problem = self.qbittorrent_is_web_ui()
            if problem:
                raise ValueError(problem)
        return self

    def qbittorrent_is_web_ui(self) -> str | None:
        """Why `seedbox.qbittorrent.url` points at RushCatalog's own web UI, or None."""
        url = self.seedbox.qbittorrent.url
        web = self.web
        if not _same_endpoint(url, web.host, web.port) and not (
            web.base_url and _same_endpoint(url, *_host_port(web.base_url))
        ):
            return None
        return (
            f"seedbox.qbittorrent.url ({url}) points at RushCatalog's own web UI "
            f"(web.host:web.port = {web.host}:{web.port}); set it to qBittorrent's WebUI "
            "address, or move web.port elsewhere"
        )

    def database_url(self) -> str:
        """The tortoise DSN, with a relative SQLite file placed under `data_dir`."""
        dsn = self.database.dsn
        if dsn.startswith("sqlite://") and dsn != "sqlite://:memory:":
            raw = dsn.removeprefix("sqlite://")
            path = Path(raw)
            if not path.is_absolute():
                path = self.data_dir / path
            return f"sqlite://{path}"
        return dsn


_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})


def _host_port(url: str) -> tuple[str, int | None]:
    """(host, port) of a URL, the scheme's port when none is written; port None if invalid."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return "", None
    return (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(parts.scheme)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _same_endpoint(url: str, host: str, port: int | None) -> bool:
    """Whether `url` reaches a server listening on host:port of this machine."""
    url_host, url_port = _host_port(url)
    if url_port is None or url_port != port:
        return False
    host = host.lower().strip("[]")
    if url_host == host:
        return True
    return _is_loopback(url_host) and (host in _ANY_ADDRESS or _is_loopback(host))


def _check_topic_id(value: str) -> None:
    if not value or not all(c.isalnum() or c in "-_" for c in value) or not value.isascii():
        raise ValueError("must contain only ASCII letters, digits, '-' and '_'")


def _is_text(annotation: Any) -> bool:
    """Whether a field holds text (str, SecretStr, Path, a Literal of strings, or None)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_text(a) for a in args)
    if origin is Literal:
        return all(isinstance(v, str) for v in get_args(annotation))
    return annotation in (str, SecretStr, Path)


def _coerce_env_value(raw: str, annotation: Any = None) -> Any:
    """The raw string for a text field (a password `123456` stays a string), else the
    value read as a TOML literal when it is one (numbers, booleans, lists), else the string."""
    if _is_text(annotation):
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _section_model(
    sections: list[str], model: type[BaseModel] | None = None
) -> type[BaseModel] | None:
    """The section model named by a path of section names from `model` (default: the top
    level); None when a name is not a section."""
    current: type[BaseModel] = Config if model is None else model
    for part in sections:
        info = current.model_fields.get(part) if part != "source" else None
        sub = info.annotation if info is not None else None
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            return None
        current = sub
    return current


def _is_top_level_key(name: str) -> bool:
    """`data_dir` (or `data_dir_file`): a key outside any section, set by RUSH_<KEY>."""
    keys = {n for n in Config.model_fields if n != "source" and _section_model([n]) is None}
    return name in keys or (name.endswith("_file") and name.removesuffix("_file") in keys)


def _spelling(name: str, model: type[BaseModel] | None = None) -> list[str] | None:
    """The section and key names that `name` spells with single underscores between the
    levels (`library_root` -> ["library", "root"]), or None."""
    current: type[BaseModel] = Config if model is None else model
    for field in current.model_fields:
        if field == "source":
            continue
        sub = _section_model([field], current)
        if sub is None:
            if name in (field, f"{field}_file"):
                return [name]
        elif name.startswith(f"{field}_"):
            rest = _spelling(name[len(field) + 1 :], sub)
            if rest is not None:
                return [field, *rest]
    return None


def unknown_env_variables(environ: Mapping[str, str]) -> list[str]:
    """A message for each RUSH_ variable that sets nothing because it lacks the double
    underscore (`RUSH_LIBRARY_ROOT`); the project's own variables are not reported."""
    messages = []
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or "__" in key or key in OTHER_ENV_VARIABLES:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if _is_top_level_key(name):
            continue
        guess = _spelling(name)
        if name == "config":
            messages.append(f"{key} is ignored: choose the config file with --config PATH")
        elif guess is not None:
            right = ENV_PREFIX + "__".join(guess).upper()
            messages.append(
                f"{key} is not a configuration variable and is ignored: did you mean "
                f"{right}? (two underscores between section and key)"
            )
        else:
            messages.append(
                f"{key} is not a configuration variable and is ignored (the form is "
                f"{ENV_PREFIX}<SECTION>__<KEY>, e.g. {ENV_PREFIX}MQTT__HOST)"
            )
    return messages


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`RUSH_MQTT__HOST=nas` -> {"mqtt": {"host": "nas"}}; `..._FILE` reads a secret file.

    `_FILE` is an indirection only for a key that exists without the suffix and not with
    it: `RUSH_MQTT__CA_FILE` sets `mqtt.ca_file`, `RUSH_MQTT__PASSWORD_FILE` reads a file.
    """
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        dotted = key[len(ENV_PREFIX) :].lower()
        if "__" not in key and not _is_top_level_key(dotted):
            continue  # not a key: unknown_env_variables() reports it
        parts = dotted.split("__")
        model = _section_model(parts[:-1])
        fields = model.model_fields if model is not None else {}
        name = parts[-1]
        if name not in fields and name.endswith("_file") and name.removesuffix("_file") in fields:
            parts[-1] = name = name.removesuffix("_file")
            try:
                raw = Path(raw).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{key}: cannot read secret file {raw!r}: {exc.strerror}"
                ) from exc
        info = fields.get(name)
        value = _coerce_env_value(raw, info.annotation if info is not None else None)
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: conflicts with another RUSH_ variable")
        node[parts[-1]] = value
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  - {where}: unknown key (check the spelling; see config.example.toml)")
        elif not err["loc"]:  # a rule across sections: the input is the whole config
            lines.append(f"  - {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  - {where}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def find_config_file(explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    return None


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the TOML file (explicit, ./config.toml, /etc/rush/config.toml), apply RUSH_* env.

    Misspelt RUSH_ variables do not fail the load: they are listed in
    `config.env_warnings`, which the command line logs at start-up."""
    environ = os.environ if environ is None else environ
    source = find_config_file(path)
    data: dict[str, Any] = {}
    if source is not None:
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from exc
    data = _merge(data, env_overrides(environ))
    if overrides:
        data = _merge(data, overrides)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            _describe(exc, str(source) if source else "defaults + environment")
        ) from exc
    config.source = source
    config._env_warnings = unknown_env_variables(environ)
    if source is not None:
        # Relative paths in a config file are relative to that file, not to the cwd...
        _anchor_paths(config, source.parent, under_data_dir=False)
    # ...except the folders the program writes at run time, which live in data_dir.
    _anchor_paths(config, config.data_dir, under_data_dir=True)
    return config


def _anchor(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def _anchor_paths(model: BaseModel, base: Path, *, under_data_dir: bool) -> None:
    """Anchor the relative Path fields of every section that are (or are not) marked
    UNDER_DATA_DIR (walks the models, so a new path key is covered without anyone
    remembering to list it here)."""
    for name, info in type(model).model_fields.items():
        if name == "source":
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            _anchor_paths(value, base, under_data_dir=under_data_dir)
        elif isinstance(value, Path) and (UNDER_DATA_DIR in info.metadata) == under_data_dir:
            setattr(model, name, _anchor(base, value))
