"""The agent's processors: review processing, transcription, tag suggestions.

Each implements `rush.jobs.Processor`.  Originals are opened read-only and every output
goes under the job's `derived_dir` through `DerivedWriter` (atomic, cleaned on failure).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

from integrations import ffcmd, ffrun, memory, transcribe
from integrations import transcribe_engines as engines_mod
from integrations.derived import DerivedWriter
from integrations.suggester import Suggester, SuggestInput, make_suggester
from rush import names
from rush.config import Config, ConfigError, ProxyConfig
from rush.jobs import (
    DerivativeRole,
    JobContext,
    JobFailed,
    JobOutput,
    JobSpec,
    JobType,
    Processor,
)
from rush.media import MediaKind

log = logging.getLogger(__name__)

#: A proxy shorter than this share of the source means the source is truncated.
MIN_DECODED_SHARE = 0.9


def _main_path(job: JobSpec, ctx: JobContext) -> Path:
    try:
        path = ctx.abs_path(job.paths.main)
    except ValueError as exc:  # UnsafePath, or the runtime's own refusal
        raise JobFailed(f"refusing path: {exc}") from exc
    if not path.exists():
        raise JobFailed(f"{job.paths.main} not found on this agent's mount")
    if path.is_dir():
        raise JobFailed(f"{job.paths.main} is a folder, not a media file")
    return path


def _listing(what: str) -> str:
    return subprocess.run(
        ["ffmpeg", "-hide_banner", what], capture_output=True, text=True, timeout=20
    ).stdout


def detect_ffmpeg() -> tuple[str | None, set[str], set[str]]:
    """ffmpeg's version line, encoders and filters (run once by the factory, not per job)."""
    try:
        version = _listing("-version").splitlines()[:1]
        encoders_text, filters_text = _listing("-encoders"), _listing("-filters")
    except (OSError, subprocess.TimeoutExpired):
        return None, set(), set()
    encoders = set()
    for line in encoders_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            encoders.add(parts[1])
    # Filter lines look like " TSC zscale  V->V  Apply resizing...".
    filters = {
        parts[1]
        for parts in (line.split() for line in filters_text.splitlines())
        if len(parts) >= 3 and "->" in parts[2]
    }
    return (version[0].strip() if version else None), encoders, filters


