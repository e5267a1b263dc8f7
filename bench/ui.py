"""Web UI benchmark: library and asset pages over 100,000 assets, and the review desk.

Fills a fresh database (SQLite by default, `--dsn postgres://...` for PostgreSQL) with
N assets (a poster each, tags, structured fields, some transcripts) by bulk inserts,
starts the real web server in a child process (`rush`'s app factory, AppRunner/TCPSite),
logs in over HTTP and measures the server time of pages (the app's `Server-Timing`
header, median of several runs) and the server's resident memory.

Then a real Chromium (Debian's /usr/bin/chromium through playwright) culls a folder of
real clips (H.264 proxies made by ffmpeg) with `P`/`X`, Autoplay on, and `next_clip_ms`
is the median time from the key press to the next clip's `playing` event.

    python bench/ui.py            # 100,000 assets
    python bench/ui.py --quick    # 10,000 assets

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from playwright.async_api import async_playwright

from rush.config import Config
from rush.layout import init_library
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Asset, Derivative, Facts, Tag, Transcript
from rush.storage import close_db, init_db
from rush.users import add_user

STATES = [
    (AssetState.PROCESSED, 40),
    (AssetState.DECISION_PENDING, 5),
    (AssetState.DECIDED_KEEP, 10),
    (AssetState.DECIDED_REJECT, 5),
    (AssetState.READY, 10),
    (AssetState.ARCHIVED, 20),
    (AssetState.REJECTED, 10),
]
KINDS = [(MediaKind.VIDEO, 60), (MediaKind.PHOTO, 30), (MediaKind.AUDIO, 10)]
TAGS = ["beach", "drone", "interview", "b-roll", "sunset", "crowd", "wedding", "night"]
PROJECTS = ["Film A", "Film B", "Documentary", "Clips"]
CSRF_RE = re.compile(r'name="csrf" content="([^"]*)"')
CHROMIUM = "/usr/bin/chromium"
REVIEW_FOLDER = "INBOX/zz review bench"


def pick(rng: random.Random, table: list[tuple[object, int]]) -> object:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120
    )


async def review_clips(root: Path, count: int) -> list[uuid.UUID]:
    """`count` PROCESSED videos with a real 6 s 640x360 proxy and poster each (one ffmpeg
    run, hard links), in their own folder at the end of the path order."""
    media = root / "bench-media"
    media.mkdir()
    proxy, poster = media / "proxy.mp4", media / "poster.jpg"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
        "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", "-shortest", str(proxy),
    )  # fmt: skip
    ffmpeg("-ss", "1", "-i", str(proxy), "-frames:v", "1", "-q:v", "4", str(poster))
    ids = []
    for i in range(count):
        rel = f"{REVIEW_FOLDER}/R{i:04d}.MP4"
        asset = await Asset.create(
            kind=MediaKind.VIDEO, rel_path=rel, path_key=rel, state=AssetState.PROCESSED, size=1
        )
        folder = root / ".derived" / str(asset.id) / "v1"
        folder.mkdir(parents=True)
        for role, src in (("proxy", proxy), ("poster", poster)):
            os.link(src, folder / src.name)
            await Derivative.create(
                asset=asset,
                version=1,
                role=role,
                rel_path=f".derived/{asset.id}/v1/{src.name}",
                size=src.stat().st_size,
                mime="video/mp4" if role == "proxy" else "image/jpeg",
            )
        await Facts.create(asset=asset, version=1, data={"duration_s": 6.0, "frame_rate": 25})
        ids.append(asset.id)
    return ids


async def fill(dsn: str, n: int, root: Path, clips: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Bulk-insert n assets with one poster each, plus `clips` real clips for the browser
    run; returns a PROCESSED video's id and the clips' ids."""
    await init_db(dsn)
    rng = random.Random(42)
    sample: uuid.UUID | None = None
    chunk = 5000
    now = datetime.now(UTC)
    for start in range(0, n, chunk):
        assets = []
        for i in range(start, min(n, start + chunk)):
            kind = pick(rng, KINDS)
            state = pick(rng, STATES)
            ext = {"video": "MP4", "photo": "JPG", "audio": "WAV"}[str(kind)]
            rel = f"INBOX/{2020 + i % 6}-{1 + i % 12:02d} shoot {i // 500}/C{i:06d}.{ext}"
            fields = {}
            if i % 3 == 0:
                fields = {"project": rng.choice(PROJECTS), "rating": rng.randint(0, 5)}
            decision = {"DECIDED_KEEP": "KEEP", "ARCHIVED": "KEEP"}.get(str(state))
            decision = decision or {"DECIDED_REJECT": "REJECT", "REJECTED": "REJECT"}.get(
                str(state)
            )
            assets.append(
                Asset(
                    id=uuid.uuid4(),
                    kind=kind,
                    rel_path=rel,
                    path_key=rel,
                    size=rng.randint(10**6, 4 * 10**9),
                    mtime=1_600_000_000 + i * 1500.0,
                    state=state,
                    state_changed_at=now,
                    decision=decision,
                    fields_data=fields,
                    rating=fields.get("rating", 0),
                    label=i % 7 if i % 7 < 5 else 0,
                )
            )
        await Asset.bulk_create(assets, batch_size=1000)
        derivs = [
            Derivative(
                asset_id=a.id,
                version=1,
                role="poster" if a.kind != MediaKind.PHOTO else "thumb",
                rel_path=f".derived/{a.id}/v1/poster.jpg",
                size=20_000,
                mime="image/jpeg",
            )
            for a in assets
            if a.state != AssetState.READY
        ]
        await Derivative.bulk_create(derivs, batch_size=1000)
        # The facts a library card shows (duration, picture, camera, capture time).
        facts = [
            Facts(
                asset_id=a.id,
                version=1,
                data={
                    "duration_s": 5 + (a.size % 600),
                    "display_width": 3840,
                    "display_height": 2160,
                    "frame_rate": 25,
                    "camera_model": "ILCE-7SM3",
                    "created_at": "2024-06-14T10:30:00Z",
                },
            )
            for a in assets
            if a.state != AssetState.READY
        ]
        await Facts.bulk_create(facts, batch_size=1000)
        tags = [Tag(asset_id=a.id, name=rng.choice(TAGS)) for a in assets if rng.random() < 0.2]
        await Tag.bulk_create(tags, batch_size=1000)
        transcripts = [
            Transcript(asset_id=a.id, version=1, language="en", text="hello and welcome " * 20)
            for a in assets
            if a.kind != MediaKind.PHOTO and rng.random() < 0.02
        ]
        await Transcript.bulk_create(transcripts, batch_size=1000)
        for a in assets:
            if sample is None and a.state == AssetState.PROCESSED and a.kind == MediaKind.VIDEO:
                sample = a.id
        print(f"  inserted {min(n, start + chunk)} / {n}", file=sys.stderr)
    await add_user("bench", "bench-password")
    clip_ids = await review_clips(root, clips)
    # Fresh planner statistics, as PostgreSQL's autovacuum (or a periodic ANALYZE) would give.
    from tortoise import connections

    await connections.get("default").execute_script("ANALYZE")
    await close_db()
    assert sample is not None
    return sample, clip_ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def serve(dsn: str, root: str, data_dir: str, port: int) -> None:
    """Child process: the real app factory on a real socket, until killed."""
    from aiohttp import web

    from web.app import create_app
    from web.services import default_services

    config = Config.model_validate(
        {
            "data_dir": data_dir,
            "library": {"root": root},
            "database": {"dsn": dsn},
            "web": {"port": port, "session_secret": "bench-secret-bench-secret"},
        }
    )
    await init_db(config.database_url())
    runner = web.AppRunner(create_app(config, default_services(config)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await close_db()


async def timed(session: aiohttp.ClientSession, url: str, runs: int) -> tuple[float, float]:
    """(first, median of the next runs) server time in ms, from the Server-Timing header."""
    times = []
    for _ in range(runs + 1):
        async with session.get(url) as resp:
            assert resp.status == 200, (url, resp.status, (await resp.text())[:300])
            html = await resp.text()
            # A page that renders nothing would be fast for the wrong reason.
            assert 'class="card"' in html or 'id="review"' in html, url
            header = resp.headers.get("Server-Timing", "")
            match = re.search(r"dur=([0-9.]+)", header)
            assert match, header
            times.append(float(match.group(1)))
    return times[0], statistics.median(times[1:])


async def timed_json(session: aiohttp.ClientSession, url: str, runs: int) -> float:
    """Median server time of a JSON endpoint (Server-Timing)."""
    times = []
    for _ in range(runs):
        async with session.get(url) as resp:
            assert resp.status == 200, (url, resp.status, (await resp.text())[:300])
            assert (await resp.json())["items"], url
            match = re.search(r"dur=([0-9.]+)", resp.headers.get("Server-Timing", ""))
            assert match, url
            times.append(float(match.group(1)))
    return statistics.median(times)


#: Installed in the page: key press (P/X) -> the next clip's `playing`, in ms.
PROBE_JS = """
window.__marks = [];
window.__steps = [];
document.addEventListener("keydown", (e) => {
  if (e.key === "p" || e.key === "x") {
    window.__t0 = performance.now();
    performance.clearMarks();
  }
}, true);
document.addEventListener("playing", (e) => {
  if (e.target.id === "player" && window.__t0 !== undefined) {
    const at = (name) => {
      const m = performance.getEntriesByName(name, "mark")[0];
      return m ? Math.round(m.startTime - window.__t0) : null;
    };
    window.__marks.push(performance.now() - window.__t0);
    window.__steps.push([at("rc:sent"), at("rc:shown")]);
    window.__t0 = undefined;
  }
}, true);
"""
#: The next clip is buffering (what a person looking at the current clip leaves time for).
NEXT_READY_JS = """(next) => {
  const v = document.querySelector('#preload-bin video');
  return !!v && v.src.includes('/derived/' + next + '/') && v.readyState >= 3;
}"""


async def browse(base: str, clips: list[uuid.UUID]) -> list[float]:
    """Decide-and-advance through `clips` in a real Chromium; ms per advance."""
    from urllib.parse import quote

    qs = f"state=PROCESSED&folder={quote(REVIEW_FOLDER)}"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        try:
            # bypass_csp: the probes below are evaluated strings (the app's own CSP forbids eval).
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            await page.goto(base + "/login")
            await page.fill("input[name=username]", "bench")
            await page.fill("input[name=password]", "bench-password")
            await page.press("input[name=password]", "Enter")
            await page.wait_for_url(base + "/")
            await page.evaluate("localStorage.setItem('rc.autoplay', '1')")
            await page.add_init_script(PROBE_JS)
            await page.goto(f"{base}/assets/{clips[0]}?{qs}")
            for i, clip in enumerate(clips[:-1]):
                await page.wait_for_selector(f"#review[data-id='{clip}']")
                await page.wait_for_function(NEXT_READY_JS, arg=str(clips[i + 1]))
                await page.keyboard.press("p" if i % 3 else "x")
                await page.wait_for_function(f"window.__marks.length === {i + 1}")
            marks: list[float] = await page.evaluate("window.__marks")
            steps = await page.evaluate("window.__steps")
            print("  sent / shown ms: " + " ".join(f"{a}/{b}" for a, b in steps), file=sys.stderr)
            return marks
        finally:
            await browser.close()


async def measure(base: str, sample: uuid.UUID, runs: int, n: int) -> dict[str, float]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        html = await (await session.get(base + "/login")).text()
        token = CSRF_RE.search(html).group(1)  # type: ignore[union-attr]
        async with session.post(
            base + "/login",
            data={"username": "bench", "password": "bench-password", "_csrf": token},
        ) as resp:
            assert resp.status == 200 and "/login" not in str(resp.url), resp.url
        pages = {
            "library_all": "/",
            "library_filtered": "/?state=PROCESSED&kind=video&sort=mtime&dir=desc",
            "library_tag_project": "/?tag=beach&project=Film+A&sort=path",
            "library_deep_page": f"/?state=ARCHIVED&page={max(2, n // 600)}",
            "library_transcript": "/?q=welcome",
            "library_rating": "/?state=PROCESSED&rating=3&sort=rating&dir=desc",
            "library_label": "/?label=green&sort=label",
            "asset": f"/assets/{sample}?state=PROCESSED&kind=video&sort=mtime&dir=desc",
        }
        out: dict[str, float] = {}
        for name, path in pages.items():
            first, median = await timed(session, base + path, runs)
            out[f"{name}_first_ms"] = round(first, 1)
            out[f"{name}_ms"] = round(median, 1)
            print(f"  {name:22s} first {first:7.1f} ms   median {median:7.1f} ms", file=sys.stderr)
        queue = await timed_json(
            session, f"{base}/api/review/queue?state=PROCESSED&sort=mtime&at={sample}&n=10", runs
        )
        out["review_queue_ms"] = round(queue, 1)
        print(f"  {'review_queue':22s} median {queue:7.1f} ms", file=sys.stderr)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 assets instead of 100,000")
    parser.add_argument("--assets", type=int, default=None)
    parser.add_argument("--dsn", default=None, help="database DSN (default: a fresh SQLite file)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--clips", type=int, default=None, help="clips culled in Chromium")
    parser.add_argument(
        "--serve", nargs=4, metavar=("DSN", "ROOT", "DATA", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        dsn, root, data, port = args.serve
        asyncio.run(serve(dsn, root, data, int(port)))
        return 0
    n = args.assets or (10_000 if args.quick else 100_000)
    clips = args.clips or (11 if args.quick else 31)
    with tempfile.TemporaryDirectory(prefix="rush-bench-ui-") as tmp:
        work = Path(tmp)
        root = work / "lib"
        init_library(root)
        dsn = args.dsn or f"sqlite://{work / 'rush.db'}"
        t0 = time.perf_counter()
        sample, clip_ids = asyncio.run(fill(dsn, n, root, clips))
        print(f"filled {n} assets in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        port = free_port()
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", dsn, str(root), str(work / "data"), str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "ready":
                raise SystemExit("bench server did not start")
            base = f"http://127.0.0.1:{port}"
            figures = asyncio.run(measure(base, sample, args.runs, n))
            rss = rss_mb(child.pid)
            marks = asyncio.run(browse(base, clip_ids))
            print(
                "  next clip (key press -> playing) ms: " + " ".join(f"{m:.0f}" for m in marks),
                file=sys.stderr,
            )
        finally:
            child.terminate()
            child.wait(timeout=10)
    result = {
        "assets": n,
        "library_page_ms": figures["library_filtered_ms"],
        "asset_page_ms": figures["asset_ms"],
        "rss_mb": round(rss, 1),
        "next_clip_ms": round(statistics.median(marks), 1),
        "next_clip_max_ms": round(max(marks), 1),
        **{k: v for k, v in figures.items() if k not in ("library_filtered_ms", "asset_ms")},
        "db": "postgres" if dsn.startswith("postgres") else "sqlite",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
