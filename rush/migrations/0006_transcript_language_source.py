from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("rush", "0005_user_roles")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Asset",
            name="transcript_language",
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name="Transcript",
            name="engine",
            field=fields.CharField(default="", max_length=128),
        ),
        ops.AddField(
            model_name="Transcript",
            name="source",
            field=fields.CharField(default="recognised", max_length=16),
        ),
    ]
