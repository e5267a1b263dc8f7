"""ffmpeg command lines and ffprobe parsing, as pure functions (no I/O).

Why pure: the processors and `bench/processing.py` run exactly the same argument lists,
so the benchmark measures our overhead against the raw command, and the unit tests pin
every flag without starting ffmpeg.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rush.config import ProxyConfig

#: Hardware encoders per `proxy.hwaccel`; "none" is libx264.
HW_ENCODERS = {
    "vaapi": "h264_vaapi",
    "v4l2m2m": "h264_v4l2m2m",
    "videotoolbox": "h264_videotoolbox",
}

#: PQ/HLG -> SDR BT.709 (zimg's zscale + tonemap), as commonly done for iPhone HDR clips.
TONEMAP_CHAIN = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
    "tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})

_BASE = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
_PROGRESS = ["-progress", "pipe:1", "-nostats"]


@dataclass(frozen=True)
class VideoOutputs:
    """Where one video pass writes (absolute temp paths chosen by the caller)."""

    proxy: str
    thumb_pattern: str  # image2 pattern with %02d
    poster: str


def proxy_timeout(cfg: ProxyConfig, duration_s: float | None) -> float:
    """Hard limit for one ffmpeg run: base + factor x media duration (Immich #9978)."""
    return cfg.timeout_base_s + cfg.timeout_factor * max(duration_s or 0.0, 0.0)


def hw_bitrate_k(height: int) -> int:
    """Target bitrate for hardware encoders that have no CRF mode (scaled by height)."""
    return max(300, int(2000 * (height / 540) ** 2))


def video_encoder_args(cfg: ProxyConfig, hwaccel: str) -> list[str]:
    """Codec flags of the proxy's video stream for one encoder choice."""
    if hwaccel == "none":
        return [
            "-c:v", "libx264", "-preset", cfg.video_preset, "-crf", str(cfg.video_crf),
            "-pix_fmt", "yuv420p", "-profile:v", "high",
        ]  # fmt: skip
    if hwaccel == "vaapi":
        return ["-c:v", "h264_vaapi", "-qp", str(cfg.video_crf)]
    encoder = HW_ENCODERS[hwaccel]
    return ["-c:v", encoder, "-b:v", f"{hw_bitrate_k(cfg.video_height)}k"]


def _even_height(cfg: ProxyConfig, source_height: int | None) -> int:
    """Never upscale: a 240p source keeps 240p (rounded down to an even number)."""
    height = cfg.video_height
    if source_height:
        height = min(height, source_height)
    return max(2, height - height % 2)


def video_pass_args(
    src: str,
    out: VideoOutputs,
    cfg: ProxyConfig,
    *,
    duration_s: float,
    source_height: int | None,
    has_audio: bool,
    hwaccel: str = "none",
    tonemap: bool = False,
    deinterlace: bool = False,
    timecode: str | None = None,
) -> list[str]:
    """One decode pass writing the proxy, the thumbnail frames and the poster.

    The thumbnails are `thumb_count` frames spread evenly over the clip (fps filter);
    the poster is the first frame at or after a third of the clip.  `tonemap` turns an
    HDR (PQ/HLG) source into SDR BT.709 so proxies and thumbnails are not washed out;
    `deinterlace` runs bwdif on interlaced camcorder footage.  Both apply before the
    split, so every output gets them.  `timecode` (see `proxy_timecode`) starts the
    proxy's timecode track where the camera's did, so an editor relinks proxy and
    original by timecode.
    """
    height = _even_height(cfg, source_height)
    n = cfg.thumb_count
    span = max(duration_s, 0.1)
    rate = Fraction(n, 1) / Fraction(span).limit_denominator(1000)
    poster_t = round(span / 3, 3)
    proxy_chain = f"scale=-2:{height}"
    pre: list[str] = []
    if hwaccel == "vaapi":
        pre = ["-vaapi_device", cfg.vaapi_device]
        proxy_chain += ",format=nv12,hwupload"
    else:
        proxy_chain += ",format=yuv420p"
    pre_chain = ""
    if deinterlace:
        pre_chain += "bwdif=mode=send_frame,"
    if tonemap:
        pre_chain += TONEMAP_CHAIN + ","
    graph = (
        f"[0:v:0]{pre_chain}split=3[vp][vt][vq];"
        f"[vp]{proxy_chain}[proxy];"
        f"[vt]fps={rate.numerator}/{rate.denominator},scale={cfg.thumb_width}:-2[thumbs];"
        f"[vq]select='gte(t\\,{poster_t})',scale=-2:{height}[poster]"
    )
    args = [*_BASE, *_PROGRESS, *pre, "-i", src, "-filter_complex", graph]
    args += ["-map", "[proxy]"]
    if has_audio:
        args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{cfg.audio_bitrate_k}k", "-ac", "2"]
    args += video_encoder_args(cfg, hwaccel)
    if tonemap:
        args += ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]
    if timecode:
        args += ["-timecode", timecode]
    args += ["-movflags", "+faststart", "-f", "mp4", out.proxy]
    args += [
        "-map",
        "[thumbs]",
        "-frames:v",
        str(n),
        "-q:v",
        "4",
        "-f",
        "image2",
        out.thumb_pattern,
    ]
    args += ["-map", "[poster]", "-frames:v", "1", "-q:v", "3", "-f", "image2", "-update", "1"]
    args += [out.poster]
    return args


_TIMECODE = re.compile(r"\d{2}:[0-5]\d:[0-5]\d[:;.]\d{2}")


