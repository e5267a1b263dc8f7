"""Seedbox operations around the relocator: log rotation (C-05), the run lock, KPIs and
mapping export on both database backends, the CLI (arr-hook, run, stats, mapping)."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path

import pytest

from rush.config import Config
from rush.models import SeedMapping, SeedRelocation
from rush.runlock import LockBusy, run_lock
from rush.seedbox.logs import job_log
from rush.seedbox.service import cmd_seedbox_run, export_mapping, seedbox_kpis
from rush.seedbox.state import parse_state, read_state_dir
from tests.conftest import rush_env

H1 = "a" * 40
H2 = "b" * 40


# -- C-05: daily rotation with an injected clock ----------------------------------------------


def test_c05_logs_rotate_daily_and_keep_retention(tmp_path: Path) -> None:
    day0 = datetime(2026, 1, 1, 12, 0)
    now = [day0.timestamp()]
    log = logging.getLogger("rush.seedbox.test_c05")
    (tmp_path / "relocator.log.2025-11-01").write_text("ancient\n")  # beyond retention
    (tmp_path / "arr-hook.log.2025-11-01").write_text("another job's\n")
    with job_log(tmp_path, "relocator", 7, clock=lambda: now[0]):
        log.info("first day")
        now[0] = (day0 + timedelta(hours=3)).timestamp()
        log.info("same day")
        assert sorted(p.name for p in tmp_path.glob("relocator.log*")) == ["relocator.log"]
        now[0] = (day0 + timedelta(days=1)).timestamp()
        log.warning("second day")
        rotated = tmp_path / "relocator.log.2026-01-01"
        assert "first day" in rotated.read_text() and "same day" in rotated.read_text()
        assert "second day" in (tmp_path / "relocator.log").read_text()
        assert "first day" not in (tmp_path / "relocator.log").read_text()
        for i in range(2, 20):
            now[0] = (day0 + timedelta(days=i)).timestamp()
            log.info("day %d", i)
    names = sorted(p.name for p in tmp_path.iterdir())
    kept = [n for n in names if n.startswith("relocator.log.")]
    last = (day0 + timedelta(days=19)).date()
    assert kept == [
        f"relocator.log.{(last - timedelta(days=d)).isoformat()}" for d in range(7, 0, -1)
    ]
    assert "day 19" in (tmp_path / "relocator.log").read_text()
    assert "relocator.log.2025-11-01" not in names
    assert date.fromisoformat(kept[0].rsplit(".", 1)[1]) == last - timedelta(days=7)
    # Another job's files are not touched by this job's pruning.
    assert "arr-hook.log.2025-11-01" in names


def test_job_log_writes_one_file_per_job(tmp_path: Path) -> None:
    with job_log(tmp_path, "arr-hook", 10):
        logging.getLogger("rush.seedbox.arr_hook").info("hook line")
    with job_log(tmp_path, "relocator", 10):
        logging.getLogger("rush.seedbox.relocator").info("relocator line")
    logging.getLogger("rush.seedbox.relocator").info("after the job: not in the files")
    assert "hook line" in (tmp_path / "arr-hook.log").read_text()
    assert "relocator line" not in (tmp_path / "arr-hook.log").read_text()
    assert "relocator line" in (tmp_path / "relocator.log").read_text()
    assert "after the job" not in (tmp_path / "relocator.log").read_text()


# -- the run lock ------------------------------------------------------------------------------


def test_lock_refuses_second_holder(tmp_path: Path) -> None:
    with run_lock(tmp_path):
        busy = pytest.raises(LockBusy, match=f"pid {os.getpid()}")
        with busy, run_lock(tmp_path):
            pass  # pragma: no cover
    with run_lock(tmp_path) as path:  # released: can be taken again
        assert path.read_text().strip() == str(os.getpid())


def test_stale_lock_from_dead_pid_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "relocator.lock").write_text(f"{dead.pid}\n")
    with run_lock(tmp_path) as path:
        assert path.read_text().strip() == str(os.getpid())


# -- KPIs and mapping on both backends ---------------------------------------------------------


def _config(tmp_path: Path, db_url: str | None = None) -> Config:
    (tmp_path / "nvme").mkdir(exist_ok=True)
    return Config.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "database": {"dsn": db_url or f"sqlite://{tmp_path / 'data' / 'rush.db'}"},
            "seedbox": {
                "enabled": True,
                "state_dir": str(tmp_path / "state"),
                "nvme_root": str(tmp_path / "nvme"),
                "syno_root": str(tmp_path / "syno"),
                "log_dir": str(tmp_path / "log"),
                "lock_dir": str(tmp_path / "locks"),
                "backup_dir": str(tmp_path / "backup"),
                "arr_categories": {"sonarr": "tv"},
            },
        }
    )


async def test_kpis_from_attempts(db: str, tmp_path: Path) -> None:
    now = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)

    async def attempt(ok: bool, secs: float, nbytes: int, cause: str | None, days_ago: int) -> None:
        start = now - timedelta(days=days_ago, minutes=5)
        await SeedRelocation.create(
            infohash=H1,
            run_id="r",
            started_at=start,
            finished_at=start + timedelta(seconds=secs),
            ok=ok,
            bytes_moved=nbytes,
            error_cause=cause,
        )

    await attempt(True, 10, 1000, None, 0)
    await attempt(True, 30, 3000, None, 0)
    await attempt(True, 20, 500, None, 2)
    await attempt(False, 1, 0, "network", 0)
    await attempt(False, 1, 0, "hardlink", 1)
    await attempt(False, 1, 0, "unavailable", 1)
    await attempt(True, 5, 7, None, 30)  # outside the 7-day window for volume
    await SeedMapping.create(infohash=H1, path_nvme="/n", path_syno="/s", last_update_epoch=1)

    kpis = await seedbox_kpis(_config(tmp_path, db), now=now)

    # Kept on NVMe on purpose (hard links, Synology away): deferred, not failed moves.
    assert kpis["attempts"] == 5 and kpis["deferred"] == 2 and kpis["successes"] == 4
    assert kpis["success_ratio"] == pytest.approx(4 / 5, abs=1e-4)
    assert kpis["mean_relocation_s"] == pytest.approx((10 + 30 + 20 + 5) / 4)
    assert kpis["bytes_moved_today"] == 4000
    per_day = kpis["bytes_moved_per_day"]
    assert len(per_day) == 7 and per_day["2026-05-08"] == 500 and per_day["2026-05-10"] == 4000
    assert kpis["errors_by_cause"]["network"] == 1
    assert kpis["errors_by_cause"]["hardlink"] == 1
    assert kpis["errors_by_cause"]["unavailable"] == 1
    assert kpis["errors_by_cause"]["permissions"] == 0
    assert kpis["nvme"]["free_bytes"] > 0 and 0 < kpis["nvme"]["free_percent"] <= 100
    assert kpis["mapped_torrents"] == 1 and kpis["pending_states"] == 0


async def test_kpis_empty(db: str, tmp_path: Path) -> None:
    kpis = await seedbox_kpis(_config(tmp_path, db))
    assert kpis["attempts"] == 0 and kpis["success_ratio"] is None
    assert kpis["mean_relocation_s"] is None


async def test_mapping_export_tsv_and_csv(db: str) -> None:
    await SeedMapping.create(
        infohash=H2, path_nvme="/nvme/tv", path_syno="/syno/tv", last_update_epoch=20
    )
    await SeedMapping.create(
        infohash=H1, path_nvme="/nvme/a,b", path_syno="/syno/a,b", last_update_epoch=10
    )
    tsv = (await export_mapping("tsv")).splitlines()
    assert tsv == [
        "infohash\tpath_nvme\tpath_syno\tlast_update_epoch",
        f"{H1}\t/nvme/a,b\t/syno/a,b\t10",
        f"{H2}\t/nvme/tv\t/syno/tv\t20",
    ]
    rows = list(csv.reader(io.StringIO(await export_mapping("csv"))))
    assert rows[1] == [H1, "/nvme/a,b", "/syno/a,b", "10"]


async def test_cmd_handler_validates_payload_and_respects_lock(db: str, tmp_path: Path) -> None:
    config = _config(tmp_path, db)
    assert (await cmd_seedbox_run(config, {"dry_run": "yes"}))["ok"] is False
    bad = await cmd_seedbox_run(config, {"force": True})
    assert bad == {"ok": False, "error": "unknown field(s): force"}
    ok = await cmd_seedbox_run(config, {"dry_run": True, "request_id": "r1"})
    assert ok["ok"] is True and ok["dry_run"] is True and ok["moved"] == 0
    assert ok["request_id"] == "r1"
    with run_lock(config.seedbox.lock_dir):
        busy = await cmd_seedbox_run(config, {"dry_run": True})
    assert busy["ok"] is False and "another seedbox run is in progress" in busy["error"]
    assert "run refused" in (config.seedbox.log_dir / "relocator.log").read_text()


# -- the command line ---------------------------------------------------------------------------


def _write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[seedbox]
state_dir = "{tmp_path / "state"}"
nvme_root = "{tmp_path / "nvme"}"
syno_root = "{tmp_path / "syno"}"
log_dir = "{tmp_path / "log"}"
lock_dir = "{tmp_path / "locks"}"
backup_dir = "{tmp_path / "backup"}"
[seedbox.arr_categories]
sonarr = "tv"
radarr = "movies"
""",
        encoding="utf-8",
    )
    return cfg


