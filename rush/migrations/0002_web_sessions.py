from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("rush", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WebSession",
            fields=[
                (
                    "sid",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "rush.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sessions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "expires_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "web_session",
                "app": "rush",
                "pk_attr": "sid",
                "table_description": "A logged-in browser, valid only while its row exists.",
            },
            bases=["Model"],
        ),
    ]
