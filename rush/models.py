"""Database models (tortoise-orm).  One migration history covers SQLite and PostgreSQL.

After changing a model, write a migration: `python -m rush.storage makemigrations`
(see `rush/storage.py`); `tests/test_storage.py` fails while models and migrations differ.
"""

from __future__ import annotations

import uuid
from typing import Any

from tortoise import fields
from tortoise.models import Model

from rush.lifecycle import AssetState
from rush.media import Area, MediaKind


class Asset(Model):
    """One media asset: its UUID is its identity, its path a mutable attribute."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    kind = fields.CharEnumField(MediaKind, max_length=8)
    area = fields.CharEnumField(Area, max_length=8, default=Area.INBOX)
    # Path relative to the library root, e.g. "INBOX/2024-06 wedding/C0001.MP4".
    rel_path = fields.TextField()
    # Equals `rel_path` while the asset occupies that path; NULL once purged.  Unique, so
    # two records can never claim the same file.
    path_key = fields.CharField(max_length=1024, null=True, unique=True)
    size = fields.BigIntField(default=0)
    mtime = fields.FloatField(default=0.0)
    state = fields.CharEnumField(
        AssetState, max_length=20, default=AssetState.DISCOVERED, db_index=True
    )
    state_changed_at = fields.DatetimeField(auto_now_add=True)
    # Consecutive scans that saw the same size (stability gate).
    stable_scans = fields.IntField(default=1)
    missing = fields.BooleanField(default=False, db_index=True)
    missing_since = fields.DatetimeField(null=True)
    # Processing version: bumped by reprocess; derivatives live under v{version}.
    version = fields.IntField(default=1)
    attempts = fields.IntField(default=0)
    # Processing failed `max_attempts` times; only a human retry clears it.
    failed = fields.BooleanField(default=False, db_index=True)
    last_error = fields.TextField(null=True)
    # The standing human decision ("KEEP"/"REJECT"), kept across reprocess and reopen.
    decision = fields.CharField(max_length=8, null=True)
    decided_by = fields.CharField(max_length=64, null=True)
    decided_at = fields.DatetimeField(null=True)
    # A decision taken on other bytes: the file changed in place afterwards, so it is
    # shown in review but not applied (docs/scanner.md, "Identity").
    previous_decision = fields.CharField(max_length=8, null=True)
    # Content fingerprints (rush.fingerprint): the algorithm, the sampled fingerprint
    # taken by the scanner, and the full hash with the size/mtime it was computed for.
    hash_algo = fields.CharField(max_length=16, null=True)
    sample_hash = fields.CharField(max_length=64, null=True)
    content_hash = fields.CharField(max_length=64, null=True, db_index=True)
    hashed_size = fields.BigIntField(null=True)
    hashed_mtime = fields.FloatField(null=True)
    transcript_status = fields.CharField(max_length=16, default="none")
    # Language of the pending (or last) transcription job, fixed when it is queued from
    # the per-asset choice, the folder rules and the default (rush/languages.py); only an
    # agent advertising it is offered the job.  NULL (rows the scanner inserts) and ""
    # mean "not fixed yet": the default language.
    transcript_language = fields.CharField(max_length=16, null=True)
    suggestions_status = fields.CharField(max_length=16, default="none")
    # Set while the asset belongs to a batch apply: no claim may touch it.
    batch_id = fields.UUIDField(null=True, db_index=True)
    # When it was shot (epoch seconds) and where that came from (exif, quicktime, xmp,
    # clip_xml, mtime): the date filter and the "Capture date" sort use it, falling back
    # to `mtime` while it is unknown (rush/metadata/capture.py).
    capture_ts = fields.FloatField(null=True)
    capture_source = fields.CharField(max_length=24, null=True)
    # Camera ("Sony ILME-FX3") and lens as the facts or the camera's sidecars say.
    camera = fields.CharField(max_length=128, null=True)
    lens = fields.CharField(max_length=128, null=True)
    # Free structured fields (project, location, people, rating, ...).
    fields_data: dict[str, Any] = fields.JSONField(default=dict)
    # Star rating 0-5 (0: unrated) and colour label (0 none, 1 red, 2 yellow, 3 green,
    # 4 blue; `rush.decisions.LABELS`): columns, so the library filters and sorts on them
    # with an index.  `fields_data["rating"]` mirrors the rating for older readers.
    rating = fields.SmallIntField(default=0)
    label = fields.SmallIntField(default=0)
    # A video's linked audio asset (docs/contract.md §9, workflow 14: a logical sidecar).
    linked_audio: fields.ForeignKeyNullableRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="linked_videos", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    # Indexed: the scanner re-reads only rows changed since its previous pass, so every
    # writer of an asset row must set it (QuerySet.update does not do it by itself).
    updated_at = fields.DatetimeField(auto_now=True, db_index=True)

    sidecars: fields.ReverseRelation[Sidecar]

    class Meta:
        table = "asset"
        indexes = (
            ("state", "failed", "batch_id"),
            # The web library sorts by path / file date / last change, optionally within a
            # state; the trailing id is the keyset tie-break (no sort step on 100k rows).
            ("rel_path", "id"),
            ("state", "rel_path", "id"),
            ("mtime", "id"),
            ("state", "mtime", "id"),
            ("state", "state_changed_at", "id"),
            ("state", "rating", "id"),
            ("state", "label", "id"),
            # Counts per filter (state + media type) without touching the table.
            ("state", "kind"),
            ("linked_audio_id",),
        )

    def __str__(self) -> str:
        return f"Asset({self.id}, {self.state}, {self.rel_path})"


class Sidecar(Model):
    """A file that travels with its asset (same folder, same base name)."""

    id = fields.IntField(primary_key=True)
    # Indexed: sidecars are looked up and updated by asset (batch apply, scanner, UI).
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="sidecars", on_delete=fields.CASCADE, db_index=True
    )
    rel_path = fields.TextField()
    size = fields.BigIntField(default=0)
    mtime = fields.FloatField(default=0.0)
    missing = fields.BooleanField(default=False)
    # Full content hash (rush.fingerprint) and the size/mtime it was computed for.
    hash_algo = fields.CharField(max_length=16, null=True)
    content_hash = fields.CharField(max_length=64, null=True)
    hashed_size = fields.BigIntField(null=True)
    hashed_mtime = fields.FloatField(null=True)

    class Meta:
        table = "sidecar"


class AssetEvent(Model):
    """Append-only history of every state transition."""

    id = fields.BigIntField(primary_key=True)
    asset_id = fields.UUIDField(db_index=True)
    from_state = fields.CharField(max_length=20)
    to_state = fields.CharField(max_length=20)
    trigger = fields.CharField(max_length=20)
    actor = fields.CharField(max_length=96)
    reason = fields.TextField(null=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "asset_event"


class PathChange(Model):
    """History of an asset's path (moves of batch apply)."""

    id = fields.BigIntField(primary_key=True)
    asset_id = fields.UUIDField(db_index=True)
    old_path = fields.TextField()
    new_path = fields.TextField()
    batch_id = fields.UUIDField(null=True)
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "path_change"


