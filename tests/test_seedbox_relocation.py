"""The relocator against a real qbittorrent-nox: the seed's checklist C-01…C-04 and the
failure paths (Synology off, qBittorrent down or refusing, hard links, conflicts).

"NVMe" is a folder under the test's tmp dir; "Synology" is a tmpfs mounted for the module
when the tests run as root (a real cross-filesystem move), else a plain folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rush.models import SeedMapping, SeedRelocation
from rush.seedbox.service import export_mapping, relocate
from tests.seedbox_env import (
    SEEDING,
    Env,
    _mount_read_only_tmpfs,
    _norm,
    _umount,
    env_fixture,  # noqa: F401  (fixtures, by their names)
    qbit_fixture,  # noqa: F401
    syno_mount_fixture,  # noqa: F401
)
from tests.seedbox_env import assert_same_data as _assert_same_data
from tests.seedbox_support import free_port, wait_for
from tests.support.environment import unavailable

pytestmark = pytest.mark.slow


async def test_c01_valid_state_relocates_and_seeds_from_synology(env: Env) -> None:
    infohash, contents = env.torrent("Show.S01E01.mkv", {"": 300_000})
    multi, multi_contents = env.torrent(
        "Film (2020)", {"film.mkv": 200_000, "subs/film.srt": 3_000}, "movies", "movies"
    )
    env.state(infohash)
    env.state(multi, source="radarr")
    bt_backup = env.qbit.profile / "qBittorrent" / "data" / "BT_backup"
    env.config.seedbox.qbittorrent.bt_backup_dir = bt_backup

    report = await relocate(env.config)

    assert {o.infohash: o.action for o in report.outcomes} == {infohash: "moved", multi: "moved"}
    for h, sub, name, data in (
        (infohash, "tv", "Show.S01E01.mkv", contents),
        (multi, "movies", "Film (2020)", multi_contents),
    ):
        info = env.info(h)
        assert _norm(info["save_path"]) == str(env.syno / sub)
        assert info["state"] in SEEDING and info["progress"] == 1
        _assert_same_data(env.syno / sub / name, data)
        assert not (env.nvme / sub / name).exists()  # qBittorrent moved it, not copied
        row = await SeedMapping.get(infohash=h)
        assert (row.path_nvme, row.path_syno) == (str(env.nvme / sub), str(env.syno / sub))
        assert abs(row.last_update_epoch - time.time()) < 600
        assert (env.config.seedbox.backup_dir / f"{h}.torrent").read_bytes().startswith(b"d")
        resume = (env.config.seedbox.backup_dir / f"{h}.fastresume").read_bytes()
        assert resume.startswith(b"d") and b"libtorrent" in resume
    assert list(env.config.seedbox.state_dir.glob("*.state")) == []
    attempts = await SeedRelocation.all()
    assert [a.ok for a in attempts] == [True, True]
    assert all(a.bytes_moved > 0 for a in attempts)
    assert "relocated Show.S01E01.mkv" in env.log_text()


async def test_c02_min_age_not_reached_nothing_moves(env: Env) -> None:
    infohash, _ = env.torrent("Young.S01E01.mkv", {"": 50_000})
    state = env.state(infohash, age_s=60)

    report = await relocate(env.config)

    [outcome] = report.outcomes
    assert outcome.action == "deferred" and "too young" in outcome.reason
    assert outcome.cause == "too_young"
    assert env.save_path(infohash) == str(env.nvme / "tv")
    assert (env.nvme / "tv" / "Young.S01E01.mkv").is_file()
    assert state.exists()
    assert await SeedMapping.all().count() == 0
    assert list(env.syno.iterdir()) == [env.syno / env.config.seedbox.syno_marker]


@pytest.mark.parametrize("how", ["missing_dir", "no_marker", "read_only"])
async def test_c03_synology_unavailable_warns_and_moves_nothing(env: Env, how: str) -> None:
    infohash, contents = env.torrent(f"Off.{how}.mkv", {"": 40_000})
    state = env.state(infohash)
    sb = env.config.seedbox
    if how == "missing_dir":
        sb.syno_root = env.base / "not-mounted" / "torrents"
    elif how == "no_marker":
        (env.syno / sb.syno_marker).unlink()
    else:
        if not _mount_read_only_tmpfs(env.base / "ro", sb.syno_marker):
            unavailable("a read-only tmpfs needs root and mount")
        sb.syno_root = env.base / "ro"
    try:
        report = await relocate(env.config)
    finally:
        if how == "read_only":
            _umount(env.base / "ro")

    assert report.syno_problem
    assert [(o.action, o.cause) for o in report.outcomes] == [("deferred", "unavailable")]
    log = env.log_text()
    assert "WARNING" in log and "Synology unavailable" in log
    info = env.info(infohash)
    assert _norm(info["save_path"]) == str(env.nvme / "tv")
    assert info["state"] in SEEDING
    _assert_same_data(env.nvme / "tv" / f"Off.{how}.mkv", contents)
    assert state.exists()
    [attempt] = await SeedRelocation.all()
    assert (attempt.ok, attempt.error_cause) == (False, "unavailable")


async def test_c04_mapping_matches_qbittorrent_after_several_with_upgrades(env: Env) -> None:
    a, _ = env.torrent("A.S01E01.mkv", {"": 20_000})
    pack, _ = env.torrent("B.S02", {"e01.mkv": 20_000, "e02.mkv": 20_000})
    upgrade, _ = env.torrent("A.S01E01.PROPER.mkv", {"": 25_000})
    film, _ = env.torrent("C (2021)", {"c.mkv": 30_000}, "movies", "movies")
    music, _ = env.torrent("Album", {"01.flac": 10_000}, "music", "music")
    env.state(a, age_s=90_000)
    env.state(pack, age_s=80_000)  # a season pack: one .state per imported episode
    env.state(pack, age_s=79_000, imported_paths=["/media/tv/B/e02.mkv"])
    env.state(upgrade, kind="upgrade", age_s=70_000)
    env.state(film, age_s=60_000, source="radarr", category="movies")
    env.state(music, age_s=50_000)

    report = await relocate(env.config)

    assert "was an upgrade replacing /media/tv/old.mkv" in env.log_text()
    actions = {o.infohash: o.action for o in report.outcomes}
    assert actions == {a: "moved", pack: "moved", upgrade: "moved", film: "moved", music: "kept"}
    rows = {r.infohash: r for r in await SeedMapping.all()}
    assert set(rows) == {a, pack, upgrade, film}
    for h, row in rows.items():
        info = env.info(h)
        assert _norm(info["save_path"]) == row.path_syno
        assert row.path_syno.startswith(str(env.syno))
        assert row.path_nvme.startswith(str(env.nvme))
        assert Path(row.path_syno).relative_to(env.syno) == Path(row.path_nvme).relative_to(
            env.nvme
        )
    assert env.save_path(music) == str(env.nvme / "music")
    remaining = list(env.config.seedbox.state_dir.glob("*.state"))
    assert len(remaining) == 1 and music in remaining[0].name
    lines = (await export_mapping("tsv")).splitlines()
    assert lines[0] == "infohash\tpath_nvme\tpath_syno\tlast_update_epoch"
    exported = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert {h: (v[1], v[2]) for h, v in exported.items()} == {
        h: (r.path_nvme, r.path_syno) for h, r in rows.items()
    }

    # A second run has nothing left to do and changes nothing.
    again = await relocate(env.config)
    assert [o.action for o in again.outcomes] == ["kept"]
    assert {r.infohash: r.path_syno for r in await SeedMapping.all()} == {
        h: r.path_syno for h, r in rows.items()
    }


async def test_dry_run_lists_and_moves_nothing(env: Env) -> None:
    old, _ = env.torrent("Old.mkv", {"": 10_000})
    young, _ = env.torrent("Young.mkv", {"": 10_000})
    clash, _ = env.torrent("Clash.mkv", {"": 10_000})
    (env.syno / "tv").mkdir()
    (env.syno / "tv" / "Clash.mkv").write_bytes(b"x")
    env.state(old)
    env.state(young, age_s=5)
    env.state(clash)

    report = await relocate(env.config, dry_run=True)

    by_hash = {o.infohash: o for o in report.outcomes}
    assert by_hash[clash].action == "kept" and "would refuse" in by_hash[clash].reason
    assert by_hash[old].action == "would_move" and str(env.syno / "tv") in by_hash[old].reason
    assert by_hash[young].action == "deferred" and "too young" in by_hash[young].reason
    assert env.save_path(old) == str(env.nvme / "tv")
    assert len(list(env.config.seedbox.state_dir.glob("*.state"))) == 3
    assert await SeedRelocation.all().count() == 0


@pytest.mark.parametrize("how", ["down", "bad_password"])
async def test_qbittorrent_failure_retries_then_abandons_seed_intact(env: Env, how: str) -> None:
    infohash, contents = env.torrent(f"Api.{how}.mkv", {"": 30_000})
    state = env.state(infohash)
    qb = env.config.seedbox.qbittorrent
    if how == "down":
        qb.url = f"http://127.0.0.1:{free_port()}"
    else:
        qb.password = "wrong"  # type: ignore[assignment]

    other, _ = env.torrent(f"Api2.{how}.mkv", {"": 30_000})
    env.state(other, age_s=7000)

    report = await relocate(env.config)

    outcome = report.outcomes[0]
    assert outcome.action == "failed"
    assert outcome.cause == ("network" if how == "down" else "api")
    log = env.log_text()
    for attempt in (1, 2, 3):
        assert f"(attempt {attempt}/3" in log
    assert "giving up" in log
    if how == "down":
        # Said plainly, with what to check, without urllib3's nested exceptions.
        assert f"qBittorrent unreachable at {qb.url} (connection refused)" in outcome.reason
        assert "MaxRetryError" not in outcome.reason
        # An unreachable qBittorrent is not hammered once per torrent.
        assert log.count("(attempt 1/3") == 1
        assert [(o.action, o.reason) for o in report.outcomes[1:]] == [
            ("kept", "qBittorrent unreachable; next run")
        ]
    else:
        assert [o.action for o in report.outcomes] == ["failed", "failed"]
    assert state.exists()
    info = env.info(infohash)
    assert _norm(info["save_path"]) == str(env.nvme / "tv")
    assert info["state"] in SEEDING
    _assert_same_data(env.nvme / "tv" / f"Api.{how}.mkv", contents)
    rows = await SeedRelocation.all()
    assert [r.error_cause for r in rows] == [outcome.cause] * (1 if how == "down" else 2)


async def test_hardlinked_torrent_kept_unless_allowed(env: Env) -> None:
    infohash, contents = env.torrent("Linked.S01E01.mkv", {"": 30_000})
    library = env.base / "library"
    library.mkdir()
    os.link(env.nvme / "tv" / "Linked.S01E01.mkv", library / "Linked.S01E01.mkv")
    env.state(infohash)

    first = await relocate(env.config)
    assert [(o.action, o.cause) for o in first.outcomes] == [("deferred", "hardlink")]
    assert "hard-linked" in env.log_text()
    assert env.save_path(infohash) == str(env.nvme / "tv")
    assert (env.nvme / "tv" / "Linked.S01E01.mkv").stat().st_nlink == 2

    env.config.seedbox.allow_break_hardlinks = True
    second = await relocate(env.config)
    assert [o.action for o in second.outcomes] == ["moved"]
    assert "link broken" in env.log_text()
    _assert_same_data(env.syno / "tv" / "Linked.S01E01.mkv", contents)
    assert (library / "Linked.S01E01.mkv").read_bytes() == contents[""]


async def test_existing_files_at_destination_refused(env: Env) -> None:
    infohash, contents = env.torrent("Clash.mkv", {"": 20_000})
    (env.syno / "tv").mkdir()
    (env.syno / "tv" / "Clash.mkv").write_bytes(b"someone else's file")
    state = env.state(infohash)

    report = await relocate(env.config)

    assert [(o.action, o.cause) for o in report.outcomes] == [("failed", "conflict")]
    assert (env.syno / "tv" / "Clash.mkv").read_bytes() == b"someone else's file"
    assert env.save_path(infohash) == str(env.nvme / "tv")
    _assert_same_data(env.nvme / "tv" / "Clash.mkv", contents)
    assert state.exists()


async def test_malformed_state_skipped_others_processed(env: Env) -> None:
    infohash, _ = env.torrent("Good.mkv", {"": 20_000})
    env.state(infohash)
    state_dir = env.config.seedbox.state_dir
    (state_dir / "0-broken.state").write_text('{"schema": "rush.seedbox.state", "version": 1')
    (state_dir / "1-wrong.state").write_text(
        '{"schema": "rush.seedbox.state", "version": 1, "kind": "added", "infohash": "xyz"}'
    )

    report = await relocate(env.config)

    assert [o.action for o in report.outcomes] == ["moved"]
    assert sorted(Path(i["path"]).name for i in report.invalid_states) == [
        "0-broken.state",
        "1-wrong.state",
    ]
    assert sorted(p.name for p in (state_dir / "invalid").iterdir()) == [
        "0-broken.state",
        "1-wrong.state",
    ]
    log = env.log_text()
    assert "ERROR" in log and "invalid .state" in log and "infohash" in log


async def test_move_failing_inside_qbittorrent_leaves_seed_on_nvme(env: Env) -> None:
    """The share root is writable but the category folder is read-only: qBittorrent's own
    move fails; the relocator notices, abandons, and the torrent still seeds from NVMe."""
    infohash, contents = env.torrent("Stuck.mkv", {"": 20_000})
    state = env.state(infohash)
    if not _mount_read_only_tmpfs(env.syno / "tv", "unused"):
        unavailable("a read-only tmpfs needs root and mount")
    try:
        report = await relocate(env.config)
    finally:
        _umount(env.syno / "tv")

    [outcome] = report.outcomes
    assert (outcome.action, outcome.cause) == ("failed", "api")
    assert "move failed" in outcome.reason
    # qBittorrent 4.5 then claims the new path: the relocator points it back.
    assert "back at its complete NVMe copy" in env.log_text()
    assert "seeds again from its NVMe copy" in env.log_text()
    info = env.info(infohash)
    assert _norm(info["save_path"]) == str(env.nvme / "tv")
    assert info["state"] in SEEDING
    _assert_same_data(env.nvme / "tv" / "Stuck.mkv", contents)
    assert state.exists() and await SeedMapping.all().count() == 0


async def test_not_enough_room_on_synology_refused(env: Env) -> None:
    infohash, contents = env.torrent("Big.mkv", {"": 20_000})
    state = env.state(infohash)
    env.config.seedbox.syno_reserve_gb = 100_000.0  # more than any disk here

    report = await relocate(env.config)

    [outcome] = report.outcomes
    assert (outcome.action, outcome.cause) == ("failed", "space")
    assert env.save_path(infohash) == str(env.nvme / "tv")
    _assert_same_data(env.nvme / "tv" / "Big.mkv", contents)
    assert state.exists()


async def test_unknown_torrent_fails_and_keeps_state(env: Env) -> None:
    state = env.state("f" * 40)

    report = await relocate(env.config)

    assert [(o.action, o.cause) for o in report.outcomes] == [("failed", "other")]
    assert "not found in qBittorrent" in report.outcomes[0].reason
    assert state.exists()


async def test_interrupted_run_is_finished_idempotently(env: Env) -> None:
    """The move happened but the run died before the bookkeeping: the next run sees the
    torrent seeding from the Synology and only writes the mapping and removes the state."""
    infohash, contents = env.torrent("Crash.mkv", {"": 20_000})
    state = env.state(infohash)
    client = env.qbit.client()
    client.torrents_set_location(location=str(env.syno / "tv"), torrent_hashes=infohash)
    wait_for(
        lambda: (
            (env.syno / "tv" / "Crash.mkv").is_file() and env.info(infohash)["state"] in SEEDING
        ),
        30,
        "manual move",
    )

    report = await relocate(env.config)

    assert [o.action for o in report.outcomes] == ["finalised"]
    # No journaled recheck there: this run rechecked it before finalising.
    assert "rechecking before anything is finalised" in env.log_text()
    row = await SeedMapping.get(infohash=infohash)
    assert (row.path_nvme, row.path_syno) == (str(env.nvme / "tv"), str(env.syno / "tv"))
    assert not state.exists()
    _assert_same_data(env.syno / "tv" / "Crash.mkv", contents)


async def test_stale_synology_path_after_silent_failure_is_repaired(env: Env) -> None:
    """qBittorrent claims the Synology path although its move failed (data still on the
    NVMe), e.g. after a run was interrupted: the next run must not record a mapping to
    missing files; it points qBittorrent back, and the run after relocates for real."""
    infohash, contents = env.torrent("Ghost.mkv", {"": 20_000})
    if not _mount_read_only_tmpfs(env.syno / "tv", "unused"):
        unavailable("a read-only tmpfs needs root and mount")
    try:
        env.qbit.client().torrents_set_location(
            location=str(env.syno / "tv"), torrent_hashes=infohash
        )
        wait_for(lambda: env.save_path(infohash) == str(env.syno / "tv"), 30, "claimed path")
    finally:
        _umount(env.syno / "tv")
    state = env.state(infohash)

    first = await relocate(env.config)

    assert [(o.action, o.cause) for o in first.outcomes] == [("failed", "api")]
    assert await SeedMapping.all().count() == 0 and state.exists()
    assert env.save_path(infohash) == str(env.nvme / "tv")
    assert env.info(infohash)["state"] in SEEDING

    second = await relocate(env.config)

    assert [o.action for o in second.outcomes] == ["moved"]
    _assert_same_data(env.syno / "tv" / "Ghost.mkv", contents)
    row = await SeedMapping.get(infohash=infohash)
    assert row.path_syno == env.save_path(infohash) == str(env.syno / "tv")


async def test_restore_prefers_the_complete_nvme_copy_over_a_damaged_one(env: Env) -> None:
    """A failed move that left a full-size but damaged copy on the Synology (its recheck
    found pieces missing) while the NVMe copy is intact: the seed goes back to the NVMe
    copy, never stays on the damaged one."""
    from integrations.qbittorrent import QbitClient
    from rush.seedbox.relocator import Relocator

    infohash, contents = env.torrent("Damaged.mkv", {"": 200_000})
    src, dest = env.nvme / "tv", env.syno / "tv"
    dest.mkdir()
    damaged = bytearray(contents[""])
    damaged[100_000:100_100] = b"\0" * 100
    (dest / "Damaged.mkv").write_bytes(bytes(damaged))
    client = env.qbit.client()
    torrent_file = client.torrents_export(torrent_hash=infohash)
    client.torrents_delete(delete_files=False, torrent_hashes=infohash)
    wait_for(lambda: not client.torrents_info(torrent_hashes=infohash), 30, "removed")
    client.torrents_add(
        torrent_files=torrent_file,
        save_path=str(dest),
        category="tv",
        use_auto_torrent_management=False,
    )
    wait_for(
        lambda: (
            (i := client.torrents_info(torrent_hashes=infohash))
            and i[0]["state"] not in ("checkingUP", "checkingDL", "checkingResumeData", "metaDL")
            and float(i[0]["progress"]) < 1.0
        ),
        30,
        "checked as incomplete",
    )
    qbit = QbitClient(env.config.seedbox.qbittorrent)
    try:
        view = await qbit.torrent(infohash)
        assert view is not None and view.progress < 1.0
        await Relocator(env.config.seedbox, qbit)._restore(view, src, dest)
    finally:
        await qbit.close()

    info = env.info(infohash)
    assert _norm(info["save_path"]) == str(src)
    assert info["state"] in SEEDING and float(info["progress"]) == 1.0  # type: ignore[arg-type]
    _assert_same_data(src / "Damaged.mkv", contents)
