from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from rush.lifecycle import AssetState
from rush.media import Area, MediaKind


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Agent",
            fields=[
                (
                    "id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("client_id", fields.CharField(default="", max_length=128)),
                ("hostname", fields.CharField(default="", max_length=255)),
                ("version", fields.CharField(default="", max_length=32)),
                ("capabilities", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("params", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("online", fields.BooleanField(default=False)),
                ("registered_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("last_seen", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "agent",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "A registered processing agent (docs/contract.md §9, workflow 2).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Asset",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="VIDEO: video\nPHOTO: photo\nAUDIO: audio",
                        enum_type=MediaKind,
                        max_length=8,
                    ),
                ),
                (
                    "area",
                    fields.CharEnumField(
                        default=Area.INBOX,
                        description="INBOX: INBOX\nARCHIVE: ARCHIVE\nREJECTS: REJECTS",
                        enum_type=Area,
                        max_length=8,
                    ),
                ),
                ("rel_path", fields.TextField(unique=False)),
                ("path_key", fields.CharField(null=True, unique=True, max_length=1024)),
                ("size", fields.BigIntField(default=0)),
                ("mtime", fields.FloatField(default=0.0)),
                (
                    "state",
                    fields.CharEnumField(
                        default=AssetState.DISCOVERED,
                        db_index=True,
                        description="DISCOVERED: DISCOVERED\nREADY: READY\nPROCESSING_REVIEW: PROCESSING_REVIEW\nPROCESSED: PROCESSED\nDECISION_PENDING: DECISION_PENDING\nDECIDED_KEEP: DECIDED_KEEP\nDECIDED_REJECT: DECIDED_REJECT\nMOVE_QUEUED: MOVE_QUEUED\nARCHIVED: ARCHIVED\nREJECTED: REJECTED\nPURGED: PURGED",
                        enum_type=AssetState,
                        max_length=20,
                    ),
                ),
                ("state_changed_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("stable_scans", fields.IntField(default=1)),
                ("missing", fields.BooleanField(default=False, db_index=True)),
                (
                    "missing_since",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("version", fields.IntField(default=1)),
                ("attempts", fields.IntField(default=0)),
                ("failed", fields.BooleanField(default=False, db_index=True)),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("decision", fields.CharField(null=True, max_length=8)),
                ("decided_by", fields.CharField(null=True, max_length=64)),
                ("decided_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("transcript_status", fields.CharField(default="none", max_length=16)),
                ("suggestions_status", fields.CharField(default="none", max_length=16)),
                ("batch_id", fields.UUIDField(null=True, db_index=True)),
                ("fields_data", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "linked_audio",
                    fields.ForeignKeyField(
                        "rush.Asset",
                        source_field="linked_audio_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="linked_videos",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "updated_at",
                    fields.DatetimeField(db_index=True, auto_now=True, auto_now_add=False),
                ),
            ],
            options={
                "table": "asset",
                "app": "rush",
                "indexes": [
                    Index(fields=["state", "failed", "batch_id"]),
                    Index(fields=["rel_path", "id"]),
                    Index(fields=["state", "rel_path", "id"]),
                    Index(fields=["mtime", "id"]),
                    Index(fields=["state", "mtime", "id"]),
                    Index(fields=["state", "state_changed_at", "id"]),
                    Index(fields=["state", "kind"]),
                    Index(fields=["linked_audio_id"]),
                ],
                "pk_attr": "id",
                "table_description": "One media asset: its UUID is its identity, its path a mutable attribute.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AssetEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("asset_id", fields.UUIDField(db_index=True)),
                ("from_state", fields.CharField(max_length=20)),
                ("to_state", fields.CharField(max_length=20)),
                ("trigger", fields.CharField(max_length=20)),
                ("actor", fields.CharField(max_length=96)),
                ("reason", fields.TextField(null=True, unique=False)),
                ("at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "asset_event",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "Append-only history of every state transition.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Batch",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("kind", fields.CharField(max_length=16)),
                ("status", fields.CharField(default="running", max_length=16)),
                ("actor", fields.CharField(default="system", max_length=96)),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("report", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={
                "table": "batch",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "One batch apply or purge run, with its report.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Bin",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(unique=True, max_length=128)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "assets",
                    fields.ManyToManyField(
                        "rush.Asset",
                        unique=True,
                        db_constraint=True,
                        through="bin_asset",
                        forward_key="asset_id",
                        backward_key="bin_id",
                        related_name="bins",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
            ],
            options={
                "table": "bin",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "A saved selection of assets (for later work, offline export).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Derivative",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "rush.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="derivatives",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("version", fields.IntField()),
                ("role", fields.CharField(max_length=24)),
                ("rel_path", fields.TextField(unique=False)),
                ("size", fields.BigIntField(default=0)),
                ("mime", fields.CharField(default="", max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "derivative",
                "app": "rush",
                "indexes": [Index(fields=["asset_id", "role"])],
                "pk_attr": "id",
                "table_description": "A file an agent produced under `.derived/{uuid}/v{version}/`.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Facts",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "rush.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="facts",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("version", fields.IntField()),
                ("data", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "facts",
                "app": "rush",
                "unique_together": (("asset", "version"),),
                "pk_attr": "id",
                "table_description": "Technical metadata of one processing version (ffprobe, EXIF).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="FsAction",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("batch_id", fields.UUIDField(null=True, db_index=True)),
                ("asset_id", fields.UUIDField(null=True, db_index=True)),
                ("action", fields.CharField(max_length=16)),
                ("src", fields.TextField(null=True, unique=False)),
                ("dst", fields.TextField(null=True, unique=False)),
                ("status", fields.CharField(default="pending", db_index=True, max_length=12)),
                ("size", fields.BigIntField(null=True)),
                ("sha256", fields.CharField(null=True, max_length=64)),
                ("error", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("done_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "fs_action",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "The filesystem journal, written before an action happens and marked done after.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="KeyValue",
            fields=[
                (
                    "key",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("value", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "kv",
                "app": "rush",
                "pk_attr": "key",
                "table_description": "Small persistent facts of the server (library id, last scan report, ...).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Lease",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "rush.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="leases",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("job_type", fields.CharField(max_length=24)),
                ("agent_id", fields.CharField(db_index=True, max_length=64)),
                ("request_id", fields.CharField(null=True, max_length=64)),
                ("lock_token", fields.CharField(unique=True, max_length=64)),
                ("version", fields.IntField(default=1)),
                ("status", fields.CharField(default="active", db_index=True, max_length=12)),
                ("active_key", fields.CharField(null=True, unique=True, max_length=64)),
                ("progress", fields.FloatField(default=0.0)),
                (
                    "expires_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "heartbeat_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("error", fields.TextField(null=True, unique=False)),
            ],
            options={
                "table": "lease",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "A job handed to an agent, one active lease per asset and job type, never two.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PathChange",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("asset_id", fields.UUIDField(db_index=True)),
                ("old_path", fields.TextField(unique=False)),
                ("new_path", fields.TextField(unique=False)),
                ("batch_id", fields.UUIDField(null=True)),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "path_change",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "History of an asset's path (moves of batch apply).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PurgeAudit",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("asset_id", fields.UUIDField(db_index=True)),
                ("rel_path", fields.TextField(unique=False)),
                ("kind", fields.CharField(max_length=8)),
                ("size", fields.BigIntField(default=0)),
                ("files", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "rejected_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("purged_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("actor", fields.CharField(max_length=96)),
                ("batch_id", fields.UUIDField(null=True)),
            ],
            options={
                "table": "purge_audit",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "The minimal record kept for ever of a purged asset.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SeedMapping",
            fields=[
                (
                    "infohash",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("name", fields.TextField(default="", unique=False)),
                ("category", fields.CharField(default="", max_length=64)),
                ("path_nvme", fields.TextField(unique=False)),
                ("path_syno", fields.TextField(default="", unique=False)),
                ("last_update_epoch", fields.BigIntField()),
            ],
            options={
                "table": "seed_mapping",
                "app": "rush",
                "pk_attr": "infohash",
                "table_description": "infohash <-> paths of a relocated torrent (docs/contract.md §8.5).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SeedRelocation",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("infohash", fields.CharField(db_index=True, max_length=64)),
                ("run_id", fields.CharField(max_length=64)),
                (
                    "started_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("ok", fields.BooleanField(default=False)),
                ("bytes_moved", fields.BigIntField(default=0)),
                ("error_cause", fields.CharField(null=True, max_length=16)),
                ("error", fields.TextField(null=True, unique=False)),
            ],
            options={
                "table": "seed_relocation",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "One relocation attempt, for the seed's KPIs.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Sidecar",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "rush.Asset",
                        source_field="asset_id",
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="sidecars",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("rel_path", fields.TextField(unique=False)),
                ("size", fields.BigIntField(default=0)),
                ("mtime", fields.FloatField(default=0.0)),
                ("missing", fields.BooleanField(default=False)),
            ],
            options={
                "table": "sidecar",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "A file that travels with its asset (same folder, same base name).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Suggestion",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "rush.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="suggestions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("version", fields.IntField()),
                ("tag", fields.CharField(max_length=128)),
                ("score", fields.FloatField(default=0.0)),
                ("source", fields.CharField(default="builtin", max_length=32)),
                ("accepted", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "suggestion",
                "app": "rush",
                "indexes": [Index(fields=["asset_id", "version"])],
                "pk_attr": "id",
                "table_description": "Tag suggestions, replaced on recompute, never applied without a human.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Tag",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "rush.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tags",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(db_index=True, max_length=128)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "tag",
                "app": "rush",
                "unique_together": (("asset", "name"),),
                "pk_attr": "id",
                "table_description": "A free tag set by a human.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Transcript",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "rush.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="transcripts",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("version", fields.IntField()),
                ("language", fields.CharField(default="", max_length=16)),
                ("text", fields.TextField(default="", unique=False)),
                ("words", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "transcript",
                "app": "rush",
                "indexes": [Index(fields=["asset_id", "version"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="User",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("username", fields.CharField(unique=True, max_length=64)),
                ("password_hash", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "user", "app": "rush", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
