from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("rush", "0004_login_failures")]

    initial = False

    operations = [
        ops.AddField(
            model_name="User",
            name="role",
            field=fields.CharField(default="admin", db_default="admin", max_length=16),
        ),
    ]
