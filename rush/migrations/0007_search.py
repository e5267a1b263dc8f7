from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from rush.search_schema import create_fulltext, drop_fulltext


class Migration(migrations.Migration):
    dependencies = [("rush", "0006_transcript_language_source")]

    initial = False

    operations = [
        ops.CreateModel(
            name="SearchEntry",
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
                        related_name="search_entries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("t", fields.FloatField(null=True)),
                ("display", fields.TextField(default="", unique=False)),
                ("body", fields.TextField(default="", unique=False)),
            ],
            options={
                "table": "search_entry",
                "app": "rush",
                "indexes": [Index(fields=["asset_id"])],
                "pk_attr": "id",
                "table_description": "One searchable text of an asset (rush/search.py): its metadata (name, folder,",
            },
            bases=["Model"],
        ),
        ops.RunPython(create_fulltext, drop_fulltext),
    ]
