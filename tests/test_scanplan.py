"""Pure scanner rules: planning, find output parsing, stored path form (no services)."""

from __future__ import annotations

import os
import uuid

import pytest

from rush.fswalk import Listing, find_command, parse_find_output
from rush.layout import path_from_db, path_to_db
from rush.media import Classifier
from rush.scanplan import Index, Known, Planner, new_ids

AREAS = ("INBOX", "ARCHIVE", "REJECTS")
NOW = 1_800_000_000.0
OLD = NOW - 3600


def planner(stable_after: float = 330, ratio: float = 0.5) -> Planner:
    return Planner(Classifier(), stable_after, ratio)


def known(
    rel: str, state: str = "DISCOVERED", size: int = 1, mtime: float = OLD, **kw: object
) -> Known:
    k = Known(
        str(uuid.uuid4()),
        rel,
        rel.split("/", 1)[0],
        str(kw.get("kind", "video")),
        size,
        mtime,
        state,
        int(kw.get("stable", 1)),  # type: ignore[call-overload]
        bool(kw.get("missing", False)),
        bool(kw.get("busy", False)),
        kw.get("sample"),  # type: ignore[arg-type]
    )
    return k


def index_of(*items: Known) -> Index:
    idx = Index()
    for k in items:
        idx.put(k)
    return idx


def test_stability_needs_two_equal_passes_and_old_mtime() -> None:
    k = known("INBOX/a.mp4")
    plan = planner().plan(index_of(k), _l("INBOX/a.mp4", 1, OLD), AREAS, NOW)
    assert plan.ready == [k]
    young = known("INBOX/b.mp4", mtime=NOW - 10)
    plan = planner().plan(index_of(young), _l("INBOX/b.mp4", 1, NOW - 10), AREAS, NOW)
    assert plan.ready == [] and [f.stable for f in plan.facts] == [2]
    grown = known("INBOX/c.mp4")
    plan = planner().plan(index_of(grown), _l("INBOX/c.mp4", 5, OLD), AREAS, NOW)
    assert plan.ready == [] and [(f.size, f.stable) for f in plan.facts] == [(5, 1)]


def _l(*triples: object) -> Listing:
    out = Listing()
    it = iter(triples)
    for rel, size, mtime in zip(it, it, it, strict=True):
        out.files[str(rel)] = (int(size), float(mtime))  # type: ignore[call-overload, arg-type]
    return out


def test_ready_that_changes_goes_back_other_states_only_warn() -> None:
    ready = known("INBOX/a.mp4", "READY", stable=2)
    done = known("INBOX/b.mp4", "PROCESSED", stable=2)
    plan = planner().plan(
        index_of(ready, done), _l("INBOX/a.mp4", 9, OLD, "INBOX/b.mp4", 9, OLD), AREAS, NOW
    )
    assert [f.known for f in plan.changed] == [ready]
    assert [f.known for f in plan.facts] == [done]
    assert plan.ready == [] and "changed on disk" in plan.warnings[0]


def test_new_files_only_from_inbox_with_sidecars() -> None:
    files = _l(
        "INBOX/d/x.mp4", 1, OLD,
        "INBOX/d/x.xmp", 2, OLD,
        "INBOX/d/notes.txt", 3, OLD,
        "ARCHIVE/y.mp4", 1, OLD,
    )  # fmt: skip
    plan = planner().plan(Index(), files, AREAS, NOW)
    assert [(n.rel, n.kind, list(n.sidecars)) for n in plan.new] == [
        ("INBOX/d/x.mp4", "video", [("INBOX/d/x.xmp", 2, OLD)])
    ]
    assert plan.untracked == 1
    assert len({n.id for n in plan.new}) == 1 and uuid.UUID(plan.new[0].id).version == 4


