"""`rush demo` end to end, as the README runs it: a generated sample library, the server,
one agent and the web UI; log in with the printed credentials, wait until every sample
asset is PROCESSED, then Ctrl-C (SIGINT to the process group, as a terminal sends it)
leaves no process behind.  Real processes, real ffmpeg, real embedded broker, free ports.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from rush.cli.demo import demo_config
from tests.conftest import free_port, rush_env

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

CREDENTIALS = re.compile(r"user: (\S+)\s+password: (\S+)")
URL = re.compile(r"RushCatalog demo is starting: (http://\S+)")


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _states(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            rows = conn.execute("SELECT state, COUNT(*) FROM asset GROUP BY state").fetchall()
        except sqlite3.OperationalError:
            return {}  # not migrated yet
    return {str(state): int(n) for state, n in rows}


def test_demo_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "rush-demo"
    port = free_port()
    log = open(tmp_path / "demo.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "rush", "demo", "--data", str(data), "--port", str(port)],
        env=rush_env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    pgid = os.getpgid(proc.pid)
    try:
        deadline = time.monotonic() + 120
        text = ""
        while not (CREDENTIALS.search(text) and URL.search(text)):
            assert proc.poll() is None, text[-3000:]
            assert time.monotonic() < deadline, text[-3000:]
            time.sleep(0.2)
            text = (tmp_path / "demo.log").read_text(errors="replace")
        user, password = CREDENTIALS.search(text).groups()  # type: ignore[union-attr]
        url = URL.search(text).group(1)  # type: ignore[union-attr]
        assert url == f"http://127.0.0.1:{port}"

        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        login_page = ""
        for _ in range(300):  # the server opens its port once the database is ready
            try:
                with browser.open(url + "/login", timeout=10) as resp:
                    login_page = resp.read().decode()
                    break
            except urllib.error.URLError:
                time.sleep(0.2)
        token = re.search(r'name="_csrf" value="([^"]+)"', login_page).group(1)  # type: ignore[union-attr]
        form = {"username": user, "password": password, "_csrf": token, "next": "/"}
        with browser.open(url + "/login", urllib.parse.urlencode(form).encode(), 10) as resp:
            assert urllib.parse.urlsplit(resp.url).path == "/", resp.url
            assert "Log out" in resp.read().decode()

        sample = [p for p in (data / "RUSHES_DB" / "INBOX").rglob("*") if p.is_file()]
        assert sample
        deadline = time.monotonic() + 600
        while True:
            states = _states(data / "rush.db")
            if states and set(states) == {"PROCESSED"}:
                break
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            assert time.monotonic() < deadline, states
            time.sleep(1.0)
        assert states["PROCESSED"] >= 4, states
    finally:
        if proc.poll() is None:
            os.killpg(pgid, signal.SIGINT)  # Ctrl-C
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            raise
        for _ in range(100):
            if not _group_members(pgid):
                break
            time.sleep(0.1)
        left = _group_members(pgid)
        if left:
            os.killpg(pgid, signal.SIGKILL)
        log.close()
    assert not left, f"processes left behind: {left}"
    assert code in (0, 130), code
    assert "Traceback" not in (tmp_path / "demo.log").read_text(errors="replace")


def test_demo_config_keeps_what_the_user_changed(tmp_path: Path) -> None:
    data, library = tmp_path / "d", tmp_path / "lib"
    data.mkdir()
    first = demo_config(data, library, "127.0.0.1", 8765)
    edited = first.read_text().replace("interval_s = 5", "interval_s = 42")
    first.write_text(edited)
    second = demo_config(data, library, "127.0.0.1", 8765)
    assert second == first
    assert "interval_s = 42" in second.read_text()
