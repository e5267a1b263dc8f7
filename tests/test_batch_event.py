"""The `batch` event that Home Assistant automations receive on `events/batch`."""

from __future__ import annotations

from rush.moves.run import batch_event


def test_apply_report_counts() -> None:
    report = {
        "batch_id": "b1",
        "counts": {"moved": 2, "skipped": 1, "failed": 1, "noop": 0},
        "failed": [{"uuid": "u", "reason": "destination volume missing"}],
    }
    event = batch_event("apply", report)
    assert (event["kind"], event["moved"], event["failed"], event["skipped"]) == ("apply", 2, 1, 1)
    assert event["errors"] == ["destination volume missing"]


def test_purge_result_lists() -> None:
    result = {
        "batch_id": "b2",
        "purged": [{"uuid": "a"}, {"uuid": "b"}],
        "failed": [],
        "skipped": [],
    }
    event = batch_event("purge", result)
    assert (event["moved"], event["failed"]) == (2, 0)
