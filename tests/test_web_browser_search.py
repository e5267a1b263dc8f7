"""Search to the second in a real Chromium: type a spoken word in the search box, click
the transcript hit, and the player is at that word."""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from rush import search
from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS, Site, login, site  # noqa: F401

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]


async def test_click_a_transcript_hit_lands_the_player_on_the_word(site: Site) -> None:  # noqa: F811
    await search.index_changed()
    first = site.assets[0]
    spoken_at = 0.5 + 6 * 0.6  # "arch", the 7th word of the fixture's transcript
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await login(page, site)
            await page.fill("#search", "ARCH")
            await page.press("#search", "Enter")
            await page.wait_for_selector("#hits a.hit")
            hits = await page.locator("#hits a.hit").all()
            assert len(hits) == 1
            assert "arch" in (await hits[0].inner_text())
            await hits[0].click()
            await page.wait_for_url(f"**/assets/{first.id}?t=*")
            await page.wait_for_function(
                "() => { const p = document.getElementById('player');"
                " return p && p.readyState >= 1 && p.currentTime > 0; }"
            )
            current = await page.evaluate("document.getElementById('player').currentTime")
            assert abs(current - spoken_at) < 1.0, current
            highlighted = await page.locator(".transcript .w.hit").all_inner_texts()
            assert highlighted == ["arch"]
        finally:
            await browser.close()
