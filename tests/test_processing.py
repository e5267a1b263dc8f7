"""ReviewProcessor on real media made by ffmpeg and Pillow, run through real ffmpeg."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from integrations import ffrun
from integrations.derived import TMP_PREFIX
from integrations.processors import ReviewProcessor, default_processors, detect_ffmpeg
from rush.config import Config, ProxyConfig
from rush.jobs import DerivativeRole, JobFailed, JobOutput, JobType, check_required
from rush.media import MediaKind
from tests import media_helpers as mh

pytestmark = pytest.mark.ffmpeg

FFMPEG = detect_ffmpeg()


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library with every test medium in INBOX/shoot (generated once per module)."""
    root = tmp_path_factory.mktemp("lib")
    d = root / "INBOX" / "shoot"
    d.mkdir(parents=True)
    mh.video(d / "clip.mp4", seconds=3)
    mh.video(
        d / "cam.mov",
        extra=(
            "-timecode", "01:00:00:00", "-movflags", "use_metadata_tags",
            "-metadata", "com.apple.quicktime.make=Apple",
            "-metadata", "com.apple.quicktime.model=iPhone 15 Pro",
            "-metadata", "creation_time=2024-07-14T18:03:22Z",
        ),
    )  # fmt: skip
    mh.video(d / "silent.mkv", audio=False)
    mh.video(d / "silent.mp4", audio=False)
    mh.ffmpeg(
        "-i", str(d / "silent.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(d / "vertical.mp4")
    )  # fmt: skip
    mh.video(
        d / "hdr.mp4",
        audio=False,
        extra=("-pix_fmt", "yuv420p10le", "-color_trc", "smpte2084", "-color_primaries", "bt2020",
               "-colorspace", "bt2020nc"),
    )  # fmt: skip
    mh.video(
        d / "interlaced.mts",
        audio=False,
        extra=("-flags", "+ildct+ilme", "-x264-params", "tff=1", "-f", "mpegts"),
    )
    mh.video(d / "fast.mp4", seconds=3, extra=("-movflags", "+faststart"))
    mh.audio(d / "tone.wav")
    mh.audio(d / "tone.mp3")
    mh.audio(d / "tone.flac")
    for orientation in (1, 3, 6, 8):
        mh.asymmetric_photo(d / f"o{orientation}.jpg", orientation, "JPEG")
    mh.asymmetric_photo(
        d / "exif.jpg", 1, "JPEG", {0x0132: "2023:12:24 20:15:00", 0x0131: "test-suite"}
    )
    mh.asymmetric_photo(d / "o6.tiff", 6, "TIFF")
    mh.asymmetric_photo(d / "o1.png", 1, "PNG")
    # pillow-heif keeps HEIC orientation in irot/imir transforms that libheif applies on
    # decode; it does not turn an EXIF tag into one when writing, so test HEIC upright.
    mh.asymmetric_photo(d / "o1.heic", 1, "HEIF")
    # A TIFF named .dng: LibRaw says "not RAW", Pillow reads it.
    mh.asymmetric_photo(d / "tiffraw.dng", 1, "TIFF")
    mh.write_dng(d / "raw1.dng", orientation=1)
    mh.write_dng(d / "raw6.dng", orientation=6)
    bad = root / "INBOX" / "bad"
    bad.mkdir()
    mh.truncate(d / "clip.mp4", bad / "nomoov.mp4")
    mh.truncate(d / "fast.mp4", bad / "cut.mp4", keep=0.4)
    mh.truncate(d / "silent.mkv", bad / "cut.mkv", keep=0.5)
    mh.garbage(bad / "noise.mp4")
    mh.garbage(bad / "noise.wav")
    mh.garbage(bad / "noise.jpg")
    mh.truncate(d / "o1.jpg", bad / "cut.jpg", keep=0.5)
    mh.truncate(d / "raw1.dng", bad / "cut.dng", keep=0.3)
    (bad / "empty.mov").write_bytes(b"")
    return root


def _proc(**proxy: object) -> ReviewProcessor:
    cfg = ProxyConfig.model_validate({"thumb_count": 4, "video_height": 180, **proxy})
    return ReviewProcessor(cfg, *FFMPEG)


async def _run(
    library: Path, kind: MediaKind, main: str, **proxy: object
) -> tuple[JobOutput, Path, mh.Ctx]:
    ctx = mh.Ctx(library)
    job = mh.make_job(kind, main)
    before = mh.listing(library / "INBOX")
    out = await _proc(**proxy).run(job, ctx)
    assert mh.listing(library / "INBOX") == before, "nothing may be written next to originals"
    derived = ctx.abs_path(job.derived_dir)
    for ref in out.derivatives:
        assert ref.path.startswith(job.derived_dir + "/")
        assert (library / ref.path).stat().st_size == ref.size > 0
    assert not [p for p in derived.iterdir() if p.name.startswith(TMP_PREFIX)]
    present = {ref.role: ref.size for ref in out.derivatives}
    assert check_required(kind, present) is None
    return out, derived, ctx


def _probe(path: Path) -> Any:
    return json.loads(
        __import__("subprocess")
        .run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", str(path)],
            capture_output=True,
            check=True,
        )
        .stdout
    )


