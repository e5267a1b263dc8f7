"""The review UI in a real Chromium: log in, cull with the keyboard only, seek, tag.

Real app (the `WebServer` actor on a free port), real SQLite database, real media made
by ffmpeg (proxy, poster, thumbs) and real peaks JSON computed from the audio.
Screenshots land in `test-artifacts/` for a human look.
"""

from __future__ import annotations

import array
import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, Response, async_playwright

from rush.events import EventBus
from rush.layout import init_library
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Asset, Derivative, Facts, Suggestion, Tag, Transcript
from rush.storage import close_db, init_db
from rush.users import add_user
from tests.conftest import REPO_ROOT
from tests.webutil import ffmpeg, make_asset, web_config
from web.app import WebServer
from web.services import default_services

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Media:
    proxy: Path
    poster: Path
    thumbs: list[Path]
    peaks: Path


def make_media(folder: Path) -> Media:
    """A 6 s 320x180 H.264/AAC proxy, a poster, 4 thumbs and peaks JSON from its audio."""
    folder.mkdir(parents=True, exist_ok=True)
    proxy = folder / "proxy.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
        "-f", "lavfi", "-i", "aevalsrc=sin(2*PI*330*t)*(0.15+0.85*abs(sin(PI*t/1.7))):s=44100:d=6",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
        "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", "-shortest", str(proxy),
    )  # fmt: skip
    poster = folder / "poster.jpg"
    ffmpeg("-ss", "1", "-i", str(proxy), "-frames:v", "1", "-q:v", "4", str(poster))
    ffmpeg("-i", str(proxy), "-vf", "fps=4/6,scale=160:-2", "-q:v", "5", str(folder / "t%02d.jpg"))
    thumbs = sorted(folder.glob("t*.jpg"))
    raw = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(proxy), "-ac", "1", "-ar", "8000",
         "-f", "s16le", "-"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    samples = array.array("h", raw)
    step = max(1, len(samples) // 300)
    peaks = [
        round(max(abs(x) for x in samples[i : i + step]) / 32768, 3)
        for i in range(0, len(samples), step)
    ]
    peaks_path = folder / "peaks.json"
    peaks_path.write_text(json.dumps({"duration": 6.0, "peaks": peaks}))
    return Media(proxy, poster, thumbs, peaks_path)


async def attach(root: Path, asset: Asset, media: Media) -> None:
    """Copy the media into the asset's `.derived/{uuid}/v1/` and register the rows."""
    target = root / ".derived" / str(asset.id) / "v1"
    target.mkdir(parents=True, exist_ok=True)
    files = [("proxy", media.proxy, "video/mp4"), ("poster", media.poster, "image/jpeg")]
    files += [("thumb", t, "image/jpeg") for t in media.thumbs]
    files += [("waveform_json", media.peaks, "application/json")]
    for role, src, mime in files:
        shutil.copy(src, target / src.name)
        await Derivative.create(
            asset=asset,
            version=1,
            role=role,
            rel_path=f".derived/{asset.id}/v1/{src.name}",
            size=src.stat().st_size,
            mime=mime,
        )


@dataclass
class Site:
    url: str
    root: Path
    assets: list[Asset]
    bus: EventBus | None = None  # the server's bus: what it publishes, the pages see live


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    await init_db(f"sqlite://{tmp_path / 'rush.db'}")
    try:
        root = tmp_path / "lib"
        init_library(root)
        media = make_media(tmp_path / "media")
        await add_user("alice", "correct horse")
        assets = []
        for i in range(6):
            a = await make_asset(rel=f"INBOX/2026-06 wedding/C{i:04d}.MP4", size=50_000_000 + i)
            await attach(root, a, media)
            await Facts.create(
                asset=a,
                version=1,
                data={"duration": 6.0, "video": {"codec": "h264", "width": 3840}},
            )
            assets.append(a)
        first = assets[0]
        await Suggestion.create(asset=first, version=1, tag="beach", score=0.92)
        await Suggestion.create(asset=first, version=1, tag="sunset", score=0.71)
        words = [
            {"word": w, "start": 0.5 + i * 0.6, "end": 0.9 + i * 0.6, "conf": 0.9}
            for i, w in enumerate(["the", "bride", "walks", "in", "under", "the", "arch"])
        ]
        await Transcript.create(
            asset=first,
            version=1,
            language="en",
            text=" ".join(w["word"] for w in words),
            words=words,
        )
        config = web_config(tmp_path, root)
        config.web.port = free_port()
        bus = EventBus()
        server = WebServer(config, default_services(config, bus=bus))
        async with asyncio.TaskGroup() as group:
            task = group.create_task(server.run())
            for _ in range(100):
                if server.port:
                    break
                await asyncio.sleep(0.05)
            try:
                yield Site(f"http://127.0.0.1:{server.port}", root, assets, bus)
            finally:
                task.cancel()
    finally:
        await close_db()


async def state_of(asset: Asset) -> str:
    return str((await Asset.get(id=asset.id)).state)


async def login(page: Page, site: Site) -> None:
    await page.goto(site.url + "/")
    assert "/login" in page.url
    await page.fill("input[name=username]", "alice")
    await page.fill("input[name=password]", "correct horse")
    await page.press("input[name=password]", "Enter")
    await page.wait_for_url(site.url + "/")


async def test_keyboard_culling_player_and_tags(site: Site) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            ranges: list[Response] = []
            page.on(
                "response",
                lambda r: ranges.append(r) if r.request.headers.get("range") else None,
            )
            await login(page, site)
            await page.wait_for_selector(".card img")
            await page.screenshot(path=str(ARTIFACTS / "library.png"), full_page=True)

            # Cull five assets with the keyboard only: Enter opens the focused card,
            # P/X decide and auto-advance to the next asset.
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"**/assets/{site.assets[0].id}**")
            await page.wait_for_selector("#player")
            await page.screenshot(path=str(ARTIFACTS / "asset.png"), full_page=True)
            plan = ["p", "x", "p", "p", "x"]
            for i, key in enumerate(plan):
                await page.wait_for_url(f"**/assets/{site.assets[i].id}**")
                await page.wait_for_selector("#review")
                await page.keyboard.press(key)
                await page.wait_for_url(f"**/assets/{site.assets[i + 1].id}**")
            await page.wait_for_selector("body:not([data-pending])")  # decisions answered
            expected = [
                "DECIDED_KEEP",
                "DECIDED_REJECT",
                "DECIDED_KEEP",
                "DECIDED_KEEP",
                "DECIDED_REJECT",
            ]
            assert [await state_of(a) for a in site.assets[:5]] == expected
            assert await state_of(site.assets[5]) == AssetState.PROCESSED

            # Back (K) and undo (U) the last decision, still without the mouse.
            await page.keyboard.press("k")
            await page.wait_for_url(f"**/assets/{site.assets[4].id}**")
            await page.wait_for_selector("#review")
            await page.keyboard.press("u")
            await page.wait_for_function(
                "document.querySelector('#state-badge').dataset.state === 'DECISION_PENDING'"
            )
            assert await state_of(site.assets[4]) == AssetState.DECISION_PENDING

            # The player: keyboard seek (5 = 50 %), then a click on the waveform at 80 %.
            await page.wait_for_function("document.querySelector('#player').readyState >= 1")
            assert await page.evaluate("document.querySelector('#player').currentTime") == 0
            await page.keyboard.press("Shift+5")
            await page.wait_for_function(
                "Math.abs(document.querySelector('#player').currentTime - 3) < 0.5"
            )
            box = await page.locator("#waveform").bounding_box()
            assert box is not None
            await page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
            await page.wait_for_function(
                "Math.abs(document.querySelector('#player').currentTime - 4.8) < 0.5"
            )
            assert any(r.status == 206 and "/derived/" in r.url for r in ranges), [
                (r.url, r.status) for r in ranges
            ]

            # First asset: transcript click-to-seek, accept a suggestion, add a tag.
            await page.goto(f"{site.url}/assets/{site.assets[0].id}")
            await page.wait_for_function("document.querySelector('#player').readyState >= 1")
            await page.click(".transcript .w:nth-of-type(3)")
            await page.wait_for_function(
                "Math.abs(document.querySelector('#player').currentTime - 1.7) < 0.4"
            )
            await page.click('[data-accept="beach"]')
            await page.wait_for_selector("#tags li:has-text('beach')")
            await page.evaluate("document.activeElement.blur()")
            await page.keyboard.press("t")
            await page.keyboard.type("golden hour")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("#tags li:has-text('golden hour')")
            tags = sorted(
                await Tag.filter(asset_id=site.assets[0].id).values_list("name", flat=True)
            )
            assert tags == ["beach", "golden hour"]
            assert (await Suggestion.get(asset_id=site.assets[0].id, tag="beach")).accepted
            await page.keyboard.press("Escape")
            await page.keyboard.press("?")
            assert await page.is_visible("#help")
            await page.screenshot(path=str(ARTIFACTS / "help.png"))
            await page.keyboard.press("?")
            await page.screenshot(path=str(ARTIFACTS / "asset-tagged.png"), full_page=True)
            await page.goto(f"{site.url}/ops")
            await page.screenshot(path=str(ARTIFACTS / "ops.png"), full_page=True)
            await page.goto(f"{site.url}/")
            await page.wait_for_selector(".card img")
            badges = await page.eval_on_selector_all(
                "[data-badge]", "els => els.map(e => e.dataset.state)"
            )
            assert badges[:3] == ["DECIDED_KEEP", "DECIDED_REJECT", "DECIDED_KEEP"]
            words = await page.locator("[data-badge]").all_inner_texts()
            assert words[:3] == ["Keep", "Reject", "Keep"]
            await page.screenshot(path=str(ARTIFACTS / "library-culled.png"), full_page=True)
        finally:
            await browser.close()


