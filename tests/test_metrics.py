"""Metrics from events and snapshots, rendered in the Prometheus text format."""

from __future__ import annotations

from integrations.metrics import Metrics
from rush import events
from rush.config import Config
from rush.status import collect_status


def _value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in metrics:\n{text}")


def test_events_become_counters() -> None:
    m = Metrics()
    asset = {
        "uuid": "u",
        "from": "PROCESSING_REVIEW",
        "to": "READY",
        "at": "",
        "by": "lease-keeper",
    }
    m.observe(events.Event("asset", {**asset, "trigger": "lease_expired"}))
    m.observe(events.Event("asset", {**asset, "to": "ARCHIVED", "trigger": "move_done"}))
    m.observe(events.Event("asset", {**asset, "to": "DECIDED_KEEP", "trigger": "move_failed"}))
    m.observe(events.Event("scan", {"duration_s": 0.7}))
    m.observe(events.Event("claim", {"latency_s": 0.002}))
    m.observe(events.Event("job", {"type": "process_for_review", "duration_s": 42}))
    m.observe(events.Event("scan", {"oops": 1}))  # malformed: ignored, no crash
    text = m.render().decode()
    assert _value(text, "rush_lease_expiries_total") == 1
    assert _value(text, 'rush_moves_total{result="ok"}') == 1
    assert _value(text, 'rush_moves_total{result="failed"}') == 1
    assert _value(text, 'rush_errors_total{cause="move"}') == 1
    assert _value(text, "rush_scan_duration_seconds_count") == 1
    assert _value(text, 'rush_job_duration_seconds_count{type="process_for_review"}') == 1
    assert _value(text, 'rush_transitions_total{to="READY",trigger="lease_expired"}') == 1


async def test_snapshot_becomes_gauges(db: str) -> None:
    from rush.models import Asset

    await Asset.create(kind="photo", rel_path="INBOX/p.jpg", path_key="INBOX/p.jpg", state="READY")
    m = Metrics()
    m.update_snapshot(await collect_status(Config()))
    text = m.render().decode()
    assert _value(text, 'rush_assets{state="READY"}') == 1
    assert _value(text, 'rush_assets{state="ARCHIVED"}') == 0
    assert _value(text, "rush_queue_depth") == 1
