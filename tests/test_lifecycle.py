"""The transition table, exhaustively: every (state, target, trigger) triple."""

from __future__ import annotations

import itertools

import pytest

from rush.lifecycle import (
    AGENT_VISIBLE,
    TRANSITIONS,
    AssetState,
    IllegalTransition,
    Trigger,
    allowed_targets,
    check_transition,
    decided_state,
    is_allowed,
    moved_state,
)

S, T = AssetState, Trigger

# The docs/contract.md §2 table, written out by hand so that a change to the code's table shows here.
EXPECTED = {
    (S.DISCOVERED, S.READY, T.STABLE),
    (S.READY, S.DISCOVERED, T.CHANGED),
    (S.READY, S.PROCESSING_REVIEW, T.CLAIM),
    (S.PROCESSING_REVIEW, S.READY, T.LEASE_EXPIRED),
    (S.PROCESSING_REVIEW, S.READY, T.AGENT_ERROR),
    (S.PROCESSING_REVIEW, S.READY, T.RELEASED),
    (S.PROCESSING_REVIEW, S.PROCESSED, T.PROCESSED),
    (S.PROCESSED, S.DECIDED_KEEP, T.DECIDE_KEEP),
    (S.PROCESSED, S.DECIDED_REJECT, T.DECIDE_REJECT),
    (S.DECISION_PENDING, S.DECIDED_KEEP, T.DECIDE_KEEP),
    (S.DECISION_PENDING, S.DECIDED_REJECT, T.DECIDE_REJECT),
    (S.DECIDED_KEEP, S.DECIDED_REJECT, T.DECIDE_REJECT),
    (S.DECIDED_REJECT, S.DECIDED_KEEP, T.DECIDE_KEEP),
    (S.DECIDED_KEEP, S.DECISION_PENDING, T.UNDO),
    (S.DECIDED_REJECT, S.DECISION_PENDING, T.UNDO),
    (S.DECIDED_KEEP, S.MOVE_QUEUED, T.QUEUE_MOVE),
    (S.DECIDED_REJECT, S.MOVE_QUEUED, T.QUEUE_MOVE),
    (S.MOVE_QUEUED, S.ARCHIVED, T.MOVE_DONE),
    (S.MOVE_QUEUED, S.REJECTED, T.MOVE_DONE),
    (S.MOVE_QUEUED, S.DECIDED_KEEP, T.MOVE_FAILED),
    (S.MOVE_QUEUED, S.DECIDED_REJECT, T.MOVE_FAILED),
    (S.ARCHIVED, S.DECISION_PENDING, T.REOPEN),
    (S.REJECTED, S.DECISION_PENDING, T.REOPEN),
    (S.REJECTED, S.PURGED, T.PURGE),
    *{
        # The scanner: other bytes at the path of a reviewed asset (docs/scanner.md).
        (src, S.DISCOVERED, T.CONTENT_CHANGED)
        for src in (
            S.PROCESSED,
            S.DECISION_PENDING,
            S.DECIDED_KEEP,
            S.DECIDED_REJECT,
            S.ARCHIVED,
            S.REJECTED,
        )
    },
    *{
        (src, S.READY, T.REPROCESS)
        for src in (
            S.PROCESSED,
            S.DECISION_PENDING,
            S.DECIDED_KEEP,
            S.DECIDED_REJECT,
            S.ARCHIVED,
            S.REJECTED,
        )
    },
}


def test_table_is_exactly_the_spec() -> None:
    assert {(t.source, t.target, t.trigger) for t in TRANSITIONS} == EXPECTED


@pytest.mark.parametrize(
    ("source", "target", "trigger"), list(itertools.product(S, S, T)), ids=lambda v: str(v)
)
def test_every_triple(source: AssetState, target: AssetState, trigger: Trigger) -> None:
    if (source, target, trigger) in EXPECTED:
        assert check_transition(source, target, trigger).target is target
        assert is_allowed(source, target, trigger)
    else:
        with pytest.raises(IllegalTransition) as err:
            check_transition(source, target, trigger)
        assert str(source) in str(err.value) and str(target) in str(err.value)
        assert not is_allowed(source, target, trigger)


def test_purged_is_terminal_and_archived_never_purged() -> None:
    assert allowed_targets(S.PURGED) == frozenset()
    assert S.PURGED not in allowed_targets(S.ARCHIVED)


def test_no_move_without_processing_and_decision() -> None:
    # MOVE_QUEUED is reachable only from a human decision, itself only after PROCESSED.
    sources = {t.source for t in TRANSITIONS if t.target is S.MOVE_QUEUED}
    assert sources == {S.DECIDED_KEEP, S.DECIDED_REJECT}
    reach_decided = {
        t.source for t in TRANSITIONS if t.target in (S.DECIDED_KEEP, S.DECIDED_REJECT)
    }
    assert reach_decided == {
        S.PROCESSED,
        S.DECISION_PENDING,
        S.DECIDED_KEEP,
        S.DECIDED_REJECT,
        S.MOVE_QUEUED,
    }


def test_agents_never_reach_decisions() -> None:
    agent_triggers = {T.CLAIM, T.LEASE_EXPIRED, T.AGENT_ERROR, T.RELEASED, T.PROCESSED}
    targets = {t.target for t in TRANSITIONS if t.trigger in agent_triggers}
    assert targets <= AGENT_VISIBLE | {S.PROCESSED}


def test_decision_helpers() -> None:
    assert decided_state("KEEP") is S.DECIDED_KEEP
    assert decided_state("REJECT") is S.DECIDED_REJECT
    assert moved_state("KEEP") is S.ARCHIVED and moved_state("REJECT") is S.REJECTED
    with pytest.raises(ValueError):
        decided_state("MAYBE")
