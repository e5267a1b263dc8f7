from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("rush", "0003_seedbox_journal")]

    initial = False

    operations = [
        ops.CreateModel(
            name="LoginFailure",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(db_index=True, max_length=200)),
                ("at", fields.FloatField(db_index=True)),
            ],
            options={
                "table": "login_failure",
                "app": "rush",
                "pk_attr": "id",
                "table_description": 'One failed web login, kept for the limiter\'s window (docs/web.md, "Security").',
            },
            bases=["Model"],
        ),
    ]
