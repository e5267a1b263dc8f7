"""Waveform peaks for the UI (JSON) and a PNG preview.

Format (version 1): `{"version": 1, "duration": s, "sample_rate": 8000, "bucket_s": s,
"peaks": [min0, max0, min1, max1, ...]}` with values in [-1, 1], one (min, max) pair
per bucket of `bucket_s` seconds: the UI draws one vertical bar per pair.
"""

from __future__ import annotations

import io
from array import array
from typing import Any

from PIL import Image, ImageDraw

SAMPLE_RATE = 8000
MAX_BUCKETS = 2000
MIN_BUCKET_S = 0.01


def bucket_samples(duration_s: float | None, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples per bucket: 100 buckets a second, at most MAX_BUCKETS for the whole clip."""
    duration = max(duration_s or 0.0, 0.0)
    bucket_s = max(MIN_BUCKET_S, duration / MAX_BUCKETS)
    return max(1, round(bucket_s * sample_rate))


class PeakAccumulator:
    """Folds s16le mono chunks into (min, max) pairs without keeping the samples."""

    def __init__(self, samples_per_bucket: int) -> None:
        self.per_bucket = samples_per_bucket
        self.peaks: list[float] = []
        self._lo = 0
        self._hi = 0
        self._n = 0
        self._odd = b""
        self.total = 0

    def feed(self, data: bytes) -> None:
        data = self._odd + data
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        samples = array("h")
        samples.frombytes(data[:cut])
        self.total += len(samples)
        i = 0
        while i < len(samples):
            take = min(self.per_bucket - self._n, len(samples) - i)
            part = samples[i : i + take]
            lo, hi = min(part), max(part)
            if self._n == 0:
                self._lo, self._hi = lo, hi
            else:
                self._lo, self._hi = min(self._lo, lo), max(self._hi, hi)
            self._n += take
            i += take
            if self._n == self.per_bucket:
                self._flush()

    def _flush(self) -> None:
        self.peaks += [round(self._lo / 32768, 4), round(self._hi / 32767, 4)]
        self._n = 0

    def finish(self, sample_rate: int = SAMPLE_RATE) -> dict[str, Any]:
        if self._n:
            self._flush()
        return {
            "version": 1,
            "duration": round(self.total / sample_rate, 3),
            "sample_rate": sample_rate,
            "bucket_s": round(self.per_bucket / sample_rate, 6),
            "peaks": self.peaks,
        }


def render_png(peaks: list[float], width: int = 1200, height: int = 200) -> bytes:
    """A simple centred waveform picture of the peaks."""
    img = Image.new("RGB", (width, height), (24, 26, 32))
    draw = ImageDraw.Draw(img)
    mid = height / 2
    pairs = len(peaks) // 2
    if pairs:
        for x in range(width):
            start = x * pairs // width
            end = max(start + 1, (x + 1) * pairs // width)
            lo = min(peaks[2 * j] for j in range(start, min(end, pairs)))
            hi = max(peaks[2 * j + 1] for j in range(start, min(end, pairs)))
            draw.line([(x, mid - hi * mid), (x, mid - lo * mid)], fill=(90, 200, 250))
    draw.line([(0, mid), (width, mid)], fill=(60, 90, 110))
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()
