"""What one scanner pass must change, decided without any I/O (docs/contract.md §9, workflow 1).

Input: the scanner's in-memory index of known assets and a `Listing` of the library.
Output: a `Plan` (new assets, fact updates, transitions, missing flags, sidecar changes)
that `actors.scanner` then writes.  Being pure, every rule here is unit-tested without a
database or a file system.

Rules (docs/scanner.md explains them for users):
- New assets are created only from INBOX; ARCHIVE/REJECTS are only checked for presence.
- Stability: DISCOVERED -> READY when the size and mtime were identical on two consecutive
  passes and the mtime is older than `stable_after_s`.  A READY file that changes goes
  back to DISCOVERED.  Other states never change here; their size/mtime stay honest.
- A file already known as an asset stays an asset even when a later file would make it a
  sidecar; a sidecar is never an asset.
- Missing: flagged, never deleted.  Never for assets held by a batch (MOVE_QUEUED or
  `batch_id`), never below a folder that could not be listed, never when the walk was
  incomplete, and the whole pass is skipped when far fewer known files are present than
  expected (`min_present_ratio`): an unmounted share is not a mass deletion.
- Identity is the content (docs/scanner.md, "Identity"): a missing asset whose path shows
  up again, or a new INBOX file of the same size and kind as exactly one missing (or just
  vanished) INBOX asset, is that asset only when the sampled fingerprint matches (rows
  without a fingerprint, from before fingerprints: same size, mtime and name).  Other
  bytes at a missing asset's path are a new asset, and the missing one gives up the path.
  A reviewed asset whose file changes in place with other bytes goes back to DISCOVERED
  (`content_changed`), its decision kept aside, not applied.
- Fingerprints are read through the `fingerprint` function the caller passes in, and only
  for the few files whose identity is in question; the scanner fingerprints every other
  file when it becomes READY.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from rush.fswalk import Listing
from rush.media import Area, Classifier, group_folder

DISCOVERED, READY, MOVE_QUEUED, PURGED = "DISCOVERED", "READY", "MOVE_QUEUED", "PURGED"
#: Changes of the file in these states are reported, not acted on: an agent holds it.
PROCESSING = "PROCESSING_REVIEW"
#: A file's sampled fingerprint, or None when it cannot be read (now).
Fingerprint = Callable[[str], "str | None"]
INBOX = Area.INBOX.value
#: mtimes closer than this are the same mtime (find prints ns, stat gives a double).
MTIME_EPS = 1e-5
#: Read-only stand-in for "no sidecars now" (never mutated).
_NO_SIDECARS: dict[str, tuple[int, float]] = {}


class Known:
    """The scanner's memory of one asset (a row of `asset`, plus its sidecars)."""

    __slots__ = (
        "area",
        "busy",
        "id",
        "kind",
        "missing",
        "mtime",
        "rel",
        "sample",
        "sidecars",
        "size",
        "stable",
        "state",
    )

    def __init__(
        self,
        id: str,
        rel: str,
        area: str,
        kind: str,
        size: int,
        mtime: float,
        state: str,
        stable: int,
        missing: bool,
        busy: bool,
        sample: str | None = None,
    ) -> None:
        self.id = id
        self.rel = rel
        self.area = area
        self.kind = kind
        self.size = size
        self.mtime = mtime
        self.state = state
        self.stable = stable
        self.missing = missing
        #: Held by a batch apply (MOVE_QUEUED or batch_id set): never touched by a scan.
        self.busy = busy
        #: The sampled content fingerprint (None until the file became READY once).
        self.sample = sample
        #: sidecar rel path -> (size, mtime); None when it has none (most assets: an empty
        #: dict each would cost ~10 MB per 200,000 assets).
        self.sidecars: dict[str, tuple[int, float]] | None = None

    def set_sidecar(self, rel: str, size: int, mtime: float) -> None:
        if self.sidecars is None:
            self.sidecars = {}
        self.sidecars[rel] = (size, mtime)

    def __repr__(self) -> str:
        return f"Known({self.id}, {self.state}, {self.rel!r})"