@pytest.mark.parametrize(
    ("name", "has_audio"),
    [("clip.mp4", True), ("cam.mov", True), ("silent.mkv", False), ("silent.mp4", False)],
)
async def test_video_proxy_thumbs_poster_strip(library: Path, name: str, has_audio: bool) -> None:
    out, derived, ctx = await _run(library, MediaKind.VIDEO, f"INBOX/shoot/{name}")
    roles = [r.role for r in out.derivatives]
    assert roles.count(DerivativeRole.PROXY) == 1
    assert roles.count(DerivativeRole.THUMB) == 4
    assert DerivativeRole.POSTER in roles and DerivativeRole.STRIP in roles
    probe = _probe(derived / "proxy.mp4")
    codecs = {s["codec_type"]: s.get("codec_name") for s in probe["streams"]}
    assert codecs.get("video") == "h264"
    assert (codecs.get("audio") == "aac") is has_audio
    vstream = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert vstream["height"] == 180
    # +faststart: the moov atom comes before mdat.
    head = (derived / "proxy.mp4").read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (
        head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat")
    )
    with Image.open(derived / "thumb_01.jpg") as thumb:
        assert thumb.width == 320
    with Image.open(derived / "strip.jpg") as strip:
        assert strip.width == 4 * 320
    facts = out.facts or {}
    assert facts["has_audio"] is has_audio and facts["has_video"] is True
    assert facts["width"] == 320 and facts["height"] == 240 and facts["video_codec"] == "h264"
    assert 1.9 <= facts["duration_s"] <= 3.1 and facts["frame_rate"] == 25.0
    assert facts["processing"]["encoder"] == "libx264"
    assert ctx.progress[0] == 0.0 and ctx.progress[-1] == 1.0
    assert all(0.0 <= p <= 1.0 for p in ctx.progress)
    json.dumps(facts)  # JSON-able


async def test_video_facts_camera_timecode_creation(library: Path) -> None:
    out, derived, _ = await _run(library, MediaKind.VIDEO, "INBOX/shoot/cam.mov")
    facts = out.facts or {}
    assert facts["camera_make"] == "Apple" and facts["camera_model"] == "iPhone 15 Pro"
    assert facts["timecode"] == "01:00:00:00"
    assert facts["created_at"].startswith("2024-07-14T18:03:22")
    assert facts["container"].startswith("mov")
    # The proxy starts where the camera's timecode did: editors relink by timecode.
    probe = _probe(derived / "proxy.mp4")
    tags = [s.get("tags", {}).get("timecode") for s in probe["streams"]]
    assert "01:00:00:00" in tags


