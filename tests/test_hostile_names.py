"""Names that are bytes: the stored/display encodings (`rush.names`) and an agent that
survives a job whose result cannot be encoded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from integrations.agent_runtime import AgentRuntime
from rush import names
from rush.jobs import JobContext, JobOutput, JobSpec
from rush.lifecycle import AssetState
from rush.models import Asset
from tests.agent_support import (
    TestProcessor,
    agents_running,
    make_asset,
    make_config,
    make_library,
    new_prefix,
    server_actors,
    wait_until,
)

HOSTILE = [
    b"bad\xff\xfe.mp4",
    b"latin1-caf\xe9.mov",
    b"new\nline.mp4",
    b"quo\"te's.mp4",
    b"-dash.mp4",
    b"L" * 251 + b".mp4",
    b"back\\slash\\xff.mp4",
    "literal private \uf7ff \uf700.mp4".encode(),
    "C1 \u0085 control.mp4".encode(),
    b"\x1b[31mred\x07",
    bytes(range(1, 256)).replace(b"/", b""),
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_every_name_round_trips_through_every_form(raw: bytes) -> None:
    stored = names.from_bytes(raw)
    # The stored form is valid Unicode that JSON and both databases accept.
    stored.encode("utf-8")
    assert orjson.loads(orjson.dumps(stored)) == stored
    assert names.to_bytes(stored) == raw
    assert names.from_fs(os.fsdecode(raw)) == stored
    assert names.to_fs(stored) == os.fsdecode(raw)
    # The escaped spelling is exact; the display form is readable and printable.
    assert names.to_bytes(names.unescape(names.escape(stored))) == raw
    shown = names.display(stored)
    shown.encode("utf-8")
    assert "\n" not in shown and "\x1b" not in shown


def test_valid_names_are_their_own_stored_form() -> None:
    for text in ["INBOX/plain.mp4", "ünïcödé/東京.mov", 'it\'s "quoted".mp4']:
        assert names.from_fs(text) == text == names.to_fs(text)
        assert names.display(text) == text == names.escape(text)


def test_display_and_escape_say_what_the_bytes_are() -> None:
    stored = names.from_bytes(b"bad\xff\xfe.mp4")
    assert names.display(stored) == "bad\ufffd\ufffd.mp4"
    assert names.escape(stored) == "bad\\xff\\xfe.mp4"
    assert names.display("new\nline.mp4") == "new\\nline.mp4"
    fs_name = os.fsdecode(b"x\xff.jpg")
    assert names.safe_text(f"cannot open {fs_name}") == "cannot open x\\xff.jpg"
    assert names.safe_text("lone \ud800") == "lone \ufffd"


class UnencodableProcessor(TestProcessor):
    """Returns facts holding a lone surrogate (what a raw `Path.name` of a name that is
    not valid UTF-8 is) for `bad*` files; behaves like the test processor otherwise."""

    async def run(self, job: JobSpec, ctx: JobContext) -> JobOutput:
        output = await super().run(job, ctx)
        if "bad" in job.paths.main:
            facts: dict[str, Any] = {"file_name": os.fsdecode(b"bad\xff.mp4")}
            return JobOutput(facts=facts, derivatives=output.derivatives)
        return output


@pytest.mark.mqtt
async def test_an_unencodable_result_fails_that_job_and_the_agent_goes_on(
    db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    make_library(root)
    config = make_config(root, prefix=new_prefix(), max_attempts=1)
    bad = await make_asset(root, "bad.mp4")
    runtime = AgentRuntime(config, [UnencodableProcessor()], agent_id="survivor")
    async with server_actors(config), agents_running([runtime]):

        async def bad_failed() -> bool:
            return bool((await Asset.get(id=bad.id)).failed)

        await wait_until(bad_failed, limit_s=30)
        good = await make_asset(root, "good.mp4")

        async def good_done() -> bool:
            return (await Asset.get(id=good.id)).state is AssetState.PROCESSED

        await wait_until(good_done, limit_s=30)
    failed = await Asset.get(id=bad.id)
    assert "cannot be encoded" in (failed.last_error or ""), failed.last_error
    assert runtime.failed == 1 and runtime.completed == 1


async def test_the_web_ui_shows_names_readably_and_the_exact_name_recoverably(
    db: str, tmp_path: Path
) -> None:
    import html

    from aiohttp.test_utils import TestClient, TestServer

    from rush.layout import init_library
    from rush.users import add_user
    from tests.webutil import login, web_config
    from tests.webutil import make_asset as make_web_asset
    from web.app import create_app
    from web.services import default_services

    root = tmp_path / "lib"
    init_library(root)
    config = web_config(tmp_path, root)
    await add_user("alice", "correct horse")
    bad = await make_web_asset(rel=names.from_bytes(b"INBOX/caf\xe9/bad\xff\xfe.mp4"))
    newline = await make_web_asset(rel="INBOX/s/new\nline.mp4")
    async with TestClient(TestServer(create_app(config, default_services(config)))) as client:
        await login(client)
        page = html.unescape(await (await client.get(f"/assets/{bad.id}")).text())
        # Readable: replacement characters, never the private-use stand-ins.
        assert "bad\ufffd\ufffd.mp4" in page and "INBOX/caf\ufffd/" in page
        assert "\uf7ff" not in page and "\uf7e9" not in page
        # Recoverable: the exact name, escaped, from which `names.unescape` gives the bytes.
        assert "INBOX/caf\\xe9/bad\\xff\\xfe.mp4" in page
        exact = names.unescape("INBOX/caf\\xe9/bad\\xff\\xfe.mp4")
        assert names.to_bytes(exact) == b"INBOX/caf\xe9/bad\xff\xfe.mp4"
        page = html.unescape(await (await client.get(f"/assets/{newline.id}")).text())
        assert "new\\nline.mp4" in page
        library = html.unescape(await (await client.get("/")).text())
        assert "bad\ufffd\ufffd.mp4" in library and "\uf7ff" not in library
        resp = await client.get(f"/api/review/queue?state=PROCESSED&at={bad.id}&n=10")
        items = (await resp.json())["items"]
        shown = {it["name"] for it in items}
        assert "bad\ufffd\ufffd.mp4" in shown and "new\\nline.mp4" in shown


def test_exports_point_at_the_exact_bytes_and_name_clips_readably() -> None:
    from rush.offline import ClipEntry, _path_url, build_timeline

    stored = names.from_bytes(b"/mnt/nas/ARCHIVE/bad\xff\xfe.mp4")
    assert _path_url(stored) == "file:///mnt/nas/ARCHIVE/bad%FF%FE.mp4"
    clip = ClipEntry(
        uuid="u1",
        kind="video",
        original_path=names.from_bytes(b"ARCHIVE/bad\xff\xfe.mp4"),
        proxy_path="proxies/bad_u1.mp4",
        proxy_role="proxy",
        duration_s=2.0,
        frame_rate=25.0,
    )
    timeline = build_timeline("t", [clip], {"u1": "proxies/bad_u1.mp4"}, "lib")
    (only,) = list(timeline.find_clips())
    assert only.name == "bad\ufffd\ufffd.mp4"
    assert names.to_bytes(only.metadata["rush"]["original_path"]) == b"ARCHIVE/bad\xff\xfe.mp4"