class Index:
    """Known assets by id and by path; PURGED assets are not kept."""

    def __init__(self) -> None:
        self.by_id: dict[str, Known] = {}
        self.by_path: dict[str, Known] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def put(self, known: Known) -> None:
        old = self.by_id.get(known.id)
        if old is not None:
            if self.by_path.get(old.rel) is old:
                del self.by_path[old.rel]
            if known.sidecars is None:
                known.sidecars = old.sidecars
        if known.state == PURGED:
            self.by_id.pop(known.id, None)
            return
        self.by_id[known.id] = known
        current = self.by_path.get(known.rel)
        # A missing asset that gave up its path to a new file never hides that file.
        if current is None or current.id == known.id or not (known.missing and not current.missing):
            self.by_path[known.rel] = known

    def remove(self, asset_id: str) -> None:
        old = self.by_id.pop(asset_id, None)
        if old is not None and self.by_path.get(old.rel) is old:
            del self.by_path[old.rel]

    def move(self, known: Known, new_rel: str) -> None:
        if self.by_path.get(known.rel) is known:
            del self.by_path[known.rel]
        known.rel = new_rel
        self.by_path[new_rel] = known


@dataclass(slots=True)
class NewAsset:
    id: str
    kind: str
    area: str
    rel: str
    size: int
    mtime: float
    sidecars: Sequence[tuple[str, int, float]]
    #: Taken in the pass when its identity was in question, else at READY.
    sample: str | None = None


@dataclass(slots=True)
class FactUpdate:
    """Scanner-owned columns of a known asset: size, mtime, stable_scans, missing."""

    known: Known
    size: int
    mtime: float
    stable: int


@dataclass(slots=True)
class Relocation:
    known: Known
    new_rel: str


@dataclass(slots=True)
class ContentChange:
    """A reviewed asset whose file now holds other bytes: back to DISCOVERED."""

    known: Known
    size: int
    mtime: float
    sample: str | None


@dataclass
class Plan:
    skipped_reason: str | None = None
    new: list[NewAsset] = field(default_factory=list)
    facts: list[FactUpdate] = field(default_factory=list)
    ready: list[Known] = field(default_factory=list)
    #: READY -> DISCOVERED with the new size and mtime.
    changed: list[FactUpdate] = field(default_factory=list)
    missing: list[Known] = field(default_factory=list)
    reappeared: list[Known] = field(default_factory=list)
    relocations: list[Relocation] = field(default_factory=list)
    content_changed: list[ContentChange] = field(default_factory=list)
    #: Missing assets whose path a new file with other bytes took: they give up the path.
    displaced: list[Known] = field(default_factory=list)
    #: (asset id, rel, size, mtime)
    sidecar_add: list[tuple[str, str, int, float]] = field(default_factory=list)
    sidecar_update: list[tuple[str, str, int, float]] = field(default_factory=list)
    #: (asset id, rel)
    sidecar_remove: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Media files in ARCHIVE/REJECTS that no asset owns (never created from there).
    untracked: int = 0

    def is_empty(self) -> bool:
        return not (
            self.new
            or self.facts
            or self.ready
            or self.changed
            or self.missing
            or self.relocations
            or self.content_changed
            or self.displaced
            or self.sidecar_add
            or self.sidecar_update
            or self.sidecar_remove
        )


def _same(size: int, mtime: float, k_size: int, k_mtime: float) -> bool:
    return size == k_size and abs(mtime - k_mtime) <= MTIME_EPS


