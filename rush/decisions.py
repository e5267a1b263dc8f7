"""Human review actions (docs/contract.md §9, workflows 6 and 14): decisions, tags, structured fields, audio links.

Pure service functions over the models, shared by the web UI and the command line.  A
decision changes the lifecycle state, so it goes through `rush.transitions.transition`
(the only writer of `Asset.state`); everything else here is metadata that never moves a
file.  Every problem is raised as a `ReviewError` subclass phrased for a human, so a view
can map it to 404/409/400 without knowing the details.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from rush import names
from rush.lifecycle import AssetState, Trigger, decided_state
from rush.media import MediaKind
from rush.models import Asset, Suggestion, Tag
from rush.search import touch
from rush.transitions import AssetNotFound, StaleState, transition, utcnow

S = AssetState

#: States from which a human may decide (or change their mind).
DECIDABLE = frozenset({S.PROCESSED, S.DECISION_PENDING, S.DECIDED_KEEP, S.DECIDED_REJECT})
UNDOABLE = frozenset({S.DECIDED_KEEP, S.DECIDED_REJECT})
DECISIONS = ("KEEP", "REJECT")
#: Structured fields a human may set; anything else is refused (typos stay visible).
FIELD_NAMES = ("project", "location", "people", "rating")
#: Colour labels by number (stored in `Asset.label`), as Lightroom's keys 6-9 set them.
LABELS = ("", "red", "yellow", "green", "blue")
MAX_RATING = 5
MAX_TAG_LEN = 128
MAX_TEXT_FIELD_LEN = 256
_SPACES = re.compile(r"\s+")


class ReviewError(Exception):
    """Base of every review-service error; the message is meant for the user."""


class NotFound(ReviewError):
    pass


class WrongState(ReviewError):
    pass


class WrongKind(ReviewError):
    pass


class InvalidInput(ReviewError):
    pass


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound(f"no asset {value!r}") from exc


def name_of(asset: Asset) -> str:
    """How messages name an asset: its file name (a UUID means nothing to a person)."""
    return names.display(str(asset.rel_path).rsplit("/", 1)[-1]) or str(asset.id)


#: States in words, for messages and pages ("Awaiting decision", not DECISION_PENDING).
STATE_WORDS: dict[str, str] = {
    S.DISCOVERED: "Discovered",
    S.READY: "Waiting for processing",
    S.PROCESSING_REVIEW: "Processing",
    S.PROCESSED: "Ready for review",
    S.DECISION_PENDING: "Awaiting decision",
    S.DECIDED_KEEP: "Keep",
    S.DECIDED_REJECT: "Reject",
    S.MOVE_QUEUED: "Moving",
    S.ARCHIVED: "Archived",
    S.REJECTED: "In rejects",
    S.PURGED: "Purged",
}


def state_words(state: AssetState | str) -> str:
    """A state in a message: "waiting for processing (READY)"."""
    words = STATE_WORDS.get(str(state))
    if words in ("Keep", "Reject"):
        words = f"decided {words.lower()}"
    return f"{words.lower()} ({state})" if words else str(state)


async def get_asset(asset_id: uuid.UUID | str) -> Asset:
    asset = await Asset.get_or_none(id=_uuid(asset_id))
    if asset is None:
        raise NotFound(f"no asset {asset_id}")
    return asset


# --- decisions -------------------------------------------------------------------------


async def decide(asset_id: uuid.UUID | str, decision: str, actor: str) -> Asset:
    """Record a human KEEP/REJECT; deciding the same thing twice is a harmless no-op."""
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be KEEP or REJECT, not {decision!r}")
    asset = await get_asset(asset_id)
    source = AssetState(asset.state)
    if source not in DECIDABLE:
        raise WrongState(
            f"{name_of(asset)} is {state_words(source)}: only clips ready for review, "
            "awaiting a decision or already decided can be decided"
        )
    if asset.batch_id is not None:
        raise WrongState(f"{name_of(asset)} belongs to a running batch apply")
    target = decided_state(decision)
    if source is target:
        return asset
    trigger = Trigger.DECIDE_KEEP if decision == "KEEP" else Trigger.DECIDE_REJECT
    now = utcnow()
    try:
        await transition(
            asset.id,
            source,
            target,
            trigger,
            actor,
            updates={"decision": decision, "decided_by": actor[:64], "decided_at": now},
            extra_filter={"batch_id": None},
            at=now,
        )
    except StaleState as exc:
        raise WrongState(f"{name_of(asset)} changed meanwhile; reload and try again") from exc
    except AssetNotFound as exc:
        raise NotFound(str(exc)) from exc
    return await get_asset(asset.id)


async def undo_decision(asset_id: uuid.UUID | str, actor: str) -> Asset:
    """Take a decision back (docs/contract.md §9, workflow 6): the asset waits for a new one."""
    asset = await get_asset(asset_id)
    source = AssetState(asset.state)
    if source not in UNDOABLE:
        raise WrongState(f"{name_of(asset)} has no flag to clear: it is {state_words(source)}")
    if asset.batch_id is not None:
        raise WrongState(f"{name_of(asset)} belongs to a running batch apply")
    try:
        await transition(
            asset.id,
            source,
            S.DECISION_PENDING,
            Trigger.UNDO,
            actor,
            updates={"decision": None, "decided_by": None, "decided_at": None},
            extra_filter={"batch_id": None},
        )
    except StaleState as exc:
        raise WrongState(f"{name_of(asset)} changed meanwhile; reload and try again") from exc
    return await get_asset(asset.id)


# --- tags --------------------------------------------------------------------------------


def normalise_tag(raw: str) -> str:
    """One spelling per tag: trimmed, inner whitespace collapsed, case kept."""
    tag = _SPACES.sub(" ", str(raw)).strip()
    if not tag:
        raise InvalidInput("a tag cannot be empty")
    if len(tag) > MAX_TAG_LEN:
        raise InvalidInput(f"tag {tag[:20]!r}... is longer than {MAX_TAG_LEN} characters")
    return tag


def normalise_tags(raw: Iterable[str]) -> list[str]:
    """Deduplicated (case-insensitively, first spelling wins), empty entries dropped."""
    seen: dict[str, str] = {}
    for item in raw:
        if not str(item).strip():
            continue
        tag = normalise_tag(item)
        seen.setdefault(tag.casefold(), tag)
    return list(seen.values())


async def tags_of(asset_id: uuid.UUID | str) -> list[str]:
    names = (
        await Tag.filter(asset_id=_uuid(asset_id)).order_by("name").values_list("name", flat=True)
    )
    return [str(n) for n in names]


async def set_tags(asset_id: uuid.UUID | str, tags: Iterable[str], actor: str) -> list[str]:
    """Replace the asset's free tags by `tags`; returns the stored list."""
    wanted = normalise_tags(tags)
    asset = await get_asset(asset_id)
    async with in_transaction() as conn:
        current = {
            str(n)
            for n in await Tag.filter(asset_id=asset.id)
            .using_db(conn)
            .values_list("name", flat=True)
        }
        drop = current - set(wanted)
        if drop:
            await Tag.filter(asset_id=asset.id, name__in=list(drop)).using_db(conn).delete()
        add = [t for t in wanted if t not in current]
        if add:
            await Tag.bulk_create([Tag(asset_id=asset.id, name=t) for t in add], using_db=conn)
    await touch(asset.id)  # tags are searchable: the indexer follows updated_at
    return await tags_of(asset.id)