class Batch(Model):
    """One batch apply or purge run, with its report."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    kind = fields.CharField(max_length=16)  # "apply" | "purge"
    status = fields.CharField(max_length=16, default="running")  # running|done|crashed
    actor = fields.CharField(max_length=96, default="system")
    started_at = fields.DatetimeField(auto_now_add=True)
    finished_at = fields.DatetimeField(null=True)
    report: dict[str, Any] = fields.JSONField(default=dict)

    class Meta:
        table = "batch"


class FsAction(Model):
    """The filesystem journal, written before an action happens and marked done after."""

    id = fields.BigIntField(primary_key=True)
    batch_id = fields.UUIDField(null=True, db_index=True)
    asset_id = fields.UUIDField(null=True, db_index=True)
    action = fields.CharField(max_length=16)  # move | copy | delete | mkdir | rmtree
    src = fields.TextField(null=True)
    dst = fields.TextField(null=True)
    status = fields.CharField(max_length=12, default="pending", db_index=True)
    size = fields.BigIntField(null=True)
    sha256 = fields.CharField(max_length=64, null=True)
    error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "fs_action"


class PurgeAudit(Model):
    """The minimal record kept for ever of a purged asset."""

    id = fields.BigIntField(primary_key=True)
    asset_id = fields.UUIDField(db_index=True)
    rel_path = fields.TextField()
    kind = fields.CharField(max_length=8)
    size = fields.BigIntField(default=0)
    files: list[Any] = fields.JSONField(default=list)
    rejected_at = fields.DatetimeField(null=True)
    purged_at = fields.DatetimeField(auto_now_add=True)
    actor = fields.CharField(max_length=96)
    batch_id = fields.UUIDField(null=True)

    class Meta:
        table = "purge_audit"


class Agent(Model):
    """A registered processing agent (docs/contract.md §9, workflow 2)."""

    id = fields.CharField(max_length=64, primary_key=True)
    client_id = fields.CharField(max_length=128, default="")
    hostname = fields.CharField(max_length=255, default="")
    version = fields.CharField(max_length=32, default="")
    capabilities: dict[str, Any] = fields.JSONField(default=dict)
    # Parameters assigned by the server (quota, priorities, lease TTL, heartbeat period).
    params: dict[str, Any] = fields.JSONField(default=dict)
    online = fields.BooleanField(default=False)
    registered_at = fields.DatetimeField(auto_now_add=True)
    last_seen = fields.DatetimeField(null=True)

    class Meta:
        table = "agent"


class Lease(Model):
    """A job handed to an agent, one active lease per asset and job type, never two."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="leases", on_delete=fields.CASCADE
    )
    job_type = fields.CharField(max_length=24)
    agent_id = fields.CharField(max_length=64, db_index=True)
    request_id = fields.CharField(max_length=64, null=True)
    lock_token = fields.CharField(max_length=64, unique=True)
    version = fields.IntField(default=1)
    # active | done | expired | error | released
    status = fields.CharField(max_length=12, default="active", db_index=True)
    # NULL when finished; "{asset}:{job_type}" while active, so the unique index forbids
    # a second active lease on the same asset and job type.
    active_key = fields.CharField(max_length=64, null=True, unique=True)
    progress = fields.FloatField(default=0.0)
    expires_at = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    heartbeat_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    error = fields.TextField(null=True)

    class Meta:
        table = "lease"


