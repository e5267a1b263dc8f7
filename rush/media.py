"""Media kinds, library areas and file classification (pure, no I/O)."""

from __future__ import annotations

from enum import StrEnum


class MediaKind(StrEnum):
    VIDEO = "video"
    PHOTO = "photo"
    AUDIO = "audio"


class Area(StrEnum):
    """Top-level folders of the library root (docs/contract.md §3)."""

    INBOX = "INBOX"
    ARCHIVE = "ARCHIVE"
    REJECTS = "REJECTS"


EXPORTS_DIR = "EXPORTS"
DERIVED_DIR = ".derived"
MARKER_FILE = ".rushes_db"
#: At the root of every destination volume (ARCHIVE, REJECTS): which library and area it
#: belongs to (docs/batch.md, "Volume markers").
VOLUME_MARKER_FILE = ".rushes_volume"

DEFAULT_VIDEO_EXTENSIONS = (
    "mp4", "mov", "mxf", "mts", "m2ts", "mkv", "avi", "m4v", "mpg", "mpeg", "webm",
    "3gp", "insv", "braw", "r3d", "crm",
)  # fmt: skip
DEFAULT_PHOTO_EXTENSIONS = (
    "jpg", "jpeg", "heic", "heif", "png", "tif", "tiff", "webp", "cr2", "cr3", "nef",
    "nrw", "arw", "dng", "raf", "orf", "rw2", "pef", "srw", "gpr",
)  # fmt: skip
DEFAULT_AUDIO_EXTENSIONS = (
    "wav", "bwf", "mp3", "flac", "aac", "m4a", "aif", "aiff", "ogg", "opus", "wma",
)  # fmt: skip
#: Files that only ever travel with a parent; never an asset of their own.
DEFAULT_SIDECAR_EXTENSIONS = (
    "xmp", "srt", "vtt", "lrf", "thm", "json", "xml", "txt", "csv", "cue", "pp3", "dop",
    "aae", "lrv", "sidecar",
)  # fmt: skip
#: NAS and OS folders that are never entered (Synology, QNAP, macOS, Windows).
DEFAULT_IGNORED_DIRS = (
    "@eaDir", "#recycle", "#snapshot", ".AppleDouble", "@Recycle", "@Recently-Snapshot",
    "$RECYCLE.BIN", "System Volume Information", "lost+found", ".Trashes", ".Spotlight-V100",
)  # fmt: skip


def split_name(name: str) -> tuple[str, str]:
    """Split a file name into (base, lower-case extension without dot).

    `clip.MP4` -> ("clip", "mp4"); `.hidden` -> (".hidden", ""); `a.b.wav` -> ("a.b", "wav").
    """
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot + 1 :].lower()


class Classifier:
    """Decides what a file name is: a media kind, a sidecar, or nothing we track."""

    __slots__ = ("_kinds", "_sidecars")

    def __init__(
        self,
        video: tuple[str, ...] | list[str] = DEFAULT_VIDEO_EXTENSIONS,
        photo: tuple[str, ...] | list[str] = DEFAULT_PHOTO_EXTENSIONS,
        audio: tuple[str, ...] | list[str] = DEFAULT_AUDIO_EXTENSIONS,
        sidecar: tuple[str, ...] | list[str] = DEFAULT_SIDECAR_EXTENSIONS,
    ) -> None:
        self._kinds: dict[str, MediaKind] = {}
        for kind, exts in (
            (MediaKind.VIDEO, video),
            (MediaKind.PHOTO, photo),
            (MediaKind.AUDIO, audio),
        ):
            for ext in exts:
                self._kinds[ext.lower().lstrip(".")] = kind
        self._sidecars = frozenset(e.lower().lstrip(".") for e in sidecar)

    def kind_of(self, ext: str) -> MediaKind | None:
        return self._kinds.get(ext)

    def is_sidecar_ext(self, ext: str) -> bool:
        return ext in self._sidecars


#: Within one folder and base name, the file of the highest rank is the asset and every
#: other file is its sidecar (RAW beats its JPEG twin, a video beats its scratch WAV).
_RAW_PHOTO = frozenset(
    {"cr2", "cr3", "nef", "nrw", "arw", "dng", "raf", "orf", "rw2", "pef", "srw", "gpr"}
)


def _rank(kind: MediaKind, ext: str) -> int:
    if kind is MediaKind.VIDEO:
        return 3
    if kind is MediaKind.PHOTO:
        return 2 if ext in _RAW_PHOTO else 1
    return 0


class FileGroup:
    """One asset candidate of a folder: its main file name and its sidecar names."""

    __slots__ = ("kind", "main", "sidecars")

    def __init__(self, main: str, kind: MediaKind, sidecars: list[str]) -> None:
        self.main = main
        self.kind = kind
        self.sidecars = sidecars

    def __repr__(self) -> str:
        return f"FileGroup({self.main!r}, {self.kind}, {self.sidecars!r})"


def group_folder(names: list[str], classifier: Classifier) -> list[FileGroup]:
    """Group the file names of one folder into assets and their sidecars.

    Files share a group when they have the same base name (`clip.mp4`, `clip.xmp`,
    `clip.wav`), or when the sidecar carries the parent's full name (`clip.mp4.xmp`).
    Names that are neither media nor a sidecar of a media file are ignored.
    """
    kinds = classifier._kinds
    by_base: dict[str, list[str]] = {}
    for name in names:
        dot = name.rfind(".")
        base = name[:dot] if dot > 0 else name
        members = by_base.get(base)
        if members is None:
            by_base[base] = [name]
        else:
            members.append(name)
    groups: list[FileGroup] = []
    claimed: set[str] = set()
    for members in by_base.values():
        if len(members) == 1:
            # The common case (one file per base name), kept cheap for large folders.
            name = members[0]
            dot = name.rfind(".")
            kind = kinds.get(name[dot + 1 :].lower()) if dot > 0 else None
            if kind is not None:
                groups.append(FileGroup(name, kind, []))
                claimed.add(name)
            continue
        best: tuple[int, str, MediaKind] | None = None
        exts = [(name, split_name(name)[1]) for name in members]
        for name, ext in exts:
            kind = classifier.kind_of(ext)
            if kind is None:
                continue
            key = (_rank(kind, ext), name, kind)
            # Highest rank wins; ties broken by name so the choice is deterministic.
            if best is None or key[0] > best[0] or (key[0] == best[0] and name < best[1]):
                best = key
        if best is None:
            continue
        main = best[1]
        groups.append(FileGroup(main, best[2], sorted(n for n in members if n != main)))
        claimed.update(members)
    # Second pass: `clip.mp4.xmp` style sidecars hang off the parent's full name.
    by_main = {g.main: g for g in groups}
    for base, members in by_base.items():
        parent = by_main.get(base)
        if parent is None:
            continue
        for name in members:
            if name in claimed or not classifier.is_sidecar_ext(split_name(name)[1]):
                continue
            parent.sidecars.append(name)
            parent.sidecars.sort()
            claimed.add(name)
    groups.sort(key=lambda g: g.main)
    return groups
