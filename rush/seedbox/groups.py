"""Cross-seeds: torrents that seed the very same files (same save path, same relative
names and sizes — typically one release on several trackers).  Pure.

Why: moving one of them alone leaves the others pointing at files that are gone (100 %
until their next recheck, then 0 %).  They move as one group, or none of them moves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Files = Sequence[tuple[str, int]]


@dataclass(frozen=True)
class Group:
    #: Every member's infohash, the torrents with `.state` files first, then sorted.
    members: tuple[str, ...]
    #: Distinct files of the group: (relative name, size), sorted.
    files: tuple[tuple[str, int], ...]
    #: Names the members list with different sizes: not the same data, the group is refused.
    mismatched: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)


def cross_seed_groups(
    torrents: Mapping[str, tuple[str, Files]], primaries: Sequence[str]
) -> dict[str, Group]:
    """For each primary infohash, its group among `torrents` (infohash -> (save path,
    files)).  Two torrents belong together when they share a file: same save path and
    same relative name (transitively).  Primaries that end up in one group share it,
    keyed by the first of them in `primaries` order."""
    by_path: dict[str, set[str]] = {}
    for infohash, (save_path, files) in torrents.items():
        base = os.path.normpath(save_path)
        for name, _ in files:
            by_path.setdefault(os.path.join(base, os.path.normpath(name)), set()).add(infohash)
    out: dict[str, Group] = {}
    seen: set[str] = set()
    for primary in primaries:
        if primary in seen or primary not in torrents:
            continue
        members: set[str] = set()
        todo = [primary]
        while todo:
            h = todo.pop()
            if h in members:
                continue
            members.add(h)
            base = os.path.normpath(torrents[h][0])
            for name, _ in torrents[h][1]:
                todo.extend(by_path[os.path.join(base, os.path.normpath(name))] - members)
        seen |= members
        sizes: dict[str, set[int]] = {}
        for h in members:
            for name, size in torrents[h][1]:
                sizes.setdefault(name, set()).add(size)
        order = {h: i for i, h in enumerate(primaries)}
        ranked = sorted(members, key=lambda h: (order.get(h, len(order)), h))
        out[primary] = Group(
            members=tuple(ranked),
            files=tuple(sorted((n, max(s)) for n, s in sizes.items())),
            mismatched=tuple(sorted(n for n, s in sizes.items() if len(s) > 1)),
        )
    return out
