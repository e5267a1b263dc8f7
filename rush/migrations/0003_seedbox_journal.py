from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("rush", "0002_web_sessions")]

    initial = False

    operations = [
        ops.CreateModel(
            name="SeedMove",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("infohash", fields.CharField(db_index=True, max_length=64)),
                ("run_id", fields.CharField(max_length=64)),
                ("src", fields.TextField(unique=False)),
                ("dest", fields.TextField(unique=False)),
                (
                    "files",
                    fields.JSONField(
                        default=list,
                        description="[[relative name, size in bytes], ...] as qBittorrent listed them.",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "phase",
                    fields.CharField(
                        default="planned",
                        description="planned | location_set | verified | finalised | failed | cleaned",
                        max_length=16,
                    ),
                ),
                ("error", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "seed_move",
                "app": "rush",
                "pk_attr": "id",
                "table_description": "The journal of one relocation attempt, written before qBittorrent is asked to move.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="SeedMapping",
            name="removed_epoch",
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name="SeedMapping",
            name="status",
            field=fields.CharField(
                default="active",
                description='"active", or "removed" once the torrent left qBittorrent (the row is kept).',
                max_length=16,
            ),
        ),
    ]