async def add_tag(asset_id: uuid.UUID | str, tag: str, actor: str) -> list[str]:
    name = normalise_tag(tag)
    asset = await get_asset(asset_id)
    await _ensure_tag(asset.id, name)
    await touch(asset.id)  # tags are searchable: the indexer follows updated_at
    return await tags_of(asset.id)


async def remove_tag(asset_id: uuid.UUID | str, tag: str, actor: str) -> list[str]:
    asset = await get_asset(asset_id)
    await Tag.filter(asset_id=asset.id, name=str(tag)).delete()
    await touch(asset.id)  # tags are searchable: the indexer follows updated_at
    return await tags_of(asset.id)


async def _ensure_tag(asset_id: uuid.UUID, name: str) -> None:
    if await Tag.filter(asset_id=asset_id, name=name).exists():
        return
    try:
        await Tag.create(asset_id=asset_id, name=name)
    except IntegrityError:
        pass  # added concurrently by another request: the tag is there, which is the point


async def accept_suggestion(asset_id: uuid.UUID | str, tag: str, actor: str) -> list[str]:
    """A human accepts one suggested tag: it becomes a real tag (never a decision)."""
    asset = await get_asset(asset_id)
    suggestion = (
        await Suggestion.filter(asset_id=asset.id, tag=tag).order_by("-version", "-id").first()
    )
    if suggestion is None:
        raise NotFound(f"{name_of(asset)} has no suggestion {tag!r}")
    await _ensure_tag(asset.id, normalise_tag(tag))
    await Suggestion.filter(asset_id=asset.id, tag=tag).update(accepted=True)
    await touch(asset.id)  # tags are searchable: the indexer follows updated_at
    return await tags_of(asset.id)


