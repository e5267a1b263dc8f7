"""Volume markers: a destination is written to only when it proves to be the right volume.

Why: with `library.archive_root` on a mount point that is not mounted, the mount point is
an empty folder of the root filesystem; moving files "into ARCHIVE" then hides them under
the volume once it is mounted again.  Every destination volume (ARCHIVE, REJECTS, or the
configured `archive_root` / `rejects_root`) therefore carries a `.rushes_volume` marker
naming the library and the area.  Batch apply, purge and relink check it first and refuse
a volume whose marker is missing or names another library or area.

Markers are written only by an explicit `rush init` (`init_volume`), never at start-up.
docs/batch.md ("Volume markers") is the user-facing description.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rush.config import Config
from rush.layout import (
    LibraryNotMounted,
    folder_has_files,
    read_marker,
    write_volume_marker,
)
from rush.media import VOLUME_MARKER_FILE, Area

DESTINATIONS = (Area.ARCHIVE.value, Area.REJECTS.value)


class VolumeError(RuntimeError):
    """`rush init --volume` refused: the message says why and what to do."""


@dataclass(frozen=True)
class VolumeMarker:
    library_id: str
    area: str
    version: int = 1


def destination_roots(config: Config) -> dict[str, Path]:
    """Where each destination area lives (its own volume or a folder of the library)."""
    lib = config.library
    return {
        Area.ARCHIVE.value: lib.archive_root or lib.root / Area.ARCHIVE.value,
        Area.REJECTS.value: lib.rejects_root or lib.root / Area.REJECTS.value,
    }


def read_volume_marker(folder: Path) -> VolumeMarker:
    """The marker of a volume root; FileNotFoundError when absent, ValueError if corrupt."""
    data = json.loads((folder / VOLUME_MARKER_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return VolumeMarker(str(data["library_id"]), str(data["area"]), int(data.get("version", 1)))


def volume_problem(area: str, folder: Path, library_id: str, *, verb: str = "moved") -> str | None:
    """Why `folder` must not be written to as `area` of library `library_id`, or None.

    `verb` completes "nothing was …" (moved for an apply, deleted for a purge).
    """
    marker = folder / VOLUME_MARKER_FILE
    fix = f"once it is mounted run `rush init --volume {folder}`"
    try:
        found = read_volume_marker(folder)
    except (FileNotFoundError, NotADirectoryError):
        return (
            f"{area} volume not mounted or not initialised (marker {marker} missing) — "
            f"nothing was {verb}; {fix}"
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{area} volume marker {marker} is unreadable ({exc}) — nothing was {verb}; {fix}"
    if found.library_id != library_id:
        return (
            f"{area} volume {folder} belongs to another library ({found.library_id}, this "
            f"library is {library_id}; marker {marker}) — nothing was {verb}; mount the "
            "right volume there"
        )
    if found.area != area:
        return (
            f"{area} volume {folder} is marked as the {found.area} volume of this library "
            f"(marker {marker}) — nothing was {verb}; mount the right volume there"
        )
    return None


def check_volumes(
    config: Config, areas: Iterable[str] = DESTINATIONS, *, verb: str = "moved"
) -> dict[str, str]:
    """Area -> problem, for each of `areas` that must not be written to now (does I/O)."""
    roots = destination_roots(config)
    wanted = sorted({str(a) for a in areas} & set(roots))
    if not wanted:
        return {}
    try:
        library_id = read_marker(config.library.root).library_id
    except LibraryNotMounted as exc:
        return {a: f"{exc} — nothing was {verb}" for a in wanted}
    out: dict[str, str] = {}
    for area in wanted:
        problem = volume_problem(area, roots[area], library_id, verb=verb)
        if problem is not None:
            out[area] = problem
    return out


@dataclass(frozen=True)
class VolumeInit:
    area: str
    folder: Path
    marker: Path
    #: False when the same marker was already there (nothing written).
    written: bool
    notes: tuple[str, ...] = ()


def area_of_volume(config: Config, folder: Path) -> str:
    """Which destination area `folder` is for this configuration; VolumeError if none."""
    target = os.path.realpath(folder)
    roots = destination_roots(config)
    for area, root in roots.items():
        if os.path.realpath(root) == target:
            return area
    listed = ", ".join(f"{a} is {p}" for a, p in roots.items())
    raise VolumeError(
        f"{folder} is not a destination volume of this library ({listed}); set "
        "library.archive_root / library.rejects_root first"
    )


def init_volume(config: Config, folder: Path, *, adopt: bool = False) -> VolumeInit:
    """Write the volume marker of `folder` (`rush init --volume`).

    Refuses a folder that does not exist (a mount point is never created), a library that
    has no marker yet, a folder marked for another library or area, and a folder that
    already holds files unless `adopt` (an existing ARCHIVE of an upgraded install).
    """
    area = area_of_volume(config, folder)
    try:
        library_id = read_marker(config.library.root).library_id
    except LibraryNotMounted as exc:
        raise VolumeError(f"{exc}; run `rush init` for the library first") from exc
    if not folder.is_dir():
        raise VolumeError(
            f"{folder} does not exist or is not a folder: mount the volume (or create the "
            "folder on it) first; a volume root is never created here"
        )
    marker = folder / VOLUME_MARKER_FILE
    notes: list[str] = []
    roots = destination_roots(config)
    if roots[area] != config.library.root / area and not os.path.ismount(folder):
        notes.append(
            f"{folder} is not a mount point: if a volume is meant to be mounted there, "
            "it is not mounted now"
        )
    try:
        existing: VolumeMarker | None = read_volume_marker(folder)
    except FileNotFoundError:
        existing = None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VolumeError(f"{marker} exists but is unreadable ({exc}); check it by hand") from exc
    if existing is not None:
        if (existing.library_id, existing.area) == (library_id, area):
            return VolumeInit(area, folder, marker, False, tuple(notes))
        raise VolumeError(
            f"{marker} says this is the {existing.area} volume of library "
            f"{existing.library_id} (this library is {library_id}, this is {area}); "
            "nothing was written"
        )
    if folder_has_files(folder) and not adopt:
        raise VolumeError(
            f"{folder} already holds files: if it is this library's {area} (an install "
            "from before volume markers), run `rush init --volume "
            f"{folder} --adopt`; nothing was written"
        )
    written = write_volume_marker(folder, library_id, area)
    return VolumeInit(area, folder, written, True, tuple(notes))
