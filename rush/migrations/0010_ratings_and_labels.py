from typing import Any

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


async def copy_ratings(apps: Any, editor: Any) -> None:
    """Ratings set before this migration lived in fields_data only: copy them over."""
    client = editor.client
    if client.capabilities.dialect == "postgres":
        sql = (
            "UPDATE asset SET rating = (fields_data::jsonb ->> 'rating')::int "
            "WHERE jsonb_typeof(fields_data::jsonb -> 'rating') = 'number'"
        )
    else:
        sql = (
            "UPDATE asset SET rating = CAST(json_extract(fields_data, '$.rating') AS INTEGER) "
            "WHERE json_type(fields_data, '$.rating') = 'integer'"
        )
    await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [("rush", "0009_content_identity")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Asset",
            name="label",
            field=fields.SmallIntField(default=0),
        ),
        ops.AddField(
            model_name="Asset",
            name="rating",
            field=fields.SmallIntField(default=0),
        ),
        ops.AddIndex(
            model_name="Asset",
            index=Index(fields=["state", "rating", "id"]),
        ),
        ops.AddIndex(
            model_name="Asset",
            index=Index(fields=["state", "label", "id"]),
        ),
        ops.RunPython(copy_ratings, ops.RunPython.noop),
    ]
