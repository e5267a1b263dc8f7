"""The web UI's edges in a real Chromium: what Back shows after a logout, and errors
that come back in the page the person was on.

Real app (the `WebServer` actor on a free port), real SQLite database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from rush.events import EventBus
from rush.layout import init_library
from rush.storage import close_db, init_db
from rush.users import add_user
from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS, free_port
from tests.webutil import make_asset, web_config
from web.app import WebServer
from web.services import default_services

pytestmark = [pytest.mark.slow]


@dataclass
class Site:
    url: str
    root: Path


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    await init_db(f"sqlite://{tmp_path / 'rush.db'}")
    try:
        root = tmp_path / "lib"
        init_library(root)
        await add_user("alice", "correct horse")
        for i in range(3):
            await make_asset(rel=f"INBOX/2026-06 wedding/SECRET{i:04d}.MP4")
        config = web_config(tmp_path, root)
        config.web.port = free_port()
        server = WebServer(config, default_services(config, bus=EventBus()))
        async with asyncio.TaskGroup() as group:
            task = group.create_task(server.run())
            for _ in range(100):
                if server.port:
                    break
                await asyncio.sleep(0.05)
            try:
                yield Site(f"http://127.0.0.1:{server.port}", root)
            finally:
                task.cancel()
    finally:
        await close_db()


async def login(page: Page, site: Site) -> None:
    await page.goto(site.url + "/")
    await page.fill("input[name=username]", "alice")
    await page.fill("input[name=password]", "correct horse")
    await page.press("input[name=password]", "Enter")
    await page.wait_for_url(site.url + "/")


async def test_back_after_logout_shows_no_user_data(site: Site) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await login(page, site)
            assert "SECRET0000" in await page.content()
            await page.goto(site.url + "/ops")
            await page.goto(site.url + "/")
            await page.click("form[action='/logout'] button")
            await page.wait_for_url("**/login*")
            await page.go_back()
            await page.wait_for_load_state()
            assert "SECRET0000" not in await page.content(), page.url
        finally:
            await browser.close()


async def test_errors_come_back_in_the_page(site: Site) -> None:
    """A duplicate bin name and an apply run without its confirmation: the person stays
    on the page (full layout, navigation) and reads why, in words."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await login(page, site)
            await page.goto(site.url + "/bins")
            for _ in range(2):
                await page.fill("form[action='/bins'] input[name=name]", "Wedding")
                await page.click("form[action='/bins'] button")
                await page.wait_for_load_state()
            assert page.url == site.url + "/bins"
            message = page.locator("p.flash.error")
            assert await message.count() == 1
            assert "A bin named “Wedding” exists already" in await message.inner_text()
            assert await page.locator("header.top nav").count() == 1  # a page, not bare text
            await page.reload()
            assert await page.locator("p.flash.error").count() == 0  # shown once
        finally:
            await browser.close()
