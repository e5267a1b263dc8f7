"""The relocator's safety rules against a real qbittorrent-nox, each reproduced first:
a copy damaged by a full disk is never finalised without a recheck at its new location,
cross-seeds move together, deferrals are not failures, own leftovers are cleaned up, stale
work ends (see docs/seedbox.md, "Safety guarantees")."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
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
from tests.seedbox_support import seedbox_config_data, wait_for, write_toml

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
CHECKING = {"checkingUP", "checkingDL", "checkingResumeData", "moving", "metaDL"}


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


async def _disk_full_then_kill(
    env: Env, small: Path, name: str
) -> tuple[str, dict[str, bytes], Path]:
    """4 MiB single-file torrent; the Synology (a 6 MiB tmpfs) filled to 1 MiB free just
    before setLocation; the run SIGKILLed once qBittorrent's move ended; space freed."""
    need_mount("a small Synology tmpfs")
    mount_tmpfs(small, 6 * 1024)
    syno = small / "torrents"
    syno.mkdir()
    (syno / env.config.seedbox.syno_marker).write_text("synology\n")
    env.config.seedbox.syno_root = syno
    infohash, contents = env.torrent(name, {"": 4 * MiB})
    env.state(infohash)
    data = seedbox_config_data(env.base, env.qbit.url, env.nvme, syno)
    await _run_killed(env, config=data, fill=str(small / "filler"), leave_free=MiB)
    before = _snapshot(env, infohash)
    print("after the killed run:", before)
    # qBittorrent claims the move although it failed ("No space left on device").
    assert _norm(before["save_path"]) == str(syno / "tv")
    assert before["state"] in SEEDING and before["progress"] == 1
    (small / "filler").unlink()
    return infohash, contents, syno


async def test_disk_full_during_move_then_kill_never_finalises_a_damaged_copy(env: Env) -> None:
    small = env.base / "small-syno"
    try:
        infohash, contents, _ = await _disk_full_then_kill(env, small, "Full.S01E01.mkv")

        report = await relocate(env.config)

        after = _snapshot(env, infohash)
        print("after the next run:", after, [(o.action, o.reason) for o in report.outcomes])
        assert [o.action for o in report.outcomes] == ["failed"]
        assert "the move failed" in report.outcomes[0].reason
        assert await SeedMapping.all().count() == 0
        assert len(list(env.config.seedbox.state_dir.glob("*.state"))) == 1
        # qBittorrent seeds the complete, byte-identical NVMe copy again.
        assert after["state"] in SEEDING and after["progress"] == 1
        assert _norm(after["save_path"]) == str(env.nvme / "tv")
        assert_same_data(env.nvme / "tv" / "Full.S01E01.mkv", contents)
        assert _recheck_and_wait(env, infohash)["progress"] == 1
    finally:
        umount(small)


async def test_own_leftovers_of_a_failed_attempt_are_cleaned_before_the_retry(env: Env) -> None:
    """After the failed move above, the damaged partial copy is still on the Synology;
    the next run recognises it as its own (journaled attempt, same infohash, size not
    above the recorded one), removes it (journaled), and relocates for real."""
    from rush.models import FsAction

    small = env.base / "small-syno"
    try:
        infohash, contents, syno = await _disk_full_then_kill(env, small, "Left.S01E01.mkv")
        await relocate(env.config)  # points qBittorrent back at the NVMe copy
        leftover = syno / "tv" / "Left.S01E01.mkv"
        assert leftover.exists() and leftover.read_bytes() != contents[""]
        before = _snapshot(env, infohash)
        dry = await relocate(env.config, dry_run=True)
        assert [o.action for o in dry.outcomes] == ["would_move"]
        assert "after removing 1 own leftover file(s)" in dry.outcomes[0].reason
        assert leftover.exists()

        report = await relocate(env.config)

        after = _snapshot(env, infohash)
        print("before:", before, "\nafter:", after, [(o.action, o.reason) for o in report.outcomes])
        assert [o.action for o in report.outcomes] == ["moved"]
        assert _norm(after["save_path"]) == str(syno / "tv")
        assert_same_data(leftover, contents)
        assert _recheck_and_wait(env, infohash)["progress"] == 1
        [row] = await FsAction.filter(action="seed_delete")
        assert (row.src, row.status) == (str(leftover), "done")
        assert "a failed earlier attempt of this tool left" in env.log_text()
    finally:
        umount(small)


