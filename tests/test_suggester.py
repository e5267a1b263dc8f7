"""Tag suggestions: the offline builtin backend and the OpenAI-compatible backend.

No real LLM is available offline, so the `openai` backend is tested against a small
aiohttp server started by the test that speaks the `/v1/chat/completions` format (the
same request and answer shapes as Ollama or llama.cpp's server).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from integrations.processors import SuggestTagsProcessor
from integrations.suggester import (
    BuiltinSuggester,
    OpenAISuggester,
    SuggesterError,
    SuggestInput,
    builtin_suggestions,
    chat_url,
    parse_answer,
    tokens,
)
from rush.config import SuggesterConfig
from rush.jobs import JobType
from rush.media import MediaKind
from tests import media_helpers as mh


def _tags(items: list[Any]) -> list[str]:
    return [s.tag for s in items]


def test_builtin_from_names_facts_and_transcript() -> None:
    item = SuggestInput(
        kind="video",
        path="INBOX/2024 Wedding Lyon/ceremony/DroneShot_church_0042.MP4",
        facts={
            "created_at": "2024-07-14T18:03:22Z",
            "camera_make": "DJI",
            "camera_model": "Mavic 3",
            "display_width": 2160,
            "display_height": 3840,
            "has_audio": False,
            "frame_rate": 120.0,
            "duration_s": 42.0,
        },
        transcript="the bride arrives the bride smiles and the groom waits",
    )
    found = builtin_suggestions(item, max_tags=30)
    tags = _tags(found)
    for expected in ("wedding", "lyon", "ceremony", "drone", "shot", "church", "2024", "july",
                     "summer", "dji-mavic-3", "4k", "vertical", "no-audio", "slow-motion", "bride"):  # fmt: skip
        assert expected in tags, (expected, tags)
    assert "inbox" not in tags and "0042" not in tags and "mp4" not in tags and "the" not in tags
    scores = [s.score for s in found]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    assert len(set(tags)) == len(tags)
    by_tag = {s.tag: s.score for s in found}
    assert by_tag["bride"] >= 0.5
    assert "groom" not in tags, "a word said once is noise when others repeat"
    assert len(builtin_suggestions(item, max_tags=5)) == 5


def test_builtin_audio_photo_and_model_including_make() -> None:
    audio = _tags(builtin_suggestions(SuggestInput("audio", "INBOX/rec/ZOOM0001.WAV", {}), 10))
    assert "audio-only" in audio and "vertical" not in audio
    photo = builtin_suggestions(
        SuggestInput(
            "photo",
            "ARCHIVE/IMG_1234.HEIC",
            {
                "camera_make": "Apple",
                "camera_model": "iPhone 15 Pro",
                "taken_at": "2023-12-24T20:15:00",
                "width": 4032,
                "height": 3024,
                "gps": {"lat": 1.0, "lon": 2.0},
            },
        ),
        20,
    )
    tags = _tags(photo)
    assert "apple-iphone-15-pro" in tags
    canon = SuggestInput("photo", "a.cr3", {"camera_make": "Canon", "camera_model": "Canon EOS R5"})
    assert "canon-eos-r5" in _tags(builtin_suggestions(canon, 10))
    assert {"2023", "december", "winter", "4k", "horizontal", "geotagged"} <= set(tags)
    assert "img" not in tags and "archive" not in tags


def test_tokens_split_camel_case_and_keep_korean() -> None:
    assert tokens("DroneShot_church-2024") == ["drone", "shot", "church"]
    assert tokens("안녕하세요 오늘은 날씨가") == ["안녕하세요", "오늘은", "날씨가"]


def test_parse_answer_shapes() -> None:
    assert _tags(parse_answer('["Beach", "sun set"]', 5)) == ["beach", "sun-set"]
    objs = parse_answer('Sure! [{"tag": "Dog", "score": 0.4}, {"tag": "park", "score": 0.9}]', 5)
    assert [(s.tag, s.score) for s in objs] == [("park", 0.9), ("dog", 0.4)]
    assert _tags(parse_answer('{"tags": ["a-b"]}', 5)) == ["a-b"]
    with pytest.raises(SuggesterError):
        parse_answer("no json here", 5)
    with pytest.raises(SuggesterError):
        parse_answer("[not json", 5)


def test_chat_url() -> None:
    assert chat_url("http://h:11434/v1") == "http://h:11434/v1/chat/completions"
    assert chat_url("http://h:8080/") == "http://h:8080/v1/chat/completions"
    assert chat_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


@dataclass
class FakeLLM:
    """A tiny local chat-completions server; `mode` picks its behaviour."""

    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        if self.mode == "slow":
            await asyncio.sleep(2)
        if self.mode == "error":
            return web.json_response({"error": {"message": "model not found"}}, status=404)
        if self.mode == "garbage":
            return web.Response(text="<html>oops</html>")
        content = json.dumps([{"tag": "Beach", "score": 0.9}, {"tag": "sunset", "score": 0.7}])
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": self.requests[-1].get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            }
        )


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeLLM, str]]:
    fake = FakeLLM()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


ITEM = SuggestInput("video", "INBOX/holidays/beach.mp4", {"duration_s": 3.0}, "waves waves")


async def test_openai_backend_roundtrip(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    cfg = SuggesterConfig(backend="openai", url=url, model="llama3", api_key="s3cret")  # type: ignore[arg-type]
    found = await OpenAISuggester(cfg).suggest(ITEM, 5)
    assert [(s.tag, s.score) for s in found] == [("beach", 0.9), ("sunset", 0.7)]
    body = fake.requests[0]
    assert body["model"] == "llama3"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "INBOX/holidays/beach.mp4" in body["messages"][1]["content"]
    assert "waves" in body["messages"][1]["content"]
    assert fake.headers[0]["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "HTTP 404"), ("garbage", "invalid JSON|not a chat completion"),
     ("slow", "did not answer")],
)  # fmt: skip
async def test_openai_backend_errors_are_clear(
    llm: tuple[FakeLLM, str], mode: str, message: str
) -> None:
    fake, url = llm
    fake.mode = mode
    cfg = SuggesterConfig(backend="openai", url=url, model="m", timeout_s=0.5)
    with pytest.raises(SuggesterError, match=message):
        await OpenAISuggester(cfg).suggest(ITEM, 5)


async def test_openai_backend_unreachable() -> None:
    cfg = SuggesterConfig(backend="openai", url="http://127.0.0.1:9/v1", model="m", timeout_s=2)
    with pytest.raises(SuggesterError, match="unreachable"):
        await OpenAISuggester(cfg).suggest(ITEM, 5)


def test_openai_backend_needs_url_and_model() -> None:
    with pytest.raises(ValueError, match="url"):
        OpenAISuggester(SuggesterConfig(backend="openai"))


async def test_suggest_tags_processor_returns_suggestions_only(tmp_path: Path) -> None:
    ctx = mh.Ctx(tmp_path)
    job = mh.make_job(
        MediaKind.VIDEO,
        "INBOX/Surf Trip/GOPR0042.MP4",
        JobType.SUGGEST_TAGS,
        {
            "facts": {"display_width": 1920, "display_height": 1080, "has_audio": True},
            "transcript": {"text": "look at that wave what a wave", "words": []},
        },
    )
    out = await SuggestTagsProcessor(BuiltinSuggester(), 8).run(job, ctx)
    assert out.facts is None and out.derivatives == [] and out.transcript is None
    tags = [s["tag"] for s in out.suggestions or []]
    assert {"surf", "trip", "wave", "1080p"} <= set(tags)
    assert all(set(s) == {"tag", "score"} for s in out.suggestions or [])
    assert not os.listdir(tmp_path), "a suggestion job writes nothing"


def test_default_processors_refuse_openai_without_url() -> None:
    from integrations.processors import default_processors
    from rush.config import Config, ConfigError

    config = Config()
    config.suggester.backend = "openai"
    with pytest.raises(ConfigError, match=r"suggester: .*url"):
        default_processors(config)
    config.suggester.url = "http://127.0.0.1:11434/v1"
    config.suggester.model = "llama3"
    procs = default_processors(config)
    assert procs[-1].capabilities()["backend"] == "openai"
