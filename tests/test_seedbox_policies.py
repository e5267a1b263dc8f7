"""What seedbox users expect from qbit_manage and Unraid's Mover Tuning, against a real
qbittorrent-nox: pause → move → resume, decision tags, a free-space trigger inside
`rush serve`, and torrents without a `.state` eligible by category and age."""

from __future__ import annotations

import asyncio
import os

import pytest

from rush.models import SeedMapping
from rush.seedbox.service import relocate
from tests.seedbox_env import (
    SEEDING,
    Env,
    _norm,
    assert_same_data,
    env_fixture,  # noqa: F401  (fixtures, by their names)
    qbit_fixture,  # noqa: F401
    syno_mount_fixture,  # noqa: F401
)
from tests.seedbox_support import wait_for

pytestmark = pytest.mark.slow

PAUSED = {"pausedUP", "stoppedUP"}


def _snapshot(env: Env, infohash: str) -> dict[str, object]:
    info = env.info(infohash)
    return {k: info[k] for k in ("state", "progress", "save_path", "tags")}


def _pause(env: Env, infohash: str) -> None:
    env.qbit.client().torrents_pause(torrent_hashes=infohash)
    wait_for(lambda: env.info(infohash)["state"] in PAUSED, 30, "paused")


async def test_paused_torrent_deferred_by_default_moved_with_pause_move_resume(env: Env) -> None:
    paused, contents = env.torrent("Paused.S01E01.mkv", {"": 60_000})
    active, active_contents = env.torrent("Active.S01E02.mkv", {"": 60_000})
    _pause(env, paused)
    env.state(paused)

    first = await relocate(env.config)

    assert [(o.action, o.cause) for o in first.outcomes] == [("deferred", "paused")]
    assert env.save_path(paused) == str(env.nvme / "tv")

    env.config.seedbox.pause_policy = "pause_move_resume"
    env.state(active)
    before = {h: _snapshot(env, h) for h in (paused, active)}
    second = await relocate(env.config)

    wait_for(lambda: env.info(paused)["state"] in PAUSED, 30, "paused again")
    after = {h: _snapshot(env, h) for h in (paused, active)}
    print("before:", before, "\nafter:", after)
    assert {o.infohash: o.action for o in second.outcomes} == {paused: "moved", active: "moved"}
    assert (
        _norm(after[paused]["save_path"])
        == _norm(after[active]["save_path"])
        == str(env.syno / "tv")
    )
    # Left as its user had it: the paused one paused again, the active one seeding.
    assert after[paused]["state"] in PAUSED and after[paused]["progress"] == 1
    assert after[active]["state"] in SEEDING
    assert_same_data(env.syno / "tv" / "Paused.S01E01.mkv", contents)
    assert_same_data(env.syno / "tv" / "Active.S01E02.mkv", active_contents)


async def test_decision_tags_are_set_and_cleared(env: Env) -> None:
    linked, _ = env.torrent("Tagged.S01E01.mkv", {"": 30_000})
    library = env.base / "library"
    library.mkdir()
    os.link(env.nvme / "tv" / "Tagged.S01E01.mkv", library / "Tagged.S01E01.mkv")
    plain, _ = env.torrent("Tagged.S01E02.mkv", {"": 30_000})
    env.state(linked)
    env.state(plain)

    await relocate(env.config)

    tags = {h: set(str(env.info(h)["tags"]).replace(" ", "").split(",")) for h in (linked, plain)}
    print("tags after the first run:", tags)
    assert "rush:deferred" in tags[linked] and "rush:noHL" not in tags[linked]
    assert {"rush:relocated", "rush:noHL"} <= tags[plain] and "rush:deferred" not in tags[plain]

    (library / "Tagged.S01E01.mkv").unlink()  # the library copy went away: no hard link
    await relocate(env.config)

    after = set(str(env.info(linked)["tags"]).replace(" ", "").split(","))
    print("tags after the second run:", after)
    assert {"rush:relocated", "rush:noHL"} <= after and "rush:deferred" not in after
    assert env.save_path(linked) == str(env.syno / "tv")


async def test_torrents_without_state_eligible_by_category_and_age(env: Env) -> None:
    """Added by hand / Lidarr / a cross-seed tool: no .state.  Ignored by default; with
    require_state = false they move when their category is eligible and they are old
    enough (counted from qBittorrent's "added on")."""
    tv, contents = env.torrent("Hand.S01E01.mkv", {"": 40_000})
    music, _ = env.torrent("Album", {"01.flac": 10_000}, "music", "music")

    default = await relocate(env.config)
    assert default.outcomes == [] and env.save_path(tv) == str(env.nvme / "tv")

    env.config.seedbox.require_state = False
    young = await relocate(env.config)  # min_age_sec is one hour: added seconds ago
    assert [(o.infohash, o.action, o.cause) for o in young.outcomes] == [
        (tv, "deferred", "too_young")
    ]

    env.config.seedbox.min_age_sec = 0
    report = await relocate(env.config)

    assert [(o.infohash, o.action) for o in report.outcomes] == [(tv, "moved")]
    assert env.save_path(tv) == str(env.syno / "tv")
    assert env.save_path(music) == str(env.nvme / "music")
    assert_same_data(env.syno / "tv" / "Hand.S01E01.mkv", contents)
    assert (await SeedMapping.get(infohash=tv)).path_syno == str(env.syno / "tv")


async def test_free_space_trigger_starts_a_run_under_the_threshold(env: Env) -> None:
    """`rush serve`'s watcher reads the NVMe's real free space; under the threshold it
    starts a run (once per cooldown); over it, none."""
    from actors.seed_relocator import SeedSpaceWatch, free_percent

    infohash, _ = env.torrent("Trigger.S01E01.mkv", {"": 30_000})
    env.state(infohash)
    sb = env.config.seedbox
    free = free_percent(sb.nvme_root)
    assert free is not None and 0 < free < 100
    ticks = [0.0]

    async def run_checks(threshold: float, checks: int) -> SeedSpaceWatch:
        sb.trigger_free_percent = threshold
        sb.trigger_cooldown_s = 100.0
        done = [0]

        async def fake_sleep(_seconds: float) -> None:
            if done[0] == checks:
                raise asyncio.CancelledError
            done[0] += 1
            ticks[0] += 10.0  # each check 10 "seconds" later: all within the cooldown

        watch = SeedSpaceWatch(env.config, sleep=fake_sleep, monotonic=lambda: ticks[0])
        with pytest.raises(asyncio.CancelledError):
            await watch.run()
        return watch

    over = await run_checks(max(free - 1, 0.0), 3)  # more free space than the threshold
    assert over.triggered == 0 and env.save_path(infohash) == str(env.nvme / "tv")

    under = await run_checks(min(free + 1, 100.0), 3)
    assert under.triggered == 1  # three checks under the threshold, one run (cooldown)
    assert env.save_path(infohash) == str(env.syno / "tv")