async def test_foreign_files_still_block_and_are_named(env: Env) -> None:
    infohash, _ = env.torrent("Mixed", {"a.mkv": 20_000, "b.nfo": 100})
    (env.syno / "tv" / "Mixed").mkdir(parents=True)
    (env.syno / "tv" / "Mixed" / "b.nfo").write_bytes(b"someone else's")
    state = env.state(infohash)

    report = await relocate(env.config)

    [outcome] = report.outcomes
    assert (outcome.action, outcome.cause) == ("failed", "conflict")
    assert (
        "'Mixed/b.nfo'" in outcome.reason
        and "not written by an attempt of this tool" in outcome.reason
    )
    assert (env.syno / "tv" / "Mixed" / "b.nfo").read_bytes() == b"someone else's"
    assert env.save_path(infohash) == str(env.nvme / "tv") and state.exists()


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


def _recheck_and_wait(env: Env, infohash: str) -> dict[str, object]:
    """qBittorrent's own verdict on the data where it keeps it (after a recheck)."""
    client = env.qbit.client()
    client.torrents_recheck(torrent_hashes=infohash)
    time.sleep(0.5)
    wait_for(
        lambda: env.info(infohash)["state"] not in CHECKING,
        60,
        f"recheck of {infohash}",
    )
    return _snapshot(env, infohash)


async def test_cross_seeds_move_together(env: Env) -> None:
    """Two torrents (two trackers) seed the same files from the same save path; only one
    has a .state.  Both move, both really seed from the Synology afterwards."""
    files = {"e01.mkv": 120_000, "e02.mkv": 60_000}
    first, contents = env.torrent("Cross.S01", files)
    second, _ = env.torrent("Cross.S01", files, source="OTHER")
    assert first != second
    state = env.state(first)
    before = {h: _snapshot(env, h) for h in (first, second)}

    report = await relocate(env.config)

    actions = {o.infohash: o.action for o in report.outcomes}
    after = {h: _recheck_and_wait(env, h) for h in (first, second)}
    print("before:", before, "\nafter (rechecked):", after, "\n", actions)
    assert actions == {first: "moved", second: "moved"}
    for h in (first, second):
        assert _norm(after[h]["save_path"]) == str(env.syno / "tv")
        assert after[h]["state"] in SEEDING and after[h]["progress"] == 1
    assert_same_data(env.syno / "tv" / "Cross.S01", contents)
    assert not (env.nvme / "tv" / "Cross.S01" / "e01.mkv").exists()
    rows = {r.infohash: r.path_syno for r in await SeedMapping.all()}
    assert rows == {first: str(env.syno / "tv"), second: str(env.syno / "tv")}
    assert not state.exists()


async def test_cross_seed_group_moves_whole_or_not_at_all(env: Env) -> None:
    """The cross-seed cannot follow (paused, so not seeding): neither of them moves."""
    files = {"": 80_000}
    first, contents = env.torrent("Pair.S01E01.mkv", files)
    second, _ = env.torrent("Pair.S01E01.mkv", files, source="OTHER")
    env.qbit.client().torrents_pause(torrent_hashes=second)
    wait_for(lambda: str(env.info(second)["state"]).startswith("paused"), 30, "paused")
    state = env.state(first)

    report = await relocate(env.config)

    outcomes = {o.infohash: o for o in report.outcomes}
    assert set(outcomes) == {first, second}
    assert all(o.action in ("failed", "kept", "deferred") for o in outcomes.values())
    assert "cross-seed" in outcomes[first].reason
    for h in (first, second):
        assert env.save_path(h) == str(env.nvme / "tv")
    assert_same_data(env.nvme / "tv" / "Pair.S01E01.mkv", contents)
    assert _recheck_and_wait(env, first)["progress"] == 1
    assert state.exists() and await SeedMapping.all().count() == 0


