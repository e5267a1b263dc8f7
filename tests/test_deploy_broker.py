"""The shipped deployment really works: broker users, ACL, compose and the Pi installer agree.

A private Mosquitto runs the shipped `mosquitto.conf` and `acl` (only the port and file
paths changed) with a password file made by `mosquitto_passwd` as the docs say.  `rush
serve` gets the server's environment from `compose.yaml` (plus the image's ENV), one
`rush agent` the environment of compose's `agent` service and another the config and
credentials `install-agent.sh` writes (read from its dry run, not re-typed here).  Each
agent must get an asset PROCESSED.  A broker that refuses an agent's messages must be
named in the agent's log, once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from integrations.agent_runtime import AgentRuntime
from integrations.mqtt.client import MqttBridge
from rush.lifecycle import AssetState
from rush.models import Asset, Lease
from rush.storage import close_db, init_db
from tests.agent_support import DEPLOY as MOSQUITTO_DIR
from tests.agent_support import (
    Mosquitto,
    TestProcessor,
    agents_running,
    make_config,
    make_library,
    make_passwd,
    wait_until,
)
from tests.conftest import REPO_ROOT, free_port, rush_env
from tests.media_helpers import asymmetric_photo

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

DEPLOY = REPO_ROOT / "deploy"
INSTALLER = DEPLOY / "pi" / "install-agent.sh"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8")))


def _defaults(value: str) -> str:
    """Compose interpolation with the defaults: `${X:-d}` -> d."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _image_env() -> dict[str, str]:
    """The RUSH_* variables the Dockerfile's ENV instructions set."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for word in shlex.split(line[4:]):
                key, _, value = word.partition("=")
                if key.startswith("RUSH_"):
                    env[key] = value
    return env


def container_env(
    service: str, *, paths: dict[str, Path], secrets: dict[str, Path], broker_port: int
) -> dict[str, str]:
    """A compose service's RUSH_* environment as its container sees it, with container
    paths mapped to this test's folders and the broker host to the private broker."""
    svc = _compose()["services"][service]
    env = {**_image_env(), **{k: _defaults(str(v)) for k, v in svc["environment"].items()}}
    for key, value in list(env.items()):
        if value.startswith("/run/secrets/"):
            env[key] = str(secrets[value.removeprefix("/run/secrets/")])
        elif value in paths:
            env[key] = str(paths[value])
    assert env["RUSH_MQTT__HOST"] == "mosquitto"  # the compose service name
    env["RUSH_MQTT__HOST"] = "127.0.0.1"
    env["RUSH_MQTT__PORT"] = str(broker_port)
    return env