def _under(rel: str, folders: Iterable[str]) -> bool:
    return any(rel.startswith(f + "/") for f in folders)


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_ids(count: int) -> list[str]:
    """`count` random (version 4) UUID strings; one urandom call instead of `count`."""
    blob = os.urandom(16 * count).hex()
    variant = _VARIANT
    return [
        f"{x[:8]}-{x[8:12]}-4{x[13:16]}-{variant[x[16]]}{x[17:20]}-{x[20:]}"
        for x in (blob[i : i + 32] for i in range(0, 32 * count, 32))
    ]


class Planner:
    """Computes a `Plan`; holds the per-pass settings."""

    def __init__(
        self,
        classifier: Classifier,
        stable_after_s: float,
        min_present_ratio: float,
    ) -> None:
        self.classifier = classifier
        self.stable_after_s = stable_after_s
        self.min_present_ratio = min_present_ratio
        #: Set for the duration of one `plan` call (with its per-pass cache).
        self._fingerprint: Fingerprint | None = None
        self._fp_cache: dict[str, str | None] = {}

    # -- identity --------------------------------------------------------------------
    def _fp(self, rel: str) -> str | None:
        if self._fingerprint is None:
            return None
        if rel not in self._fp_cache:
            self._fp_cache[rel] = self._fingerprint(rel)
        return self._fp_cache[rel]

    def _same_content(self, k: Known, rel: str, size: int, mtime: float) -> bool:
        """Whether the file at `rel` holds the bytes of asset `k`.

        By the sampled fingerprint; a row from before fingerprints has none, and then only
        the same size, mtime and file name count (a copy keeps neither mtime nor, with
        cameras restarting their numbering, a unique name: the safe answer is "new").
        """
        if size != k.size:
            return False
        if k.sample is None:
            return (
                abs(mtime - k.mtime) <= MTIME_EPS
                and rel.rpartition("/")[2] == k.rel.rpartition("/")[2]
            )
        fp = self._fp(rel)
        return fp is not None and fp == k.sample

    # -- stability -------------------------------------------------------------------
    def _known_present(
        self,
        plan: Plan,
        k: Known,
        size: int,
        mtime: float,
        now: float,
        sidecars: dict[str, tuple[int, float]] | None,
    ) -> None:
        if k.busy:
            return
        same = _same(size, mtime, k.size, k.mtime)
        if k.missing:
            plan.reappeared.append(k)
        if k.state == DISCOVERED:
            stable = min(2, k.stable + 1) if same else 1
            if stable >= 2 and now - mtime >= self.stable_after_s:
                plan.ready.append(k)
                if k.missing:
                    plan.facts.append(FactUpdate(k, size, mtime, stable))
            elif not same or stable != k.stable or k.missing:
                plan.facts.append(FactUpdate(k, size, mtime, stable))
        elif k.state == READY:
            if not same:
                plan.changed.append(FactUpdate(k, size, mtime, 1))
            elif k.missing:
                plan.facts.append(FactUpdate(k, size, mtime, k.stable))
        elif not same and k.state != PROCESSING and self._fingerprint is not None:
            self._reviewed_changed(plan, k, size, mtime)
        else:
            if not same:
                plan.warnings.append(
                    f"{k.rel!r} ({k.state}) changed on disk after discovery: "
                    f"size {k.size} -> {size}, mtime {k.mtime:.0f} -> {mtime:.0f}; "
                    "its processing results may be out of date (reprocess it)"
                )
            if not same or k.missing:
                plan.facts.append(FactUpdate(k, size, mtime, k.stable))
        if sidecars is not None and (sidecars or k.sidecars):
            self._sync_sidecars(plan, k, sidecars)

    def _reviewed_changed(self, plan: Plan, k: Known, size: int, mtime: float) -> None:
        """A processed (or later) asset's file changed: same bytes (a touch) or other ones."""
        fp = self._fp(k.rel)
        if fp is None and size == k.size:
            # Unreadable now, or still being written: nothing is concluded this pass.
            plan.warnings.append(
                f"{k.rel!r} ({k.state}) changed on disk (mtime) but cannot be fingerprinted "
                "now; checked again on the next pass"
            )
            return
        if fp is not None and fp == k.sample:
            plan.facts.append(FactUpdate(k, size, mtime, k.stable))  # same bytes: a touch
            return
        plan.content_changed.append(ContentChange(k, size, mtime, fp))

    @staticmethod
    def _sync_sidecars(plan: Plan, k: Known, current: dict[str, tuple[int, float]]) -> None:
        old = k.sidecars or _NO_SIDECARS
        for rel, (size, mtime) in current.items():
            prev = old.get(rel)
            if prev is None:
                plan.sidecar_add.append((k.id, rel, size, mtime))
            elif not _same(size, mtime, *prev):
                plan.sidecar_update.append((k.id, rel, size, mtime))
        for rel in old:
            if rel not in current:
                plan.sidecar_remove.append((k.id, rel))

    # -- one pass --------------------------------------------------------------------
    def plan(
        self,
        index: Index,
        listing: Listing,
        walked_areas: Iterable[str],
        now: float,
        fingerprint: Fingerprint | None = None,
    ) -> Plan:
        """The full comparison of the listing with the index.

        `fingerprint(rel)` gives a file's sampled fingerprint (None if unreadable); without
        it no identity can be proven by content and reviewed assets only get warnings.
        """
        self._fingerprint, self._fp_cache = fingerprint, {}
        try:
            return self._plan(index, listing, walked_areas, now)
        finally:
            self._fingerprint, self._fp_cache = None, {}

    def _plan(
        self, index: Index, listing: Listing, walked_areas: Iterable[str], now: float
    ) -> Plan:
        plan = Plan()
        files = listing.files
        areas = frozenset(walked_areas)
        by_path = index.by_path

        # Presence first: a share that lost most of its files is not a mass deletion.
        # Checked per area, since ARCHIVE/REJECTS may live on volumes of their own (an
        # unmounted mount point is an empty folder).
        expected: dict[str, int] = {}
        present: dict[str, int] = {}
        for k in index.by_id.values():
            if k.missing or k.busy or k.area not in areas:
                continue
            expected[k.area] = expected.get(k.area, 0) + 1
            if k.rel in files:
                present[k.area] = present.get(k.area, 0) + 1
        for area, count in expected.items():
            seen = present.get(area, 0)
            if seen < self.min_present_ratio * count:
                plan.skipped_reason = (
                    f"only {seen} of {count} known files are present in {area} "
                    f"(below scanner.min_present_ratio={self.min_present_ratio}); the share "
                    "looks unmounted or incomplete, so this pass changes nothing"
                )
                return plan

        folders: dict[str, list[str]] = {}
        for rel in files:
            folder, _, name = rel.rpartition("/")
            names = folders.get(folder)
            if names is None:
                folders[folder] = [name]
            else:
                names.append(name)

        # New INBOX files, as NewAsset already (one object per file, not two).
        candidates: list[NewAsset] = []
        classifier = self.classifier
        while folders:
            # popitem releases each folder's names as soon as they are grouped.
            folder, names = folders.popitem()
            area = folder.partition("/")[0]
            for group in group_folder(names, classifier):
                main = f"{folder}/{group.main}"
                sidecars: dict[str, tuple[int, float]] | None = None
                for side in group.sidecars:
                    srel = f"{folder}/{side}"
                    other = by_path.get(srel)
                    if other is not None:
                        # Already an asset of its own: it stays one.
                        size, mtime = files[srel]
                        self._known_present(plan, other, size, mtime, now, None)
                    else:
                        if sidecars is None:
                            sidecars = {}
                        sidecars[srel] = files[srel]
                found = by_path.get(main)
                size, mtime = files[main]
                if (
                    found is not None
                    and found.missing
                    and not found.busy
                    and not self._same_content(found, main, size, mtime)
                ):
                    # Other bytes where a missing asset was: a new asset; the missing one
                    # stays missing (it may still turn up elsewhere) and gives up the path.
                    plan.displaced.append(found)
                    plan.warnings.append(
                        f"{main!r}: another file than the missing asset {found.id} that was "
                        "there (content differs); recorded as a new asset"
                    )
                    found = None
                if found is not None:
                    self._known_present(
                        plan,
                        found,
                        size,
                        mtime,
                        now,
                        _NO_SIDECARS if sidecars is None else sidecars,
                    )
                elif area == INBOX:
                    candidates.append(
                        NewAsset(
                            "",
                            group.kind.value,
                            INBOX,
                            main,
                            size,
                            mtime,
                            [(s, *v) for s, v in sidecars.items()] if sidecars else (),
                            self._fp_cache.get(main),
                        )
                    )
                else:
                    plan.untracked += 1

        # Known assets whose file is present but belongs to no group (e.g. an extension
        # removed from the config) are present: nothing to do for them.
        vanished: list[Known] = []
        if listing.complete:
            unreadable = listing.unreadable_dirs
            for k in index.by_id.values():
                if k.missing or k.busy or k.area not in areas or k.rel in files:
                    continue
                if unreadable and _under(k.rel, unreadable):
                    continue
                vanished.append(k)

        # Reappearing elsewhere in INBOX: same size and kind, and the same content (the
        # sampled fingerprint, taken only for these few candidates), one candidate.
        pool: dict[int, list[Known]] = {}
        if candidates:
            for k in index.by_id.values():
                if k.missing and not k.busy and k.area == INBOX:
                    pool.setdefault(k.size, []).append(k)
            for k in vanished:
                if k.area == INBOX:
                    pool.setdefault(k.size, []).append(k)
        moved_ids: set[str] = set()
        if pool:
            new: list[NewAsset] = []
            for cand in candidates:
                rel = cand.rel
                matches = pool.get(cand.size)
                if matches:
                    fitting = [
                        m
                        for m in matches
                        if m.kind == cand.kind
                        and m.id not in moved_ids
                        and self._same_content(m, rel, cand.size, cand.mtime)
                    ]
                    cand.sample = self._fp_cache.get(rel, cand.sample)
                    if len(fitting) == 1:
                        k = fitting[0]
                        moved_ids.add(k.id)
                        plan.relocations.append(Relocation(k, rel))
                        current = {s: (size, mt) for s, size, mt in cand.sidecars}
                        self._known_present(plan, k, cand.size, cand.mtime, now, current)
                        continue
                    if len(fitting) > 1:
                        plan.warnings.append(
                            f"{rel!r} matches {len(fitting)} missing assets by content; "
                            "recorded as a new asset (the missing ones stay missing)"
                        )
                new.append(cand)
            candidates = new
        # Random ids as always, but handed out in path order: rows then reach the
        # database sorted by id *and* by path, so every index on the asset table grows
        # at its end instead of at random places (a first import writes about 40 %
        # faster; the ids themselves stay version 4 UUIDs).
        candidates.sort(key=attrgetter("rel"))
        plan.new = candidates
        for asset, asset_id in zip(plan.new, sorted(new_ids(len(plan.new))), strict=True):
            asset.id = asset_id
        plan.missing = [k for k in vanished if k.id not in moved_ids]
        return plan

    def plan_unchanged(self, index: Index, now: float) -> Plan:
        """The same result as `plan` when the listing is byte-identical to the previous
        fully compared one and nobody else changed an asset: only stability moves."""
        plan = Plan()
        for k in index.by_id.values():
            if k.state != DISCOVERED or k.missing or k.busy:
                continue
            stable = min(2, k.stable + 1)
            if stable >= 2 and now - k.mtime >= self.stable_after_s:
                plan.ready.append(k)
            elif stable != k.stable:
                plan.facts.append(FactUpdate(k, k.size, k.mtime, stable))
        return plan