async def test_hard_linked_torrent_does_not_use_up_the_free_space_budget(env: Env) -> None:
    """NVMe (a 10 MiB tmpfs) 40 % free, target 50 %: the oldest torrent is hard-linked into
    the library (moving it frees nothing), so the younger one must move to reach the
    target; before, the hard-linked one counted as freed and nothing moved, every run."""
    need_mount("a small NVMe tmpfs")
    small = env.base / "small-nvme"
    mount_tmpfs(small, 10 * 1024)
    try:
        env.nvme = small / "torrents"
        env.nvme.mkdir()
        env.config.seedbox.nvme_root = env.nvme
        env.config.seedbox.free_target_percent = 50.0
        linked, _ = env.torrent("Linked.S01E01.mkv", {"": 3 * MiB})
        library = small / "library"
        library.mkdir()
        os.link(env.nvme / "tv" / "Linked.S01E01.mkv", library / "Linked.S01E01.mkv")
        plain, contents = env.torrent("Plain.S01E02.mkv", {"": 1 * MiB})
        (small / "filler").write_bytes(b"\0" * (2 * MiB))
        env.state(linked, age_s=90_000)
        env.state(plain, age_s=80_000)
        before = {h: _snapshot(env, h) for h in (linked, plain)}

        report = await relocate(env.config)

        after = {h: _snapshot(env, h) for h in (linked, plain)}
        print("before:", before, "\nafter:", after)
        outcomes = {o.infohash: (o.action, o.cause) for o in report.outcomes}
        assert outcomes == {linked: ("deferred", "hardlink"), plain: ("moved", None)}
        assert _norm(after[linked]["save_path"]) == str(env.nvme / "tv")
        assert _norm(after[plain]["save_path"]) == str(env.syno / "tv")
        assert_same_data(env.syno / "tv" / "Plain.S01E02.mkv", contents)
        assert (library / "Linked.S01E01.mkv").stat().st_nlink == 2
    finally:
        umount(small)


