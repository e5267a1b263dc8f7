"""The status snapshot and `rush status` on both backends."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from integrations.homeassistant.discovery import SENSORS
from rush.config import Config
from rush.lifecycle import AssetState
from rush.models import Agent, Asset, Batch, KeyValue
from rush.status import collect_status, format_status
from rush.transitions import utcnow
from tests.conftest import rush_env

S = AssetState


async def _asset(name: str, state: AssetState, **kw: object) -> Asset:
    rel = f"INBOX/{name}"
    return await Asset.create(kind="video", rel_path=rel, path_key=rel, state=state, **kw)


async def test_snapshot_counts(db: str) -> None:
    now = utcnow()
    await _asset("a.mp4", S.READY)
    await _asset("b.mp4", S.READY, failed=True)
    await _asset("c.mp4", S.PROCESSED)
    await _asset("d.mp4", S.DECISION_PENDING)
    await _asset("e.mp4", S.REJECTED, state_changed_at=now - timedelta(days=181))
    await _asset("f.mp4", S.REJECTED, state_changed_at=now - timedelta(days=179))
    await _asset("g.mp4", S.ARCHIVED, state_changed_at=now - timedelta(days=900))
    await Agent.create(id="pi", online=True)
    await Agent.create(id="laptop", online=False)
    await KeyValue.create(
        key="last_scan", value={"finished_at": now.isoformat(), "duration_s": 1.5}
    )
    await Batch.create(
        kind="apply", status="done", finished_at=now, report={"moved": [1, 2, 3], "failed": [4]}
    )
    snap = await collect_status(Config(), now=now)
    assert snap["state_ready"] == 2 and snap["state_rejected"] == 2
    assert snap["queue_depth"] == 1
    assert snap["failed"] == 1
    assert snap["awaiting_decision"] == 2
    assert snap["agents_online"] == 1
    assert snap["purge_eligible"] == 1  # 181 days; never ARCHIVED, not 179 days
    assert snap["last_scan_duration"] == 1.5
    assert (snap["last_apply_moved"], snap["last_apply_failed"]) == (3, 1)
    text = format_status(snap)
    assert "READY" in text and "moved 3, failed 1" in text


async def test_snapshot_has_every_ha_sensor_key(db: str, tmp_path: Path) -> None:
    from rush.models import SeedRelocation

    config = Config()
    config.seedbox.enabled = True
    config.seedbox.nvme_root = tmp_path
    now = utcnow()
    await SeedRelocation.create(
        infohash="a" * 40, run_id="r", started_at=now, finished_at=now, ok=True,
        bytes_moved=2_000_000_000,
    )  # fmt: skip
    await SeedRelocation.create(
        infohash="b" * 40, run_id="r", started_at=now, ok=False, error_cause="network", error="x"
    )
    await SeedRelocation.create(
        infohash="c" * 40, run_id="r", started_at=now, ok=False, error_cause="conflict", error="x"
    )
    snap = await collect_status(config, now=now)
    assert [s.key for s in SENSORS if s.key not in snap] == []
    assert snap["seedbox_success_ratio"] == 33.3
    assert snap["seedbox_moved_today_gb"] == 2.0
    assert snap["seedbox_errors_network"] == 1 and snap["seedbox_errors_other"] == 1
    assert snap["seedbox_nvme_free_gb"] is not None


def test_rush_status_cli(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f'data_dir = "{tmp_path / "data"}"\n[library]\nroot = "{tmp_path / "lib"}"\n'
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rush",
            "status",
            "--config",
            str(tmp_path / "config.toml"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=rush_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"state_discovered": 0' in proc.stdout