# --- structured fields -------------------------------------------------------------------


def validate_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise structured fields; `None` or "" means "remove this field"."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in FIELD_NAMES:
            raise InvalidInput(f"unknown field {key!r}; known fields: {', '.join(FIELD_NAMES)}")
        if value is None or (isinstance(value, str) and not value.strip()):
            out[key] = None
        elif key == "rating":
            try:
                rating = int(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"rating must be a whole number 0-5, not {value!r}") from exc
            if isinstance(value, float) and value != rating:
                raise InvalidInput(f"rating must be a whole number 0-5, not {value!r}")
            if not 0 <= rating <= 5:
                raise InvalidInput(f"rating must be between 0 and 5, not {rating}")
            out[key] = rating
        elif key == "people":
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple):
                raise InvalidInput("people must be a list of names or a comma-separated string")
            people = [_text(p, "people") for p in items if str(p).strip()]
            out[key] = list(dict.fromkeys(people)) or None
        else:
            out[key] = _text(value, key)
    return out


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be text")
    text = _SPACES.sub(" ", value).strip()
    if len(text) > MAX_TEXT_FIELD_LEN:
        raise InvalidInput(f"{key} is longer than {MAX_TEXT_FIELD_LEN} characters")
    return text


async def set_fields(
    asset_id: uuid.UUID | str, fields: Mapping[str, Any], actor: str
) -> dict[str, Any]:
    """Merge validated structured fields into the asset; returns the stored fields."""
    changes = validate_fields(fields)
    asset = await get_asset(asset_id)
    data = dict(asset.fields_data or {})
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    updates: dict[str, Any] = {"fields_data": data, "updated_at": utcnow()}
    if "rating" in changes:
        updates["rating"] = changes["rating"] or 0
    await Asset.filter(id=asset.id).update(**updates)
    return data


# --- star rating and colour label ------------------------------------------------------


def parse_label(value: Any) -> int:
    """A label by name ("red") or number (0-4); "" or None means no label."""
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(LABELS):
        return value
    text = str(value).strip().casefold()
    if text in LABELS:
        return LABELS.index(text)
    if text.isdigit() and int(text) < len(LABELS):
        return int(text)
    raise InvalidInput(f"label must be one of {', '.join(n for n in LABELS if n)} or none")


async def set_rating(asset_id: uuid.UUID | str, rating: Any, actor: str) -> Asset:
    """Stars 0-5 (0: unrated); kept in the column and mirrored in fields_data."""
    value = validate_fields({"rating": rating}).get("rating") or 0
    asset = await get_asset(asset_id)
    data = dict(asset.fields_data or {})
    if value:
        data["rating"] = value
    else:
        data.pop("rating", None)
    await Asset.filter(id=asset.id).update(rating=value, fields_data=data, updated_at=utcnow())
    return await get_asset(asset.id)


async def set_label(asset_id: uuid.UUID | str, label: Any, actor: str) -> Asset:
    """One colour label (or none); metadata only, it never moves a file."""
    value = parse_label(label)
    asset = await get_asset(asset_id)
    await Asset.filter(id=asset.id).update(label=value, updated_at=utcnow())
    return await get_asset(asset.id)


# --- linked audio (docs/contract.md §9, workflow 14) --------------------------------------------------------


async def link_audio(video_id: uuid.UUID | str, audio_id: uuid.UUID | str, actor: str) -> Asset:
    """Make an audio asset the logical sidecar of a video; each keeps its own decision."""
    video = await get_asset(video_id)
    audio = await get_asset(audio_id)
    if video.kind != MediaKind.VIDEO:
        raise WrongKind(f"{name_of(video)} is {video.kind}, not a video")
    if audio.kind != MediaKind.AUDIO:
        raise WrongKind(f"{name_of(audio)} is {audio.kind}, not an audio recording")
    for asset in (video, audio):
        if asset.state == S.PURGED:
            raise WrongState(f"{name_of(asset)} is purged")
    await Asset.filter(id=video.id).update(linked_audio_id=audio.id, updated_at=utcnow())
    return await get_asset(video.id)


async def unlink_audio(video_id: uuid.UUID | str, actor: str) -> Asset:
    video = await get_asset(video_id)
    if video.kind != MediaKind.VIDEO:
        raise WrongKind(f"{name_of(video)} is {video.kind}, not a video")
    await Asset.filter(id=video.id).update(linked_audio_id=None, updated_at=utcnow())
    return await get_asset(video.id)