def _cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    data = seedbox_config_data(env.base, env.qbit.url, env.nvme, env.syno)
    cfg = write_toml(env.base / "config.toml", data)
    return subprocess.run(
        [sys.executable, "-m", "rush.cli.seedbox", *args, "--config", str(cfg)],
        env=rush_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_deferrals_are_not_failures(env: Env) -> None:
    """A hard-linked and a too-young torrent next to one that moves: `rush seedbox run`
    exits 0, says "deferred", logs no ERROR; the KPIs count them apart, ratio 1.0."""
    linked, _ = env.torrent("Kept.S01E01.mkv", {"": 30_000})
    library = env.base / "library"
    library.mkdir()
    os.link(env.nvme / "tv" / "Kept.S01E01.mkv", library / "Kept.S01E01.mkv")
    young, _ = env.torrent("Young.S01E02.mkv", {"": 30_000})
    mover, _ = env.torrent("Moves.S01E03.mkv", {"": 30_000})
    env.state(linked)
    env.state(young, age_s=60)
    env.state(mover)

    res = await asyncio.to_thread(_cli, env, "run")

    print(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 moved, 0 failed, 2 deferred" in res.stdout
    lines = {line.split()[1]: line for line in res.stdout.splitlines() if len(line.split()) > 2}
    assert lines[linked[:12]].startswith("deferred") and "hard-linked" in lines[linked[:12]]
    assert lines[young[:12]].startswith("deferred") and "too young" in lines[young[:12]]
    log = env.log_text()
    assert "ERROR" not in log and "abandoned" not in log
    stats = await asyncio.to_thread(_cli, env, "stats", "--json")
    kpis = json.loads(stats.stdout)
    assert (kpis["attempts"], kpis["successes"], kpis["deferred"]) == (1, 1, 1)
    assert kpis["success_ratio"] == 1.0
    assert env.save_path(linked) == env.save_path(young) == str(env.nvme / "tv")


def _syno_problem_as(user: str, cfg_data: dict[str, object]) -> list[str]:
    """`fs.syno_problem` run as another user (root may write anywhere: no EACCES)."""
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    code = (
        "import json, sys\n"
        "from rush.config import Config\n"
        "from rush.seedbox.fs import syno_problem\n"
        "cfg = Config.model_validate(json.loads(sys.argv[1])).seedbox\n"
        "print(json.dumps(syno_problem(cfg)))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cfg_data)],
        env=rush_env(),
        capture_output=True,
        text=True,
        timeout=60,
        user=uid,
    )
    assert res.returncode == 0, res.stderr
    return list(json.loads(res.stdout) or [])


def test_share_without_write_rights_is_a_rights_error(tmp_path: Path) -> None:
    need_mount("running a check as another user")
    share = Path(tempfile.mkdtemp(prefix="rush-syno-"))
    nvme = Path(tempfile.mkdtemp(prefix="rush-nvme-"))
    try:
        share.chmod(0o755)  # mounted and readable, not writable for `nobody`
        (share / ".seedbox_syno").write_text("synology\n")
        data = seedbox_config_data(tmp_path, "http://127.0.0.1:1", nvme, share)
        cause, message = _syno_problem_as("nobody", data)
        assert cause == "permissions" and "not writable for this user" in message
    finally:
        shutil.rmtree(share, ignore_errors=True)
        shutil.rmtree(nvme, ignore_errors=True)


async def test_stale_states_are_archived_and_removed_torrents_marked(env: Env) -> None:
    """A .state whose torrent is gone from qBittorrent fails until `stale_after_days`, then
    is archived with a reason; the mapping row of a deleted torrent is marked removed."""
    from rush.models import SeedRelocation
    from rush.seedbox.service import export_mapping

    gone = "e" * 40
    old_state = env.state(gone, age_s=15 * 86400)
    fresh = "d" * 40
    fresh_state = env.state(fresh, age_s=86400)
    relocated, _ = env.torrent("Deleted.S01E01.mkv", {"": 20_000})
    env.state(relocated)
    first = await relocate(env.config)
    assert {o.infohash: o.action for o in first.outcomes}[relocated] == "moved"
    archived = env.config.seedbox.state_dir / "archived"
    assert (archived / old_state.name).exists() and not old_state.exists()
    reason = (archived / f"{old_state.name}.reason").read_text()
    assert "gone from qBittorrent" in reason and "14 days" in reason
    assert fresh_state.exists()
    by = {o.infohash: o for o in first.outcomes}
    assert by[gone].action == "archived" and by[fresh].action == "failed"
    assert await SeedRelocation.filter(infohash=gone).count() == 0  # not an attempt

    client = env.qbit.client()
    client.torrents_delete(delete_files=False, torrent_hashes=relocated)
    wait_for(lambda: not client.torrents_info(torrent_hashes=relocated), 30, "deleted")
    await relocate(env.config)

    row = await SeedMapping.get(infohash=relocated)  # kept, never deleted
    assert row.status == "removed" and row.removed_epoch is not None
    assert relocated not in await export_mapping("tsv")
    assert f"{relocated}\t" in await export_mapping("tsv", include_removed=True)


async def test_disk_full_during_a_live_run_is_noticed_and_pointed_back(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same full disk without a kill: the run itself sees that qBittorrent's data did
    not follow its claimed save path, points it back, and finalises nothing."""
    from integrations.qbittorrent import QbitClient
    from tests.seedbox_kill_driver import fill_until

    need_mount("a small Synology tmpfs")
    small = env.base / "small-syno"
    mount_tmpfs(small, 6 * 1024)
    try:
        syno = small / "torrents"
        syno.mkdir()
        (syno / env.config.seedbox.syno_marker).write_text("synology\n")
        env.config.seedbox.syno_root = syno
        infohash, contents = env.torrent("Live.S01E01.mkv", {"": 4 * MiB})
        state = env.state(infohash)
        real = QbitClient.set_location

        async def fill_then_move(self: QbitClient, h: str, location: str) -> None:
            if location.startswith(str(syno)):
                await asyncio.to_thread(fill_until, small / "filler", MiB)
            await real(self, h, location)

        monkeypatch.setattr(QbitClient, "set_location", fill_then_move)

        report = await relocate(env.config)

        after = _snapshot(env, infohash)
        print("after the live run:", after, [(o.action, o.reason) for o in report.outcomes])
        assert [(o.action, o.cause) for o in report.outcomes] == [("failed", "api")]
        assert _norm(after["save_path"]) == str(env.nvme / "tv")
        assert after["state"] in SEEDING
        assert_same_data(env.nvme / "tv" / "Live.S01E01.mkv", contents)
        assert state.exists() and await SeedMapping.all().count() == 0
    finally:
        umount(small)
