"""The asset lifecycle: every state, every allowed transition, nothing else.

This module is pure: no I/O, no database.  `rush.transitions` persists a transition
after asking `check_transition` here, so the table below is the only way a state
changes anywhere in the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AssetState(StrEnum):
    """States are part of the external contract (UI, API, MQTT, Home Assistant)."""

    DISCOVERED = "DISCOVERED"
    READY = "READY"
    PROCESSING_REVIEW = "PROCESSING_REVIEW"
    PROCESSED = "PROCESSED"
    DECISION_PENDING = "DECISION_PENDING"
    DECIDED_KEEP = "DECIDED_KEEP"
    DECIDED_REJECT = "DECIDED_REJECT"
    MOVE_QUEUED = "MOVE_QUEUED"
    ARCHIVED = "ARCHIVED"
    REJECTED = "REJECTED"
    PURGED = "PURGED"


class Trigger(StrEnum):
    """Why a transition happens; recorded in the history next to who did it."""

    STABLE = "stable"  # scanner: size unchanged on 2 scans and mtime old enough
    CHANGED = "changed"  # scanner: a READY file changed again before any claim
    CLAIM = "claim"  # dispatcher: an agent took a lease
    LEASE_EXPIRED = "lease_expired"  # lease keeper: TTL passed without heartbeat
    AGENT_ERROR = "agent_error"  # result intake: the agent reported an error
    RELEASED = "released"  # the agent gave the job back unfinished (shutdown)
    PROCESSED = "processed"  # result intake: valid result with required derivatives
    DECIDE_KEEP = "decide_keep"  # human
    DECIDE_REJECT = "decide_reject"  # human
    UNDO = "undo"  # human: undo a decision
    QUEUE_MOVE = "queue_move"  # batch apply took the asset into a batch
    MOVE_DONE = "move_done"  # mover: the whole group is at its destination
    MOVE_FAILED = "move_failed"  # mover: the group is back where it was
    REOPEN = "reopen"  # human: re-review an archived or rejected asset
    REPROCESS = "reprocess"  # human: version bump, back to READY
    PURGE = "purge"  # purge: files deleted after the retention period
    CONTENT_CHANGED = "content_changed"  # scanner: other bytes at the path of a reviewed asset


class IllegalTransition(Exception):
    """Raised when a transition is not in the table; nothing has been changed."""

    def __init__(self, current: AssetState, target: AssetState, trigger: Trigger) -> None:
        super().__init__(
            f"illegal transition {current} -> {target} by {trigger!s}: "
            f"allowed from {current}: {sorted(allowed_targets(current))}"
        )
        self.current = current
        self.target = target
        self.trigger = trigger


S = AssetState
T = Trigger

_DECIDABLE = (S.PROCESSED, S.DECISION_PENDING)
_DECIDED = (S.DECIDED_KEEP, S.DECIDED_REJECT)
#: States from which a human may ask for reprocessing (docs/contract.md §2: processed and later,
#: except an asset inside a batch or already purged).
REPROCESSABLE = frozenset(
    {S.PROCESSED, S.DECISION_PENDING, S.DECIDED_KEEP, S.DECIDED_REJECT, S.ARCHIVED, S.REJECTED}
)


def _rows() -> list[tuple[AssetState, AssetState, Trigger]]:
    rows: list[tuple[AssetState, AssetState, Trigger]] = [
        (S.DISCOVERED, S.READY, T.STABLE),
        (S.READY, S.DISCOVERED, T.CHANGED),
        (S.READY, S.PROCESSING_REVIEW, T.CLAIM),
        (S.PROCESSING_REVIEW, S.READY, T.LEASE_EXPIRED),
        (S.PROCESSING_REVIEW, S.READY, T.AGENT_ERROR),
        (S.PROCESSING_REVIEW, S.READY, T.RELEASED),
        (S.PROCESSING_REVIEW, S.PROCESSED, T.PROCESSED),
        (S.MOVE_QUEUED, S.ARCHIVED, T.MOVE_DONE),
        (S.MOVE_QUEUED, S.REJECTED, T.MOVE_DONE),
        (S.MOVE_QUEUED, S.DECIDED_KEEP, T.MOVE_FAILED),
        (S.MOVE_QUEUED, S.DECIDED_REJECT, T.MOVE_FAILED),
        (S.ARCHIVED, S.DECISION_PENDING, T.REOPEN),
        (S.REJECTED, S.DECISION_PENDING, T.REOPEN),
        (S.REJECTED, S.PURGED, T.PURGE),
    ]
    for src in _DECIDABLE:
        rows.append((src, S.DECIDED_KEEP, T.DECIDE_KEEP))
        rows.append((src, S.DECIDED_REJECT, T.DECIDE_REJECT))
    for src in _DECIDED:
        rows.append((src, S.DECISION_PENDING, T.UNDO))
        rows.append((src, S.MOVE_QUEUED, T.QUEUE_MOVE))
        # Changing one's mind directly (KEEP -> REJECT) is a decision on a decided asset.
        rows.append((src, S.DECIDED_KEEP, T.DECIDE_KEEP))
        rows.append((src, S.DECIDED_REJECT, T.DECIDE_REJECT))
    for src in REPROCESSABLE:
        rows.append((src, S.READY, T.REPROCESS))
        # The file changed in place: its facts and any decision were about other bytes,
        # so it starts again from discovery (docs/scanner.md, "Identity").
        rows.append((src, S.DISCOVERED, T.CONTENT_CHANGED))
    # Drop self-loops (e.g. DECIDED_KEEP -> DECIDED_KEEP): a no-op is not a transition.
    return [r for r in rows if r[0] != r[1]]


@dataclass(frozen=True, slots=True)
class Transition:
    source: AssetState
    target: AssetState
    trigger: Trigger


#: The one allowed-transition table.
TRANSITIONS: frozenset[Transition] = frozenset(Transition(*row) for row in _rows())
_BY_SOURCE: dict[AssetState, frozenset[Transition]] = {
    state: frozenset(t for t in TRANSITIONS if t.source is state) for state in AssetState
}

#: Terminal state: nothing leaves it.
TERMINAL = frozenset({S.PURGED})
#: States an agent may ever be told about (it never sees decisions, docs/contract.md §1).
AGENT_VISIBLE = frozenset({S.READY, S.PROCESSING_REVIEW})
#: States in which a human decision stands and must survive reprocessing.
DECISION_OF_STATE: dict[AssetState, str] = {
    S.DECIDED_KEEP: "KEEP",
    S.DECIDED_REJECT: "REJECT",
    S.ARCHIVED: "KEEP",
    S.REJECTED: "REJECT",
}


def allowed_targets(state: AssetState) -> frozenset[AssetState]:
    return frozenset(t.target for t in _BY_SOURCE[state])


def is_allowed(current: AssetState, target: AssetState, trigger: Trigger) -> bool:
    return Transition(current, target, trigger) in TRANSITIONS


def check_transition(current: AssetState, target: AssetState, trigger: Trigger) -> Transition:
    """Return the transition if the table allows it, else raise `IllegalTransition`."""
    transition = Transition(AssetState(current), AssetState(target), Trigger(trigger))
    if transition not in TRANSITIONS:
        raise IllegalTransition(transition.source, transition.target, transition.trigger)
    return transition


def decided_state(decision: str) -> AssetState:
    """Map a human decision ("KEEP"/"REJECT") to its DECIDED_* state."""
    if decision == "KEEP":
        return S.DECIDED_KEEP
    if decision == "REJECT":
        return S.DECIDED_REJECT
    raise ValueError(f"unknown decision {decision!r}; expected KEEP or REJECT")


def moved_state(decision: str) -> AssetState:
    """Where a successful move lands an asset of this decision."""
    return S.ARCHIVED if decision == "KEEP" else S.REJECTED
