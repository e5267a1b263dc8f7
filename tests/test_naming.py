"""Collision naming and batch planning are pure: exhaustive tests without any service."""

from __future__ import annotations

import uuid

import pytest

from rush.lifecycle import AssetState
from rush.media import Area
from rush.moves.naming import TakenNames, candidate_bases, choose_names, rename_member
from rush.moves.plan import AssetSnapshot, plan_batch_moves, rebase

S = AssetState
U1 = uuid.UUID("3f2a9c1e-0000-4000-8000-000000000001")
U2 = uuid.UUID("8b7c6d5e-0000-4000-8000-000000000002")


def test_candidate_bases_derive_from_uuid_and_do_not_grow() -> None:
    cands = candidate_bases("clip", U1)
    assert cands[0] == "clip__3f2a9c1e"
    assert cands[1] == "clip__3f2a9c1e0000"
    assert cands[2] == f"clip__{U1.hex}"
    # A name given by an earlier move is not suffixed twice.
    assert candidate_bases("clip__3f2a9c1e", U1)[0] == "clip__3f2a9c1e"
    assert candidate_bases("clip__3f2a9c1e", U2)[0] == "clip__3f2a9c1e__8b7c6d5e"


def test_rename_member_keeps_every_suffix() -> None:
    assert rename_member("clip.mp4", "clip", "clip__x") == "clip__x.mp4"
    assert rename_member("clip.mp4.xmp", "clip", "clip__x") == "clip__x.mp4.xmp"
    assert rename_member("other.xmp", "clip", "clip__x") == "clip__x__other.xmp"


def test_choose_names_unchanged_when_free() -> None:
    taken = TakenNames(["ARCHIVE/a/other.mp4"])
    names, base = choose_names(
        "ARCHIVE/a", ["clip.mp4", "clip.xmp"], "clip.mp4", U1, taken.is_taken
    )
    assert names == ["clip.mp4", "clip.xmp"] and base is None


def test_choose_names_renames_whole_group_when_only_a_sidecar_collides() -> None:
    taken = TakenNames(["ARCHIVE/a/clip.xmp"])
    names, base = choose_names(
        "ARCHIVE/a", ["clip.mp4", "clip.xmp"], "clip.mp4", U1, taken.is_taken
    )
    assert names == ["clip__3f2a9c1e.mp4", "clip__3f2a9c1e.xmp"]
    assert base == "clip__3f2a9c1e"


def test_choose_names_is_case_insensitive_and_escalates() -> None:
    taken = TakenNames(["ARCHIVE/a/CLIP.MP4", "ARCHIVE/a/clip__3f2a9c1e.mp4"])
    names, _ = choose_names("ARCHIVE/a", ["clip.mp4"], "clip.mp4", U1, taken.is_taken)
    assert names == ["clip__3f2a9c1e0000.mp4"]


def snap(rel: str, state: S = S.DECIDED_KEEP, uid: uuid.UUID = U1, **kw: object) -> AssetSnapshot:
    return AssetSnapshot(id=uid, rel_path=rel, state=state, **kw)  # type: ignore[arg-type]


def test_plan_destinations_by_decision_and_area() -> None:
    plan = plan_batch_moves(
        [
            snap("INBOX/d/a.mp4", S.DECIDED_KEEP, uuid.uuid4(), sidecars=("INBOX/d/a.xmp",)),
            snap("INBOX/d/b.mp4", S.DECIDED_REJECT, uuid.uuid4()),
            snap("ARCHIVE/d/c.mp4", S.DECIDED_REJECT, uuid.uuid4()),
            snap("REJECTS/d/e.mp4", S.DECIDED_KEEP, uuid.uuid4()),
            snap("ARCHIVE/d/f.mp4", S.DECIDED_KEEP, uuid.uuid4()),
        ],
        [],
    )
    by_src = {i.moves[0].src: i for i in plan.moves}
    assert by_src["INBOX/d/a.mp4"].moves[1].dst == "ARCHIVE/d/a.xmp"
    assert by_src["INBOX/d/a.mp4"].target is S.ARCHIVED
    assert by_src["INBOX/d/b.mp4"].moves[0].dst == "REJECTS/d/b.mp4"
    assert by_src["INBOX/d/b.mp4"].target is S.REJECTED
    assert by_src["ARCHIVE/d/c.mp4"].moves[0].dst == "REJECTS/d/c.mp4"
    assert by_src["REJECTS/d/e.mp4"].moves[0].dst == "ARCHIVE/d/e.mp4"
    assert [i.target for i in plan.noops] == [S.ARCHIVED]
    d = plan.to_dict()
    assert d["to_move"] == 4 and d["noop"] == 1 and d["sidecars"] == 1


@pytest.mark.parametrize(
    ("snapshot", "reason"),
    [
        (snap("INBOX/a.mp4", S.PROCESSED), "not DECIDED"),
        (snap("INBOX/a.mp4", S.ARCHIVED), "not DECIDED"),
        (snap("INBOX/a.mp4", processed=False), "never processed"),
        (snap("INBOX/a.mp4", batch_id=U2), "already in batch"),
        (snap("INBOX/a.mp4", missing=True), "missing"),
        (snap("INBOX/../../etc/passwd"), "unsafe"),
        (snap("/etc/passwd"), "unsafe"),
        (snap("INBOX/a.mp4", sidecars=("INBOX/../x.xmp",)), "unsafe"),
        (snap("EXPORTS/a.mp4"), "not in INBOX"),
        (snap("INBOX/./a.mp4"), "non-canonical"),
        (snap("INBOX"), "not in INBOX"),
        (snap("INBOX/a.mp4", sidecars=("INBOX/b/a.xmp",)), "folder"),
    ],
)
def test_plan_skips_ineligible_with_a_reason(snapshot: AssetSnapshot, reason: str) -> None:
    plan = plan_batch_moves([snapshot], [])
    assert not plan.items
    assert reason in plan.skipped[0].reason


def test_two_kept_assets_with_the_same_name_get_distinct_stable_names() -> None:
    a = snap("INBOX/x/clip.mp4", uid=U1, sidecars=("INBOX/x/clip.xmp",))
    b = snap("INBOX/y/../x/clip.mp4", uid=U2)  # unsafe: skipped
    c = AssetSnapshot(U2, "INBOX/x/clip.MP4", S.DECIDED_KEEP, sidecars=("INBOX/x/clip.XMP",))
    existing = ["ARCHIVE/x/clip.mp4"]
    plan1 = plan_batch_moves([a, b, c], existing)
    plan2 = plan_batch_moves([c, b, a], existing)
    assert plan1.to_dict() == plan2.to_dict()  # stable whatever the input order
    dsts = [m.dst for i in plan1.items for m in i.moves]
    assert len({d.casefold() for d in dsts}) == len(dsts) == 4
    assert "ARCHIVE/x/clip.mp4" not in dsts
    assert {i.renamed_base for i in plan1.collisions} == {"clip__3f2a9c1e", "clip__8b7c6d5e"}
    assert len(plan1.skipped) == 1


def test_rebase_preserves_sub_path() -> None:
    assert rebase("INBOX/2024/06 wedding/c.mp4", Area.ARCHIVE) == "ARCHIVE/2024/06 wedding/c.mp4"
