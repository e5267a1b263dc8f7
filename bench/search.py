"""Search benchmark: the library's search box over 100,000 assets with transcripts.

Fills a fresh SQLite database and a fresh PostgreSQL database (on the server named by
RUSH_TEST_PG, default the local one; skipped with a note when unreachable) with N assets,
each with a metadata entry (name, folder, tags, fields, camera) and three transcript
lines, then times what the library page does for a search: the filtered page query
(60 rows, full-text match of every word) and the hits with their times for that page.

    python bench/search.py            # 100,000 assets
    python bench/search.py --quick    # 5,000 assets

Goal: p99 < 100 ms per search.  The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rush import search
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Asset, SearchEntry, Transcript
from rush.storage import close_db, init_db
from web.queries import Filters, page

PG_ADMIN = os.environ.get("RUSH_TEST_PG", "postgres://root@127.0.0.1:5432/test")
WORDS = [
    "wedding",
    "rings",
    "bride",
    "groom",
    "ceremony",
    "speech",
    "toast",
    "dance",
    "cake",
    "family",
    "friends",
    "church",
    "garden",
    "beach",
    "sunset",
    "interview",
    "camera",
    "light",
    "sound",
    "music",
    "drone",
    "city",
    "street",
    "market",
    "morning",
    "evening",
    "night",
    "rain",
    "snow",
    "mountain",
    "river",
    "forest",
    "photographer",
    "hello",
    "thanks",
]
CAMERAS = ["Sony ILME-FX3", "Canon EOS R5", "Panasonic GH6", "DJI Mavic 3", "Apple iPhone 15"]
QUERIES = ["rings", "wedding cake", "photogr", "Santé", "zebra", "DRONE night", "c004217"]


def _vocabulary(rng: random.Random) -> list[str]:
    syllables = ["ka", "lo", "mi", "ren", "sa", "tu", "vel", "zo", "pri", "dan", "el", "or"]
    made = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(4000)}
    return WORDS + sorted(made)


async def fill(dsn: str, n: int) -> None:
    await init_db(dsn)
    rng = random.Random(7)
    vocab = _vocabulary(rng)
    chunk = 2000
    for start in range(0, n, chunk):
        assets, transcripts, entries = [], [], []
        for i in range(start, min(n, start + chunk)):
            rel = f"INBOX/{2020 + i % 6}-{1 + i % 12:02d} shoot {i // 400}/C{i:06d}.MP4"
            a = Asset(
                id=uuid.uuid4(),
                kind=MediaKind.VIDEO,
                rel_path=rel,
                path_key=rel,
                state=AssetState.PROCESSED,
                fields_data={"project": f"Project {i % 40}"},
            )
            assets.append(a)
            lines = []
            words = []
            for k in range(3):
                line = [rng.choice(vocab) for _ in range(10)]
                if i % 97 == 0 and k == 1:
                    line[4] = "santé"
                lines.append((8.0 * k, " ".join(line)))
                words += [
                    {"word": w, "start": 8.0 * k + j * 0.6, "end": 8.0 * k + j * 0.6 + 0.5}
                    for j, w in enumerate(line)
                ]
            transcripts.append(
                Transcript(
                    asset_id=a.id,
                    version=1,
                    language="en",
                    text=" ".join(t for _, t in lines),
                    words=words,
                )
            )
            meta = f"{Path(rel).name} · {Path(rel).parent} · {CAMERAS[i % len(CAMERAS)]}"
            for t, d in [(None, meta), *lines]:
                entries.append(SearchEntry(asset_id=a.id, t=t, display=d, body=search.normalise(d)))
        await Asset.bulk_create(assets)
        await Transcript.bulk_create(transcripts)
        await SearchEntry.bulk_create(entries, batch_size=1000)


async def measure(dsn: str, n: int, rounds: int) -> dict[str, float]:
    t0 = time.perf_counter()
    await fill(dsn, n)
    fill_s = time.perf_counter() - t0
    times: list[float] = []
    found: dict[str, int] = {}
    for r in range(rounds):
        for q in QUERIES:
            start = time.perf_counter()
            rows = await page(Filters.parse({"q": q}), 0, 60)
            await search.hits_for(q, [row["id"] for row in rows])
            times.append((time.perf_counter() - start) * 1000)
            if r == 0:
                found[q] = len(rows)
    await close_db()
    times.sort()
    return {
        "fill_s": round(fill_s, 1),
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "max_ms": round(times[-1], 2),
        "searches": len(times),
        "rows_first_page": found,  # type: ignore[dict-item]
    }


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 assets")
    parser.add_argument("-n", type=int, default=None, help="number of assets")
    args = parser.parse_args()
    n = args.n or (5_000 if args.quick else 100_000)
    rounds = 5 if args.quick else 20
    result: dict[str, object] = {"assets": n, "goal_p99_ms": 100}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = asyncio.run(measure(f"sqlite://{Path(tmp) / 'bench.db'}", n, rounds))
        print(f"sqlite: {sqlite}", flush=True)
        result["sqlite"] = sqlite
    name = f"rush_bench_search_{uuid.uuid4().hex[:8]}"
    try:
        _psql(f"CREATE DATABASE {name}")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"postgres: skipped ({exc})", flush=True)
        result["postgres"] = None
    else:
        try:
            pg = asyncio.run(measure(f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}", n, rounds))
            print(f"postgres: {pg}", flush=True)
            result["postgres"] = pg
        finally:
            _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