def test_new_ids_are_random_but_handed_out_in_path_order() -> None:
    """Rows then reach the database sorted by both path and id (every index grows at its
    end); the ids stay random version 4 UUIDs, distinct per asset."""
    names = [f"INBOX/d{i % 7}/c{(i * 7919) % 1000:04d}.mp4" for i in range(500)]
    files = _l(*[x for name in names for x in (name, 1, OLD)])
    plan = planner().plan(Index(), files, AREAS, NOW)
    rels = [n.rel for n in plan.new]
    ids = [n.id for n in plan.new]
    assert rels == sorted(set(names)) and ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 for i in ids)
    again = planner().plan(Index(), files, AREAS, NOW)
    assert {n.id for n in again.new}.isdisjoint(ids)  # random, not derived from the path


def test_presence_ratio_skips_the_pass() -> None:
    items = [known(f"INBOX/{i}.mp4") for i in range(10)]
    files = _l(*[x for k in items[:4] for x in (k.rel, 1, OLD)])
    plan = planner(ratio=0.5).plan(index_of(*items), files, AREAS, NOW)
    assert plan.skipped_reason and "4 of 10 known files are present in INBOX" in plan.skipped_reason
    assert plan.missing == [] and plan.new == []
    plan = planner(ratio=0.0).plan(index_of(*items), files, AREAS, NOW)
    assert len(plan.missing) == 6


def test_presence_ratio_is_per_area() -> None:
    inbox = [known(f"INBOX/{i}.mp4") for i in range(8)]
    archive = [known(f"ARCHIVE/{i}.mp4", "ARCHIVED") for i in range(3)]
    files = _l(*[x for k in inbox for x in (k.rel, 1, OLD)])  # ARCHIVE volume empty
    plan = planner(ratio=0.5).plan(index_of(*inbox, *archive), files, AREAS, NOW)
    assert (
        plan.skipped_reason and "0 of 3 known files are present in ARCHIVE" in plan.skipped_reason
    )


def test_missing_rules_busy_unreadable_incomplete() -> None:
    gone = known("INBOX/gone.mp4")
    busy = known("INBOX/busy.mp4", "MOVE_QUEUED", busy=True)
    hidden = known("INBOX/locked/in.mp4")
    present = [known(f"INBOX/p{i}.mp4") for i in range(6)]
    files = _l(*[x for k in present for x in (k.rel, 1, OLD)])
    files.unreadable_dirs = ["INBOX/locked"]
    idx = index_of(gone, busy, hidden, *present)
    assert planner().plan(idx, files, AREAS, NOW).missing == [gone]
    files.complete = False
    assert planner().plan(idx, files, AREAS, NOW).missing == []


class Disk:
    """The planner's `fingerprint` function over a dict, recording what it reads."""

    def __init__(self, fps: dict[str, str | None]) -> None:
        self.fps = fps
        self.read: list[str] = []

    def __call__(self, rel: str) -> str | None:
        self.read.append(rel)
        return self.fps.get(rel)


def disk(fps: dict[str, str | None]) -> Disk:
    return Disk(dict(fps))


def test_reappear_elsewhere_only_with_the_same_bytes_and_only_when_unique() -> None:
    lost = known("INBOX/a/clip.mp4", size=7, missing=True, sample="A")
    others = [known(f"INBOX/p{i}.mp4", sample=f"p{i}") for i in range(3)]
    files = _l("INBOX/b/clip.mp4", 7, OLD, *[x for k in others for x in (k.rel, 1, OLD)])
    same = disk({"INBOX/b/clip.mp4": "A"})
    plan = planner().plan(index_of(lost, *others), files, AREAS, NOW, same)
    assert [(r.known, r.new_rel) for r in plan.relocations] == [(lost, "INBOX/b/clip.mp4")]
    assert plan.new == [] and same.read == ["INBOX/b/clip.mp4"]  # nothing else was read
    # Renamed as well as moved: the bytes are what count.
    files = _l("INBOX/b/renamed.mp4", 7, OLD, *[x for k in others for x in (k.rel, 1, OLD)])
    plan = planner().plan(
        index_of(lost, *others), files, AREAS, NOW, disk({"INBOX/b/renamed.mp4": "A"})
    )
    assert [(r.known, r.new_rel) for r in plan.relocations] == [(lost, "INBOX/b/renamed.mp4")]
    # Two missing assets with those bytes: neither is guessed.
    files = _l("INBOX/b/clip.mp4", 7, OLD, *[x for k in others for x in (k.rel, 1, OLD)])
    twin = known("INBOX/c/clip.mp4", size=7, missing=True, sample="A")
    plan = planner().plan(index_of(lost, twin, *others), files, AREAS, NOW, same)
    assert plan.relocations == [] and len(plan.new) == 1 and "matches 2" in plan.warnings[0]


