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


def _full_snapshot() -> dict[str, float]:
    return {
        "queue_depth": 3,
        "last_scan_duration": 2.5,
        "seedbox_success_ratio": 90.0,
        "seedbox_mean_relocation_s": 42.0,
        "seedbox_moved_today_gb": 1.5,
        "seedbox_nvme_free_gb": 120.25,
        "seedbox_nvme_free_percent": 30.0,
        "seedbox_errors_api": 2,
    }


def test_promtool_accepts_the_exposition() -> None:
    """`promtool check metrics` (Debian package `prometheus`, installed by scripts/setup)
    lints names, units, suffixes, HELP and TYPE: it must have nothing to say."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run scripts/setup (Debian package prometheus)"
    m = Metrics()
    m.update_snapshot(_full_snapshot())
    m.observe(events.Event("scan", {"duration_s": 0.7}))
    m.observe(events.Event("error", {"cause": "move"}))
    body = m.render()
    done = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    assert not (done.stdout + done.stderr).strip(), (done.stdout + done.stderr).decode()
    text = body.decode()
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    helps = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP")}
    assert families == helps and families


def test_metrics_use_base_units() -> None:
    m = Metrics()
    m.update_snapshot(_full_snapshot())
    text = m.render().decode()
    assert _value(text, "rush_seedbox_mean_relocation_seconds") == 42.0
    assert _value(text, "rush_seedbox_moved_today_bytes") == 1.5e9
    assert _value(text, "rush_seedbox_nvme_free_bytes") == 120.25e9
    assert _value(text, "rush_seedbox_success_ratio") == 0.9
    assert _value(text, "rush_seedbox_nvme_free_ratio") == 0.3
    assert _value(text, "rush_last_scan_duration_seconds") == 2.5
    assert "_gb" not in text and "_s " not in text
