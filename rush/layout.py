"""The library layout on the NAS (docs/contract.md §3) and safe path handling.

Every path stored in the database is relative to the library root.  `resolve` turns
one back into an absolute path and refuses anything that would escape the root
(`..`, absolute paths, NUL bytes): hostile paths never reach the filesystem.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rush import names
from rush.media import DERIVED_DIR, EXPORTS_DIR, MARKER_FILE, VOLUME_MARKER_FILE, Area


class UnsafePath(ValueError):
    """A relative path that would leave the library root."""


class SymlinkInPath(UnsafePath):
    """A folder below an area root is a symbolic link: files are never moved, deleted or
    written through one (the scanner never follows them either)."""


class LibraryNotMounted(RuntimeError):
    """The library root or its marker is missing: the share is probably not mounted."""


@dataclass(frozen=True)
class Marker:
    library_id: str
    version: int = 1


def safe_relpath(rel: str) -> PurePosixPath:
    """Validate a library-relative path: no absolute, no `..`, no NUL, not empty."""
    if not rel or "\x00" in rel:
        raise UnsafePath(f"invalid relative path {rel!r}")
    path = PurePosixPath(rel)
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or rel.startswith("~"):
        raise UnsafePath(f"path {rel!r} leaves the library root")
    return path


def resolve(root: Path, rel: str, areas: Mapping[str, Path] | None = None) -> Path:
    """Absolute path of a library-relative path, guaranteed to stay under `root`.

    `rel` is the stored (database) form: names that were not valid UTF-8 are decoded
    back to their exact bytes (see `path_to_db`).  `areas` maps an area kept elsewhere
    ("ARCHIVE", "REJECTS" on another volume or mount) to its own root; paths in it stay
    under that root instead.
    """
    if areas:
        head, _, tail = rel.partition("/")
        area = areas.get(head)
        if area is not None and tail:
            return area / safe_relpath(path_from_db(tail))
    return root / safe_relpath(path_from_db(rel))


def refuse_symlinks(base: Path, path: Path, *, last: bool = False) -> None:
    """Raise SymlinkInPath if a folder between `base` and `path` is a symbolic link.

    `base` (an area root: a mount point or a configured path) is trusted; every component
    below it is checked with lstat, down to the parent of `path` (to `path` itself with
    `last`).  Components that do not exist yet are fine: they will be created as folders.
    """
    parts = path.relative_to(base).parts
    current = base
    for part in parts if last else parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode):
            raise SymlinkInPath(f"{current} is a symbolic link: refusing {path}")


# The stored form of names that are not valid UTF-8 lives in `rush.names`; these are
# the names the rest of the code has always used for it.
path_to_db = names.from_fs
path_from_db = names.to_fs


def read_marker(root: Path) -> Marker:
    marker = root / MARKER_FILE
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        return Marker(library_id=str(data["library_id"]), version=int(data.get("version", 1)))
    except FileNotFoundError as exc:
        raise LibraryNotMounted(
            f"{marker} not found: the library is not initialised or the share is not mounted"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LibraryNotMounted(f"{marker} is unreadable or corrupt: {exc}") from exc


#: The folders of a library root (the marker file aside).
LAYOUT_DIRS = (*(a.value for a in Area), EXPORTS_DIR, DERIVED_DIR)


def init_library(root: Path) -> tuple[Marker, list[Path]]:
    """Create the library folders and marker; idempotent, never touches existing files."""
    created: list[Path] = []
    root.mkdir(parents=True, exist_ok=True)
    for name in LAYOUT_DIRS:
        folder = root / name
        if not folder.exists():
            folder.mkdir()
            created.append(folder)
    marker_path = root / MARKER_FILE
    if marker_path.exists():
        return read_marker(root), created
    marker = Marker(library_id=uuid.uuid4().hex)
    _write_json(marker_path, {"library_id": marker.library_id, "version": 1})
    created.append(marker_path)
    # A new library's own ARCHIVE and REJECTS get their volume markers now, while they are
    # known to be the empty folders just made; volumes elsewhere (or folders that already
    # held files) only by `rush init --volume` (docs/batch.md, "Volume markers").
    for area in (Area.ARCHIVE.value, Area.REJECTS.value):
        folder = root / area
        if not folder_has_files(folder):
            created.append(write_volume_marker(folder, marker.library_id, area))
    return marker, created


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)


#: Entries a freshly formatted volume may hold: not "files" for `rush init --volume`.
_FRESH_VOLUME_ENTRIES = frozenset({"lost+found", VOLUME_MARKER_FILE})


def folder_has_files(folder: Path) -> bool:
    """Whether a folder holds anything but what an empty, new volume holds."""
    try:
        return any(n not in _FRESH_VOLUME_ENTRIES for n in os.listdir(folder))
    except FileNotFoundError:
        return False


def write_volume_marker(folder: Path, library_id: str, area: str) -> Path:
    """Write the marker that says `folder` is `area` of library `library_id`.

    Only `rush init` calls this, never start-up: an unmounted mount point is an empty
    folder, and marking it would make it look like the volume.
    """
    path = folder / VOLUME_MARKER_FILE
    _write_json(path, {"library_id": library_id, "area": area, "version": 1})
    return path


def outside_areas(root: Path) -> list[str]:
    """Top-level entries of a library root that are not part of its layout (hidden ones
    aside): media kept there is never discovered, only files under INBOX/ are."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [n for n in names if n not in LAYOUT_DIRS and not n.startswith(".")]


def outside_areas_hint(root: Path) -> str | None:
    """What to tell someone whose shoots sit next to INBOX/ instead of inside it."""
    stray = outside_areas(root)
    if not stray:
        return None
    shown = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
    return (
        f"{root} holds {len(stray)} entr{'y' if len(stray) == 1 else 'ies'} outside the "
        f"library areas ({shown}): only files under {root / Area.INBOX.value}/ are "
        "discovered. Move your shoots into INBOX/ (RushCatalog never moves them there itself)."
    )


def derived_dir(asset_id: uuid.UUID | str, version: int) -> str:
    """Library-relative folder of an asset's derivatives for one processing version."""
    return f"{DERIVED_DIR}/{asset_id}/v{version}"
