"""Tag suggestions: a pluggable backend behind one small interface.

Suggestions are only ever suggestions: a human accepts them as tags in the UI, and no
suggestion is ever a KEEP/REJECT decision.  `builtin` works offline from what the job
already knows (names, facts, transcript); `openai` asks any OpenAI-compatible
`/v1/chat/completions` server (Ollama, llama.cpp server, vLLM...).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, Protocol

from rush.config import SuggesterConfig
from rush.jobs import JobFailed
from rush.media import Area, split_name


@dataclass(frozen=True)
class SuggestInput:
    kind: str
    path: str  # library-relative main file
    facts: dict[str, Any] = field(default_factory=dict)
    transcript: str = ""


@dataclass(frozen=True)
class Suggestion:
    tag: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "score": self.score}


class Suggester(Protocol):
    name: str

    async def suggest(self, item: SuggestInput, max_tags: int) -> list[Suggestion]:
        """Ranked suggestions (best first), at most `max_tags`."""


class SuggesterError(JobFailed):
    """The backend could not produce suggestions (unreachable, timeout, bad answer)."""


# --- builtin -------------------------------------------------------------------------------

STOPWORDS = frozenset(
    """
    a an and are as at be been but by can could did do does for from had has have he her his
    how i if in into is it its just like me my no not of on or our out she so some than that
    the their them then there these they this to too up us was we were what when where which
    who will with would you your yeah okay ok oh um uh well right get got go going know think
    really very one two also here now all about because want see look
    le la les un une des du de et ou est sont en au aux ce cette ces il elle ils elles nous
    vous je tu on pas ne que qui quoi dans pour par sur avec sans mais donc car plus moins
    tout tous très bien oui non alors voilà ça cela c'est
    img dsc dscf dscn mvi mov vid gopr gp gh gx pxl dji clip file video photo audio rec take
    final copy new untitled export inbox archive rejects tmp temp raw jpg jpeg mp4 wav
    """.split()  # noqa: SIM905
)

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
            6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}  # fmt: skip
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")  # fmt: skip


def slug(text: str) -> str:
    """A tag: lower-case, accents kept as letters, words joined by '-'."""
    norm = unicodedata.normalize("NFKC", text).lower()
    return "-".join(_WORD.findall(norm))[:48]


def tokens(text: str) -> list[str]:
    """Words of a name or sentence, camelCase split, stopwords and numbers dropped."""
    text = _CAMEL.sub(" ", text)
    out = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).lower()):
        if len(word) < 3 and not any(ord(c) > 0x2E80 for c in word):
            continue
        if word.isdigit() or word in STOPWORDS or any(ch.isdigit() for ch in word[:1]):
            continue
        out.append(word)
    return out


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _resolution_class(width: int | None, height: int | None) -> str | None:
    if not width or not height:
        return None
    long_side, short_side = max(width, height), min(width, height)
    if long_side >= 7680:
        return "8k"
    if long_side >= 3840 or short_side >= 2160:
        return "4k"
    if short_side >= 1080:
        return "1080p"
    if short_side >= 720:
        return "720p"
    return "sd"


def builtin_suggestions(item: SuggestInput, max_tags: int) -> list[Suggestion]:
    """Offline suggestions from names, folders, facts and transcript (pure)."""
    scores: dict[str, float] = {}

    def add(tag: str | None, score: float) -> None:
        if tag:
            tag = slug(tag)
            if tag and scores.get(tag, 0.0) < score:
                scores[tag] = round(score, 3)

    facts = item.facts
    rel = PurePosixPath(item.path)
    folders = [p for p in rel.parts[:-1] if p not in {a.value for a in Area}]
    for depth, folder in enumerate(reversed(folders)):
        for word in tokens(folder):
            add(word, max(0.5, 0.75 - 0.08 * depth))
    for word in tokens(split_name(rel.name)[0]):
        add(word, 0.7)

    add(item.kind, 0.4)
    when = _parse_time(facts.get("taken_at")) or _parse_time(facts.get("created_at"))
    if when is not None:
        add(str(when.year), 0.85)
        add(_MONTHS[when.month - 1], 0.6)
        add(_SEASONS[when.month], 0.6)
    camera = " ".join(
        p for p in (facts.get("camera_make"), facts.get("camera_model")) if isinstance(p, str)
    )
    if isinstance(facts.get("camera_model"), str):
        model = facts["camera_model"]
        make = facts.get("camera_make")
        # "Apple iPhone 15" reads better than "apple-apple-iphone-15".
        add(model if isinstance(make, str) and make.lower() in model.lower() else camera, 0.8)
    elif camera:
        add(camera, 0.7)
    if isinstance(facts.get("lens_model"), str):
        add(facts["lens_model"], 0.5)
    width = facts.get("display_width") or facts.get("width")
    height = facts.get("display_height") or facts.get("height")
    if item.kind != "audio" and isinstance(width, int) and isinstance(height, int):
        add(_resolution_class(width, height), 0.8)
        if height > width:
            add("vertical", 0.85)
        elif width == height:
            add("square", 0.8)
        else:
            add("horizontal", 0.4)
    if item.kind == "audio":
        add("audio-only", 0.9)
    elif item.kind == "video" and facts.get("has_audio") is False:
        add("no-audio", 0.7)
    fps = facts.get("frame_rate")
    if isinstance(fps, int | float) and fps >= 90:
        add("slow-motion", 0.7)
    duration = facts.get("duration_s")
    if isinstance(duration, int | float) and item.kind != "photo":
        if duration < 10:
            add("short", 0.4)
        elif duration > 1200:
            add("long", 0.5)
    if facts.get("gps"):
        add("geotagged", 0.6)

    counts = Counter(tokens(item.transcript))
    if counts:
        top = counts.most_common(1)[0][1]
        for word, n in counts.most_common(max_tags * 2):
            if n >= 2 or top == 1:
                add(word, 0.3 + 0.4 * n / top)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Suggestion(tag, score) for tag, score in ranked[:max_tags]]


class BuiltinSuggester:
    name = "builtin"

    async def suggest(self, item: SuggestInput, max_tags: int) -> list[Suggestion]:
        return builtin_suggestions(item, max_tags)


# --- OpenAI-compatible ----------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You suggest short tags for a media catalogue. Answer with a JSON array only, each "
    'item {"tag": "lowercase-words", "score": 0..1}. No decisions, no prose.'
)


def chat_url(base: str) -> str:
    """`http://host:11434/v1` -> `.../v1/chat/completions` (a full URL is kept)."""
    base = base.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


def build_prompt(item: SuggestInput, max_tags: int) -> str:
    keep = {
        k: v
        for k, v in item.facts.items()
        if k not in ("streams", "container_long") and v not in (None, "", [])
    }
    return (
        f"Suggest up to {max_tags} tags for this {item.kind} file.\n"
        f"Path: {item.path}\n"
        f"Facts: {json.dumps(keep, ensure_ascii=False, default=str)[:3000]}\n"
        f"Transcript excerpt: {item.transcript[:4000]!r}\n"
    )


def parse_answer(content: str, max_tags: int) -> list[Suggestion]:
    """Read the model's answer: a JSON array of strings or {tag, score}, or {"tags": [...]}."""
    start = min((i for i in (content.find("["), content.find("{")) if i >= 0), default=-1)
    if start < 0:
        raise SuggesterError("the suggester's answer holds no JSON")
    end = max(content.rfind("]"), content.rfind("}"))
    try:
        data = json.loads(content[start : end + 1])
    except ValueError as exc:
        raise SuggesterError(f"the suggester's answer is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("tags", [])
    if not isinstance(data, list):
        raise SuggesterError("the suggester's answer is not a list of tags")
    out: dict[str, float] = {}
    for n, entry in enumerate(data):
        if isinstance(entry, str):
            tag, score = entry, max(0.1, 0.9 - 0.05 * n)
        elif isinstance(entry, dict) and isinstance(entry.get("tag"), str):
            tag = entry["tag"]
            raw = entry.get("score", 0.5)
            score = float(raw) if isinstance(raw, int | float) else 0.5
        else:
            continue
        tag = slug(tag)
        if tag:
            out[tag] = max(out.get(tag, 0.0), round(min(max(score, 0.0), 1.0), 3))
    ranked = sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Suggestion(t, s) for t, s in ranked[:max_tags]]


