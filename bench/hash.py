"""Fingerprint benchmark: is the full hash as fast as the reference tools, and what does
the sampled fingerprint cost per new file?

In the same run, on the same file (default 2 GB of random bytes, read once beforehand so
every tool reads from the page cache):

- full_s:       `rush.fingerprint.full_hash` (BLAKE3, 1 MiB reads, one thread: what the
                low-priority `hasher` actor does);
- b3sum_1t_s:   `b3sum --num-threads 1` (the same algorithm on one thread, the fair
                reference: hash_ratio = full_s / b3sum_1t_s, goal <= 1.1);
- b3sum_s:      `b3sum` with all cores, sha256sum_s: `sha256sum` (for comparison);
- sample_us:    the sampled fingerprint (size + first/middle/last 64 KiB) per file, over
                N files of 1 MB each (the cost the scanner adds per new file).

Each timing is the best of five interleaved rounds (three for the others).  Usage: python bench/hash.py [--quick] [--size-mb N]
(`--quick`: 256 MB and 1,000 sample files).  The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from rush.fingerprint import full_hash, sample_fingerprint  # noqa: E402


def best(fn: object, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def make_file(path: Path, size_mb: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size_mb):
            # Vary each MiB cheaply so no block repeats.
            f.write(i.to_bytes(8, "little") + chunk[8:])


def tool(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, check=True, text=True).stdout.split()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size-mb", type=int, default=None)
    parser.add_argument("--files", type=int, default=None)
    args = parser.parse_args()
    size_mb = args.size_mb or (256 if args.quick else 2048)
    files = args.files or (1000 if args.quick else 10_000)
    b3sum = shutil.which("b3sum")
    sha = shutil.which("sha256sum")
    with tempfile.TemporaryDirectory(prefix="rush-bench-hash-") as tmp:
        big = Path(tmp) / "big.bin"
        make_file(big, size_mb)
        with open(big, "rb") as f:  # into the page cache
            while f.read(8 << 20):
                pass
        ours = full_hash(big)[0]
        # Interleaved rounds, best of each: the machine's load hits both sides alike.
        full_times: list[float] = []
        one_times: list[float] = []
        for _ in range(5):
            full_times.append(best(lambda: full_hash(big), 1))
            if b3sum:
                one_times.append(best(lambda: tool(b3sum, "--num-threads", "1", str(big)), 1))
        full_s = min(full_times)
        result: dict[str, object] = {"size_mb": size_mb, "full_s": round(full_s, 3)}
        result["full_mb_s"] = round(size_mb / full_s, 1)
        if b3sum:
            assert tool(b3sum, "--num-threads", "1", str(big)) == ours, "b3sum disagrees"
            one = min(one_times)
            many = best(lambda: tool(b3sum, str(big)))
            result |= {
                "b3sum_1t_s": round(one, 3),
                "b3sum_s": round(many, 3),
                "hash_ratio": round(full_s / one, 3),
                "ratio_vs_b3sum_all_cores": round(full_s / many, 3),
            }
        if sha:
            sha_s = best(lambda: tool(sha, str(big)))
            result |= {
                "sha256sum_s": round(sha_s, 3),
                "ratio_vs_sha256sum": round(full_s / sha_s, 3),
            }
            result.setdefault("hash_ratio", round(full_s / sha_s, 3))
        big.unlink()
        folder = Path(tmp) / "many"
        folder.mkdir()
        block = os.urandom(1 << 20)
        paths = []
        for i in range(files):
            p = folder / f"clip{i:05d}.mp4"
            p.write_bytes(i.to_bytes(8, "little") + block[8:])
            paths.append(p)
        sample_s = best(lambda: [sample_fingerprint(p) for p in paths])
        result |= {"sample_files": files, "sample_us": round(sample_s / files * 1e6, 1)}
    print(
        f"full hash {result['full_mb_s']} MB/s over {size_mb} MB; "
        f"hash_ratio {result.get('hash_ratio')}; sampled fingerprint {result['sample_us']} µs/file"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
