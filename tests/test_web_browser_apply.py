"""The real batch apply from a real Chromium: cull by keyboard, dry run, confirm, verify disk.

Everything behind the UI is real: `default_services` binds `rush.moves` and
`rush.actions`; the library is a temporary folder with original files, sidecars, real
derivatives made by ffmpeg and one name already taken in ARCHIVE; the database is SQLite.
Screenshots of the dry run and of the final report land in `test-artifacts/`.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from rush.config import Config
from rush.lifecycle import AssetState
from rush.models import Asset, AssetEvent, Bin, PathChange, Sidecar
from rush.storage import close_db, init_db
from rush.users import add_user
from tests.batch_helpers import digest, make_asset, make_config, write
from tests.test_web_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, attach, free_port, make_media
from web.app import WebServer
from web.services import default_services

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

S = AssetState
FOLDER = "INBOX/2026-06 wedding"
#: (relative path under FOLDER, sidecars, key pressed in the browser)
PLAN = [
    ("C0001.MP4", ("C0001.XMP",), "p"),
    ("C0002.MP4", (), "x"),
    ("C0004.MP4", ("C0004.XMP",), "p"),  # ARCHIVE/…/C0004.MP4 exists already: collision
    ("C0005.MP4", ("C0005.LRF", "C0005.THM"), "x"),
    ("day2/C0003.MP4", ("C0003.SRT",), "p"),
]
TAKEN = "ARCHIVE/2026-06 wedding/C0004.MP4"
TAKEN_BYTES = b"an archived file that must survive the batch"


@dataclass
class Lib:
    url: str
    root: Path
    config: Config
    assets: dict[str, Asset] = field(default_factory=dict)  # by main file name
    keys: dict[uuid.UUID, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # original rel path -> sha256


@pytest.fixture
async def lib(tmp_path: Path) -> AsyncIterator[Lib]:
    url = f"sqlite://{tmp_path / 'rush.db'}"
    await init_db(url)
    try:
        root = tmp_path / "lib"
        config = make_config(root, url)
        config.web.port = free_port()
        media = make_media(tmp_path / "media")
        await add_user("alice", "correct horse")
        write(root, TAKEN, TAKEN_BYTES)
        out = Lib("", root, config)
        for name, sidecars, key in PLAN:
            rel = f"{FOLDER}/{name}"
            folder = rel.rsplit("/", 1)[0]
            a = await make_asset(root, rel, S.PROCESSED, sidecars=sidecars)
            await attach(root, a, media)
            out.assets[name] = a
            out.keys[a.id] = key
            for f in (rel, *(f"{folder}/{s}" for s in sidecars)):
                out.digests[f] = digest(root / f)
        server = WebServer(config, default_services(config))
        async with asyncio.TaskGroup() as group:
            task = group.create_task(server.run())
            for _ in range(100):
                if server.port:
                    break
                await asyncio.sleep(0.05)
            out.url = f"http://127.0.0.1:{server.port}"
            try:
                yield out
            finally:
                task.cancel()
    finally:
        await close_db()


def current_id(page: Page) -> uuid.UUID:
    match = re.search(r"/assets/([0-9a-f-]{36})", page.url)
    assert match, page.url
    return uuid.UUID(match.group(1))


def disk(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
        and not p.relative_to(root).as_posix().startswith((".derived/", "."))
        and p.name != ".rushes_volume"
    }


async def test_cull_then_real_batch_apply_from_the_browser(lib: Lib) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    root = lib.root
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await page.goto(lib.url + "/")
            await page.fill("input[name=username]", "alice")
            await page.fill("input[name=password]", "correct horse")
            await page.press("input[name=password]", "Enter")
            await page.wait_for_url(lib.url + "/")
            await page.wait_for_selector(".card img")

            # Cull with the keyboard only: Enter opens the first card, P/X decide and
            # advance; the key depends on which asset is shown, not on the sort order.
            await page.keyboard.press("Enter")
            decided: list[uuid.UUID] = []
            for _ in PLAN:
                await page.wait_for_url(re.compile(r".*/assets/[0-9a-f-]{36}.*"))
                await page.wait_for_selector("#review")
                aid = current_id(page)
                assert aid not in decided
                await page.keyboard.press(lib.keys[aid])
                decided.append(aid)
                if len(decided) < len(PLAN):
                    await page.wait_for_function(f"!location.pathname.includes('{aid}')")
            for _ in range(200):  # the last decision has no next asset to go to
                states = {a.id: a.state for a in await Asset.filter(id__in=decided)}
                if all(s in (S.DECIDED_KEEP, S.DECIDED_REJECT) for s in states.values()):
                    break
                await asyncio.sleep(0.05)
            for aid, key in lib.keys.items():
                assert states[aid] == (S.DECIDED_KEEP if key == "p" else S.DECIDED_REJECT)
            before = disk(root)

            # The Actions page and the dry run.
            await page.goto(lib.url + "/actions")
            await page.click("form[action='/actions/apply/plan'] button")
            await page.wait_for_selector("#plan-moves")
            await page.screenshot(path=str(ARTIFACTS / "apply-plan.png"), full_page=True)
            summary = await page.inner_text("#plan-summary")
            assert "5 groups will move: 3 to ARCHIVE/ (KEEP), 2 to REJECTS/ (REJECT)" in summary
            assert "10 files in all, of which 5 sidecars" in summary
            assert "1 name collision" in summary
            rows = await page.locator("#plan-moves tr[data-src]").evaluate_all(
                "rs => rs.map(r => [r.dataset.src, r.dataset.dst, r.className])"
            )
            planned = {src: dst for src, dst, _ in rows}
            assert planned[f"{FOLDER}/C0001.MP4"] == "ARCHIVE/2026-06 wedding/C0001.MP4"
            assert planned[f"{FOLDER}/C0001.XMP"] == "ARCHIVE/2026-06 wedding/C0001.XMP"
            assert planned[f"{FOLDER}/C0005.LRF"] == "REJECTS/2026-06 wedding/C0005.LRF"
            assert planned[f"{FOLDER}/day2/C0003.SRT"] == "ARCHIVE/2026-06 wedding/day2/C0003.SRT"
            collided = planned[f"{FOLDER}/C0004.MP4"]
            assert collided != TAKEN and collided.startswith("ARCHIVE/2026-06 wedding/C0004")
            new_base = collided.rsplit("/", 1)[1].rsplit(".", 1)[0]
            assert planned[f"{FOLDER}/C0004.XMP"] == f"ARCHIVE/2026-06 wedding/{new_base}.XMP"
            sidecar_rows = [src for src, _, cls in rows if "sidecar" in cls.split()]
            assert len(sidecar_rows) == 5
            collision_rows = [src for src, _, cls in rows if "collision" in cls.split()]
            assert sorted(collision_rows) == [f"{FOLDER}/C0004.MP4", f"{FOLDER}/C0004.XMP"]
            text = await page.inner_text("#plan-moves")
            assert "RENAMED" in text and "C0004.MP4 already exists there" in text
            renamed = await page.inner_text("#plan-collisions")
            assert TAKEN in renamed and f"{new_base}.MP4" in renamed
            assert "renamed with its group" in text  # the sidecar follows its group
            assert disk(root) == before  # the dry run moved nothing

            # Confirm, then the live report.
            await page.check("form.confirm input[name=confirm]")
            await page.click("form.confirm button")
            await page.wait_for_url(re.compile(r".*/actions/runs/.*"))
            await page.wait_for_selector("#run-summary", timeout=60_000)
            await page.screenshot(path=str(ARTIFACTS / "apply-report.png"), full_page=True)
            assert (await page.text_content("#run-status")) == "done"
            report = await page.inner_text("#run-summary")
            assert "5 groups moved, 1 renamed because of a collision" in report
            assert "0 failed" in report
            journal_rows = await page.locator("#run-files tr[data-src]").count()
            assert journal_rows == 10
        finally:
            await browser.close()

    # On disk: every group moved with its sidecars, sub-paths kept, nothing overwritten.
    expected: dict[str, str] = {}
    for name, sidecars, key in PLAN:
        area = "ARCHIVE" if key == "p" else "REJECTS"
        folder = f"{FOLDER}/{name}".rsplit("/", 1)[0]
        dest = folder.replace("INBOX/", f"{area}/", 1)
        for f in (name.rsplit("/", 1)[-1], *sidecars):
            dst_name = f.replace("C0004", new_base) if name == "C0004.MP4" else f
            expected[f"{folder}/{f}"] = f"{dest}/{dst_name}"
    for src, dst in expected.items():
        assert not (root / src).exists(), src
        assert digest(root / dst) == lib.digests[src], (src, dst)  # byte-identical
    assert (root / TAKEN).read_bytes() == TAKEN_BYTES
    assert disk(root) == set(expected.values()) | {TAKEN}
    # In the database: final states, new paths, one PathChange per group, history kept.
    for name, sidecars, key in PLAN:
        a = await Asset.get(id=lib.assets[name].id)
        src = f"{FOLDER}/{name}"
        assert a.state == (S.ARCHIVED if key == "p" else S.REJECTED)
        assert a.rel_path == expected[src] and a.batch_id is None
        folder = src.rsplit("/", 1)[0]
        group = [src, *(f"{folder}/{sc}" for sc in sidecars)]
        changes = await PathChange.filter(asset_id=a.id).values_list("old_path", "new_path")
        assert sorted(changes) == sorted((f, expected[f]) for f in group)  # one per file
        paths = await Sidecar.filter(asset_id=a.id).values_list("rel_path", flat=True)
        assert sorted(paths) == sorted(expected[f] for f in group[1:])
        assert await AssetEvent.filter(asset_id=a.id, to_state="MOVE_QUEUED").exists()

    # Reopen one archived asset and reprocess another from their pages.
    reopened, reprocessed = lib.assets["C0001.MP4"], lib.assets["day2/C0003.MP4"]
    files_now = {p: digest(root / p) for p in disk(root)}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await page.goto(lib.url + "/login")
            await page.fill("input[name=username]", "alice")
            await page.fill("input[name=password]", "correct horse")
            await page.press("input[name=password]", "Enter")
            await page.wait_for_url(lib.url + "/")
            await page.goto(f"{lib.url}/assets/{reopened.id}")
            assert await page.get_attribute("#state-badge", "data-state") == "ARCHIVED"
            await page.click("form[action$='/action/reopen'] button")
            await page.wait_for_function(
                "document.querySelector('#state-badge').dataset.state === 'DECISION_PENDING'"
            )
            assert "a new decision moves it only at the next batch apply" in (
                await page.inner_text("#stays-note")
            )
            await page.screenshot(path=str(ARTIFACTS / "asset-reopened.png"), full_page=True)
            await page.goto(f"{lib.url}/assets/{reprocessed.id}")
            await page.click("form[action$='/action/reprocess'] button")
            await page.wait_for_function(
                "document.querySelector('#state-badge').dataset.state === 'READY'"
            )

            # Export a bin for offline editing and download it as a browser would.
            kept = await Bin.create(name="Wedding keepers")
            await kept.assets.add(reopened, lib.assets["C0004.MP4"])
            await page.goto(f"{lib.url}/bins")
            await page.click("details.export summary")
            await page.screenshot(path=str(ARTIFACTS / "bins-export.png"), full_page=True)
            async with page.expect_download() as info:
                await page.click(f"form[data-export='{kept.id}'] button")
            download = await info.value
            assert download.suggested_filename == "Wedding-keepers-offline.zip"
            with zipfile.ZipFile(await download.path()) as zf:
                names = zf.namelist()
            top = "Wedding-keepers-offline/"
            assert {top + "timeline.otio", top + "media.csv", top + "manifest.json"} <= set(names)
            packaged = [n for n in names if n.startswith(top + "proxies/")]
            assert len([n for n in packaged if n.endswith(".mp4")]) == 2
            assert len([n for n in packaged if n.endswith(".xmp")]) == 2  # one XMP per proxy

            # Purge, much later: the REJECTED group with two sidecars is past retention.
            purged = lib.assets["C0005.MP4"]
            moved_at = datetime.now(UTC) - timedelta(days=181)
            await Asset.filter(id=purged.id).update(state_changed_at=moved_at)
            await page.goto(lib.url + "/actions")
            await page.click("form[action='/actions/purge/plan'] button")
            await page.wait_for_selector("#plan-purge")
            await page.screenshot(path=str(ARTIFACTS / "purge-plan.png"), full_page=True)
            listed = await page.inner_text("#plan-purge")
            for f in ("C0005.MP4", "C0005.LRF", "C0005.THM"):
                assert f"REJECTS/2026-06 wedding/{f}" in listed
            assert f".derived/{purged.id}/" in listed and "C0002" not in listed
            await page.check("form.confirm input[name=confirm]")
            await page.click("form.confirm button")
            await page.wait_for_selector("#run-summary", timeout=60_000)
            await page.screenshot(path=str(ARTIFACTS / "purge-report.png"), full_page=True)
            assert "1 asset purged" in await page.inner_text("#run-summary")
        finally:
            await browser.close()
    r = await Asset.get(id=reopened.id)
    assert (r.state, r.rel_path) == (S.DECISION_PENDING, expected[f"{FOLDER}/C0001.MP4"])
    p = await Asset.get(id=reprocessed.id)
    assert (p.state, p.version, p.decision) == (S.READY, 2, "KEEP")
    assert p.rel_path == expected[f"{FOLDER}/day2/C0003.MP4"]
    gone = {f"REJECTS/2026-06 wedding/{f}" for f in ("C0005.MP4", "C0005.LRF", "C0005.THM")}
    assert {f: digest(root / f) for f in disk(root)} == {  # nothing moved, only the purge
        f: d for f, d in files_now.items() if f not in gone
    }
    assert not (root / f".derived/{lib.assets['C0005.MP4'].id}").exists()
    assert (await Asset.get(id=lib.assets["C0005.MP4"].id)).state == S.PURGED
