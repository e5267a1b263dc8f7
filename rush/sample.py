"""A generated sample library, so `rush demo` shows the whole system with no media at hand.

Everything is made locally with ffmpeg (test patterns, tones, synthesized speech when
espeak-ng is present) and Pillow: nothing is downloaded.  Files get an old mtime so the
stability gate lets them through on the second scan instead of after 5.5 minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

#: The sample folder whose speech is Korean (see `rush demo`'s `language_rules`).
SEOUL = "2026-07-10 Seoul"


#: A Lightroom-style XMP: rating, label and keywords (read back as tags with source xmp).
SAMPLE_XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="4" xmp:Label="Green">
   <dc:subject><rdf:Bag><rdf:li>ceremony</rdf:li><rdf:li>rings</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


@dataclass(frozen=True)
class SampleFile:
    rel: str  # relative to INBOX
    kind: str


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def _video(path: Path, seconds: int, pattern: str, freq: int, size: str = "640x360") -> None:
    _ffmpeg(
        [
            "-f", "lavfi", "-i", f"{pattern}=size={size}:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "96k", "-shortest",
            "-metadata", "creation_time=2026-06-14T10:30:00Z",
            str(path),
        ]
    )  # fmt: skip


#: espeak-ng voice and pace per language: US-English female at 125 words a minute is what
#: the bundled pocketsphinx English model recognises best (docs/processing.md).
VOICES = {"en": ("en-us+f2", "125"), "ko": ("ko", "150")}


def _speech(path: Path, text: str, language: str = "en") -> bool:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return False
    voice, speed = VOICES[language]
    subprocess.run(
        [espeak, "-v", voice, "-s", speed, "-w", str(path), text], check=True, timeout=60
    )
    return True


def _speech_video(path: Path, text: str, language: str, seconds: int = 8) -> None:
    """A test pattern with synthesized speech (a tone when espeak-ng is missing)."""
    speech = path.with_name(f".speech-{path.stem}.wav")
    if _speech(speech, text, language):
        _ffmpeg(
            [
                "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
                "-i", str(speech), "-filter_complex", "[1:a]adelay=500|500,apad[a]",
                "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", str(seconds), str(path),
            ]
        )  # fmt: skip
        speech.unlink()
    else:
        _video(path, seconds, "testsrc2", 300)


def _photo(path: Path, colour: tuple[int, int, int], label: str, orientation: int = 1) -> None:
    img = Image.new("RGB", (1600, 1067), colour)
    draw = ImageDraw.Draw(img)
    draw.rectangle((80, 80, 700, 400), fill=(255, 255, 255))
    draw.text((120, 200), label, fill=(0, 0, 0))
    exif = Image.Exif()
    exif[0x010F] = "RushCatalog"  # Make
    exif[0x0110] = "Sample Camera"  # Model
    exif[0x0112] = orientation
    exif[0x9003] = "2026:06:14 10:31:00"  # DateTimeOriginal (stored in the IFD0 copy)
    img.save(path, quality=88, exif=exif.tobytes())


def make_sample_library(
    root: Path, *, progress: Callable[[str], None] | None = None, age_s: float = 3600
) -> list[SampleFile]:
    """Fill `root/INBOX` with a small, varied shoot; existing files are never overwritten."""
    inbox = root / "INBOX"
    made: list[SampleFile] = []
    before = {p for p in inbox.rglob("*") if p.is_file()} if inbox.exists() else set()

    def target(rel: str) -> Path | None:
        path = inbox / rel
        if path.exists():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        if progress:
            progress(rel)
        return path

    shoot = "2026-06-14 Wedding Anna & Tom"
    for i, (pattern, freq) in enumerate(
        [("testsrc2", 440), ("smptebars", 523), ("rgbtestsrc", 659), ("testsrc", 330)], start=1
    ):
        rel = f"{shoot}/A-cam/C000{i}.MP4"
        if (p := target(rel)) is not None:
            _video(p, 6 + i, pattern, freq)
            made.append(SampleFile(rel, "video"))
            sidecar = p.with_suffix(".XML")
            sidecar.write_text(
                f'<?xml version="1.0"?>\n<NonRealTimeMeta><Device manufacturer="Sample" '
                f'modelName="FX-SAMPLE"/><Clip id="C000{i}"/></NonRealTimeMeta>\n'
            )
    rel = f"{shoot}/Sound/ZOOM0001.WAV"
    if (p := target(rel)) is not None:
        if not _speech(p, "Please bring the rings to the table. We are here for the wedding."):
            _ffmpeg(["-f", "lavfi", "-i", "sine=frequency=220:duration=8", str(p)])
        made.append(SampleFile(rel, "audio"))
    rel = "2026-07-02 Interview/Interview_take2.mov"
    if (p := target(rel)) is not None:
        _speech_video(p, "Hello, my name is Anna. I have been a photographer for ten years.", "en")
        made.append(SampleFile(rel, "video"))
        p.with_suffix(".srt").write_text(
            "1\n00:00:00,000 --> 00:00:03,000\nHello, my name is Anna.\n"
        )
    # Korean speech in a folder that `rush demo`'s language rule sends to the Korean model.
    rel = f"{SEOUL}/Seoul_street.mp4"
    if (p := target(rel)) is not None:
        _speech_video(p, "안녕하세요. 저는 사진작가입니다. 오늘은 날씨가 좋습니다.", "ko")
        made.append(SampleFile(rel, "video"))
    for i, (colour, orient) in enumerate(
        [((200, 80, 60), 1), ((60, 140, 200), 6), ((90, 170, 90), 1), ((230, 200, 70), 8)], start=1
    ):
        rel = f"{shoot}/Photos/IMG_{1000 + i}.JPG"
        if (p := target(rel)) is not None:
            _photo(p, colour, f"Sample photo {i}", orient)
            made.append(SampleFile(rel, "photo"))
            if i == 1:
                p.with_suffix(".xmp").write_text(SAMPLE_XMP)
    rel = "Music/Theme.flac"
    if (p := target(rel)) is not None:
        _ffmpeg(
            # A few notes with a swell, so its waveform looks like music, not a flat line.
            [
                "-f",
                "lavfi",
                "-i",
                "aevalsrc=0.7*sin(2*PI*(262+131*mod(floor(t*2)\\,4))*t)"
                "*(0.35+0.65*abs(sin(PI*t/2.5))):s=44100:d=10",
                str(p),
            ]
        )
        made.append(SampleFile(rel, "audio"))
    old = time.time() - age_s
    for path in inbox.rglob("*"):
        if path.is_file() and path not in before:  # only what this call created
            os.utime(path, (old, old))
    manifest = root / ".sample-library.json"
    if made:
        manifest.write_text(json.dumps([f.__dict__ for f in made], indent=2) + "\n")
    return made
