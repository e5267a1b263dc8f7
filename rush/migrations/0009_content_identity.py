from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("rush", "0008_capture_camera_tag_source")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Asset",
            name="content_hash",
            field=fields.CharField(null=True, db_index=True, max_length=64),
        ),
        ops.AddField(
            model_name="Asset",
            name="hash_algo",
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name="Asset",
            name="hashed_mtime",
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name="Asset",
            name="hashed_size",
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name="Asset",
            name="previous_decision",
            field=fields.CharField(null=True, max_length=8),
        ),
        ops.AddField(
            model_name="Asset",
            name="sample_hash",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="Sidecar",
            name="content_hash",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="Sidecar",
            name="hash_algo",
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name="Sidecar",
            name="hashed_mtime",
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name="Sidecar",
            name="hashed_size",
            field=fields.BigIntField(null=True),
        ),
    ]
