"""`rush apply` and `rush purge` stopped by SIGTERM behave like Ctrl-C; Ctrl-C at start-up
prints one line.

Real processes (`python -m rush …`), a real SQLite or PostgreSQL database and real files.
The signal comes from the journal's test hook at a chosen filesystem step, so it always
lands in the middle of the batch (`RUSH_TEST_CRASH_SIGNAL`, see `rush/moves/journal.py`).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from rush.lifecycle import AssetState
from rush.models import Asset, Batch, KeyValue
from rush.transitions import utcnow
from tests.batch_helpers import make_asset, make_config
from tests.conftest import free_port, rush_env

S = AssetState


def _config_file(tmp_path: Path, root: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[library]
root = "{root}"
[database]
dsn = "{db_url}"
[mqtt]
embedded_port = {free_port()}
prefix = "rush-t-{os.getpid()}-{tmp_path.name[-8:]}"
[purge]
after_days = 30
""",
        encoding="utf-8",
    )
    return path


async def _rush(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rush", *argv],
        env={**rush_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


SIGTERM_AT_STEP = {"RUSH_TEST_CRASH_AFTER_N_FS_OPS": "4", "RUSH_TEST_CRASH_SIGNAL": "SIGTERM"}


async def test_sigterm_stops_apply_like_ctrl_c(db: str, db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_config(root, db_url)
    assets = [await make_asset(root, f"INBOX/s/clip{i}.mp4", S.DECIDED_KEEP) for i in range(8)]
    config = _config_file(tmp_path, root, db_url)
    done = await _rush("apply", "--config", str(config), env=SIGTERM_AT_STEP)
    assert done.returncode == 143, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert "interrupted" in done.stderr
    batch = await Batch.get(kind="apply")
    assert batch.status == "interrupted"
    assert await KeyValue.get_or_none(key="fs_lock") is None  # the lock was released
    states = {a.state for a in await Asset.filter(id__in=[a.id for a in assets])}
    assert S.DECIDED_KEEP in states or S.MOVE_QUEUED in states, states  # really stopped midway

    again = await _rush("apply", "--config", str(config))
    assert again.returncode == 0, again.stderr[-2000:]
    for a in assets:
        fresh = await Asset.get(id=a.id)
        assert fresh.state == S.ARCHIVED
        assert (root / fresh.rel_path).is_file()


async def test_sigterm_stops_purge_as_interrupted(db: str, db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_config(root, db_url)
    assets = [
        await make_asset(root, f"REJECTS/s/old{i}.mp4", S.REJECTED, sidecars=(f"old{i}.xmp",))
        for i in range(8)
    ]
    await Asset.filter(id__in=[a.id for a in assets]).update(
        state_changed_at=utcnow() - timedelta(days=400)
    )
    config = _config_file(tmp_path, root, db_url)
    done = await _rush("purge", "--confirm", "--config", str(config), env=SIGTERM_AT_STEP)
    assert done.returncode == 143, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    batch = await Batch.get(kind="purge")
    assert batch.status == "interrupted"  # not "crashed"
    assert await KeyValue.get_or_none(key="fs_lock") is None
    again = await _rush("purge", "--confirm", "--config", str(config))
    assert again.returncode == 0, again.stderr[-2000:]
    assert await Asset.filter(state=S.PURGED).count() == len(assets)


_UP_THEN_RUSH = (
    "import runpy, sys\n"
    "sys.stderr.write('up\\n'); sys.stderr.flush()\n"
    "sys.argv[0] = 'rush'\n"
    "runpy.run_module('rush', run_name='__main__', alter_sys=True)\n"
)
_INFO_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO) ")


@pytest.mark.parametrize("delay", [0.2, 0.5, 0.9])
def test_ctrl_c_at_start_up_prints_one_line(tmp_path: Path, delay: float) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    # The interpreter's own start-up (the site module) is not ours to interrupt: the child
    # says when it is up, then `python -m rush status` runs exactly as from a shell.
    proc = subprocess.Popen(
        [sys.executable, "-c", _UP_THEN_RUSH, "status", "--config", str(config)],
        env=rush_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline() == "up\n"
    time.sleep(delay)  # somewhere in the imports, the config or the database opening
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    # Besides ordinary INFO log records (a fresh database's migrations, say), one line.
    said = [line for line in err.splitlines() if line.strip() and not _INFO_RECORD.match(line)]
    assert len(said) <= 1, err
    assert proc.returncode in (0, 130, -signal.SIGINT), (proc.returncode, err)
