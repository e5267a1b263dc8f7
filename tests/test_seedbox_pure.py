"""Seedbox pure logic: the `.state` contract, Sonarr/Radarr environments, eligibility rules,
the daily schedule.  No service needed."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from actors.seed_relocator import next_run
from rush.seedbox.arr import ArrEnvError, ArrIgnored, ArrTest, parse_arr_env
from rush.seedbox.rules import GB, Candidate, DiskUsage, Rules, plan, target_free_bytes, to_move
from rush.seedbox.state import (
    SeedState,
    StateError,
    parse_state,
    read_state_dir,
    write_state,
)

H = "ABCDEF0123456789ABCDEF0123456789ABCDEF01"
h = H.lower()
NOW = 1_800_000_000


def _doc(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "schema": "rush.seedbox.state",
        "version": 1,
        "kind": "added",
        "infohash": H,
        "category": "tv",
        "added_epoch": NOW,
        "source": "sonarr",
        "title": "Show",
        "download_client": "qBittorrent",
        "imported_paths": ["/media/tv/Show/S01E01.mkv"],
        "source_paths": ["/mnt/nvme/torrents/tv/Show.S01E01.mkv"],
        "old_paths": [],
        "new_paths": [],
    }
    doc.update(over)
    return doc


# -- the .state contract -------------------------------------------------------------------


def test_state_roundtrip_normalises_hash() -> None:
    state = parse_state(json.dumps(_doc()))
    assert state.infohash == h
    assert parse_state(state.to_json()) == state
    assert json.loads(state.to_json())["schema"] == "rush.seedbox.state"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps(_doc(schema="other")), "schema must be"),
        (json.dumps(_doc(version=2)), "unsupported version 2"),
        (json.dumps(_doc(infohash="xyz")), "infohash"),
        (json.dumps(_doc(kind="deleted")), "kind"),
        (json.dumps(_doc(kind="upgrade")), "an upgrade needs old_paths and new_paths"),
        (json.dumps(_doc(old_paths=["/a"])), "only for kind 'upgrade'"),
        (json.dumps(_doc(imported_paths=[])), "imported_paths"),
        (json.dumps(_doc(imported_paths=["relative.mkv"])), "paths must be absolute"),
        (json.dumps(_doc(surprise=1)), "surprise: unknown field"),
        (json.dumps({k: v for k, v in _doc().items() if k != "added_epoch"}), "added_epoch"),
    ],
)
def test_state_errors_are_clear(doc: str, message: str) -> None:
    with pytest.raises(StateError, match=message):
        parse_state(doc)


def test_upgrade_state_valid() -> None:
    state = parse_state(
        json.dumps(_doc(kind="upgrade", old_paths=["/media/a.avi"], new_paths=["/media/a.mkv"]))
    )
    assert (state.kind, state.old_paths, state.new_paths) == (
        "upgrade",
        ["/media/a.avi"],
        ["/media/a.mkv"],
    )


def test_write_state_atomic_and_readable(tmp_path: Path) -> None:
    state = parse_state(json.dumps(_doc()))
    first = write_state(tmp_path / "state", state)
    second = write_state(tmp_path / "state", state)  # a second import of the same torrent
    assert first != second and first.suffix == second.suffix == ".state"
    (tmp_path / "state" / ".half.state.tmp").write_text("{")  # a writer's temp: ignored
    (tmp_path / "state" / "notes.txt").write_text("hi")
    entries = read_state_dir(tmp_path / "state")
    assert [e.path for e in entries] == sorted([first, second])
    assert all(e.state == state for e in entries)
    assert not list((tmp_path / "state").glob(".*.tmp.*"))
    assert read_state_dir(tmp_path / "missing") == []


def test_read_state_dir_reports_bad_files(tmp_path: Path) -> None:
    (tmp_path / "a.state").write_text("{nope")
    write_state(tmp_path, SeedState.model_validate(_doc()))
    entries = read_state_dir(tmp_path)
    bad = [e for e in entries if e.state is None]
    assert len(entries) == 2 and len(bad) == 1
    assert bad[0].path.name == "a.state" and "not JSON" in (bad[0].error or "")


# -- Sonarr / Radarr environments ----------------------------------------------------------


def _sonarr(**over: str) -> dict[str, str]:
    env = {
        "sonarr_eventtype": "Download",
        "sonarr_download_id": H,
        "sonarr_isupgrade": "False",
        "sonarr_episodefile_path": "/media/tv/Show/Season 1/Show - S01E01.mkv",
        "sonarr_episodefile_sourcepath": "/mnt/nvme/torrents/tv/Show.S01E01/Show.S01E01.mkv",
        "sonarr_deletedpaths": "",
        "sonarr_download_client": "qBittorrent",
        "sonarr_series_title": "Show",
        "PATH": "/usr/bin",
    }
    env.update(over)
    return env


def _radarr(**over: str) -> dict[str, str]:
    env = {
        "radarr_eventtype": "Download",
        "radarr_download_id": H,
        "radarr_isupgrade": "False",
        "radarr_moviefile_path": "/media/movies/Film (2020)/Film.mkv",
        "radarr_moviefile_sourcepath": "/mnt/nvme/torrents/movies/Film.2020/Film.mkv",
        "radarr_deletedpaths": "",
        "radarr_download_client": "qbit",
        "radarr_movie_title": "Film",
    }
    env.update(over)
    return env


def test_sonarr_download_added() -> None:
    state = parse_arr_env(_sonarr(), NOW, {"sonarr": "tv"})
    assert isinstance(state, SeedState)
    assert (state.kind, state.infohash, state.category, state.source) == (
        "added",
        h,
        "tv",
        "sonarr",
    )
    assert state.added_epoch == NOW and state.title == "Show"
    assert state.imported_paths == ["/media/tv/Show/Season 1/Show - S01E01.mkv"]
    assert state.source_paths == ["/mnt/nvme/torrents/tv/Show.S01E01/Show.S01E01.mkv"]
    assert state.old_paths == state.new_paths == []


def test_radarr_upgrade_with_deleted_paths() -> None:
    env = _radarr(
        radarr_isupgrade="True",
        radarr_deletedpaths="/media/movies/Film (2020)/Film.avi|/media/movies/Film (2020)/Film.srt",
    )
    state = parse_arr_env(env, NOW)
    assert isinstance(state, SeedState)
    assert (state.kind, state.source, state.category) == ("upgrade", "radarr", "")
    assert state.old_paths == [
        "/media/movies/Film (2020)/Film.avi",
        "/media/movies/Film (2020)/Film.srt",
    ]
    assert state.new_paths == ["/media/movies/Film (2020)/Film.mkv"]


def test_test_event_and_ignored_events() -> None:
    assert parse_arr_env({"sonarr_eventtype": "Test"}, NOW) == ArrTest("sonarr")
    assert parse_arr_env({"radarr_eventtype": "Test"}, NOW) == ArrTest("radarr")
    assert parse_arr_env({"sonarr_eventtype": "Grab"}, NOW) == ArrIgnored("sonarr", "Grab")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PATH": "/usr/bin"}, "neither sonarr_eventtype nor radarr_eventtype"),
        ({"sonarr_eventtype": ""}, "sonarr_eventtype is missing"),
        (_sonarr(sonarr_download_id=""), "sonarr_download_id is missing"),
        (_sonarr(sonarr_download_id="SABnzbd_nzo_abc"), "not a torrent infohash"),
        (_sonarr(sonarr_episodefile_path=""), "sonarr_episodefile_path is missing"),
        ({k: v for k, v in _sonarr().items() if k != "sonarr_isupgrade"}, "isupgrade is missing"),
        (_sonarr(sonarr_isupgrade="maybe"), "must be True or False"),
        (_sonarr(sonarr_isupgrade="True"), "deletedpaths is empty"),
        (_radarr(radarr_moviefile_path="relative/Film.mkv"), "paths must be absolute"),
    ],
)
def test_bad_environments_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ArrEnvError, match=message):
        parse_arr_env(env, NOW)


# -- eligibility rules -----------------------------------------------------------------------


def _rules(**over: object) -> Rules:
    base: dict[str, object] = {
        "min_age_sec": 7 * 86400,
        "categories": ("tv", "movies"),
        "free_target_percent": 20.0,
        "free_target_gb": None,
        "space_policy": "until_target",
    }
    base.update(over)
    return Rules(**base)  # type: ignore[arg-type]


def _cand(name: str, age_days: float, size_gb: float = 10, category: str = "tv") -> Candidate:
    return Candidate(name, category, int(NOW - age_days * 86400), int(size_gb * GB), name)


def test_young_and_wrong_category_are_kept_with_reasons() -> None:
    disk = DiskUsage(total=1000 * GB, free=10 * GB)
    decisions = plan(
        [_cand("young", 1), _cand("music", 30, category="music"), _cand("old", 8)],
        NOW,
        _rules(),
        disk,
    )
    by = {d.candidate.infohash: d for d in decisions}
    assert not by["young"].move and "too young" in by["young"].reason
    assert not by["music"].move and "category 'music'" in by["music"].reason
    assert by["old"].move


def test_min_age_boundary() -> None:
    disk = DiskUsage(total=100 * GB, free=0)
    exact = Candidate("x", "tv", NOW - 100, 1, "x")
    almost = Candidate("y", "tv", NOW - 99, 1, "y")
    moved = to_move(plan([exact, almost], NOW, _rules(min_age_sec=100), disk))
    assert [c.infohash for c in moved] == ["x"]


def test_oldest_first_until_target_reached() -> None:
    disk = DiskUsage(total=1000 * GB, free=150 * GB)  # target 20 % = 200 GB: 50 GB short
    cands = [_cand("c", 10, 30), _cand("a", 30, 30), _cand("b", 20, 30), _cand("d", 9, 30)]
    decisions = plan(cands, NOW, _rules(), disk)
    assert [c.infohash for c in to_move(decisions)] == ["a", "b"]  # 150+30+30 >= 200
    kept = [d for d in decisions if not d.move]
    assert {d.candidate.infohash for d in kept} == {"c", "d"}
    assert all("target met" in d.reason for d in kept)


def test_target_already_met_nothing_moves_unless_all_eligible() -> None:
    disk = DiskUsage(total=1000 * GB, free=500 * GB)
    cands = [_cand("a", 30), _cand("b", 20)]
    assert to_move(plan(cands, NOW, _rules(), disk)) == []
    moved = to_move(plan(cands, NOW, _rules(space_policy="all_eligible"), disk))
    assert [c.infohash for c in moved] == ["a", "b"]


def test_target_in_gb_and_the_larger_target_wins() -> None:
    disk = DiskUsage(total=1000 * GB, free=250 * GB)
    assert target_free_bytes(_rules(free_target_percent=None, free_target_gb=300), disk) == 300 * GB
    assert target_free_bytes(_rules(free_target_percent=20.0, free_target_gb=300), disk) == 300 * GB
    assert target_free_bytes(_rules(free_target_percent=50.0, free_target_gb=300), disk) == 500 * GB
    assert target_free_bytes(_rules(free_target_percent=None), disk) == 0
    moved = to_move(plan([_cand("a", 30, 40)], NOW, _rules(free_target_gb=300), disk))
    assert [c.infohash for c in moved] == ["a"]


def test_empty_category_list_means_every_category() -> None:
    disk = DiskUsage(total=100 * GB, free=0)
    moved = to_move(plan([_cand("m", 30, 1, "music")], NOW, _rules(categories=()), disk))
    assert [c.infohash for c in moved] == ["m"]


# -- daily schedule ---------------------------------------------------------------------------


def test_next_run_today_or_tomorrow() -> None:
    tz = timezone(timedelta(hours=2))
    at = time(4, 30)
    assert next_run(datetime(2026, 3, 1, 1, 0, tzinfo=tz), at) == datetime(
        2026, 3, 1, 4, 30, tzinfo=tz
    )
    assert next_run(datetime(2026, 3, 1, 4, 30, tzinfo=tz), at) == datetime(
        2026, 3, 2, 4, 30, tzinfo=tz
    )
    assert next_run(datetime(2026, 3, 1, 23, 0, tzinfo=tz), at) == datetime(
        2026, 3, 2, 4, 30, tzinfo=tz
    )


@pytest.mark.parametrize(
    ("nvme", "syno"),
    [("/mnt/t", "/mnt/t"), ("/mnt/nvme", "/mnt/nvme/syno"), ("/mnt/syno/nvme", "/mnt/syno")],
)
def test_config_refuses_nested_roots(nvme: str, syno: str) -> None:
    from rush.config import Config

    with pytest.raises(ValueError, match="non-nested"):
        Config.model_validate({"seedbox": {"nvme_root": nvme, "syno_root": syno}})


def test_inspect_files_flags_escaping_names(tmp_path: Path) -> None:
    from rush.seedbox.fs import inspect_files

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ok.mkv").write_bytes(b"12345")
    check = inspect_files(tmp_path / "src", tmp_path / "dst", ["ok.mkv", "../x", "/etc/passwd"])
    assert check.unsafe == ["../x", "/etc/passwd"]
    assert check.total_bytes == 5 and check.missing == [] and check.conflicts == []


def test_hard_linked_is_deferred_and_frees_nothing_even_when_allowed() -> None:
    disk = DiskUsage(total=1000 * GB, free=150 * GB)  # target 200 GB: 50 GB short
    linked = Candidate("linked", "tv", int(NOW - 40 * 86400), 60 * GB, "linked", 0, True)
    cands = [linked, _cand("a", 30, 30), _cand("b", 20, 30), _cand("c", 10, 30)]
    decisions = {d.candidate.infohash: d for d in plan(cands, NOW, _rules(), disk)}
    assert (decisions["linked"].move, decisions["linked"].deferral) == (False, "hardlink")
    assert [h for h in ("a", "b", "c") if decisions[h].move] == ["a", "b"]
    # Allowed to break the link, it moves, but the data stays on the NVMe: 0 bytes freed.
    allowed = plan(cands, NOW, _rules(allow_break_hardlinks=True), disk)
    assert [c.infohash for c in to_move(allowed)] == ["linked", "a", "b"]


def test_too_young_is_a_deferral() -> None:
    [d] = plan([_cand("young", 1)], NOW, _rules(), DiskUsage(total=100 * GB, free=0))
    assert (d.move, d.deferral) == (False, "too_young")


def test_cross_seed_groups_share_files_transitively() -> None:
    from rush.seedbox.groups import cross_seed_groups

    torrents = {
        "a": ("/n/tv", [("Show/e1.mkv", 10), ("Show/e2.mkv", 20)]),
        "b": ("/n/tv/", [("Show/e1.mkv", 10)]),  # same folder, another spelling
        "c": ("/n/tv", [("Show/e2.mkv", 20), ("Show/extra.nfo", 1)]),
        "d": ("/n/movies", [("Show/e1.mkv", 10)]),  # another save path: other files
        "e": ("/n/tv", [("Other.mkv", 5)]),
    }
    groups = cross_seed_groups(torrents, ["c", "e", "a"])
    assert set(groups) == {"c", "e"}  # a is in c's group
    assert groups["c"].members == ("c", "a", "b")
    assert groups["c"].size == 31 and groups["c"].mismatched == ()
    assert groups["e"].members == ("e",)
    clash = cross_seed_groups({"a": ("/n", [("x", 1)]), "b": ("/n", [("x", 2)])}, ["a"])
    assert clash["a"].mismatched == ("x",)


def test_tag_changes_follow_the_outcomes_with_the_configured_prefix() -> None:
    from rush.seedbox.report import Outcome
    from rush.seedbox.tags import tag_changes

    outcomes = [
        Outcome("m", "m", "moved", ""),
        Outcome("d", "d", "deferred", "", cause="hardlink"),
        Outcome("k", "k", "kept", ""),
    ]
    changes = tag_changes("sb/", outcomes, {"m": False, "d": True, "k": False})
    assert changes[("add", "sb/relocated")] == ["m"]
    assert changes[("add", "sb/deferred")] == ["d"]
    assert changes[("remove", "sb/deferred")] == ["m", "k"]
    assert changes[("add", "sb/noHL")] == ["m", "k"]
    assert changes[("remove", "sb/noHL")] == ["d"]