def dry_run_files(output: str) -> dict[str, str]:
    """{path: content} of every file the installer's dry run shows it would write."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        m = re.match(r"\+ write (\S+) \(mode \d+\):$", line)
        if m:
            current = files.setdefault(m.group(1), [])
        elif current is not None and line.startswith("|"):
            current.append(line[4:] if line.startswith("|   ") else "")
        else:
            current = None
    return {path: "\n".join(lines) + "\n" for path, lines in files.items()}


def env_lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def passwd_commands(text: str) -> list[list[str]]:
    """The `mosquitto_passwd` command lines of a document or of the installer's output
    (`install-agent: ` prefix), as argument lists without their trailing comments."""
    found = []
    for raw in text.splitlines():
        line = raw.strip().removeprefix("install-agent:").lstrip("# ").removeprefix("sudo ")
        if line.startswith("mosquitto_passwd "):
            found.append(shlex.split(line, comments=True))
    return found


def _start(
    cmd: str, env: dict[str, str], log: Path, *, cwd: Path, config: Path | None = None
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "rush", cmd]
    if config is not None:
        args += ["--config", str(config)]
    with open(log, "ab") as out:
        return subprocess.Popen(
            args,
            env=rush_env(**env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _processed_by(db_file: Path, name: str, agent_id: str, limit_s: float = 120) -> None:
    """Until the asset `name` is PROCESSED on a lease of `agent_id` (read from the server's DB)."""
    from tortoise.exceptions import OperationalError

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(db_file.exists):
            await init_db(f"sqlite://{db_file}", migrate=False)
            try:
                asset = await Asset.get_or_none(rel_path=f"INBOX/{name}")
                if (
                    asset is not None
                    and asset.state is AssetState.PROCESSED
                    and await Lease.filter(asset_id=asset.id, agent_id=agent_id).exists()
                ):
                    return
            except OperationalError:
                pass
            finally:
                await close_db()
        await asyncio.sleep(0.5)
    raise AssertionError(f"{name} was not processed by {agent_id}")


async def _logged(log: Path, text: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while text not in await asyncio.to_thread(log.read_text, errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{log.name} never said {text!r}")
        await asyncio.sleep(0.2)


def _photo(root: Path, name: str) -> None:
    path = root / "INBOX" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    asymmetric_photo(path, 6, "JPEG")
    old = time.time() - 3600
    os.utime(path, (old, old))


class Site:
    """Everything the deployment test starts, prepared from the shipped files."""

    def __init__(self, tmp_path: Path) -> None:
        self.lib = tmp_path / "RUSHES_DB"
        library_id = make_library(self.lib)
        self.data = tmp_path / "data"
        self.data.mkdir()
        secrets_dir = tmp_path / "secrets"
        secrets_dir.mkdir()
        passwords = {"mqtt_server_password": "s3rver-pw", "mqtt_agent_password": "nas-agent-pw"}
        secrets = {}
        for name in _compose()["secrets"]:
            secrets[name] = secrets_dir / name
            secrets[name].write_text(passwords.get(name, f"{name}-value") + "\n")
        paths = {"/library": self.lib, "/data": self.data}
        port = free_port()
        self.server_env = container_env("server", paths=paths, secrets=secrets, broker_port=port)
        self.nas_env = container_env("agent", paths=paths, secrets=secrets, broker_port=port)
        # The Pi agent exactly as the installer would set it up (its dry run shows the files).
        pi_password = tmp_path / "pi-password"
        pi_password.write_text("pi-kitchen-pw\n")
        prefix = tmp_path / "pi"
        dry = subprocess.run(
            [
                "bash", str(INSTALLER), "--prefix", str(prefix), "--dry-run", "--no-apt",
                "--id", "pi-kitchen", "--mqtt-host", "127.0.0.1", "--mqtt-port", str(port),
                "--mount", str(self.lib), "--library-id", library_id,
                "--mqtt-password-file", str(pi_password),
            ],
            capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("RUSH_")},
        )  # fmt: skip
        assert dry.returncode == 0, dry.stdout + dry.stderr
        written = dry_run_files(dry.stdout)
        etc = prefix / "etc" / "rush"
        self.pi_toml = tmp_path / "agent.toml"
        self.pi_toml.write_text(written[str(etc / "agent.toml")])
        self.pi_env = env_lines(written[str(etc / "agent.env")])
        assert self.pi_env["RUSH_MQTT__PASSWORD"] == "<redacted>"
        self.pi_env["RUSH_MQTT__PASSWORD"] = "pi-kitchen-pw"
        # The password file, made the way the installer and the docs say.
        broker_dir = tmp_path / "broker"
        broker_dir.mkdir()
        passwd = broker_dir / "rush.passwd"
        installer_says = passwd_commands(dry.stdout)
        docs_say = passwd_commands((REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8"))
        assert installer_says and docs_say
        server_user = self.server_env["RUSH_MQTT__USERNAME"]
        nas_user = self.nas_env["RUSH_MQTT__USERNAME"]
        # The docs create exactly compose's users; the installer names the Pi agent's own.
        assert {cmd[-2] for cmd in docs_say} == {server_user, nas_user}
        assert installer_says[0][-2] == self.pi_env["RUSH_MQTT__USERNAME"]
        secret_of = {
            server_user: passwords["mqtt_server_password"],
            nas_user: passwords["mqtt_agent_password"],
            installer_says[0][-2]: "pi-kitchen-pw",
        }
        # The same flags as written there (`-c` creates the file with the first user).
        for cmd in [*docs_say, installer_says[0]]:
            *flags, _file, user, _password = cmd
            subprocess.run([*flags, str(passwd), user, secret_of[user]], check=True)
        self.broker = Mosquitto(broker_dir, passwd=passwd, acl=MOSQUITTO_DIR / "acl", port=port)
        self.server_env.update(
            RUSH_WEB__HOST="127.0.0.1",
            RUSH_WEB__PORT=str(free_port()),
            RUSH_SCANNER__INTERVAL_S="1",
            RUSH_SCANNER__STABLE_AFTER_S="0",
        )


async def test_shipped_broker_compose_and_pi_installer_process_assets(tmp_path: Path) -> None:
    site = await asyncio.to_thread(Site, tmp_path)
    lib, data, broker = site.lib, site.data, site.broker
    server_env, nas_env, pi_env, pi_toml = site.server_env, site.nas_env, site.pi_env, site.pi_toml
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    with broker:
        try:
            _photo(lib, "first.jpg")
            procs.append(_start("serve", server_env, logs / "serve.log", cwd=data))
            # Agents start once the server listens (start order is not what this tests).
            await _logged(logs / "serve.log", "MQTT connected")
            nas = _start("agent", nas_env, logs / "nas.log", cwd=tmp_path)
            procs.append(nas)
            try:
                await _processed_by(data / "rush.db", "first.jpg", nas_env["RUSH_AGENT__ID"])
            finally:
                _stop(nas)
            _photo(lib, "second.jpg")
            pi = _start("agent", pi_env, logs / "pi.log", cwd=tmp_path, config=pi_toml)
            procs.append(pi)
            await _processed_by(data / "rush.db", "second.jpg", "pi-kitchen")
        except AssertionError as exc:
            tails = "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}"
                for p in [*sorted(logs.iterdir()), broker.log]
            )
            raise AssertionError(f"{exc}\n{tails}") from None
        finally:
            for proc in reversed(procs):
                _stop(proc)
    for log in logs.iterdir():
        assert "broker refused" not in log.read_text(errors="replace"), log.name


def _acl_broker(tmp_path: Path, users: dict[str, str]) -> Mosquitto:
    passwd = make_passwd(tmp_path / "passwd", users)
    return Mosquitto(tmp_path / "broker", passwd=passwd, acl=MOSQUITTO_DIR / "acl")


async def test_agent_names_the_acl_once_when_the_broker_refuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An agent whose username is not its id (the old `agent-<id>` users): the broker
    refuses its subscriptions and its registration; the log says so once."""
    root = tmp_path / "lib"
    make_library(root)
    with _acl_broker(tmp_path, {"agent-x": "pw-x"}) as broker:
        config = make_config(
            root, prefix="rush", port=broker.port, username="agent-x", password="pw-x"
        )
        agent = AgentRuntime(config, [TestProcessor()], agent_id="x")
        caplog.set_level(logging.INFO, logger="integrations")
        async with agents_running([agent]):
            # Its `online` status and its registration...
            await wait_until(lambda: _refused(agent.bridge, 2), limit_s=20)
            # ...and again after a reconnection: still said only once.
            broker.stop(kill=True)
            broker.start()
            await wait_until(
                lambda: _refused(agent.bridge, 4, connects=2), limit_s=30, interval=0.1
            )
    said = [r.getMessage() for r in caplog.records if "the broker refused" in r.getMessage()]
    assert len(said) == 1, said
    assert "check the ACL / username" in said[0] and "rush/agents/x/" in said[0]
    assert "'agent-x'" in said[0]


async def _refused(bridge: MqttBridge, at_least: int, connects: int = 1) -> bool:
    return bridge.stats.refused >= at_least and bridge.stats.connects >= connects