def test_same_name_and_size_elsewhere_with_other_bytes_is_a_new_asset() -> None:
    """Cameras restart their numbering: a ZOOM0001.WAV of the same size in another folder
    is another recording, and never inherits the missing one's decision."""
    lost = known(
        "INBOX/day1/ZOOM0001.WAV", "DECIDED_REJECT", size=900, missing=True, kind="audio",
        sample="day1",
    )  # fmt: skip
    files = _l("INBOX/day2/ZOOM0001.WAV", 900, OLD)
    plan = planner().plan(
        index_of(lost), files, AREAS, NOW, disk({"INBOX/day2/ZOOM0001.WAV": "day2"})
    )
    assert plan.relocations == [] and plan.reappeared == []
    assert [(n.rel, n.sample) for n in plan.new] == [("INBOX/day2/ZOOM0001.WAV", "day2")]
    assert plan.displaced == [] and plan.missing == []  # the old one stays missing


def test_other_bytes_at_a_missing_assets_path_are_a_new_asset() -> None:
    lost = known("INBOX/card/C0001.MP4", "DECIDED_REJECT", size=5, missing=True, sample="old")
    files = _l("INBOX/card/C0001.MP4", 5, OLD)
    plan = planner().plan(index_of(lost), files, AREAS, NOW, disk({"INBOX/card/C0001.MP4": "new"}))
    assert plan.reappeared == [] and plan.facts == [] and plan.ready == []
    assert [n.rel for n in plan.new] == ["INBOX/card/C0001.MP4"] and plan.displaced == [lost]
    assert "content differs" in plan.warnings[0]
    # Whatever the size: another size is other bytes without reading anything.
    blind = disk({})
    plan = planner().plan(index_of(lost), _l("INBOX/card/C0001.MP4", 6, OLD), AREAS, NOW, blind)
    assert plan.displaced == [lost] and len(plan.new) == 1
    # The same bytes back at its path: the same asset.
    plan = planner().plan(index_of(lost), files, AREAS, NOW, disk({"INBOX/card/C0001.MP4": "old"}))
    assert plan.reappeared == [lost] and plan.new == [] and plan.displaced == []


def test_rows_without_a_fingerprint_need_size_mtime_and_name() -> None:
    """Assets recorded before fingerprints: only an unchanged size, mtime and name count."""
    lost = known("INBOX/a/clip.mp4", "DECIDED_KEEP", size=7, missing=True)
    blind = disk({})
    moved = _l("INBOX/b/clip.mp4", 7, OLD)
    plan = planner().plan(index_of(lost), moved, AREAS, NOW, blind)
    assert [r.known for r in plan.relocations] == [lost]
    plan = planner().plan(index_of(lost), _l("INBOX/b/clip.mp4", 7, OLD + 60), AREAS, NOW, blind)
    assert plan.relocations == [] and len(plan.new) == 1
    plan = planner().plan(index_of(lost), _l("INBOX/a/clip.mp4", 7, OLD + 60), AREAS, NOW, blind)
    assert plan.displaced == [lost] and len(plan.new) == 1