def test_proxy_timecode_only_when_ffmpeg_can_write_it() -> None:
    from integrations.ffcmd import proxy_timecode

    assert proxy_timecode("01:00:00:00", 25.0) == "01:00:00:00"
    assert proxy_timecode("10:59:59;29", 29.97) == "10:59:59;29"
    assert proxy_timecode("00:00:00:23", 23.976) == "00:00:00:23"
    assert proxy_timecode("00:00:00:24", 23.976) is None
    assert proxy_timecode("00:00:00:25", 25.0) is None  # no frame 25 at 25 fps
    for bad in (None, "", "1:00:00:00", "01:00:00", "01:61:00:00", "x1:00:00:00", 12):
        assert proxy_timecode(bad, 25.0) is None
    assert proxy_timecode("01:00:00:00", None) is None


async def test_vertical_video_proxy_is_upright(library: Path) -> None:
    out, derived, _ = await _run(library, MediaKind.VIDEO, "INBOX/shoot/vertical.mp4")
    facts = out.facts or {}
    assert facts["rotation"] in (90, 270)
    assert (facts["display_width"], facts["display_height"]) == (240, 320)
    vstream = next(
        s for s in _probe(derived / "proxy.mp4")["streams"] if s["codec_type"] == "video"
    )
    assert vstream["height"] == 180 and vstream["width"] < vstream["height"]


async def test_hdr_video_is_tonemapped_to_sdr(library: Path) -> None:
    out, derived, _ = await _run(library, MediaKind.VIDEO, "INBOX/shoot/hdr.mp4")
    facts = out.facts or {}
    assert facts["hdr"] is True and facts["color_transfer"] == "smpte2084"
    assert facts["processing"]["tonemapped"] is True
    vstream = next(
        s for s in _probe(derived / "proxy.mp4")["streams"] if s["codec_type"] == "video"
    )
    assert vstream["pix_fmt"] == "yuv420p" and vstream["color_transfer"] == "bt709"


async def test_interlaced_video_is_deinterlaced(library: Path) -> None:
    out, derived, _ = await _run(library, MediaKind.VIDEO, "INBOX/shoot/interlaced.mts")
    facts = out.facts or {}
    assert facts["interlaced"] is True and facts["field_order"] == "tt"
    assert facts["processing"]["deinterlaced"] is True
    vstream = next(
        s for s in _probe(derived / "proxy.mp4")["streams"] if s["codec_type"] == "video"
    )
    assert vstream.get("field_order", "progressive") == "progressive"


@pytest.mark.parametrize("hw", ["vaapi", "v4l2m2m"])
async def test_hardware_encoder_falls_back_to_software(library: Path, hw: str) -> None:
    """No hardware encoder exists on the test machine: the job must still produce a proxy."""
    out, derived, _ = await _run(
        library,
        MediaKind.VIDEO,
        "INBOX/shoot/clip.mp4",
        hwaccel=hw,
        vaapi_device="/dev/null-no-gpu",
    )
    processing = (out.facts or {})["processing"]
    assert processing["encoder"] == "libx264"
    assert processing["hw_fallback"] and "ffmpeg failed" in processing["hw_fallback"]
    assert (derived / "proxy.mp4").stat().st_size > 0


@pytest.mark.parametrize("name", ["tone.wav", "tone.mp3", "tone.flac"])
async def test_audio_proxy_and_waveform(library: Path, name: str) -> None:
    out, derived, _ = await _run(library, MediaKind.AUDIO, f"INBOX/shoot/{name}")
    roles = {r.role: r for r in out.derivatives}
    assert set(roles) == {
        DerivativeRole.PROXY, DerivativeRole.WAVEFORM_JSON, DerivativeRole.WAVEFORM_PNG
    }  # fmt: skip
    assert roles[DerivativeRole.PROXY].mime == "audio/mp4"
    probe = _probe(derived / "proxy.m4a")
    assert [s["codec_name"] for s in probe["streams"]] == ["aac"]
    wave = json.loads((derived / "waveform.json").read_text())
    assert wave["version"] == 1 and 1.9 <= wave["duration"] <= 2.2
    peaks = wave["peaks"]
    assert len(peaks) % 2 == 0 and 190 <= len(peaks) // 2 <= 230
    # A full-scale sine: every bucket swings both ways, within [-1, 1].
    assert min(peaks[0::2]) >= -1.0 and max(peaks[1::2]) <= 1.0
    assert max(peaks[1::2]) > 0.05 and min(peaks[0::2]) < -0.05
    with Image.open(derived / "waveform.png") as png:
        assert png.format == "PNG"
    facts = out.facts or {}
    assert facts["has_audio"] is True and facts["has_video"] is False
    assert facts["sample_rate"] == 44100 and facts["audio_channels"] == 1


