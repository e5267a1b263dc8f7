"""Speech to text with vosk (offline Kaldi models) and WebVTT rendering.

The recognizer is CPU-heavy and synchronous: each chunk of 16 kHz mono s16le audio is
fed to it in a worker thread so the agent's event loop keeps heartbeating.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def load_model(path: Path) -> Any:
    """Load a vosk model directory (seconds for a small model); raises ValueError if bad."""
    import vosk

    vosk.SetLogLevel(-1)
    if not path.is_dir():
        raise ValueError(f"vosk model directory {path} does not exist")
    try:
        return vosk.Model(str(path))
    except Exception as exc:  # vosk raises a bare Exception when Kaldi refuses the model
        raise ValueError(f"vosk could not load the model at {path}: {exc}") from exc


def model_language(path: Path) -> str:
    """Best guess of the model's language from its folder name (vosk-model-small-en-us-0.15)."""
    for part in reversed(path.parts):
        low = part.lower()
        if low.startswith("vosk-model") or low.startswith("vosk_model"):
            bits = [b for b in low.replace("_", "-").split("-")[2:] if b not in ("small", "big")]
            if bits and bits[0].isalpha():
                return bits[0]
    return "und"


class Transcriber:
    """One recognizer session: feed PCM, collect words with timings."""

    def __init__(self, model: Any) -> None:
        import vosk

        self._rec = vosk.KaldiRecognizer(model, SAMPLE_RATE)
        self._rec.SetWords(True)
        self.words: list[dict[str, Any]] = []
        self.segments: list[str] = []

    def _collect(self, raw: str) -> None:
        result = json.loads(raw)
        for w in result.get("result") or []:
            self.words.append(
                {
                    "word": str(w.get("word", "")),
                    "start": round(float(w.get("start", 0.0)), 3),
                    "end": round(float(w.get("end", 0.0)), 3),
                    "conf": round(float(w.get("conf", 0.0)), 3),
                }
            )
        text = str(result.get("text") or "").strip()
        if text:
            self.segments.append(text)

    def accept(self, pcm: bytes) -> None:
        """Blocking: call from a worker thread."""
        if self._rec.AcceptWaveform(pcm):
            self._collect(self._rec.Result())

    def finish(self) -> None:
        """Blocking: flush the last partial utterance."""
        self._collect(self._rec.FinalResult())


def _vtt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def cues(
    words: list[dict[str, Any]], max_words: int = 10, max_gap_s: float = 1.0
) -> list[dict[str, Any]]:
    """Group words into subtitle cues: split on pauses and every `max_words` words."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for word in words:
        if current and (
            len(current) >= max_words or word["start"] - current[-1]["end"] > max_gap_s
        ):
            groups.append(current)
            current = []
        current.append(word)
    if current:
        groups.append(current)
    return [
        {
            "start": group[0]["start"],
            "end": max(group[-1]["end"], group[0]["start"] + 0.2),
            "text": " ".join(w["word"] for w in group),
        }
        for group in groups
    ]


def to_vtt(words: list[dict[str, Any]]) -> str:
    """WebVTT for the UI's <track>; an empty transcript is a valid header-only file."""
    lines = ["WEBVTT", ""]
    for i, cue in enumerate(cues(words), 1):
        lines += [str(i), f"{_vtt_time(cue['start'])} --> {_vtt_time(cue['end'])}", cue["text"], ""]
    return "\n".join(lines)
