"""The relocator's safety rules against a real qbittorrent-nox, each reproduced first:
a copy damaged by a full disk is never finalised without a recheck at its new location,
cross-seeds move together, deferrals are not failures, own leftovers are cleaned up, stale
work ends (see docs/seedbox.md, "Safety guarantees")."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rush.models import SeedMapping
from rush.seedbox.service import relocate
from tests.conftest import REPO_ROOT, rush_env
from tests.seedbox_env import (
    SEEDING,
    Env,
    _norm,
    assert_same_data,
    env_fixture,  # noqa: F401  (fixtures, by their names)
    mount_tmpfs,
    need_mount,
    qbit_fixture,  # noqa: F401
    syno_mount_fixture,  # noqa: F401
    umount,
)
from tests.seedbox_support import seedbox_config_data

pytestmark = pytest.mark.slow

MiB = 1024 * 1024


async def _run_killed(env: Env, **spec: object) -> None:
    """One relocation run in another process, SIGKILLed where `spec` says."""
    path = env.base / "kill-spec.json"
    path.write_text(json.dumps(spec))
    killed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(REPO_ROOT / "tests" / "seedbox_kill_driver.py"), str(path)],
        env=rush_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr


def _snapshot(env: Env, infohash: str) -> dict[str, object]:
    info = env.info(infohash)
    return {k: info[k] for k in ("state", "progress", "save_path")}


async def test_disk_full_during_move_then_kill_never_finalises_a_damaged_copy(env: Env) -> None:
    """4 MiB single-file torrent, Synology filled to 1 MiB free just before setLocation,
    the run SIGKILLed once qBittorrent's move ended, space freed, run again."""
    need_mount("a small Synology tmpfs")
    small = env.base / "small-syno"
    mount_tmpfs(small, 6 * 1024)
    try:
        syno = small / "torrents"
        syno.mkdir()
        (syno / env.config.seedbox.syno_marker).write_text("synology\n")
        env.config.seedbox.syno_root = syno
        infohash, contents = env.torrent("Full.S01E01.mkv", {"": 4 * MiB})
        state = env.state(infohash)
        data = seedbox_config_data(env.base, env.qbit.url, env.nvme, syno)
        await _run_killed(env, config=data, fill=str(small / "filler"), leave_free=MiB)
        before = _snapshot(env, infohash)
        print("after the killed run:", before)
        (small / "filler").unlink()
        report = await relocate(env.config)

        after = _snapshot(env, infohash)
        print("after the next run:", after, [(o.action, o.reason) for o in report.outcomes])
        assert [o.action for o in report.outcomes] != ["finalised"]
        assert await SeedMapping.all().count() == 0
        assert state.exists()
        # Whatever happened, qBittorrent seeds a complete, byte-identical copy.
        assert after["state"] in SEEDING and after["progress"] == 1
        where = _norm(after["save_path"])
        assert where in (str(env.nvme / "tv"), str(syno / "tv"))
        assert_same_data(Path(where) / "Full.S01E01.mkv", contents)
    finally:
        umount(small)


async def test_run_killed_after_the_recheck_is_finalised_from_the_journal(env: Env) -> None:
    """The recheck at the Synology completed and was journaled, then the run died: the next
    run finalises from that record (no second recheck), and only then."""
    infohash, contents = env.torrent("Verified.S01E01.mkv", {"": 200_000})
    state = env.state(infohash)
    data = seedbox_config_data(env.base, env.qbit.url, env.nvme, env.syno)
    await _run_killed(env, config=data, kill_at="verified")
    before = _snapshot(env, infohash)
    assert _norm(before["save_path"]) == str(env.syno / "tv") and state.exists()
    assert await SeedMapping.all().count() == 0

    report = await relocate(env.config)

    assert [(o.action, o.reason) for o in report.outcomes] == [
        ("finalised", "already on the Synology, rechecked there")
    ]
    assert "without a recorded recheck" not in env.log_text()
    row = await SeedMapping.get(infohash=infohash)
    assert (row.path_nvme, row.path_syno) == (str(env.nvme / "tv"), str(env.syno / "tv"))
    assert not state.exists()
    assert_same_data(env.syno / "tv" / "Verified.S01E01.mkv", contents)