def _colour(img: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    px = img.convert("RGB").getpixel((int(x * (img.width - 1)), int(y * (img.height - 1))))
    assert isinstance(px, tuple)
    return (px[0], px[1], px[2])


def _is(colour: tuple[int, int, int], ref: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 60 for a, b in zip(colour, ref, strict=True))


def _hue(colour: tuple[int, int, int]) -> str:
    """Demosaiced colours are not exact: which primary clearly dominates."""
    r, g, b = colour
    if r > 2 * max(g, b):
        return "red"
    if b > 2 * max(r, g):
        return "blue"
    return "other"


# Where the stored left (red) half ends up once displayed, per EXIF orientation.
_RED_AT = {1: "left", 3: "right", 6: "top", 8: "bottom"}


@pytest.mark.parametrize(
    ("name", "orientation"),
    [("o1.jpg", 1), ("o3.jpg", 3), ("o6.jpg", 6), ("o8.jpg", 8), ("o6.tiff", 6), ("o1.png", 1),
     ("o1.heic", 1), ("tiffraw.dng", 1)],
)  # fmt: skip
async def test_photo_thumbnails_are_upright(library: Path, name: str, orientation: int) -> None:
    out, derived, _ = await _run(
        library, MediaKind.PHOTO, f"INBOX/shoot/{name}", photo_sizes=[64, 150]
    )
    thumbs = [r for r in out.derivatives if r.role is DerivativeRole.THUMB]
    assert sorted(r.path.rsplit("/", 1)[1] for r in thumbs) == ["thumb_150.jpg", "thumb_64.jpg"]
    for size in (64, 150):
        with Image.open(derived / f"thumb_{size}.jpg") as img:
            assert max(img.size) == size
            portrait = orientation in (6, 8)
            assert (img.height > img.width) is portrait
            where = _RED_AT[orientation]
            red_xy, blue_xy = {
                "left": ((0.1, 0.5), (0.9, 0.5)),
                "right": ((0.9, 0.5), (0.1, 0.5)),
                "top": ((0.5, 0.1), (0.5, 0.9)),
                "bottom": ((0.5, 0.9), (0.5, 0.1)),
            }[where]
            assert _is(_colour(img, *red_xy), mh.RED), f"{name}: red not on the {where}"
            assert _is(_colour(img, *blue_xy), mh.BLUE)
    facts = out.facts or {}
    assert facts["width"] == 200 and facts["height"] == 100
    assert facts["orientation"] == orientation
    portrait = orientation in (6, 8)
    assert (facts["display_width"], facts["display_height"]) == (
        (100, 200) if portrait else (200, 100)
    )
    if name.endswith((".jpg", ".tiff", ".heic")):
        assert facts["camera_make"] == "Canon" and facts["camera_model"] == "Canon EOS R5"


@pytest.mark.parametrize("orientation", [1, 6])
async def test_raw_dng_through_libraw_is_upright(library: Path, orientation: int) -> None:
    """A real Bayer DNG without preview: rawpy/LibRaw demosaics it (half size)."""
    out, derived, _ = await _run(
        library, MediaKind.PHOTO, f"INBOX/shoot/raw{orientation}.dng", photo_sizes=[64, 150]
    )
    with Image.open(derived / "thumb_150.jpg") as img:
        if orientation == 6:
            assert img.height > img.width
            assert _hue(_colour(img, 0.5, 0.1)) == "red" and _hue(_colour(img, 0.5, 0.9)) == "blue"
        else:
            assert img.width > img.height
            assert _hue(_colour(img, 0.1, 0.5)) == "red" and _hue(_colour(img, 0.9, 0.5)) == "blue"
    facts = out.facts or {}
    assert facts["format"] == "RAW" and (facts["width"], facts["height"]) == (400, 200)
    assert facts["orientation"] == orientation
    assert facts["camera_make"] == "Canon" and facts["camera_model"] == "Canon EOS R5"


def test_photo_facts_exposure_lens_gps(tmp_path: Path) -> None:
    from PIL import ExifTags

    from integrations.photo import photo_facts

    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (48.0, 51.0, 29.6), 3: "W", 4: (2.0, 17.0, 40.2), 6: 35.5})
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub.update(
        {
            ExifTags.Base.ExposureTime: 0.004,
            ExifTags.Base.FNumber: 2.8,
            ExifTags.Base.ISOSpeedRatings: 400,
            ExifTags.Base.LensModel: "RF 24-70mm F2.8",
            ExifTags.Base.FocalLength: 35.0,
            ExifTags.Base.DateTimeOriginal: "2024:07:14 18:03:22",
            ExifTags.Base.OffsetTimeOriginal: "+02:00",
        }
    )
    Image.new("RGB", (20, 10)).save(tmp_path / "p.jpg", exif=exif)
    facts = photo_facts(tmp_path / "p.jpg")
    assert facts["exposure_time"] == "1/250" and facts["f_number"] == 2.8
    assert facts["iso"] == 400 and facts["focal_length_mm"] == 35.0
    assert facts["lens_model"] == "RF 24-70mm F2.8"
    assert facts["taken_at"] == "2024-07-14T18:03:22+02:00"
    assert facts["gps"] == {"lat": 48.8582222, "lon": -2.2945, "alt": 35.5}
    assert facts["camera_make"] is None