def test_reviewed_file_changed_in_place_goes_back_to_review() -> None:
    decided = known("INBOX/a.mp4", "DECIDED_KEEP", size=9, sample="A")
    archived = known("ARCHIVE/b.mp4", "ARCHIVED", size=9, sample="B")
    touched = known("INBOX/c.mp4", "PROCESSED", size=9, sample="C")
    busy = known("INBOX/d.mp4", "PROCESSING_REVIEW", size=9, sample="D")
    files = _l(
        "INBOX/a.mp4", 9, OLD + 5, "ARCHIVE/b.mp4", 10, OLD, "INBOX/c.mp4", 9, OLD + 5,
        "INBOX/d.mp4", 10, OLD,
    )  # fmt: skip
    fps = disk({"INBOX/a.mp4": "A2", "ARCHIVE/b.mp4": "B2", "INBOX/c.mp4": "C"})
    plan = planner().plan(index_of(decided, archived, touched, busy), files, AREAS, NOW, fps)
    assert {c.known.rel: c.sample for c in plan.content_changed} == {
        "INBOX/a.mp4": "A2",
        "ARCHIVE/b.mp4": "B2",
    }
    assert [f.known for f in plan.facts] == [touched, busy]  # a touch; an agent holds d
    assert any("INBOX/d.mp4" in w for w in plan.warnings)
    # Cannot be read now (same size, new mtime): nothing concluded, said.
    plan = planner().plan(index_of(decided), _l("INBOX/a.mp4", 9, OLD + 5), AREAS, NOW, disk({}))
    assert plan.content_changed == [] and plan.facts == [] and "checked again" in plan.warnings[0]


def test_unchanged_plan_matches_full_plan() -> None:
    items = [
        known("INBOX/a.mp4"),
        known("INBOX/b.mp4", stable=2, mtime=NOW - 5),
        known("INBOX/c.mp4", "READY"),
    ]
    files = _l("INBOX/a.mp4", 1, OLD, "INBOX/b.mp4", 1, NOW - 5, "INBOX/c.mp4", 1, OLD)
    full = planner().plan(index_of(*items), files, AREAS, NOW)
    fast = planner().plan_unchanged(index_of(*items), NOW)
    assert full.ready == fast.ready == [items[0]]
    assert [(f.known, f.stable) for f in full.facts] == [(f.known, f.stable) for f in fast.facts]


def test_find_records_cannot_be_forged_by_names() -> None:
    data = (
        b"f10 1700000000.5 INBOX/a.mp4\0"
        b"LINBOX/xf12 3 INBOX/evil.mp4\0"
        b"f3 -5.25 INBOX/new\nline\xff.mp4\0"
        b"r4 1.0 INBOX/r.mp4\0"
        b"DINBOX/locked\0"
    )
    out = Listing()
    parse_find_output(data, out)
    assert out.files == {
        "INBOX/a.mp4": (10, 1700000000.5),
        "INBOX/new\nline\uf7ff.mp4": (3, -5.25),
        "INBOX/r.mp4": (4, 1.0),
    }
    assert out.symlinks == ["INBOX/xf12 3 INBOX/evil.mp4"]
    assert (out.unreadable_files, out.unreadable_dirs) == (["INBOX/r.mp4"], ["INBOX/locked"])


def test_find_command_escapes_patterns() -> None:
    cmd = find_command(["INBOX"], None, ["#recycle", "a*b", "$RECYCLE.BIN", "[x]"])
    assert {"#recycle", "a\\*b", "$RECYCLE.BIN", "\\[x\\]"} <= set(cmd)


@pytest.mark.parametrize(
    "raw",
    [
        b"plain.mp4",
        "caf\u00e9/\u6771\u4eac.mov".encode(),
        b"bad\xff\xfe.mp4",
        "\uf700x\uf7ff".encode(),
        b"\xef\x9e\x80",
    ],
)
def test_stored_path_round_trips_to_the_same_bytes(raw: bytes) -> None:
    stored = path_to_db(os.fsdecode(raw))
    stored.encode("utf-8")  # storable by SQLite and PostgreSQL
    assert os.fsencode(path_from_db(stored)) == raw


def test_new_ids_are_unique_v4() -> None:
    ids = new_ids(1000)
    assert len(set(ids)) == 1000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
