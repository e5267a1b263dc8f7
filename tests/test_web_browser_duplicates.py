"""A duplicate dump is flagged in the review UI before anyone decides (real Chromium).

The same card dumped twice into INBOX and a clip already in ARCHIVE dumped again go
through the real scanner and hasher; the library's duplicate filter and badges, the
review page's "also in INBOX at …" / "already in ARCHIVE as …" and the one-key
"reject as duplicate" (D) are then checked in the browser.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from rush.events import EventBus
from rush.lifecycle import AssetState
from rush.models import Asset
from rush.storage import close_db, init_db
from rush.transitions import transition
from rush.users import add_user
from tests.batch_helpers import make_config
from tests.test_duplicates import ingest, put
from tests.test_web_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port
from web.app import WebServer
from web.services import default_services

pytestmark = [pytest.mark.slow]
S = AssetState


@dataclass
class Site:
    url: str
    assets: dict[str, Asset]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    db_url = f"sqlite://{tmp_path / 'rush.db'}"
    await init_db(db_url)
    try:
        root = tmp_path / "lib"
        cfg = make_config(root, db_url)
        cfg.scanner.stable_after_s = 0
        card = [os.urandom(120_000) for _ in range(2)]
        for i, data in enumerate(card):
            put(root, f"INBOX/card A/C000{i}.MP4", data)
            put(root, f"INBOX/second dump/C000{i}.MP4", data)
        kept = os.urandom(90_000)
        put(root, "INBOX/old shoot/B0001.MP4", kept)
        put(root, "INBOX/fresh/C0009.MP4", os.urandom(90_000))
        assets = await ingest(cfg)
        # The old shoot was archived long ago; the same clip is now dumped again.
        old = assets["INBOX/old shoot/B0001.MP4"]
        (root / "ARCHIVE/old shoot").mkdir(parents=True)
        os.rename(root / "INBOX/old shoot/B0001.MP4", root / "ARCHIVE/old shoot/B0001.MP4")
        for src, dst, trig in (
            (S.PROCESSED, S.DECIDED_KEEP, "decide_keep"),
            (S.DECIDED_KEEP, S.MOVE_QUEUED, "queue_move"),
            (S.MOVE_QUEUED, S.ARCHIVED, "move_done"),
        ):
            await transition(old.id, src, dst, trig, "alice")  # type: ignore[arg-type]
        await Asset.filter(id=old.id).update(
            area="ARCHIVE",
            rel_path="ARCHIVE/old shoot/B0001.MP4",
            path_key="ARCHIVE/old shoot/B0001.MP4",
        )
        put(root, "INBOX/redump/B0001.MP4", kept)
        assets = await ingest(cfg)
        await add_user("alice", "correct horse")
        config = cfg.model_copy(deep=True)
        config.data_dir = tmp_path / "data"
        config.web.port = free_port()
        server = WebServer(config, default_services(config, bus=EventBus()))
        async with asyncio.TaskGroup() as group:
            task = group.create_task(server.run())
            for _ in range(100):
                if server.port:
                    break
                await asyncio.sleep(0.05)
            try:
                yield Site(f"http://127.0.0.1:{server.port}", assets)
            finally:
                task.cancel()
    finally:
        await close_db()


async def test_duplicate_dump_is_flagged_before_review(site: Site) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    a = site.assets
    # Recorded in the same pass: the first copy is the first by path ("card A").
    first = a["INBOX/card A/C0000.MP4"]
    copy = a["INBOX/second dump/C0000.MP4"]
    redump = a["INBOX/redump/B0001.MP4"]
    assert {x.state for x in (first, copy, redump)} == {S.PROCESSED}  # nobody decided yet
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await page.goto(site.url + "/")
            await page.fill("input[name=username]", "alice")
            await page.fill("input[name=password]", "correct horse")
            await page.press("input[name=password]", "Enter")
            await page.wait_for_url(site.url + "/")
            # The grid: a badge on every copy, none on the unique clip.
            await page.wait_for_selector(".card")
            flagged = await page.eval_on_selector_all(
                ".card:has([data-duplicate])", "cs => cs.map(c => c.dataset.id).sort()"
            )
            expected = sorted(str(x.id) for rel, x in a.items() if rel != "INBOX/fresh/C0009.MP4")
            assert flagged == expected
            # The library filter shows exactly the duplicates.
            await page.select_option("select[name=flag]", "duplicate")
            await page.evaluate("document.querySelector('select[name=flag]').form.submit()")
            await page.wait_for_url("**flag=duplicate**")
            listed = await page.eval_on_selector_all(
                ".card", "cs => cs.map(c => c.dataset.id).sort()"
            )
            assert listed == expected
            await page.screenshot(path=str(ARTIFACTS / "duplicates-library.png"), full_page=True)
            # The review page says where the other copy is, before any decision.
            await page.goto(f"{site.url}/assets/{redump.id}")
            note = await page.text_content("#duplicates")
            assert note is not None and "already in ARCHIVE as ARCHIVE/old shoot/B0001.MP4" in note
            await page.goto(f"{site.url}/assets/{copy.id}")
            note = await page.text_content("#duplicates")
            assert note is not None and "also in INBOX at INBOX/card A/C0000.MP4" in note
            await page.screenshot(path=str(ARTIFACTS / "duplicates-review.png"), full_page=True)
            # One key rejects the copy; the first copy keeps its state and has no such key.
            async with page.expect_response(f"**/api/assets/{copy.id}/reject-duplicate") as got:
                await page.keyboard.press("d")
            assert (await got.value).ok
            assert (await Asset.get(id=copy.id)).state is S.DECIDED_REJECT
            await page.goto(f"{site.url}/assets/{first.id}")
            assert await page.query_selector("[data-reject-duplicate]") is None
            await page.keyboard.press("d")
            await asyncio.sleep(0.3)
            assert (await Asset.get(id=first.id)).state is S.PROCESSED
        finally:
            await browser.close()