class Facts(Model):
    """Technical metadata of one processing version (ffprobe, EXIF)."""

    id = fields.BigIntField(primary_key=True)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="facts", on_delete=fields.CASCADE
    )
    version = fields.IntField()
    data: dict[str, Any] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "facts"
        unique_together = (("asset", "version"),)


class Derivative(Model):
    """A file an agent produced under `.derived/{uuid}/v{version}/`."""

    id = fields.BigIntField(primary_key=True)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="derivatives", on_delete=fields.CASCADE
    )
    version = fields.IntField()
    # proxy | poster | thumb | strip | waveform_json | waveform_png | transcript_json | vtt
    role = fields.CharField(max_length=24)
    # Path relative to the library root (always under `.derived/`).
    rel_path = fields.TextField()
    size = fields.BigIntField(default=0)
    mime = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "derivative"
        indexes = (("asset_id", "role"),)


class Transcript(Model):
    id = fields.BigIntField(primary_key=True)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="transcripts", on_delete=fields.CASCADE
    )
    version = fields.IntField()
    language = fields.CharField(max_length=16, default="")
    # "recognised" (an agent's engine) or "sidecar" (a .srt/.vtt beside the clip).
    source = fields.CharField(max_length=16, default="recognised")
    # Engine and model ("pocketsphinx:en-us") or the sidecar's file name.
    engine = fields.CharField(max_length=128, default="")
    text = fields.TextField(default="")
    # [{"word": str, "start": float, "end": float, "conf": float}, ...]
    words: list[Any] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "transcript"
        indexes = (("asset_id", "version"),)


class SearchEntry(Model):
    """One searchable text of an asset (rush/search.py): its metadata (name, folder,
    tags, fields, camera; `t` NULL) or one transcript line (`t` = its start, seconds).

    `body` is the normalised text the full-text index covers (SQLite FTS5 table
    `search_fts`, PostgreSQL GIN index on `to_tsvector('simple', body)`), `display` what
    a hit shows."""

    id = fields.BigIntField(primary_key=True)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="search_entries", on_delete=fields.CASCADE
    )
    t = fields.FloatField(null=True)
    display = fields.TextField(default="")
    body = fields.TextField(default="")

    class Meta:
        table = "search_entry"
        indexes = (("asset_id",),)


class Suggestion(Model):
    """Tag suggestions, replaced on recompute, never applied without a human."""

    id = fields.BigIntField(primary_key=True)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="suggestions", on_delete=fields.CASCADE
    )
    version = fields.IntField()
    tag = fields.CharField(max_length=128)
    score = fields.FloatField(default=0.0)
    source = fields.CharField(max_length=32, default="builtin")
    accepted = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "suggestion"
        indexes = (("asset_id", "version"),)


