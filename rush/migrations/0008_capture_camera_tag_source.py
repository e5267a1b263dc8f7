from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("rush", "0007_search")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Asset",
            name="camera",
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddField(
            model_name="Asset",
            name="capture_source",
            field=fields.CharField(null=True, max_length=24),
        ),
        ops.AddField(
            model_name="Asset",
            name="capture_ts",
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name="Asset",
            name="lens",
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddField(
            model_name="Tag",
            name="source",
            field=fields.CharField(default="human", max_length=16),
        ),
    ]