def _entry_point() -> list[str]:
    """`python -m rush seedbox` once every registered command module exists; until then
    (a branch without some other command) the seedbox module's own entry point."""
    from rush.cli import COMMANDS

    if all(importlib.util.find_spec(f"rush.cli.{name}") for name in COMMANDS):
        return [sys.executable, "-m", "rush", "seedbox"]
    return [sys.executable, "-m", "rush.cli.seedbox"]


_ENTRY = _entry_point()


def _seedbox(
    cfg: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_ENTRY, *args, "--config", str(cfg)],
        env=rush_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_registered_in_commands() -> None:
    from rush.cli import COMMANDS

    assert "seedbox" in COMMANDS


def test_arr_hook_sonarr_and_radarr_write_states(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path)
    sonarr = _seedbox(
        cfg,
        "arr-hook",
        env={
            "sonarr_eventtype": "Download",
            "sonarr_download_id": H1.upper(),
            "sonarr_isupgrade": "False",
            "sonarr_episodefile_path": "/media/tv/Show/S01E01.mkv",
            "sonarr_episodefile_sourcepath": "/nvme/tv/Show.S01E01.mkv",
            "sonarr_deletedpaths": "",
            "sonarr_download_client": "qBittorrent",
            "sonarr_series_title": "Show",
        },
    )
    assert sonarr.returncode == 0, sonarr.stderr
    radarr = _seedbox(
        cfg,
        "arr-hook",
        env={
            "radarr_eventtype": "Download",
            "radarr_download_id": H2.upper(),
            "radarr_isupgrade": "True",
            "radarr_moviefile_path": "/media/movies/F/F.mkv",
            "radarr_moviefile_sourcepath": "/nvme/movies/F/F.mkv",
            "radarr_deletedpaths": "/media/movies/F/F.avi|/media/movies/F/F.nfo",
            "radarr_movie_title": "F",
        },
    )
    assert radarr.returncode == 0, radarr.stderr
    states = {e.state.infohash: e.state for e in read_state_dir(tmp_path / "state") if e.state}
    assert states[H1].kind == "added" and states[H1].category == "tv"
    assert states[H2].kind == "upgrade" and states[H2].category == "movies"
    assert states[H2].old_paths == ["/media/movies/F/F.avi", "/media/movies/F/F.nfo"]
    for path in (tmp_path / "state").glob("*.state"):
        parse_state(path.read_bytes())  # what was written follows the schema
    log = (tmp_path / "log" / "arr-hook.log").read_text()
    assert "sonarr added Show" in log and "radarr upgrade F" in log