class Tag(Model):
    """A free tag set by a human."""

    id = fields.BigIntField(primary_key=True)
    asset: fields.ForeignKeyRelation[Asset] = fields.ForeignKeyField(
        "rush.Asset", related_name="tags", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=128, db_index=True)
    # "human" (typed or an accepted suggestion) or "xmp" (keywords of an XMP sidecar).
    source = fields.CharField(max_length=16, default="human")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tag"
        unique_together = (("asset", "name"),)


class User(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    # viewer, reviewer or admin (rush/roles.py); accounts made before roles existed
    # could do everything, so the migration makes them admin.
    role = fields.CharField(max_length=16, default="admin", db_default="admin")

    class Meta:
        table = "user"


class WebSession(Model):
    """A logged-in browser, valid only while its row exists.

    The signed cookie names it: logging out, resetting a password or removing a user
    ends it at once and across restarts (anonymous pre-login sessions stay cookie-only).
    """

    sid = fields.CharField(max_length=64, primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "rush.User", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "web_session"


class Bin(Model):
    """A saved selection of assets (for later work, offline export)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    assets: fields.ManyToManyRelation[Asset] = fields.ManyToManyField(
        "rush.Asset", related_name="bins", through="bin_asset"
    )

    class Meta:
        table = "bin"


class SeedMapping(Model):
    """infohash <-> paths of a relocated torrent (docs/contract.md §8.5)."""

    infohash = fields.CharField(max_length=64, primary_key=True)
    name = fields.TextField(default="")
    category = fields.CharField(max_length=64, default="")
    path_nvme = fields.TextField()
    path_syno = fields.TextField(default="")
    last_update_epoch = fields.BigIntField()
    #: "active", or "removed" once the torrent left qBittorrent (the row is kept).
    status = fields.CharField(max_length=16, default="active")
    removed_epoch = fields.BigIntField(null=True)

    class Meta:
        table = "seed_mapping"


class SeedRelocation(Model):
    """One relocation attempt, for the seed's KPIs."""

    id = fields.BigIntField(primary_key=True)
    infohash = fields.CharField(max_length=64, db_index=True)
    run_id = fields.CharField(max_length=64)
    started_at = fields.DatetimeField(db_index=True)
    finished_at = fields.DatetimeField(null=True)
    ok = fields.BooleanField(default=False)
    bytes_moved = fields.BigIntField(default=0)
    # network | api | permissions | space | unavailable | hardlink | other
    error_cause = fields.CharField(max_length=16, null=True)
    error = fields.TextField(null=True)

    class Meta:
        table = "seed_relocation"


class SeedMove(Model):
    """The journal of one relocation attempt, written before qBittorrent is asked to move.

    Why: a run can die at any point (SIGKILL, power cut) while qBittorrent moves data.
    The next run finalises a torrent found on the Synology only if a row here says its
    recheck *there* completed (`phase = "verified"`), and recognises files that an
    attempt of its own left behind (same infohash, destination and recorded sizes).
    """

    id = fields.BigIntField(primary_key=True)
    infohash = fields.CharField(max_length=64, db_index=True)
    run_id = fields.CharField(max_length=64)
    src = fields.TextField()
    dest = fields.TextField()
    #: [[relative name, size in bytes], ...] as qBittorrent listed them.
    files: list[Any] = fields.JSONField(default=list)
    #: planned | location_set | verified | finalised | failed | cleaned
    phase = fields.CharField(max_length=16, default="planned")
    error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "seed_move"


class LoginFailure(Model):
    """One failed web login, kept for the limiter's window (docs/web.md, "Security").

    Stored, not held in memory, so a restart does not hand an attacker a fresh budget;
    one row per failure (insert only) so concurrent failures are never lost.  `key` is
    `ip:<address>` or `user:<casefolded name>`.
    """

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=200, db_index=True)
    at = fields.FloatField(db_index=True)

    class Meta:
        table = "login_failure"


class KeyValue(Model):
    """Small persistent facts of the server (library id, last scan report, ...)."""

    key = fields.CharField(max_length=64, primary_key=True)
    value: dict[str, Any] = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "kv"
