"""Subtitle sidecars: dialogue becomes a transcript (source: sidecar), drone telemetry
becomes facts, and bad files (legacy encodings, broken timings, huge files) are reported
clearly without losing anything else."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from rush.languages import TranscriptionConfig
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.metadata import subtitles
from rush.metadata.sidecar_import import import_sidecars
from rush.models import Asset, Facts, Sidecar, Transcript

SRT = """1
00:00:01,000 --> 00:00:03,500
Hello, my name is <i>Anna</i>.

2
00:00:04,000 --> 00:00:06,000
Bring the rings, please.
"""

DJI = "".join(
    f"""{n}
00:00:{n - 1:02d},000 --> 00:00:{n:02d},000
<font size="28">FrameCnt: {n}, DiffTime: 33ms
2024-05-13 14:22:{50 + n}.123
[iso : 100] [shutter : 1/640.0] [fnum : 280] [ev : 0] [ct : 5500] [color_md : default] [focal_len : 240] [latitude: {45.1 + n / 1000:.6f}] [longitude: {6.2 + n / 1000:.6f}] [rel_alt: {10.0 * n:.3f} abs_alt: {1200.0 + 10 * n:.3f}] </font>

"""
    for n in range(1, 6)
)


def test_srt_dialogue_is_a_timed_transcript() -> None:
    subs = subtitles.parse(SRT.encode(), "a.srt")
    assert [c.text for c in subs.cues] == ["Hello, my name is Anna.", "Bring the rings, please."]
    assert not subtitles.is_telemetry(subs)
    t = subtitles.transcript(subs, "en", "a.srt")
    assert t["source"] == "sidecar" and t["language"] == "en"
    assert t["text"] == "Hello, my name is Anna. Bring the rings, please."
    rings = next(w for w in t["words"] if w["word"].startswith("rings"))
    assert 4.0 <= rings["start"] < rings["end"] <= 6.0
    assert t["words"][0]["start"] == 1.0


def test_legacy_encodings_are_decoded() -> None:
    text = "1\r\n00:00:00,000 --> 00:00:02,000\r\nCafé, crème brûlée – déjà vu\r\n"
    for raw, enc in (
        (text.encode("cp1252"), "cp1252"),
        (codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + text.encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF8 + text.encode(), "utf-8-sig"),
        (text.encode(), "utf-8"),
    ):
        subs = subtitles.parse(raw, "x.srt")
        assert subs.encoding == enc and subs.cues[0].text == "Café, crème brûlée – déjà vu"


def test_vtt_with_header_notes_settings_and_short_times() -> None:
    vtt = (
        "WEBVTT - interview\n\nNOTE written by hand\n\nSTYLE\n::cue { color: red }\n\n"
        "intro\n00:01.500 --> 00:03.000 align:start position:10%\n<v Anna>We are here\n\n"
        "01:00:00.000 --> 01:00:01.000\nan hour in\n"
    )
    subs = subtitles.parse(vtt.encode(), "x.vtt")
    assert [(c.start, c.text) for c in subs.cues] == [(1.5, "We are here"), (3600.0, "an hour in")]


def test_malformed_timings_are_skipped_and_reported() -> None:
    bad = SRT + "\n3\n00:00:07,000 -> 00:00:08,000\nno arrow\n\n4\n00:00:09 --> soon\nbroken\n"
    subs = subtitles.parse(bad.encode(), "a.srt")
    assert len(subs.cues) == 2 and subs.skipped == 2
    assert subs.problems == ["a.srt: 2 cue(s) with a malformed timing skipped"]
    with pytest.raises(subtitles.SubtitleError, match="no valid subtitle cue"):
        subtitles.parse(b"1\n00:00:xx --> 00:00:02,000\nhello\n", "b.srt")
    with pytest.raises(subtitles.SubtitleError, match="no valid subtitle cue"):
        subtitles.parse(b"", "empty.srt")
    with pytest.raises(subtitles.SubtitleError, match="binary data"):
        subtitles.parse(b"\x00\x01\x02garbage" * 10, "bin.srt")


def test_oversized_file_is_refused_with_its_size() -> None:
    raw = b"x" * (subtitles.MAX_SUBTITLE_BYTES + 1)
    with pytest.raises(subtitles.SubtitleError, match=r"huge.srt is 16.8 MB, larger than"):
        subtitles.parse(raw, "huge.srt")


def test_dji_telemetry_becomes_facts() -> None:
    subs = subtitles.parse(DJI.encode(), "DJI_0001.SRT")
    assert subtitles.is_telemetry(subs)
    facts = subtitles.telemetry_facts(subs)
    assert facts["gps_start"] == {"t": 0.0, "lat": 45.101, "lon": 6.201}
    assert facts["gps_end"] == {"t": 4.0, "lat": 45.105, "lon": 6.205}
    assert (facts["altitude_min_m"], facts["altitude_max_m"]) == (1210.0, 1250.0)
    assert (facts["relative_altitude_min_m"], facts["relative_altitude_max_m"]) == (10.0, 50.0)
    assert facts["iso"] == [100] and facts["gps_points"] == 5
    old = "1\n00:00:00,000 --> 00:00:01,000\nHOME(6.1,45.1) 2017.08.05 GPS(6.2,45.2,19) ISO:100\n"
    f = subtitles.telemetry_facts(subtitles.parse(old.encode()))
    assert f["gps_start"] == {"t": 0.0, "lat": 45.2, "lon": 6.2}


async def _asset_with(root: Path, files: dict[str, bytes]) -> Asset:
    rel = "INBOX/shoot/clip.mp4"
    (root / "INBOX/shoot").mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(b"video")
    asset = await Asset.create(
        kind=MediaKind.VIDEO,
        rel_path=rel,
        path_key=rel,
        state=AssetState.PROCESSED,
        transcript_status="pending",
    )
    await Facts.create(asset=asset, version=1, data={"duration_s": 8.0, "has_audio": True})
    for name, data in files.items():
        (root / "INBOX/shoot" / name).write_bytes(data)
        await Sidecar.create(asset=asset, rel_path=f"INBOX/shoot/{name}", size=len(data))
    return asset


async def test_import_stores_a_sidecar_transcript(db: str, tmp_path: Path) -> None:
    asset = await _asset_with(tmp_path, {"clip.srt": SRT.encode("cp1252")})
    before = (tmp_path / "INBOX/shoot/clip.srt").read_bytes()
    await import_sidecars(asset.id, tmp_path, TranscriptionConfig())
    t = await Transcript.get(asset_id=asset.id)
    assert (t.source, t.language, t.engine) == ("sidecar", "en", "clip.srt")
    assert "rings" in t.text and t.words
    row = await Asset.get(id=asset.id)
    assert row.transcript_status == "done"  # no recognition queued over the clip's own words
    assert (tmp_path / "INBOX/shoot/clip.srt").read_bytes() == before  # read-only


async def test_import_reports_bad_files_and_parses_telemetry(db: str, tmp_path: Path) -> None:
    huge = b"1\n00:00:00,000 --> 00:00:01,000\nhi\n\n" * (50 * 1024 * 1024 // 34)
    asset = await _asset_with(
        tmp_path, {"clip.srt": huge, "clip.mp4.srt": DJI.encode(), "clip.vtt": b"WEBVTT\n\n"}
    )
    await import_sidecars(asset.id, tmp_path, TranscriptionConfig())
    facts = (await Facts.get(asset_id=asset.id)).data
    assert facts["duration_s"] == 8.0  # nothing else lost
    assert facts["telemetry"]["gps_start"]["lat"] == 45.101
    assert facts["telemetry"]["file"] == "clip.mp4.srt"
    problems = facts["sidecar_problems"]
    size = f"{len(huge) / 1e6:.1f} MB"  # about 55 MB
    assert any(f"clip.srt is {size}, larger than the 16 MB" in p for p in problems), problems
    assert any("clip.vtt: no valid subtitle cue" in p for p in problems), problems
    assert await Transcript.filter(asset_id=asset.id).count() == 0
    assert (await Asset.get(id=asset.id)).transcript_status == "pending"