def test_arr_hook_test_event_writes_nothing(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path)
    res = _seedbox(cfg, "arr-hook", env={"radarr_eventtype": "Test"})
    assert res.returncode == 0 and "Test event from radarr OK" in res.stdout
    assert list((tmp_path / "state").glob("*")) == []


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"sonarr_eventtype": "Download", "sonarr_download_id": H1},
        {
            "sonarr_eventtype": "Download",
            "sonarr_download_id": "not-a-hash",
            "sonarr_isupgrade": "False",
            "sonarr_episodefile_path": "/media/x.mkv",
        },
    ],
)
def test_arr_hook_bad_env_fails_and_writes_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = _write_config(tmp_path)
    res = _seedbox(cfg, "arr-hook", env=env)
    assert res.returncode != 0
    assert "nothing written" in res.stderr
    assert not (tmp_path / "state").exists() or list((tmp_path / "state").iterdir()) == []


def test_second_run_refuses_while_first_holds_the_lock(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path)
    with run_lock(tmp_path / "locks"):
        res = _seedbox(cfg, "run", "--dry-run")
    assert res.returncode == 3
    assert "another seedbox run is in progress" in res.stderr and str(os.getpid()) in res.stderr
    after = _seedbox(cfg, "run", "--dry-run")  # lock released: runs (nothing to do)
    assert after.returncode == 0, after.stderr
    assert "0 moved" in after.stdout


def test_cli_stats_and_mapping_export(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path)
    stats = _seedbox(cfg, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["attempts"] == 0
    out = tmp_path / "mapping.csv"
    res = _seedbox(cfg, "mapping", "--export", str(out), "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert out.read_text().splitlines() == ["infohash,path_nvme,path_syno,last_update_epoch"]


async def test_daily_actor_sleeps_until_run_at_then_runs(db: str, tmp_path: Path) -> None:
    import asyncio

    from actors.seed_relocator import SeedRelocator

    config = _config(tmp_path, db)
    config.seedbox.run_at = dtime(4, 30)
    tz = timezone(timedelta(hours=1))
    clock = [datetime(2026, 6, 1, 3, 0, tzinfo=tz)]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise asyncio.CancelledError
        clock[0] += timedelta(seconds=seconds)

    actor = SeedRelocator(config, now=lambda: clock[0], sleep=fake_sleep)
    with pytest.raises(asyncio.CancelledError):
        await actor.run()
    assert sleeps == [5400.0, 86400.0]
    assert "seedbox run" in (config.seedbox.log_dir / "relocator.log").read_text()
