"""Actions and exports over HTTP with the real modules behind the UI (both backends).

The purge page end to end (dry run, confirmation, live report, idempotence) with the real
`rush.moves` purge; a bin downloaded as an offline package through the real
`rush.offline.export_selection`, with the library left byte for byte as it was.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rush.config import Config
from rush.lifecycle import AssetState
from rush.models import Asset, Bin, Derivative, Facts, FsAction, PurgeAudit
from rush.users import add_user
from tests.batch_helpers import make_asset, make_config, write
from tests.webutil import ffmpeg, login
from web.app import create_app
from web.export import package_filename
from web.reports import apply_plan_view, purge_plan_view
from web.services import default_services

S = AssetState


@dataclass
class Ctx:
    client: TestClient
    root: Path
    config: Config
    token: str


@pytest.fixture
async def ctx(db: str, tmp_path: Path) -> AsyncIterator[Ctx]:
    root = tmp_path / "lib"
    config = make_config(root, db)
    await add_user("alice", "correct horse")
    app = create_app(config, default_services(config))
    async with TestClient(TestServer(app)) as c:
        yield Ctx(c, root, config, await login(c))


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file of the library: size, mtime and content (to prove nothing changed)."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def wait_run(client: TestClient, run_url: str) -> dict[str, Any]:
    for _ in range(500):
        data: dict[str, Any] = await (await client.get(run_url + "/report")).json()
        if data["status"] != "running":
            return data
        await asyncio.sleep(0.02)
    raise AssertionError("the run did not finish")


# --- purge -----------------------------------------------------------------------------


async def test_purge_page_end_to_end(ctx: Ctx) -> None:
    c, root = ctx.client, ctx.root
    old = await make_asset(root, "REJECTS/trip/old.mp4", S.REJECTED, sidecars=("old.xmp",))
    await Asset.filter(id=old.id).update(state_changed_at=datetime.now(UTC) - timedelta(days=181))
    write(root, f".derived/{old.id}/v1/proxy.mp4", b"proxy")
    young = await make_asset(root, "REJECTS/trip/young.mp4", S.REJECTED)
    kept = await make_asset(root, "ARCHIVE/trip/kept.mp4", S.ARCHIVED, sidecars=("kept.srt",))
    await Asset.filter(id=kept.id).update(state_changed_at=datetime.now(UTC) - timedelta(days=900))
    write(root, f".derived/{kept.id}/v1/proxy.mp4", b"proxy")

    page = await (await c.post("/actions/purge/plan", data={"_csrf": ctx.token})).text()
    assert "REJECTS/trip/old.mp4" in page and "REJECTS/trip/old.xmp" in page
    assert f".derived/{old.id}/" in page and "deleted for good" in page
    assert "kept.mp4" not in page and "young.mp4" not in page
    assert (root / "REJECTS/trip/old.mp4").exists()  # the dry run deleted nothing

    resp = await c.post("/actions/purge/run", data={"_csrf": ctx.token})
    assert resp.url.path == "/actions"  # no confirmation, nothing done: the page says why
    assert "tick the confirmation box" in await resp.text()
    assert (root / "REJECTS/trip/old.mp4").exists()

    resp = await c.post(
        "/actions/purge/run", data={"_csrf": ctx.token, "confirm": "yes"}, allow_redirects=False
    )
    assert resp.status == 303
    run_url = resp.headers["Location"]
    data = await wait_run(c, run_url)
    assert data["status"] == "done", data
    assert [p["uuid"] for p in data["report"]["purged"]] == [str(old.id)]
    assert not (root / "REJECTS/trip/old.mp4").exists()
    assert not (root / "REJECTS/trip/old.xmp").exists()
    assert not (root / f".derived/{old.id}").exists()
    o = await Asset.get(id=old.id)
    assert (o.state, o.path_key) == (S.PURGED, None)
    audit = await PurgeAudit.get(asset_id=old.id)
    assert audit.actor == "user:alice" and "REJECTS/trip/old.xmp" in audit.files
    deletes = await FsAction.filter(asset_id=old.id).values_list("action", "status")
    assert {a for a, _ in deletes} >= {"delete", "rmtree"} and {s for _, s in deletes} == {"done"}
    report_page = await (await c.get(run_url)).text()
    assert "1</b> asset purged" in report_page and "REJECTS/trip/old.xmp" in report_page
    # Untouched: the young REJECTED asset and the ARCHIVED one, however old.
    assert (root / "REJECTS/trip/young.mp4").exists()
    assert (await Asset.get(id=young.id)).state is S.REJECTED
    assert (root / "ARCHIVE/trip/kept.mp4").exists() and (root / "ARCHIVE/trip/kept.srt").exists()
    assert (root / f".derived/{kept.id}").exists()
    assert (await Asset.get(id=kept.id)).state is S.ARCHIVED

    # A second purge finds nothing and does nothing.
    before = snapshot(root)
    page = await (await c.post("/actions/purge/plan", data={"_csrf": ctx.token})).text()
    assert "Nothing to do." in page and "old.mp4" not in page
    resp = await c.post(
        "/actions/purge/run", data={"_csrf": ctx.token, "confirm": "yes"}, allow_redirects=False
    )
    data = await wait_run(c, resp.headers["Location"])
    assert data["status"] == "done" and data["report"]["purged"] == []
    assert snapshot(root) == before
    assert await PurgeAudit.filter(asset_id=old.id).count() == 1


# --- export a bin ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_proxy(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("proxy") / "proxy.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out),
    )  # fmt: skip
    return out.read_bytes()


async def processed_with_proxy(root: Path, rel: str, proxy: bytes) -> Asset:
    a = await make_asset(root, rel, S.PROCESSED)
    write(root, f".derived/{a.id}/v1/proxy.mp4", proxy)
    await Derivative.create(
        asset=a, version=1, role="proxy", rel_path=f".derived/{a.id}/v1/proxy.mp4",
        size=len(proxy), mime="video/mp4",
    )  # fmt: skip
    return a


@pytest.mark.ffmpeg
async def test_export_bin_as_zip_reads_the_library_only(ctx: Ctx, tiny_proxy: bytes) -> None:
    c, root = ctx.client, ctx.root
    a = await processed_with_proxy(root, "INBOX/wedding/C0001.MP4", tiny_proxy)
    b = await processed_with_proxy(root, "INBOX/wedding/C0002.MP4", tiny_proxy)
    other = await processed_with_proxy(root, "INBOX/other/C0009.MP4", tiny_proxy)
    unprocessed = await make_asset(root, "INBOX/wedding/C0003.MP4", S.PROCESSED, processed=False)
    await Facts.filter(asset_id=a.id).update(data={"duration": 1.0, "frame_rate": 25})
    wedding = await Bin.create(name="Wedding 2026/06")
    for x in (a, b, unprocessed):
        await wedding.assets.add(x)
    empty = await Bin.create(name="empty")
    page = await (await c.get("/bins")).text()
    assert f'action="/bins/{wedding.id}/export"' in page and "Export for offline editing" in page

    before = snapshot(root)
    resp = await c.post(f"/bins/{wedding.id}/export", data={"_csrf": ctx.token})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/zip"
    assert 'filename="Wedding-2026-06-offline.zip"' in resp.headers["Content-Disposition"]
    body = await resp.read()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        names = set(zf.namelist())
        top = "Wedding-2026-06-offline/"
        assert {top + n for n in ("timeline.otio", "media.csv", "manifest.json")} <= names
        packaged = sorted(n for n in names if n.startswith(top + "proxies/"))
        proxies = [n for n in packaged if not n.endswith(".xmp")]
        assert len(proxies) == 2
        # Each proxy travels with its XMP (rating, tags, asset UUID) and nothing else.
        assert sorted(n for n in packaged if n.endswith(".xmp")) == sorted(
            p.rsplit(".", 1)[0] + ".xmp" for p in proxies
        )
        assert all(zf.read(p) == tiny_proxy for p in proxies)
        manifest = json.loads(zf.read(top + "manifest.json"))
        csv_text = zf.read(top + "media.csv").decode()
        otio_text = zf.read(top + "timeline.otio").decode()
    assert {e["uuid"] for e in manifest["assets"]} == {str(a.id), str(b.id)}
    assert [s["uuid"] for s in manifest["skipped"]] == [str(unprocessed.id)]
    assert str(other.id) not in csv_text and str(a.id) in csv_text
    # Timelines point into the package, never at the server's temporary folder.
    assert "rush-export-" not in otio_text and "proxies/" in otio_text
    assert "DECIDED" not in json.dumps(manifest) and "PROCESSED" not in csv_text
    assert snapshot(root) == before  # the library is only read

    # With the folder the editor will unzip into, the timelines point there.
    resp = await c.post(
        f"/bins/{wedding.id}/export",
        data={"_csrf": ctx.token, "unzip_to": "/Users/alice/Offline"},
    )
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
        otio_text = zf.read(top + "timeline.otio").decode()
    assert "file:///Users/alice/Offline/Wedding-2026-06-offline/proxies/" in otio_text

    # Errors are shown on the bins page; no CSRF token, no export.
    resp = await c.post(f"/bins/{empty.id}/export", data={"_csrf": ctx.token})
    assert resp.status == 409 and "matches no asset" in await resp.text()
    resp = await c.post(f"/bins/{wedding.id}/export", data={})
    assert resp.status == 403
    resp = await c.post("/bins/999999/export", data={"_csrf": ctx.token})
    assert resp.status == 404
    assert snapshot(root) == before


# --- pure report views ---------------------------------------------------------------


def test_apply_plan_view_spells_out_destinations_collisions_and_sidecars() -> None:
    ida, idb = uuid.uuid4(), uuid.uuid4()
    plan = {
        "items": [
            {
                "uuid": str(ida), "target": "ARCHIVED", "to_area": "ARCHIVE", "renamed": True,
                "noop": False,
                "moves": [
                    {"src": "INBOX/d/C1.MP4", "dst": "ARCHIVE/d/C1_ab.MP4", "sidecar": False},
                    {"src": "INBOX/d/C1.XMP", "dst": "ARCHIVE/d/C1_ab.XMP", "sidecar": True},
                ],
            },
            {"uuid": str(idb), "target": "REJECTED", "to_area": "REJECTS", "renamed": False,
             "noop": True, "moves": []},
        ],
        "skipped": [{"uuid": "x", "rel_path": "INBOX/z.mp4", "reason": "file missing on disk"}],
    }  # fmt: skip
    view = apply_plan_view(plan)
    assert view["counts"] == {
        "groups": 1, "keep": 1, "reject": 0, "files": 2, "sidecars": 1, "collisions": 1,
        "noop": 1, "skipped": 1,
    }  # fmt: skip
    files = view["groups"][0]["files"]
    assert [f["wanted"] for f in files] == ["ARCHIVE/d/C1.MP4", "ARCHIVE/d/C1.XMP"]
    assert [f["sidecar"] for f in files] == [False, True]
    assert apply_plan_view({})["counts"]["groups"] == 0  # malformed input: empty, no crash


def test_purge_plan_view_lists_every_deleted_path() -> None:
    uid = str(uuid.uuid4())
    view = purge_plan_view(
        {"eligible": [{"uuid": uid, "rel_path": "REJECTS/a.mp4", "sidecars": ["REJECTS/a.xmp"]}]}
    )
    assert view["counts"] == {"assets": 1, "files": 2, "skipped": 0}
    assert view["assets"][0]["derived"] == f".derived/{uid}/"


def test_package_filename_is_safe_for_any_bin_name() -> None:
    assert package_filename("Mariage été 2026") == "Mariage-ete-2026-offline.zip"
    assert package_filename('../../etc/"passwd"') == "etc-passwd-offline.zip"
    assert package_filename("日本") == "bin-offline.zip"