async def test_audio_asset_and_linked_audio(site: Site, tmp_path: Path) -> None:
    """An audio recording linked to a video: shown on both, playable together."""
    wav = tmp_path / "rec.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:duration=6", "-c:a", "aac", str(wav))
    audio = await make_asset(kind=MediaKind.AUDIO, rel="INBOX/2026-06 wedding/ZOOM0001.WAV")
    folder = site.root / ".derived" / str(audio.id) / "v1"
    folder.mkdir(parents=True)
    shutil.copy(wav, folder / "proxy.m4a")
    await Derivative.create(
        asset=audio, version=1, role="proxy", rel_path=f".derived/{audio.id}/v1/proxy.m4a",
        size=wav.stat().st_size, mime="audio/mp4",
    )  # fmt: skip
    video = site.assets[1]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await login(page, site)
            await page.goto(f"{site.url}/assets/{video.id}")
            await page.select_option("#link-audio", str(audio.id))
            await page.wait_for_selector("#linked-audio", state="attached")
            assert (await Asset.get(id=video.id)).linked_audio_id == audio.id  # type: ignore[attr-defined]
            await page.wait_for_function("document.querySelector('#player').readyState >= 1")
            await page.keyboard.press("a")
            assert await page.evaluate("document.querySelector('#player').muted")
            await page.keyboard.press("Shift+5")
            await page.wait_for_function(
                "Math.abs(document.querySelector('#linked-audio').currentTime - 3) < 0.5"
            )
            await page.goto(f"{site.url}/assets/{audio.id}")
            assert await page.is_visible(f"a[href='/assets/{video.id}']")
            await page.click(f"[data-unlink='{video.id}']")
            # The page re-renders in place (no navigation): wait for the link to go.
            await page.wait_for_selector(f"[data-unlink='{video.id}']", state="detached")
            assert (await Asset.get(id=video.id)).linked_audio_id is None  # type: ignore[attr-defined]
        finally:
            await browser.close()


async def test_review_fits_a_phone(site: Site) -> None:
    """Culling on a phone: no page wider than the screen, Keep/Reject within reach."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await login(page, site)
            await page.wait_for_selector(".card img")
            for path in ("/", f"/assets/{site.assets[0].id}"):
                await page.goto(site.url + path)
                await page.wait_for_load_state("networkidle")
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (path, width)
            await page.screenshot(path=str(ARTIFACTS / "asset-phone.png"), full_page=True)
            for button in ("button.keep", "button.reject"):
                box = await page.locator(button).bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        finally:
            await browser.close()