async def test_photo_exif_date_and_software(library: Path) -> None:
    out, _, _ = await _run(library, MediaKind.PHOTO, "INBOX/shoot/exif.jpg")
    facts = out.facts or {}
    assert facts["taken_at"] == "2023-12-24T20:15:00"
    assert facts["software"] == "test-suite" and facts["format"] == "JPEG"
    assert facts["mime"] == "image/jpeg" and facts["gps"] is None


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        (MediaKind.VIDEO, "bad/nomoov.mp4", "not a readable media file"),
        (MediaKind.VIDEO, "bad/cut.mp4", "truncated"),
        (MediaKind.VIDEO, "bad/cut.mkv", "truncated"),
        (MediaKind.VIDEO, "bad/noise.mp4", "not a readable media file"),
        (MediaKind.VIDEO, "bad/empty.mov", "not a readable media file"),
        (MediaKind.VIDEO, "shoot/tone.wav", "no video stream"),
        (MediaKind.AUDIO, "bad/noise.wav", "not a readable media file"),
        (MediaKind.PHOTO, "bad/noise.jpg", "not a readable image"),
        (MediaKind.PHOTO, "bad/cut.jpg", "truncated"),
        (MediaKind.PHOTO, "bad/cut.dng", "cannot read RAW file"),
        (MediaKind.VIDEO, "shoot/missing.mp4", "not found"),
        (MediaKind.VIDEO, "../../etc/passwd", "refusing path"),
    ],
)
async def test_bad_input_fails_clearly_and_leaves_nothing(
    library: Path, kind: MediaKind, name: str, message: str
) -> None:
    ctx = mh.Ctx(library)
    job = mh.make_job(kind, f"INBOX/{name}")
    before = mh.listing(library / "INBOX")
    with pytest.raises(JobFailed, match=message):
        await _proc().run(job, ctx)
    assert mh.listing(library / "INBOX") == before
    derived = ctx.abs_path(job.derived_dir)
    assert not derived.exists() or not list(derived.iterdir()), "no derivative left behind"


