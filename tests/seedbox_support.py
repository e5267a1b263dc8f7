"""Real qbittorrent-nox for the seedbox tests and benchmark: profile, start, stop, torrents.

qBittorrent runs on a free loopback port with a generated profile (no DHT/PeX/LSD/UPnP,
bound to `lo`); torrents are built locally with torf (private, dummy tracker) and added
with their data already in place, so they seed at 100 % with no peers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import qbittorrentapi
import torf

from rush.config import Config

PASSWORD = "seedbox-test-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pbkdf2_entry(password: str) -> str:
    """qBittorrent's WebUI\\Password_PBKDF2 value (PBKDF2-HMAC-SHA512, 100k iterations)."""
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 100_000, 64)
    return f'"@ByteArray({base64.b64encode(salt).decode()}:{base64.b64encode(key).decode()})"'


@dataclass
class Qbit:
    profile: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> qbittorrentapi.Client:
        return qbittorrentapi.Client(
            host=self.url,
            username="admin",
            password=PASSWORD,
            REQUESTS_ARGS={"timeout": 10},
            DISABLE_LOGGING_DEBUG_OUTPUT=True,
        )

    def start(self, timeout: float = 30.0) -> None:
        log = (self.profile / "qbittorrent-nox.out").open("ab")
        self.proc = subprocess.Popen(
            ["qbittorrent-nox", f"--profile={self.profile}", f"--webui-port={self.port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            try:
                client.auth_log_in()
                return
            except qbittorrentapi.APIError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        "qbittorrent-nox did not start: "
                        + (self.profile / "qbittorrent-nox.out").read_text(errors="replace")
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def write_profile(profile: Path, webui_port: int, refresh_ms: int = 200) -> None:
    conf_dir = profile / "qBittorrent" / "config"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "qBittorrent.conf").write_text(
        "[LegalNotice]\nAccepted=true\n\n"
        "[BitTorrent]\n"
        "Session\\DHTEnabled=false\nSession\\PeXEnabled=false\nSession\\LSDEnabled=false\n"
        "Session\\Interface=lo\nSession\\InterfaceName=lo\n"
        f"Session\\Port={free_port()}\n"
        "Session\\QueueingSystemEnabled=false\n"
        f"Session\\RefreshInterval={refresh_ms}\n"
        "Session\\AnonymousModeEnabled=true\n\n"
        "[Preferences]\n"
        "Connection\\UPnP=false\n"
        f"WebUI\\Port={webui_port}\n"
        "WebUI\\Address=127.0.0.1\n"
        "WebUI\\LocalHostAuth=true\n"
        "WebUI\\Username=admin\n"
        f"WebUI\\Password_PBKDF2={pbkdf2_entry(PASSWORD)}\n"
        "WebUI\\CSRFProtection=false\n"
        "WebUI\\HostHeaderValidation=false\n"
        "WebUI\\MaxAuthenticationFailCount=1000\n",
        encoding="utf-8",
    )


@contextlib.contextmanager
def running_qbittorrent(base: Path, refresh_ms: int = 200) -> Iterator[Qbit]:
    """A qbittorrent-nox for the duration of the block, killed at the end.

    `refresh_ms` is qBittorrent's state refresh interval (stock: 1500 ms); the tests use a
    short one so that waiting for a state change takes less time."""
    profile = base / "qbt-profile"
    port = free_port()
    write_profile(profile, port, refresh_ms)
    qbit = Qbit(profile, port)
    qbit.start()
    try:
        yield qbit
    finally:
        qbit.stop()


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int = 256) -> Iterator[bool]:
    """Mount a tmpfs on `path` when allowed (root): a second filesystem for "Synology"."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
            capture_output=True,
        )
        mounted = res.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def make_torrent(
    save_path: Path,
    name: str,
    files: dict[str, int],
    *,
    seed: int = 0,
    source: str | None = None,
) -> tuple[str, bytes]:
    """Generate data under `save_path/name` and a private torrent for it; (infohash, bytes)."""
    root = save_path / name
    if len(files) == 1 and "" in files:
        target = root
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_data(files[""], seed, name))
    else:
        for rel, size in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_data(size, seed, rel))
    t = torf.Torrent(
        path=root,
        trackers=["http://127.0.0.1:9/announce"],
        source=source,
        private=True,
        piece_size=16384,
        created_by="rush-tests",
        creation_date=None,
    )
    t.generate()
    return str(t.infohash).lower(), bytes(t.dump())


def _data(size: int, seed: int, salt: str) -> bytes:
    block = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def add_seeding(
    client: qbittorrentapi.Client,
    torrent: bytes,
    infohash: str,
    save_path: Path,
    category: str,
    timeout: float = 30.0,
) -> None:
    """Add a torrent whose data is in place, and wait until it seeds."""
    client.torrents_add(
        torrent_files=torrent,
        save_path=str(save_path),
        category=category,
        use_auto_torrent_management=False,
    )
    wait_for(
        lambda: _state(client, infohash) in {"stalledUP", "uploading", "queuedUP", "forcedUP"},
        timeout,
        f"{infohash} seeding",
    )


def _state(client: qbittorrentapi.Client, infohash: str) -> str:
    rows = client.torrents_info(torrent_hashes=infohash)
    return str(rows[0]["state"]) if rows else ""


def torrent_info(client: qbittorrentapi.Client, infohash: str) -> dict[str, object]:
    rows = client.torrents_info(torrent_hashes=infohash)
    assert rows, f"{infohash} not in qBittorrent"
    return dict(rows[0])


def wait_for(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def seedbox_config(base: Path, qbit_url: str, nvme: Path, syno: Path, **seedbox: object) -> Config:
    """A Config for the relocator with short waits, every path under `base`."""
    return Config.model_validate(seedbox_config_data(base, qbit_url, nvme, syno, **seedbox))


def seedbox_config_data(
    base: Path, qbit_url: str, nvme: Path, syno: Path, **seedbox: object
) -> dict[str, object]:
    """`seedbox_config` as plain data (for a relocation run in another process)."""
    sb: dict[str, object] = {
        "enabled": True,
        "state_dir": str(base / "state"),
        "nvme_root": str(nvme),
        "syno_root": str(syno),
        "min_age_sec": 3600,
        "categories": ["tv", "movies"],
        "free_target_percent": 100.0,
        "backup_dir": str(base / "backup"),
        "log_dir": str(base / "log"),
        "lock_dir": str(base / "locks"),
        "retries": 3,
        "retry_backoff_s": 0.05,
        "poll_interval_s": 0.1,
        "move_timeout_s": 60.0,
        "syno_reserve_gb": 0.0,
        "qbittorrent": {"url": qbit_url, "username": "admin", "password": PASSWORD},
    }
    sb.update(seedbox)
    return {
        "data_dir": str(base / "data"),
        "database": {"dsn": f"sqlite://{base / 'data' / 'rush.db'}"},
        "seedbox": sb,
    }


def write_toml(path: Path, data: dict[str, object]) -> Path:
    """`data` (strings, numbers, booleans, lists, nested tables) as a TOML config file."""
    import json

    lines: list[str] = []

    def table(prefix: str, values: dict[str, object]) -> None:
        subs = {k: v for k, v in values.items() if isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in values.items():
            if key not in subs:
                lines.append(f"{key} = {json.dumps(value)}")
        for key, value in subs.items():
            table(f"{prefix}.{key}" if prefix else key, value)  # type: ignore[arg-type]

    table("", data)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