def proxy_timecode(timecode: Any, frame_rate: Any) -> str | None:
    """The source's start timecode if ffmpeg can write it for this frame rate, else None
    (a proxy without a timecode track is better than no proxy)."""
    if not isinstance(timecode, str) or not _TIMECODE.fullmatch(timecode):
        return None
    if not isinstance(frame_rate, int | float) or frame_rate <= 0:
        return None
    if int(timecode[-2:]) >= math.ceil(frame_rate - 0.01):
        return None
    return timecode


def audio_proxy_args(src: str, dst: str, cfg: ProxyConfig) -> list[str]:
    """AAC in an .m4a (plays in every browser), faststart for streaming."""
    return [
        *_BASE, *_PROGRESS, "-i", src, "-map", "0:a:0", "-vn", "-c:a", "aac",
        "-b:a", f"{cfg.audio_bitrate_k}k", "-movflags", "+faststart", "-f", "ipod", dst,
    ]  # fmt: skip


def pcm_args(src: str, sample_rate: int) -> list[str]:
    """Decode the first audio stream to mono s16le on stdout (waveform, speech)."""
    return [
        *_BASE, "-i", src, "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate),
        "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
    ]  # fmt: skip


def probe_args(src: str) -> list[str]:
    return [
        "ffprobe", "-hide_banner", "-loglevel", "error", "-of", "json",
        "-show_format", "-show_streams", src,
    ]  # fmt: skip


def parse_progress_line(line: str) -> tuple[str, str] | None:
    """`out_time_us=1500000` -> ("out_time_us", "1500000"); other lines -> None."""
    key, sep, value = line.strip().partition("=")
    if not sep or not key:
        return None
    return key, value


def progress_seconds(key: str, value: str) -> float | None:
    """Seconds of output written, from one `-progress` key (`out_time_us` / `out_time_ms`).

    ffmpeg prints `out_time_ms` in microseconds too (a historical misnomer).
    """
    if key not in ("out_time_us", "out_time_ms"):
        return None
    try:
        micro = int(value)
    except ValueError:
        return None
    return max(micro, 0) / 1_000_000


# --- ffprobe JSON -> facts ---------------------------------------------------------------


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _int(value: Any) -> int | None:
    num = _num(value)
    return int(num) if num is not None else None


def _rate(value: Any) -> float | None:
    if not isinstance(value, str) or "/" not in value:
        return _num(value)
    num, _, den = value.partition("/")
    n, d = _num(num), _num(den)
    if n is None or not d:
        return None
    return round(n / d, 3)


def _tag(tags: dict[str, Any], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    for name in names:
        value = lowered.get(name.lower())
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        rot = _int(side.get("rotation"))
        if rot is not None:
            return rot % 360
    rot = _int((stream.get("tags") or {}).get("rotate"))
    return (rot or 0) % 360


def facts_from_probe(probe: dict[str, Any]) -> dict[str, Any]:
    """Stable, JSON-able facts from `ffprobe -show_format -show_streams` output.

    Keys are documented in docs/processing.md; absent values are None, never missing.
    """
    fmt = probe.get("format") or {}
    streams = [s for s in probe.get("streams") or [] if isinstance(s, dict)]
    ftags = fmt.get("tags") or {}
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _num(fmt.get("duration"))
    if duration is None:
        durations = [_num(s.get("duration")) for s in streams]
        duration = max((d for d in durations if d is not None), default=None)
    timecode = _tag(ftags, "timecode")
    for s in streams:
        timecode = timecode or _tag(s.get("tags") or {}, "timecode")
    vtags = (video or {}).get("tags") or {}
    width = _int((video or {}).get("width"))
    height = _int((video or {}).get("height"))
    rotation = _rotation(video) if video else 0
    disp_w, disp_h = (height, width) if rotation in (90, 270) else (width, height)
    return {
        "container": fmt.get("format_name"),
        "container_long": fmt.get("format_long_name"),
        "duration_s": round(duration, 3) if duration is not None else None,
        "size_bytes": _int(fmt.get("size")),
        "bit_rate": _int(fmt.get("bit_rate")),
        "has_video": video is not None,
        "has_audio": audio is not None,
        "video_codec": (video or {}).get("codec_name"),
        "video_profile": (video or {}).get("profile"),
        "width": width,
        "height": height,
        "rotation": rotation,
        "display_width": disp_w,
        "display_height": disp_h,
        "frame_rate": _rate((video or {}).get("avg_frame_rate"))
        or _rate((video or {}).get("r_frame_rate")),
        "pix_fmt": (video or {}).get("pix_fmt"),
        "color_transfer": (video or {}).get("color_transfer"),
        "color_primaries": (video or {}).get("color_primaries"),
        "hdr": (video or {}).get("color_transfer") in HDR_TRANSFERS,
        "field_order": (video or {}).get("field_order"),
        "interlaced": (video or {}).get("field_order") in ("tt", "bb", "tb", "bt"),
        "audio_codec": (audio or {}).get("codec_name"),
        "audio_channels": _int((audio or {}).get("channels")),
        "sample_rate": _int((audio or {}).get("sample_rate")),
        "timecode": timecode,
        "created_at": _tag(ftags, "creation_time") or _tag(vtags, "creation_time"),
        "camera_make": _tag(ftags, "com.apple.quicktime.make", "make", "com.android.manufacturer"),
        "camera_model": _tag(ftags, "com.apple.quicktime.model", "model", "com.android.model"),
        "title": _tag(ftags, "title"),
        "artist": _tag(ftags, "artist"),
        "streams": [
            {
                "index": _int(s.get("index")),
                "type": s.get("codec_type"),
                "codec": s.get("codec_name"),
                "language": _tag(s.get("tags") or {}, "language"),
            }
            for s in streams
        ],
    }