def _ffmpeg_children_on(path: Path) -> list[int]:
    """PIDs of processes (zombies included: unreaped) whose command line names `path`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if str(path).encode() in cmd or (" Z " in stat and "(ffmpeg)" in stat):
            found.append(int(pid))
    return found


async def test_stuck_ffmpeg_is_killed_and_reaped(tmp_path: Path) -> None:
    fifo = tmp_path / "never.fifo"
    os.mkfifo(fifo)
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats",
            "-f", "s16le", "-i", str(fifo), "-f", "null", "-"]  # fmt: skip
    with pytest.raises(ffrun.FfmpegTimeout, match="killed"):
        await ffrun.run_ffmpeg(args, duration_s=10, timeout_s=0.5)
    assert _ffmpeg_children_on(fifo) == [], "the stuck ffmpeg must be killed and reaped"


async def test_stuck_input_fails_the_job(library: Path) -> None:
    """A source that never delivers data (a FIFO): probe times out, job fails, nothing left."""
    fifo = library / "INBOX" / "stuck.mp4"
    os.mkfifo(fifo)
    try:
        ctx = mh.Ctx(library)
        job = mh.make_job(MediaKind.VIDEO, "INBOX/stuck.mp4")
        with pytest.raises(JobFailed, match="did not answer"):
            await _proc(timeout_base_s=0.5).run(job, ctx)
        assert _ffmpeg_children_on(fifo) == []
    finally:
        fifo.unlink()


async def test_cancelled_job_reaps_ffmpeg(tmp_path: Path) -> None:
    fifo = tmp_path / "cancel.fifo"
    os.mkfifo(fifo)
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats",
            "-f", "s16le", "-i", str(fifo), "-f", "null", "-"]  # fmt: skip
    task = asyncio.ensure_future(ffrun.run_ffmpeg(args, duration_s=10, timeout_s=60))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if _ffmpeg_children_on(fifo):
            break
    assert _ffmpeg_children_on(fifo), "ffmpeg should be running"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _ffmpeg_children_on(fifo) == []


def test_default_processors_and_capabilities(tmp_path: Path) -> None:
    config = Config()
    procs = default_processors(config)
    types = [p.job_type for p in procs]
    # No model configured: English through pocketsphinx's bundled model.
    assert types == [JobType.PROCESS_FOR_REVIEW, JobType.TRANSCRIPTION, JobType.SUGGEST_TAGS]
    assert procs[1].capabilities()["languages"] == ["en"]
    caps = procs[0].capabilities()
    assert set(caps["kinds"]) == {"video", "audio", "photo"}
    assert caps["ffmpeg"].startswith("ffmpeg version") and "libx264" in caps["encoders"]
    assert caps["heif"] is True and caps["hwaccel"] == "none" and caps["raw"] == "rawpy"
    assert caps["hdr_tonemap"] is True
    assert procs[2].capabilities()["backend"] == "builtin"
    # A model that does not load: that language is not offered (logged), nothing else.
    config.transcription.models = {"en": f"vosk:{tmp_path / 'no-such-model'}"}
    assert [p.job_type for p in default_processors(config)] == [
        JobType.PROCESS_FOR_REVIEW, JobType.SUGGEST_TAGS
    ]  # fmt: skip


class _LeaseLost(mh.Ctx):
    """A runtime whose heartbeat reports a lost lease once ffmpeg is running."""

    async def heartbeat(self, progress: float) -> None:
        await super().heartbeat(progress)
        if 0.0 < progress < 1.0:
            raise JobFailed("lease lost")


async def test_failing_heartbeat_aborts_and_cleans_up(library: Path) -> None:
    ctx = _LeaseLost(library)
    job = mh.make_job(MediaKind.VIDEO, "INBOX/shoot/clip.mp4")
    with pytest.raises(JobFailed, match="lease lost"):
        await _proc().run(job, ctx)
    assert not ctx.abs_path(job.derived_dir).exists(), "temps and partial outputs removed"
    assert _ffmpeg_children_on(library / "INBOX/shoot/clip.mp4") == []


@pytest.mark.parametrize("bad", ["INBOX/shoot", "../outside", ".derived"])
async def test_derivatives_never_go_outside_derived(library: Path, bad: str) -> None:
    ctx = mh.Ctx(library)
    job = mh.make_job(MediaKind.PHOTO, "INBOX/shoot/o1.jpg").model_copy(update={"derived_dir": bad})
    before = mh.listing(library)
    with pytest.raises(JobFailed, match="refusing derived_dir"):
        await _proc().run(job, ctx)
    assert mh.listing(library) == before