class ReviewProcessor:
    """process_for_review: facts plus the derivatives the review UI needs."""

    job_type = JobType.PROCESS_FOR_REVIEW

    def __init__(
        self,
        proxy: ProxyConfig,
        ffmpeg_version: str | None = None,
        encoders: set[str] | None = None,
        filters: set[str] | None = None,
        max_memory_mb: int = 768,
    ) -> None:
        self.cfg = proxy
        #: `agent.max_memory_mb`: what a photo may take to decode (integrations/memory.py).
        self.max_memory_mb = max_memory_mb
        self.ffmpeg_version = ffmpeg_version
        self.encoders = encoders or set()
        self.filters = filters or set()
        #: HDR (PQ/HLG) sources are tone-mapped to SDR BT.709 when ffmpeg can (zimg).
        self.can_tonemap = {"zscale", "tonemap"} <= self.filters

    def capabilities(self) -> dict[str, Any]:
        kinds = [MediaKind.PHOTO.value]
        if self.ffmpeg_version and "libx264" in self.encoders and "aac" in self.encoders:
            kinds += [MediaKind.VIDEO.value, MediaKind.AUDIO.value]
        hw = ffcmd.HW_ENCODERS.get(self.cfg.hwaccel)
        return {
            "kinds": kinds,
            "ffmpeg": self.ffmpeg_version,
            "encoders": sorted(e for e in self.encoders if "264" in e or e in ("aac", "libopus")),
            "hwaccel": self.cfg.hwaccel,
            "hw_encoder_built": bool(hw and hw in self.encoders),
            "hdr_tonemap": self.can_tonemap,
            "heif": memory.installed("pillow_heif"),
            "raw": "rawpy" if memory.installed("rawpy") else "pillow-tiff-only",
        }

    async def run(self, job: JobSpec, ctx: JobContext) -> JobOutput:
        src = _main_path(job, ctx)
        await ctx.heartbeat(0.0)
        if job.kind is MediaKind.PHOTO:
            output = await self._photo(job, ctx, src)
        else:
            output = await self._av(job, ctx, src)
        await ctx.heartbeat(1.0)
        return output

    # --- photo ----------------------------------------------------------------------------

    async def _photo(self, job: JobSpec, ctx: JobContext, src: Path) -> JobOutput:
        from integrations import photo  # Pillow and pillow-heif: imported by the first photo

        photo.set_memory_budget(self.max_memory_mb)
        facts = await asyncio.to_thread(photo.photo_facts, src)
        facts["kind"] = job.kind.value
        facts["file_name"] = names.from_fs(src.name)  # the stored form: JSON-safe, exact
        thumbs = await asyncio.to_thread(photo.photo_thumbnails, src, self.cfg.photo_sizes)
        with DerivedWriter(ctx, job.derived_dir) as out:
            for size, data in thumbs:
                await out.awrite_bytes(
                    f"thumb_{size}.jpg", data, DerivativeRole.THUMB, "image/jpeg"
                )
            refs = list(out.refs)
        return JobOutput(facts=facts, derivatives=refs)

    # --- video and audio ------------------------------------------------------------------

    async def _av(self, job: JobSpec, ctx: JobContext, src: Path) -> JobOutput:
        probe = await ffrun.probe(str(src), timeout_s=self.cfg.timeout_base_s)
        facts = ffcmd.facts_from_probe(probe)
        facts["kind"] = job.kind.value
        facts["file_name"] = names.from_fs(src.name)  # the stored form: JSON-safe, exact
        duration = facts["duration_s"]
        if job.kind is MediaKind.VIDEO and not facts["has_video"]:
            raise JobFailed("no video stream found in this video file")
        if job.kind is MediaKind.AUDIO and not facts["has_audio"]:
            raise JobFailed("no audio stream found in this audio file")
        if not duration:
            raise JobFailed("media has no measurable duration (empty or truncated file)")
        with DerivedWriter(ctx, job.derived_dir) as out:
            if job.kind is MediaKind.VIDEO:
                facts["processing"] = await self._video(src, facts, ctx, out)
            else:
                facts["processing"] = await self._audio(src, facts, ctx, out)
            refs = list(out.refs)
        return JobOutput(facts=facts, derivatives=refs)

    async def _video(
        self, src: Path, facts: dict[str, Any], ctx: JobContext, out: DerivedWriter
    ) -> dict[str, Any]:
        duration = float(facts["duration_s"])
        encoders: list[str] = []
        fallback_reason = None
        if self.cfg.hwaccel != "none":
            hw_name = ffcmd.HW_ENCODERS[self.cfg.hwaccel]
            if not self.encoders or hw_name in self.encoders:
                encoders.append(self.cfg.hwaccel)
            else:
                fallback_reason = f"{hw_name} is not built into this ffmpeg"
        encoders.append("none")
        for hw in encoders:
            proxy, poster, seq = out.tmp("proxy.mp4"), out.tmp("poster.jpg"), out.tmp_dir()
            args = ffcmd.video_pass_args(
                str(src),
                ffcmd.VideoOutputs(str(proxy), str(seq / "thumb_%02d.jpg"), str(poster)),
                self.cfg,
                duration_s=duration,
                source_height=facts.get("display_height"),
                has_audio=bool(facts["has_audio"]),
                hwaccel=hw,
                tonemap=bool(facts["hdr"]) and self.can_tonemap,
                deinterlace=bool(facts["interlaced"]) and "bwdif" in self.filters,
                timecode=ffcmd.proxy_timecode(facts.get("timecode"), facts.get("frame_rate")),
            )
            try:
                decoded = await ffrun.run_ffmpeg(
                    args,
                    duration_s=duration,
                    timeout_s=ffcmd.proxy_timeout(self.cfg, duration),
                    heartbeat=ctx.heartbeat,
                )
            except ffrun.FfmpegError as exc:
                if hw == "none":
                    raise
                fallback_reason = str(exc)
                log.warning("hardware encoder %s failed, falling back to libx264: %s", hw, exc)
                out.discard_temps()
                continue
            break
        _check_complete(decoded, duration)
        await out.acommit(proxy, "proxy.mp4", DerivativeRole.PROXY, "video/mp4")
        frames = sorted(seq.glob("thumb_*.jpg"))
        if not frames:
            raise JobFailed("no thumbnail could be decoded from this video")
        for frame in frames:
            await out.acommit(frame, frame.name, DerivativeRole.THUMB, "image/jpeg")
        if poster.exists() and poster.stat().st_size > 0:
            await out.acommit(poster, "poster.jpg", DerivativeRole.POSTER, "image/jpeg")
        else:  # very short clips: the middle thumbnail stands in
            middle = out.root / frames[len(frames) // 2].name
            await out.awrite_bytes(
                "poster.jpg", middle.read_bytes(), DerivativeRole.POSTER, "image/jpeg"
            )
        strip = await asyncio.to_thread(_sprite, [out.root / f.name for f in frames])
        await out.awrite_bytes("strip.jpg", strip, DerivativeRole.STRIP, "image/jpeg")
        return {
            "encoder": ffcmd.HW_ENCODERS.get(hw, "libx264"),
            "hw_fallback": fallback_reason,
            "tonemapped": bool(facts["hdr"]) and self.can_tonemap,
            "deinterlaced": bool(facts["interlaced"]) and "bwdif" in self.filters,
            "thumb_times": [round(i * duration / len(frames), 3) for i in range(len(frames))],
        }

    async def _audio(
        self, src: Path, facts: dict[str, Any], ctx: JobContext, out: DerivedWriter
    ) -> dict[str, Any]:
        from integrations import waveform  # Pillow: imported by the first sound

        duration = float(facts["duration_s"])
        proxy = out.tmp("proxy.m4a")
        timeout = ffcmd.proxy_timeout(self.cfg, duration)
        decoded = await ffrun.run_ffmpeg(
            ffcmd.audio_proxy_args(str(src), str(proxy), self.cfg),
            duration_s=duration,
            timeout_s=timeout,
            heartbeat=lambda p: ctx.heartbeat(p * 0.8),
        )
        _check_complete(decoded, duration)
        await out.acommit(proxy, "proxy.m4a", DerivativeRole.PROXY, "audio/mp4")
        peaks = waveform.PeakAccumulator(waveform.bucket_samples(duration))

        async def feed(chunk: bytes) -> None:
            peaks.feed(chunk)

        await ffrun.decode_pcm(str(src), waveform.SAMPLE_RATE, timeout, feed)
        data = peaks.finish()
        await ctx.heartbeat(0.95)
        await out.awrite_bytes(
            "waveform.json",
            json.dumps(data, separators=(",", ":")).encode(),
            DerivativeRole.WAVEFORM_JSON,
            "application/json",
        )
        png = await asyncio.to_thread(waveform.render_png, data["peaks"])
        await out.awrite_bytes("waveform.png", png, DerivativeRole.WAVEFORM_PNG, "image/png")
        return {"encoder": "aac"}


def _check_complete(decoded_s: float, duration_s: float) -> None:
    """A source that decodes much shorter than it claims is truncated or corrupt."""
    if decoded_s < duration_s * MIN_DECODED_SHARE - 0.5:
        raise JobFailed(
            f"media is truncated or corrupt: only {decoded_s:.1f} s of {duration_s:.1f} s decoded"
        )


def _sprite(frames: list[Path]) -> bytes:
    """The thumbnails side by side in one JPEG (the UI scrubs through it)."""
    from PIL import Image

    images = [Image.open(f) for f in frames]
    try:
        w = max(i.width for i in images)
        h = max(i.height for i in images)
        sheet = Image.new("RGB", (w * len(images), h))
        for n, img in enumerate(images):
            sheet.paste(img.convert("RGB"), (n * w, 0))
        buf = io.BytesIO()
        sheet.save(buf, "JPEG", quality=80)
        return buf.getvalue()
    finally:
        for img in images:
            img.close()


class TranscriptionProcessor:
    """transcription: timed words from the engine of the job's language, a WebVTT file
    and the JSON transcript (engines: integrations/transcribe_engines.py)."""

    job_type = JobType.TRANSCRIPTION

    def __init__(
        self,
        engines: dict[str, engines_mod.Engine],
        timeout_base_s: float,
        factor: float,
        default_language: str = "",
    ) -> None:
        if not engines:
            raise ValueError("a transcription processor needs at least one engine")
        self.engines = dict(engines)
        self.default_language = (
            default_language if default_language in self.engines else sorted(self.engines)[0]
        )
        self.timeout_base_s = timeout_base_s
        self.timeout_factor = factor

    def capabilities(self) -> dict[str, Any]:
        caps: dict[str, Any] = {
            "kinds": [MediaKind.VIDEO.value, MediaKind.AUDIO.value],
            # The server offers a job only in one of these (docs/processing.md).
            "languages": sorted(self.engines),
            "engines": {lang: e.name for lang, e in sorted(self.engines.items())},
            "language": self.default_language,
        }
        vosk = [e for e in self.engines.values() if isinstance(e, engines_mod.VoskEngine)]
        if vosk:  # kept for dashboards written against the one-model agents
            caps["vosk_model"] = vosk[0].name.removeprefix("vosk:")
        return caps

    def engine_for(self, job: JobSpec) -> engines_mod.Engine:
        wanted = job.inputs.get("language")
        language = str(wanted).lower() if isinstance(wanted, str) and wanted else ""
        if not language:  # a server from before language routing names none
            language = self.default_language
        engine = self.engines.get(language)
        if engine is None:
            raise JobFailed(
                f"no transcription model for language {language!r} on this agent "
                f"(it has: {', '.join(sorted(self.engines))})"
            )
        return engine

    async def run(self, job: JobSpec, ctx: JobContext) -> JobOutput:
        if job.kind is MediaKind.PHOTO:
            raise JobFailed("a photo has no speech to transcribe")
        engine = self.engine_for(job)
        src = _main_path(job, ctx)
        facts = job.inputs.get("facts") or {}
        duration = facts.get("duration_s") if isinstance(facts, dict) else None
        if not isinstance(duration, int | float) or duration <= 0:
            probe = await ffrun.probe(str(src), timeout_s=self.timeout_base_s)
            pf = ffcmd.facts_from_probe(probe)
            if not pf["has_audio"]:
                raise JobFailed("no audio stream to transcribe")
            duration = float(pf["duration_s"] or 0.0)
        await ctx.heartbeat(0.0)
        rec = await asyncio.to_thread(engine.session)
        fed = 0
        loop = asyncio.get_running_loop()
        last = loop.time()
        bytes_per_s = transcribe.SAMPLE_RATE * 2

        async def feed(chunk: bytes) -> None:
            nonlocal fed, last
            await asyncio.to_thread(rec.accept, chunk)
            fed += len(chunk)
            if duration and loop.time() - last >= 2.0:
                last = loop.time()
                await ctx.heartbeat(min(fed / bytes_per_s / duration, 0.99))

        timeout = self.timeout_base_s + self.timeout_factor * float(duration or 0)
        await ffrun.decode_pcm(
            str(src), transcribe.SAMPLE_RATE, timeout, feed, chunk_bytes=bytes_per_s * 2
        )
        await asyncio.to_thread(rec.finish)
        transcript = {
            "language": engine.language,
            "engine": engine.name,
            "source": "recognised",
            "text": " ".join(w["word"] for w in rec.words),
            "words": rec.words,
        }
        with DerivedWriter(ctx, job.derived_dir) as out:
            vtt = await out.awrite_bytes(
                "transcript.vtt",
                transcribe.to_vtt(rec.words).encode(),
                DerivativeRole.VTT,
                "text/vtt",
            )
            json_ref = await out.awrite_bytes(
                "transcript.json",
                json.dumps(transcript, ensure_ascii=False).encode(),
                DerivativeRole.TRANSCRIPT_JSON,
                "application/json",
            )
            refs = list(out.refs)
        await ctx.heartbeat(1.0)
        return JobOutput(
            transcript={**transcript, "vtt": vtt.path, "json": json_ref.path}, derivatives=refs
        )


class SuggestTagsProcessor:
    """suggest_tags: ranked suggestions from facts, names and transcript; never tags."""

    job_type = JobType.SUGGEST_TAGS

    def __init__(self, suggester: Suggester, max_tags: int) -> None:
        self.suggester = suggester
        self.max_tags = max_tags

    def capabilities(self) -> dict[str, Any]:
        return {"backend": self.suggester.name, "max_tags": self.max_tags}

    async def run(self, job: JobSpec, ctx: JobContext) -> JobOutput:
        facts = job.inputs.get("facts")
        transcript = job.inputs.get("transcript")
        text = ""
        if isinstance(transcript, dict):
            text = str(transcript.get("text") or "")
        elif isinstance(transcript, str):
            text = transcript
        item = SuggestInput(
            kind=job.kind.value,
            path=job.paths.main,
            facts=facts if isinstance(facts, dict) else {},
            transcript=text,
        )
        await ctx.heartbeat(0.0)
        found = await self.suggester.suggest(item, self.max_tags)
        return JobOutput(suggestions=[s.as_dict() for s in found])


def transcription_models(config: Config) -> dict[str, str]:
    """Language -> engine spec on this agent: `[transcription] models`, plus the older
    `agent.vosk_model` under the language its folder name says (else the default one);
    it replaces the built-in English engine, not a model named in `models`."""
    models = dict(config.transcription.models)
    legacy = config.agent.vosk_model
    if legacy is not None:
        language = transcribe.model_language(legacy)
        if language == "und":
            language = config.transcription.default_language
        if "models" in config.transcription.model_fields_set:
            models.setdefault(language, f"vosk:{legacy}")
        else:
            models[language] = f"vosk:{legacy}"
    return models


def default_processors(config: Config) -> list[Processor]:
    """The processors this agent can run, probed once at start-up."""
    version, encoders, filters = detect_ffmpeg()
    if version is None:
        log.warning("ffmpeg not found: only photos can be processed on this agent")
    processors: list[Processor] = [
        ReviewProcessor(config.agent.proxy, version, encoders, filters, config.agent.max_memory_mb)
    ]
    if version is None:
        log.warning("transcription disabled: ffmpeg is needed to decode audio")
    else:
        engines, _problems = engines_mod.load_engines(transcription_models(config))
        if engines:
            processors.append(
                TranscriptionProcessor(
                    engines,
                    config.agent.proxy.timeout_base_s,
                    config.agent.proxy.timeout_factor,
                    config.transcription.default_language,
                )
            )
    try:
        suggester = make_suggester(config.suggester)
    except ValueError as exc:
        raise ConfigError(f"suggester: {exc}") from exc
    processors.append(SuggestTagsProcessor(suggester, config.suggester.max_tags))
    return processors
