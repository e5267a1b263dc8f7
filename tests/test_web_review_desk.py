"""The review desk in a real Chromium: undo/redo, the review queue, decide-and-advance.

Same site as `test_web_browser.py` (six 6 s clips with real proxies, posters, thumbs and
peaks); here the page changes happen on the client, so the tests also check that no page
load happened (a marker set on `window` survives a client-side change only).
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, async_playwright

from rush import actions
from rush.lifecycle import AssetState, Trigger
from rush.models import Asset, Bin, Facts, Tag
from rush.transitions import transition
from tests.test_web_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    Site,
    login,
    site,  # noqa: F401  (the same six-clip site fixture)
    state_of,
)

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]


async def on_clip(page: Page, asset: Asset) -> None:
    await page.wait_for_selector(f"#review[data-id='{asset.id}']")


async def badge(page: Page) -> str:
    return str(await page.get_attribute("#state-badge", "data-state"))


async def test_undo_redo_and_decided_clips_stay_in_the_queue(site: Site) -> None:  # noqa: F811
    a = site.assets
    review_bin = await Bin.create(name="Selects")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await login(page, site)
            await page.goto(site.url + "/?state=PROCESSED")
            await page.wait_for_selector(".card")
            await page.keyboard.press("Enter")
            await on_clip(page, a[0])
            await page.wait_for_selector("#queue-pos:has-text('1 of 6')")
            await page.evaluate("window.__noReload = true")

            # Enter then P: keep, and the next clip shows without a page load.
            await page.keyboard.press("p")
            await on_clip(page, a[1])
            assert await page.evaluate("window.__noReload === true")
            await page.wait_for_selector("body:not([data-pending])")
            assert await state_of(a[0]) == AssetState.DECIDED_KEEP
            # The kept clip is still in the queue of state=PROCESSED, dimmed with its flag.
            await page.wait_for_selector(f".fs.decided.kept[data-id='{a[0].id}']")
            await page.wait_for_selector("#queue-pos:has-text('2 of 6')")

            # Ctrl+Z takes the keep back and shows that clip; Shift+Ctrl+Z redoes it.
            await page.keyboard.press("Control+z")
            await on_clip(page, a[0])
            await page.wait_for_function(
                "document.querySelector('#state-badge').dataset.state === 'DECISION_PENDING'"
            )
            assert await state_of(a[0]) == AssetState.DECISION_PENDING
            await page.keyboard.press("Shift+Control+z")
            await page.wait_for_function(
                "document.querySelector('#state-badge').dataset.state === 'DECIDED_KEEP'"
            )
            assert await state_of(a[0]) == AssetState.DECIDED_KEEP

            # J to the next, X rejects and advances; K walks back over decided clips.
            await page.keyboard.press("j")
            await on_clip(page, a[1])
            await page.keyboard.press("x")
            await on_clip(page, a[2])
            await page.keyboard.press("k")
            await on_clip(page, a[1])
            assert "DECIDED_REJECT" in await badge(page)
            await page.keyboard.press("k")
            await on_clip(page, a[0])
            assert "DECIDED_KEEP" in await badge(page)
            assert await page.evaluate("window.__noReload === true")

            # U clears the current clip's flag; on a clip without one it says so quietly.
            await page.keyboard.press("u")
            await page.wait_for_function(
                "document.querySelector('#state-badge').dataset.state === 'DECISION_PENDING'"
            )
            assert await state_of(a[0]) == AssetState.DECISION_PENDING
            await page.keyboard.press("u")
            await page.wait_for_selector("#toast.show:has-text('No flag to clear')")
            assert not await page.evaluate(
                "document.querySelector('#toast').classList.contains('err')"
            )
            await page.keyboard.press("Control+z")  # undo the clear: the keep is back
            await page.wait_for_function(
                "document.querySelector('#state-badge').dataset.state === 'DECIDED_KEEP'"
            )
            assert await state_of(a[0]) == AssetState.DECIDED_KEEP

            # Tags and bins are undoable too.
            await page.keyboard.press("t")
            await page.keyboard.type("dusk")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("#tags li:has-text('dusk')")
            await page.evaluate("document.activeElement.blur()")
            assert await Tag.filter(asset_id=a[0].id, name="dusk").exists()
            await page.keyboard.press("Control+z")
            await page.wait_for_function(
                "!document.querySelector('#tags').textContent.includes('dusk')"
            )
            assert not await Tag.filter(asset_id=a[0].id, name="dusk").exists()
            await page.check(f"[data-bin='{review_bin.id}']")
            await page.wait_for_selector("#toast.show:has-text('Added to bin')")
            assert await Bin.filter(id=review_bin.id, assets__id=a[0].id).exists()
            await page.evaluate("document.activeElement.blur()")
            await page.keyboard.press("Control+z")
            await page.wait_for_selector(f"[data-bin='{review_bin.id}']:not(:checked)")
            assert not await Bin.filter(id=review_bin.id, assets__id=a[0].id).exists()
            await page.screenshot(path=str(ARTIFACTS / "review-undo.png"), full_page=True)

            # A new filter starts a new queue: decided clips leave the PROCESSED queue.
            await page.goto(site.url + "/?state=PROCESSED&sort=size")
            await page.wait_for_selector(".card")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("#queue-pos:has-text('1 of 4')")
        finally:
            await browser.close()


async def test_filmstrip_preloads_the_next_clip_and_advances_in_place(site: Site) -> None:  # noqa: F811
    a = site.assets
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            page.on("console", lambda m: print("console:", m.text))
            await login(page, site)
            await page.goto(f"{site.url}/assets/{a[2].id}?state=PROCESSED")
            await page.wait_for_selector("#queue-pos:has-text('3 of 6')")
            # The strip: every clip of this small queue, the current one marked, durations.
            ids = await page.eval_on_selector_all(".fs", "els => els.map(e => e.dataset.id)")
            assert ids == [str(x.id) for x in a]
            assert await page.get_attribute(".fs.cur", "data-id") == str(a[2].id)
            assert await page.locator(".fs img").count() == 6
            assert await page.locator(".fs-dur").first.inner_text() == "0:06"
            # The next clip's proxy is buffering in a hidden player before any key press.
            await page.wait_for_function(
                "(() => { const v = document.querySelector('#preload-bin video');"
                f" return v && v.src.includes('/derived/{a[3].id}/') && v.readyState >= 2; }})()"
            )
            await page.evaluate(
                "window.__pre = document.querySelector('#preload-bin video');"
                "document.addEventListener('playing', e => {"
                " if (e.target.id === 'player') window.__playing = e.target; }, true);"
            )
            await page.check("#autoplay")
            await page.evaluate("document.activeElement.blur()")
            await page.keyboard.press("p")
            await on_clip(page, a[3])
            # The buffered element itself became the player, and it plays (Autoplay on).
            assert await page.evaluate("document.querySelector('#player') === window.__pre")
            await page.wait_for_function("window.__playing === window.__pre")
            await page.wait_for_selector("#queue-pos:has-text('4 of 6')")
            await page.wait_for_selector(f".fs.decided.kept[data-id='{a[2].id}']")
            assert page.url.endswith(f"/assets/{a[3].id}?state=PROCESSED")
            # A click on the strip changes the clip too; Back returns to the previous one.
            await page.click(f".fs[data-id='{a[0].id}']")
            await on_clip(page, a[0])
            await page.go_back()
            await on_clip(page, a[3])
            await page.screenshot(path=str(ARTIFACTS / "review-filmstrip.png"))
        finally:
            await browser.close()


async def test_star_ratings_and_colour_labels_on_the_keyboard(site: Site) -> None:  # noqa: F811
    a = site.assets
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await login(page, site)
            await page.goto(f"{site.url}/assets/{a[1].id}")
            await page.wait_for_function("document.querySelector('#player').readyState >= 1")
            await page.keyboard.press("3")
            await page.wait_for_selector("#stars i.on:nth-child(3)")
            assert (await Asset.get(id=a[1].id)).rating == 3  # type: ignore[attr-defined]
            assert await page.evaluate("document.querySelector('#player').currentTime") == 0
            await page.keyboard.press("7")
            await page.wait_for_selector("#label-chip.lbl-yellow")
            assert (await Asset.get(id=a[1].id)).label == 2  # type: ignore[attr-defined]
            await page.keyboard.press("7")  # the same label again takes it off
            await page.wait_for_selector("#label-chip.lbl-none", state="attached")
            await page.keyboard.press("Control+z")  # undo: yellow again
            await page.wait_for_selector("#label-chip.lbl-yellow")
            assert (await Asset.get(id=a[1].id)).label == 2  # type: ignore[attr-defined]
            await page.wait_for_selector(f".fs[data-id='{a[1].id}'] .fs-stars:has-text('★★★')")
            # Seeking by tenths moved to Shift+digit.
            await page.keyboard.press("Shift+5")
            await page.wait_for_function(
                "Math.abs(document.querySelector('#player').currentTime - 3) < 0.5"
            )
            # In the grid: 5 stars and green on the third card; filter and sort on them.
            await page.goto(f"{site.url}/")
            await page.wait_for_selector(".card")
            await page.keyboard.press("ArrowRight")
            await page.keyboard.press("ArrowRight")
            await page.keyboard.press("5")
            await page.keyboard.press("8")
            card = f".card[data-id='{a[2].id}']"
            await page.wait_for_selector(f"{card} .lbl-green")
            assert await page.locator(f"{card} [data-stars]").inner_text() == "★★★★★"
            await page.goto(f"{site.url}/?rating=3&sort=rating&dir=desc")
            ids = await page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.id)")
            assert ids == [str(a[2].id), str(a[1].id)]
            await page.goto(f"{site.url}/?label=yellow")
            ids = await page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.id)")
            assert ids == [str(a[1].id)]
            await page.screenshot(path=str(ARTIFACTS / "library-ratings.png"), full_page=True)
        finally:
            await browser.close()


async def test_words_units_file_names_and_live_state(site: Site) -> None:  # noqa: F811
    a = site.assets
    await Facts.create(
        asset=a[3],
        version=2,
        data={
            "duration_s": 72.4,
            "display_width": 3840,
            "display_height": 2160,
            "frame_rate": 25,
            "camera_make": "Sony",
            "camera_model": "ILCE-7SM3",
        },
    )
    await Asset.filter(id=a[4].id).update(
        state=AssetState.ARCHIVED, decision="KEEP", decided_by="user:alice"
    )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await login(page, site)
            await page.wait_for_selector(".card")
            assert "Ready for review" in await page.inner_text(".card [data-badge]")
            assert "Ready for review" in await page.inner_text(".states")
            assert "50.0 MB" in await page.inner_text(".card .sub:not(.facts-line)")
            assert "DECISION_PENDING" not in await page.inner_text("main")

            # Facts in words; errors name the file, not the UUID.
            await page.goto(f"{site.url}/assets/{a[3].id}")
            side = await page.inner_text(".side")
            assert "1 min 12 s" in side and "3840×2160 · 25 fps" in side and "ILCE-7SM3" in side
            error = await page.evaluate(
                f"""fetch('/api/assets/{a[3].id}/undo', {{method: 'POST',
                    headers: {{'X-CSRF-Token': document.querySelector('meta[name=csrf]').content}}}})
                    .then(r => r.json()).then(d => d.error)"""
            )
            assert "C0003.MP4" in error and str(a[3].id) not in error, error

            # After a reopen the page says what the clip is now, not the old decision.
            await page.goto(f"{site.url}/assets/{a[4].id}")
            await page.click("form[action$='/action/reopen'] button")
            await page.wait_for_selector("#state-badge[data-state='DECISION_PENDING']")
            assert await page.inner_text("#state-badge") == "Awaiting decision"
            assert await page.inner_text("#state-now") == "Awaiting decision"
            assert "reopened since" in await page.inner_text("#earlier-decision")
            assert await page.locator("th:text-is('Decision')").count() == 0

            # Live: a reprocess finishing elsewhere refreshes the open clip page by itself.
            await page.goto(f"{site.url}/assets/{a[5].id}")
            await page.wait_for_selector("#review")
            await page.evaluate("window.__noReload = true")
            await asyncio.sleep(0.5)  # the page's event stream is connected
            await actions.reprocess(a[5].id, "user:bob", bus=site.bus)
            await page.wait_for_selector("#state-badge[data-state='READY']")
            assert await page.inner_text("#state-badge") == "Waiting for processing"
            for source, target, trigger in (
                (AssetState.READY, AssetState.PROCESSING_REVIEW, Trigger.CLAIM),
                (AssetState.PROCESSING_REVIEW, AssetState.PROCESSED, Trigger.PROCESSED),
            ):
                await transition(a[5].id, source, target, trigger, "agent:test", bus=site.bus)
            await page.wait_for_selector("#state-badge[data-state='PROCESSED']")
            assert await page.evaluate("window.__noReload === true")
            await page.screenshot(path=str(ARTIFACTS / "review-words.png"), full_page=True)
        finally:
            await browser.close()


async def test_player_timecode_frame_step_shuttle_and_speed(site: Site) -> None:  # noqa: F811
    a = site.assets
    await Facts.create(
        asset=a[0], version=2, data={"duration_s": 6.0, "timecode": "10:00:00:00", "frame_rate": 25}
    )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await login(page, site)
            await page.goto(f"{site.url}/assets/{a[0].id}")
            await page.wait_for_function("document.querySelector('#player').readyState >= 1")
            await page.wait_for_selector("#tc:text-is('10:00:00:00')")
            # Frame step: . forward, , back, one frame (1/25 s) each, paused.
            for _ in range(3):
                await page.keyboard.press(".")
            await page.wait_for_selector("#tc:text-is('10:00:00:03')")
            await page.keyboard.press(",")
            await page.wait_for_selector("#tc:text-is('10:00:00:02')")
            assert await page.evaluate("document.querySelector('#player').paused")
            # Speed keys.
            await page.keyboard.press("]")
            assert await page.evaluate("document.querySelector('#player').playbackRate") == 1.5
            await page.keyboard.press("[")
            await page.keyboard.press("[")
            assert await page.evaluate("document.querySelector('#player').playbackRate") == 0.5
            # J/K/L shuttle while the player has focus: L plays, L again doubles, K stops.
            await page.focus("#player")
            await page.keyboard.press("l")
            await page.wait_for_function("!document.querySelector('#player').paused")
            await page.keyboard.press("l")
            assert await page.evaluate("document.querySelector('#player').playbackRate") == 2
            await page.keyboard.press("k")
            await page.wait_for_function("document.querySelector('#player').paused")
            assert await page.evaluate("location.pathname") == f"/assets/{a[0].id}"
            t = await page.evaluate("document.querySelector('#player').currentTime")
            await page.keyboard.press("j")  # backward
            await page.wait_for_function(
                f"document.querySelector('#player').currentTime < {t} - 0.1"
            )
            await page.keyboard.press("k")
            # Without the focus on the player, J is the next clip again (in place).
            await page.evaluate("document.activeElement.blur()")
            await page.keyboard.press("j")
            await on_clip(page, a[1])
            await page.wait_for_function("document.querySelector('#player').readyState >= 1")
            await page.wait_for_selector("#tc:text-is('00:00:00:00')")  # elapsed: no timecode
        finally:
            await browser.close()


async def test_grid_cards_say_what_each_clip_is(site: Site) -> None:  # noqa: F811
    a = site.assets
    await Facts.create(
        asset=a[0],
        version=2,
        data={
            "duration_s": 72.4,
            "display_width": 3840,
            "display_height": 2160,
            "frame_rate": 25,
            "camera_model": "ILCE-7SM3",
            "created_at": "2026-06-14T10:30:00.000000Z",
        },
    )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await login(page, site)
            await page.wait_for_selector(".card")
            first = f".card[data-id='{a[0].id}']"
            assert await page.inner_text(f"{first} .dur") == "1 min 12 s"
            line = await page.inner_text(f"{first} .facts-line")
            assert line == "2026-06-14 10:30 · 3840×2160 · 25 fps · ILCE-7SM3", line
            assert await page.inner_text(f".card[data-id='{a[1].id}'] .dur") == "6.0 s"
            # Grouping by capture day: the shoot day, then the file date of the others.
            await page.select_option("#group-by", "day")
            heads = await page.locator(".grid .group").all_inner_texts()
            assert heads[0] == "2026-06-14" and len(heads) == 2, heads
            await page.select_option("#group-by", "folder")
            assert await page.locator(".grid .group").all_inner_texts() == ["INBOX/2026-06 wedding"]
            # Thumbnail size: fewer, wider cards; kept after a reload.
            before = await page.eval_on_selector(first, "e => e.getBoundingClientRect().width")
            await page.fill("#thumb-size", "400")
            await page.dispatch_event("#thumb-size", "input")
            await page.reload()
            await page.wait_for_selector(".card")
            after = await page.eval_on_selector(first, "e => e.getBoundingClientRect().width")
            assert after > before * 1.5, (before, after)
            assert await page.locator(".grid .group").count() == 1  # the grouping stayed too
            await page.screenshot(path=str(ARTIFACTS / "library-cards.png"), full_page=True)
        finally:
            await browser.close()


SWIPE_JS = """([dx]) => {
  const stage = document.querySelector('.stage');
  const box = stage.getBoundingClientRect();
  const x = box.left + box.width / 2, y = box.top + 80;
  const ev = (type, cx) => stage.dispatchEvent(new PointerEvent(type, {
    pointerType: 'touch', pointerId: 7, isPrimary: true, bubbles: true, clientX: cx, clientY: y}));
  ev('pointerdown', x); ev('pointermove', x + dx / 2); ev('pointerup', x + dx);
}"""


async def test_phone_operations_page_filters_and_swipe(site: Site) -> None:  # noqa: F811
    from rush.models import Agent

    a = site.assets
    await Agent.create(
        id="nas-transcoder-with-a-long-name",
        hostname="very-long-hostname.example.lan",
        version="1.2.3-rc4",
        capabilities={k: True for k in ("ffmpeg", "whisper", "vosk", "exif", "hwaccel-vaapi")},
        online=True,
    )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = await browser.new_context(
                viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
            )
            page = await ctx.new_page()
            await login(page, site)
            await page.goto(site.url + "/ops")
            await page.wait_for_load_state("networkidle")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            await page.screenshot(path=str(ARTIFACTS / "ops-phone.png"), full_page=True)
            # The filter form folds to one line; the button opens it.
            await page.goto(site.url + "/?kind=video")
            box = await page.locator("#filters").bounding_box()
            assert box is not None and box["height"] < 80, box
            assert "(1)" in await page.inner_text("[data-filters-toggle]")
            await page.click("[data-filters-toggle]")
            assert await page.is_visible("#filters select[name=kind]")
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            # Swipe right keeps, left rejects, each then shows the next clip.
            await page.goto(f"{site.url}/assets/{a[0].id}?state=PROCESSED")
            await page.wait_for_selector("#queue-pos:has-text('1 of 6')")
            await page.evaluate(SWIPE_JS, [160])
            await on_clip(page, a[1])
            await page.wait_for_selector("#queue-pos:has-text('2 of 6')")
            await page.evaluate(SWIPE_JS, [-160])
            await on_clip(page, a[2])
            await page.evaluate(SWIPE_JS, [30])  # too short: nothing
            await page.wait_for_selector("body:not([data-pending])")
            assert [await state_of(x) for x in a[:3]] == [
                AssetState.DECIDED_KEEP,
                AssetState.DECIDED_REJECT,
                AssetState.PROCESSED,
            ]
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            await page.screenshot(path=str(ARTIFACTS / "asset-phone-swipe.png"), full_page=True)
        finally:
            await browser.close()


async def test_grid_multi_select_and_bulk_actions(site: Site) -> None:  # noqa: F811
    a = site.assets
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await login(page, site)
            await page.wait_for_selector(".card")
            # Shift+arrows from the first card select three; P keeps all three.
            await page.keyboard.press("Shift+ArrowRight")
            await page.keyboard.press("Shift+ArrowRight")
            await page.wait_for_selector("#sel-count:has-text('3 selected')")
            await page.keyboard.press("p")
            await page.wait_for_selector("#toast.show:has-text('3 clips changed')")
            assert [await state_of(x) for x in a[:4]] == [AssetState.DECIDED_KEEP] * 3 + [
                AssetState.PROCESSED
            ]
            # One Ctrl+Z takes the whole bulk back.
            await page.keyboard.press("Control+z")
            await page.wait_for_selector("#toast.show:has-text('Undone')")
            assert [await state_of(x) for x in a[:3]] == [AssetState.DECISION_PENDING] * 3
            # Ctrl-click two cards apart, then 4 stars on both; Esc clears the selection.
            await page.keyboard.press("Escape")
            await page.click(f".card[data-id='{a[1].id}']", modifiers=["Control"])
            await page.click(f".card[data-id='{a[4].id}']", modifiers=["Control"])
            assert page.url.endswith("/")  # a modified click selects, it does not open
            await page.keyboard.press("4")
            await page.wait_for_selector("#toast.show:has-text('2 clips changed')")
            ratings = [(await Asset.get(id=x.id)).rating for x in a[:5]]  # type: ignore[attr-defined]
            assert ratings == [0, 4, 0, 0, 4]
            await page.keyboard.press("Escape")
            assert await page.locator(".card.sel").count() == 0
        finally:
            await browser.close()


async def test_linked_audio_offers_recordings_of_neighbouring_folders(site: Site) -> None:  # noqa: F811
    from tests.webutil import make_asset

    video = await make_asset(rel="INBOX/2026-06 wedding/A-cam/C0100.MP4")
    shot = {"duration_s": 120.0, "created_at": "2026-06-14T10:30:00Z"}
    await Facts.create(asset=video, version=1, data=shot)
    from rush.media import MediaKind

    recordings = {}
    for name, start, length in (
        ("Sound/ZOOM0001.WAV", "2026-06-14T08:00:00Z", 600.0),  # same day, no overlap
        ("Sound/ZOOM0002.WAV", "2026-06-14T10:29:00Z", 300.0),  # covers the video
        ("Sound/ZOOM0003.WAV", "2026-06-13T10:30:00Z", 300.0),  # the day before
    ):
        rec = await make_asset(kind=MediaKind.AUDIO, rel=f"INBOX/2026-06 wedding/{name}")
        await Facts.create(asset=rec, version=1, data={"duration_s": length, "created_at": start})
        recordings[name] = rec
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await login(page, site)
            await page.goto(f"{site.url}/assets/{video.id}")
            options = await page.locator("#link-audio option").all_inner_texts()
            assert options[1].startswith("ZOOM0002.WAV — overlaps 2 min 00 s"), options
            assert options[2].startswith("ZOOM0001.WAV — same day"), options
            assert options[3].startswith("ZOOM0003.WAV"), options
            await page.select_option("#link-audio", str(recordings["Sound/ZOOM0002.WAV"].id))
            await page.wait_for_selector(".linked")
            linked = (await Asset.get(id=video.id)).linked_audio_id  # type: ignore[attr-defined]
            assert linked == recordings["Sound/ZOOM0002.WAV"].id
        finally:
            await browser.close()