class OpenAISuggester:
    """Any OpenAI-compatible chat-completions server; errors become SuggesterError."""

    name = "openai"

    def __init__(self, cfg: SuggesterConfig) -> None:
        if not cfg.url or not cfg.model:
            raise ValueError("suggester.url and suggester.model are required for backend openai")
        self.cfg = cfg

    async def suggest(self, item: SuggestInput, max_tags: int) -> list[Suggestion]:
        headers = {"Content-Type": "application/json"}
        if self.cfg.api_key is not None:
            headers["Authorization"] = f"Bearer {self.cfg.api_key.get_secret_value()}"
        body = {
            "model": self.cfg.model,
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": build_prompt(item, max_tags)},
            ],
        }
        import aiohttp  # only this backend needs it: an idle agent never imports it

        url = chat_url(self.cfg.url)
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json=body, headers=headers) as resp,
            ):
                if resp.status != 200:
                    text = (await resp.text())[:300]
                    raise SuggesterError(f"suggester at {url} answered HTTP {resp.status}: {text}")
                payload = await resp.json(content_type=None)
        except TimeoutError:
            raise SuggesterError(
                f"suggester at {url} did not answer within {self.cfg.timeout_s:.0f} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise SuggesterError(f"suggester at {url} is unreachable: {exc}") from exc
        except ValueError as exc:
            raise SuggesterError(f"suggester at {url} sent invalid JSON: {exc}") from exc
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise SuggesterError("suggester answer is not a chat completion") from exc
        if not isinstance(content, str):
            raise SuggesterError("suggester answer has no text content")
        return parse_answer(content, max_tags)


def make_suggester(cfg: SuggesterConfig) -> Suggester:
    """The configured backend (`suggester.backend`)."""
    if cfg.backend == "openai":
        return OpenAISuggester(cfg)
    return BuiltinSuggester()
