"""Eligibility rules of the hot→warm flow (docs/contract.md §8.4): age, category, NVMe free space. Pure.

The relocator gathers facts (the `.state` files, qBittorrent's view of each torrent, the
NVMe's disk usage) and asks `plan()` which torrents move, in which order, and why the
others stay.  No I/O here, so every rule is unit-tested without a service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

SpacePolicy = Literal["until_target", "all_eligible"]

GB = 1_000_000_000


@dataclass(frozen=True)
class Rules:
    min_age_sec: int
    #: Eligible qBittorrent categories; empty means every category.
    categories: tuple[str, ...]
    free_target_percent: float | None
    free_target_gb: float | None
    space_policy: SpacePolicy = "until_target"
    allow_break_hardlinks: bool = False


@dataclass(frozen=True)
class DiskUsage:
    total: int
    free: int


@dataclass(frozen=True)
class Candidate:
    infohash: str
    category: str
    #: When the torrent was imported (newest of its `.state` files).
    added_epoch: int
    size: int
    name: str = ""
    #: Bytes the move really frees on the NVMe (None: `size`).  A hard-linked file stays
    #: on the NVMe under its other name, so it frees nothing even when moved.
    frees: int | None = None
    #: Some file has another hard link (typically into the media library).
    hardlinked: bool = False

    @property
    def freed(self) -> int:
        return self.size if self.frees is None else self.frees


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    move: bool
    reason: str
    #: Why a torrent stays on purpose (a deferral, not a failure): too_young, hardlink.
    deferral: str | None = None


def target_free_bytes(rules: Rules, disk: DiskUsage) -> int:
    """The free space the NVMe should have; with both targets set, the larger one wins."""
    targets = [0]
    if rules.free_target_percent is not None:
        targets.append(int(disk.total * rules.free_target_percent / 100))
    if rules.free_target_gb is not None:
        targets.append(int(rules.free_target_gb * GB))
    return max(targets)


def _fmt(n: int) -> str:
    return f"{n / GB:.2f} GB"


def plan(
    candidates: Iterable[Candidate], now_epoch: int, rules: Rules, nvme: DiskUsage
) -> list[Decision]:
    """Decide every candidate: ineligible ones first, then the eligible oldest-first."""
    out: list[Decision] = []
    eligible: list[Candidate] = []
    for cand in candidates:
        age = now_epoch - cand.added_epoch
        if age < rules.min_age_sec:
            out.append(
                Decision(
                    cand,
                    False,
                    f"too young: age {age} s < min_age_sec {rules.min_age_sec}",
                    "too_young",
                )
            )
        elif rules.categories and cand.category not in rules.categories:
            out.append(
                Decision(
                    cand,
                    False,
                    f"category {cand.category!r} not in eligible {list(rules.categories)}",
                )
            )
        elif cand.hardlinked and not rules.allow_break_hardlinks:
            # Decided here, before the space budget: counting it as freed would make
            # every other torrent wait for a target that is never really reached.
            out.append(
                Decision(
                    cand,
                    False,
                    "hard-linked file(s) (probably into the media library): a cross-"
                    "filesystem move copies the data and breaks the link; kept on NVMe "
                    "(set allow_break_hardlinks to move anyway)",
                    "hardlink",
                )
            )
        else:
            eligible.append(cand)
    eligible.sort(key=lambda c: (c.added_epoch, c.infohash))
    if rules.space_policy == "all_eligible":
        out.extend(Decision(c, True, "eligible (age, category)") for c in eligible)
        return out
    target = target_free_bytes(rules, nvme)
    free = nvme.free
    for cand in eligible:
        if free >= target:
            out.append(
                Decision(
                    cand,
                    False,
                    f"NVMe free-space target met ({_fmt(free)} free >= {_fmt(target)})",
                )
            )
            continue
        out.append(
            Decision(
                cand,
                True,
                f"eligible; NVMe below target ({_fmt(free)} free < {_fmt(target)})",
            )
        )
        free += cand.freed
    return out


def to_move(decisions: Sequence[Decision]) -> list[Candidate]:
    return [d.candidate for d in decisions if d.move]
