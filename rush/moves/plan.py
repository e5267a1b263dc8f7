"""Planning a batch apply (pure, no I/O): which groups move where, under which names.

Why pure: the dry run, the apply and its crash recovery must agree on every name, and
the rules (eligibility, destination area, collisions) deserve exhaustive unit tests
that need no disk and no database.  `rush.moves.apply` gathers the inputs and executes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from rush.layout import UnsafePath, safe_relpath
from rush.lifecycle import DECISION_OF_STATE, AssetState, moved_state
from rush.media import Area
from rush.moves.naming import TakenNames, choose_names

#: Destination area of each decision.
AREA_OF_DECISION = {"KEEP": Area.ARCHIVE, "REJECT": Area.REJECTS}
_DECIDED = (AssetState.DECIDED_KEEP, AssetState.DECIDED_REJECT)


@dataclass(frozen=True, slots=True)
class AssetSnapshot:
    """What the planner needs to know of one asset (read from the database)."""

    id: uuid.UUID
    rel_path: str
    state: AssetState
    processed: bool = True
    batch_id: uuid.UUID | None = None
    missing: bool = False
    #: Library-relative paths of the sidecars present on disk.
    sidecars: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileMove:
    src: str
    dst: str
    sidecar: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "sidecar": self.sidecar}


@dataclass(slots=True)
class PlanItem:
    """One group of the batch: a move, or a no-op when it already sits in its area."""

    asset_id: uuid.UUID
    state: AssetState
    target: AssetState
    src_area: Area
    dst_area: Area
    moves: list[FileMove] = field(default_factory=list)
    #: The UUID-derived base when the group had to be renamed, else None.
    renamed_base: str | None = None

    @property
    def noop(self) -> bool:
        return not self.moves

    @property
    def main(self) -> FileMove | None:
        return self.moves[0] if self.moves else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "uuid": str(self.asset_id),
            "state": str(self.state),
            "target": str(self.target),
            "from_area": str(self.src_area),
            "to_area": str(self.dst_area),
            "noop": self.noop,
            "renamed": self.renamed_base is not None,
            "moves": [m.to_dict() for m in self.moves],
            "sidecars": [m.src for m in self.moves if m.sidecar],
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    asset_id: uuid.UUID
    rel_path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"uuid": str(self.asset_id), "rel_path": self.rel_path, "reason": self.reason}


@dataclass(slots=True)
class BatchPlan:
    items: list[PlanItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: Groups not moved because their destination volume failed its marker check.
    refused: list[Skipped] = field(default_factory=list)
    #: Area -> why its volume is not written to (docs/batch.md, "Volume markers").
    volume_errors: dict[str, str] = field(default_factory=dict)

    @property
    def moves(self) -> list[PlanItem]:
        return [i for i in self.items if not i.noop]

    @property
    def noops(self) -> list[PlanItem]:
        return [i for i in self.items if i.noop]

    @property
    def collisions(self) -> list[PlanItem]:
        return [i for i in self.items if i.renamed_base is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "eligible": len(self.items),
            "to_move": len(self.moves),
            "noop": len(self.noops),
            "files": sum(len(i.moves) for i in self.items),
            "sidecars": sum(1 for i in self.items for m in i.moves if m.sidecar),
            "collisions": [
                {
                    "uuid": str(i.asset_id),
                    "new_base": i.renamed_base,
                    "files": [m.to_dict() for m in i.moves],
                }
                for i in self.collisions
            ],
            "items": [i.to_dict() for i in self.items],
            "skipped": [s.to_dict() for s in self.skipped],
            "refused": [s.to_dict() for s in self.refused],
            "volume_errors": dict(self.volume_errors),
        }

    def refuse_destinations(self, problems: dict[str, str]) -> None:
        """Take out every group that would write to a volume with a problem (pure)."""
        self.volume_errors = dict(problems)
        if not problems:
            return
        kept: list[PlanItem] = []
        for it in self.items:
            problem = problems.get(it.dst_area.value) if it.moves else None
            if problem is None:
                kept.append(it)
            else:
                self.refused.append(Skipped(it.asset_id, it.moves[0].src, problem))
        self.items = kept


def area_of(rel_path: str) -> Area | None:
    """The library area a relative path lies in, or None (EXPORTS, .derived, unknown)."""
    head = rel_path.split("/", 1)[0]
    try:
        return Area(head)
    except ValueError:
        return None


def rebase(rel_path: str, area: Area) -> str:
    """Same sub-path under another area: `INBOX/a/b.mp4` -> `ARCHIVE/a/b.mp4`."""
    _head, sep, rest = rel_path.partition("/")
    return f"{area.value}{sep}{rest}"


def destination_dirs(assets: Iterable[AssetSnapshot]) -> set[str]:
    """Folders whose listing the planner needs (one per possible destination)."""
    out: set[str] = set()
    for a in assets:
        decision = DECISION_OF_STATE.get(a.state)
        if decision is None or area_of(a.rel_path) is None:
            continue
        try:
            safe_relpath(a.rel_path)
        except UnsafePath:
            continue
        out.add(str(PurePosixPath(rebase(a.rel_path, AREA_OF_DECISION[decision])).parent))
    return out


def _check(a: AssetSnapshot) -> str | None:
    """Why an asset cannot be in this batch, or None."""
    if a.state not in _DECIDED:
        return f"state {a.state} is not DECIDED_KEEP/DECIDED_REJECT"
    if not a.processed:
        return "never processed (no facts for its version)"
    if a.batch_id is not None:
        return f"already in batch {a.batch_id}"
    if a.missing:
        return "file missing on disk"
    try:
        for p in (a.rel_path, *a.sidecars):
            if str(safe_relpath(p)) != p:
                return f"non-canonical path {p!r}"
    except UnsafePath as exc:
        return f"unsafe path: {exc}"
    if area_of(a.rel_path) is None or "/" not in a.rel_path:
        return "not in INBOX, ARCHIVE or REJECTS"
    folder = a.rel_path.rsplit("/", 1)[0]
    if any(s.rsplit("/", 1)[0] != folder for s in a.sidecars):
        return "a sidecar is not in the folder of its main file"
    return None


def plan_batch_moves(
    assets: Iterable[AssetSnapshot], existing_dest_names: Iterable[str]
) -> BatchPlan:
    """Plan a batch: destination and names of every eligible group, the rest skipped.

    `existing_dest_names` are library-relative paths already used at the destinations
    (the disk listing and every path the database knows there).  Groups are planned in
    path order so the result is the same on every run.
    """
    taken = TakenNames(existing_dest_names)
    plan = BatchPlan()
    for a in sorted(assets, key=lambda x: (x.rel_path, str(x.id))):
        reason = _check(a)
        if reason is not None:
            plan.skipped.append(Skipped(a.id, a.rel_path, reason))
            continue
        decision = DECISION_OF_STATE[a.state]
        src_area = area_of(a.rel_path)
        assert src_area is not None
        dst_area = AREA_OF_DECISION[decision]
        item = PlanItem(a.id, a.state, moved_state(decision), src_area, dst_area)
        plan.items.append(item)
        if src_area is dst_area:
            continue  # already where its decision wants it: no file moves
        dest_dir, main_name = rebase(a.rel_path, dst_area).rsplit("/", 1)
        names = [main_name, *(sc.rsplit("/", 1)[1] for sc in a.sidecars)]
        new_names, new_base = choose_names(dest_dir, names, main_name, a.id, taken.is_taken)
        srcs = [a.rel_path, *a.sidecars]
        for i, (src, name) in enumerate(zip(srcs, new_names, strict=True)):
            dst = f"{dest_dir}/{name}"
            taken.add(dst)
            item.moves.append(FileMove(src, dst, sidecar=i > 0))
        item.renamed_base = new_base
    return plan
