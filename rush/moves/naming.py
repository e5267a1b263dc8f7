"""Deterministic collision naming for a group of files (pure, no I/O).

Why: a batch apply must never overwrite a file, and the new name of a colliding group
must be the same on every run (a dry run and the apply agree, a crashed apply resumes
to the same names).  The new base is derived from the asset UUID and applied to the
whole group, so `clip.mp4` + `clip.xmp` become `clip__3f2a9c1e.mp4` + `clip__3f2a9c1e.xmp`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence

from rush.media import split_name

#: Lengths of the UUID fragment tried in turn; the last one is the full UUID.
_FRAGMENTS = (8, 12, 32)


def collision_key(rel_path: str) -> str:
    """Comparison key of a path: case-folded, so a case-insensitive share is safe too."""
    return rel_path.casefold()


def group_base(main_name: str) -> str:
    """Base name shared by a group: `clip.mp4` -> `clip`."""
    return split_name(main_name)[0]


def rename_member(name: str, old_base: str, new_base: str) -> str:
    """New name of one group member: the part after the common base is kept.

    `clip.xmp` and `clip.mp4.xmp` keep `.xmp` / `.mp4.xmp`; a member that does not start
    with the base (should not happen with `group_folder`) gets the new base as a prefix.
    """
    if name.startswith(old_base):
        return new_base + name[len(old_base) :]
    return f"{new_base}__{name}"


def _strip_own_suffix(base: str, hex_id: str) -> str:
    """Remove a suffix this function added on an earlier move, so names do not grow."""
    for length in _FRAGMENTS:
        suffix = f"__{hex_id[:length]}"
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


def candidate_bases(base: str, asset_id: uuid.UUID | str) -> list[str]:
    """Ordered new bases for a colliding group: `{base}__{uuid[:8]}`, then longer."""
    hex_id = uuid.UUID(str(asset_id)).hex
    root = _strip_own_suffix(base, hex_id)
    out = [f"{root}__{hex_id[:n]}" for n in _FRAGMENTS]
    out.extend(f"{root}__{hex_id}_{n}" for n in range(2, 100))
    return out


def choose_names(
    dest_dir: str,
    names: Sequence[str],
    main_name: str,
    asset_id: uuid.UUID | str,
    is_taken: Callable[[str], bool],
) -> tuple[list[str], str | None]:
    """Names of a group inside `dest_dir`: unchanged when free, else a UUID-derived base.

    Returns (new names in the order of `names`, the new base or None when unchanged).
    `is_taken(rel_path)` answers for the destination listing and earlier plan members.
    """

    def rel(name: str) -> str:
        return f"{dest_dir}/{name}" if dest_dir else name

    if not any(is_taken(rel(n)) for n in names):
        return list(names), None
    old_base = group_base(main_name)
    for base in candidate_bases(old_base, asset_id):
        new = [rename_member(n, old_base, base) for n in names]
        if not any(is_taken(rel(n)) for n in new) and len(set(map(collision_key, new))) == len(new):
            return new, base
    raise RuntimeError(f"no free name for {main_name!r} in {dest_dir!r}")  # pragma: no cover


class TakenNames:
    """The set of destination paths already used, case-insensitively."""

    __slots__ = ("_keys",)

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._keys = {collision_key(p) for p in paths}

    def __contains__(self, rel_path: object) -> bool:
        return isinstance(rel_path, str) and collision_key(rel_path) in self._keys

    def add(self, rel_path: str) -> None:
        self._keys.add(collision_key(rel_path))

    def is_taken(self, rel_path: str) -> bool:
        return collision_key(rel_path) in self._keys
