"""The review service (docs/contract.md §9, workflows 6 and 14) on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from rush import decisions
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.models import Asset, AssetEvent, Suggestion, Tag

S = AssetState


async def make(
    state: AssetState = S.PROCESSED, kind: MediaKind = MediaKind.VIDEO, name: str = ""
) -> Asset:
    rel = f"INBOX/{name or uuid.uuid4().hex}.{'wav' if kind is MediaKind.AUDIO else 'mp4'}"
    return await Asset.create(kind=kind, rel_path=rel, path_key=rel, state=state)


async def test_decide_keep_records_who_and_history(db: str) -> None:
    asset = await make()
    out = await decisions.decide(asset.id, "KEEP", "user:alice")
    assert out.state == S.DECIDED_KEEP
    assert out.decision == "KEEP"
    assert out.decided_by == "user:alice"
    assert out.decided_at is not None
    events = await AssetEvent.filter(asset_id=asset.id).order_by("id")
    assert [(e.from_state, e.to_state, e.trigger, e.actor) for e in events] == [
        ("PROCESSED", "DECIDED_KEEP", "decide_keep", "user:alice")
    ]


async def test_change_of_mind_and_same_decision_noop(db: str) -> None:
    asset = await make(S.DECISION_PENDING)
    await decisions.decide(asset.id, "REJECT", "user:a")
    again = await decisions.decide(asset.id, "REJECT", "user:a")
    assert again.state == S.DECIDED_REJECT
    flipped = await decisions.decide(asset.id, "KEEP", "user:b")
    assert flipped.state == S.DECIDED_KEEP and flipped.decision == "KEEP"
    assert await AssetEvent.filter(asset_id=asset.id).count() == 2


async def test_undo_returns_to_pending_and_clears_decision(db: str) -> None:
    asset = await make()
    await decisions.decide(asset.id, "REJECT", "user:a")
    out = await decisions.undo_decision(asset.id, "user:a")
    assert out.state == S.DECISION_PENDING
    assert out.decision is None and out.decided_by is None
    with pytest.raises(decisions.WrongState):
        await decisions.undo_decision(asset.id, "user:a")


@pytest.mark.parametrize(
    "state", [S.DISCOVERED, S.READY, S.PROCESSING_REVIEW, S.MOVE_QUEUED, S.ARCHIVED, S.PURGED]
)
async def test_decide_refused_in_wrong_states(db: str, state: AssetState) -> None:
    asset = await make(state)
    with pytest.raises(decisions.WrongState):
        await decisions.decide(asset.id, "KEEP", "user:a")
    assert (await Asset.get(id=asset.id)).state == state
    assert await AssetEvent.filter(asset_id=asset.id).count() == 0


async def test_decide_refused_inside_batch_and_bad_input(db: str) -> None:
    asset = await make(S.DECIDED_KEEP)
    await Asset.filter(id=asset.id).update(batch_id=uuid.uuid4())
    with pytest.raises(decisions.WrongState):
        await decisions.decide(asset.id, "REJECT", "user:a")
    with pytest.raises(decisions.WrongState):
        await decisions.undo_decision(asset.id, "user:a")
    with pytest.raises(decisions.InvalidInput):
        await decisions.decide(asset.id, "MAYBE", "user:a")
    with pytest.raises(decisions.NotFound):
        await decisions.decide(uuid.uuid4(), "KEEP", "user:a")
    with pytest.raises(decisions.NotFound):
        await decisions.decide("not-a-uuid", "KEEP", "user:a")


async def test_tags_replace_dedupe_and_validate(db: str) -> None:
    asset = await make()
    assert await decisions.set_tags(asset.id, ["  beach ", "Sunset", "beach", ""], "u") == [
        "Sunset",
        "beach",
    ]
    assert await decisions.set_tags(asset.id, ["beach", "drone  shot"], "u") == [
        "beach",
        "drone shot",
    ]
    assert await decisions.add_tag(asset.id, "night", "u") == ["beach", "drone shot", "night"]
    assert await decisions.remove_tag(asset.id, "beach", "u") == ["drone shot", "night"]
    with pytest.raises(decisions.InvalidInput):
        await decisions.set_tags(asset.id, ["x" * 200], "u")
    assert await Tag.filter(asset_id=asset.id).count() == 2


async def test_accept_suggestion_adds_tag_and_marks_it(db: str) -> None:
    asset = await make()
    await Suggestion.create(asset=asset, version=1, tag="wedding", score=0.9)
    assert await decisions.accept_suggestion(asset.id, "wedding", "user:a") == ["wedding"]
    assert (await Suggestion.get(asset_id=asset.id, tag="wedding")).accepted is True
    # Accepting twice is idempotent; accepting never decides.
    assert await decisions.accept_suggestion(asset.id, "wedding", "user:a") == ["wedding"]
    assert (await Asset.get(id=asset.id)).state == S.PROCESSED
    with pytest.raises(decisions.NotFound):
        await decisions.accept_suggestion(asset.id, "unknown", "user:a")


async def test_structured_fields_validated_and_merged(db: str) -> None:
    asset = await make()
    data = await decisions.set_fields(
        asset.id, {"project": " Film  A ", "rating": "4", "people": "Ann, Bob,,Ann"}, "u"
    )
    assert data == {"project": "Film A", "rating": 4, "people": ["Ann", "Bob"]}
    data = await decisions.set_fields(asset.id, {"location": "Lyon", "rating": ""}, "u")
    assert data == {"project": "Film A", "people": ["Ann", "Bob"], "location": "Lyon"}
    assert (await Asset.get(id=asset.id)).fields_data == data
    for bad in ({"rating": 6}, {"rating": "x"}, {"rating": 2.5}, {"colour": "red"}, {"project": 3}):
        with pytest.raises(decisions.InvalidInput):
            await decisions.set_fields(asset.id, bad, "u")
    assert (await Asset.get(id=asset.id)).fields_data == data


async def test_link_and_unlink_audio(db: str) -> None:
    video = await make(kind=MediaKind.VIDEO)
    audio = await make(kind=MediaKind.AUDIO)
    photo = await make(kind=MediaKind.PHOTO)
    linked = await decisions.link_audio(video.id, audio.id, "u")
    assert linked.linked_audio_id == audio.id  # type: ignore[attr-defined]
    with pytest.raises(decisions.WrongKind):
        await decisions.link_audio(audio.id, video.id, "u")
    with pytest.raises(decisions.WrongKind):
        await decisions.link_audio(video.id, photo.id, "u")
    with pytest.raises(decisions.NotFound):
        await decisions.link_audio(video.id, uuid.uuid4(), "u")
    # Each keeps its own decision.
    await decisions.decide(video.id, "KEEP", "u")
    await decisions.decide(audio.id, "REJECT", "u")
    assert (await Asset.get(id=audio.id)).state == S.DECIDED_REJECT
    unlinked = await decisions.unlink_audio(video.id, "u")
    assert unlinked.linked_audio_id is None  # type: ignore[attr-defined]
