"""Configuration: strict keys, clear errors, environment overrides, secrets, the example."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from rush import config as config_mod
from rush.config import Config, ConfigError, load_config
from tests.conftest import REPO_ROOT, rush_env

EXAMPLE = REPO_ROOT / "config.example.toml"


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_keys_are_refused_with_their_name(tmp_path: Path) -> None:
    path = write(tmp_path, "[scanner]\nintervall_s = 5\n[mqtt]\nhost = 'nas'\n\n[webb]\nport = 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    text = str(err.value)
    assert "scanner.intervall_s: unknown key" in text
    assert "webb: unknown key" in text
    assert str(path) in text


def test_wrong_types_are_explained(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[scanner]\ninterval_s = 'soon'\nmin_present_ratio = 3\n"
        "[leases]\nttl_s = 10\nheartbeat_s = 20\n[mqtt]\nport = 70000\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    text = str(err.value)
    assert "scanner.interval_s" in text and "'soon'" in text
    assert "scanner.min_present_ratio" in text and "less than or equal to 1" in text
    assert "mqtt.port" in text and "70000" in text
    assert "heartbeat_s must be shorter than ttl_s" in text


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "[scanner\ninterval_s = 5\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})


def test_env_overrides_file_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "[scanner]\ninterval_s = 120\n[mqtt]\nhost = 'file-host'\n")
    env = {
        "RUSH_SCANNER__INTERVAL_S": "5",
        "RUSH_MQTT__HOST": "nas.local",
        "RUSH_SCANNER__IGNORED_DIRS": '["@eaDir", "tmp"]',
        "RUSH_SEEDBOX__QBITTORRENT__URL": "http://qb:8080",
        "RUSH_HOMEASSISTANT__ENABLED": "false",
        "RUSH_DATA_DIR": "/srv/rush",
        "OTHER_VARIABLE": "ignored",
        "RUSH_NOT_A_SECTION_KEY": "ignored too (no double underscore)",
    }
    config = load_config(path, environ=env)
    assert config.scanner.interval_s == 5.0
    assert config.mqtt.host == "nas.local"
    assert config.scanner.ignored_dirs == ["@eaDir", "tmp"]
    assert config.seedbox.qbittorrent.url == "http://qb:8080"
    assert config.homeassistant.enabled is False
    assert config.data_dir == Path("/srv/rush")
    assert config.env_warnings == [
        "RUSH_NOT_A_SECTION_KEY is not a configuration variable and is ignored (the form "
        "is RUSH_<SECTION>__<KEY>, e.g. RUSH_MQTT__HOST)"
    ]


def test_misspelt_env_variables_are_reported_with_the_right_spelling(tmp_path: Path) -> None:
    env = {
        "RUSH_LIBRARY_ROOT": str(tmp_path / "lib"),
        "RUSH_SEEDBOX_QBITTORRENT_URL": "http://qb:8080",
        "RUSH_MQTT_PASSWORD_FILE": "/run/secrets/mqtt",
        "RUSH_MQTT__HOST": "nas",
    }
    config = load_config(None, environ=env)
    assert config.library.root == Path("RUSHES_DB")  # ignored, but not silently:
    warnings = "\n".join(config.env_warnings)
    assert "RUSH_LIBRARY_ROOT is not a configuration variable" in warnings
    assert "did you mean RUSH_LIBRARY__ROOT?" in warnings
    assert "did you mean RUSH_SEEDBOX__QBITTORRENT__URL?" in warnings
    assert "did you mean RUSH_MQTT__PASSWORD_FILE?" in warnings
    assert "RUSH_MQTT__HOST" not in warnings and len(config.env_warnings) == 3

    # The project's own RUSH_ variables are not configuration keys and are not reported.
    own = dict.fromkeys(config_mod.OTHER_ENV_VARIABLES, "1")
    assert load_config(None, environ={**own, "RUSH_DATA_DIR": "/srv"}).env_warnings == []

    # At start-up: logged by every command, printed by `rush config check`.
    good = write(tmp_path, "[scanner]\ninterval_s = 30\n")
    for argv, stream in ((["config", "show"], "stderr"), (["config", "check"], "stdout")):
        proc = subprocess.run(
            [sys.executable, "-m", "rush", *argv, "--config", str(good)],
            env=rush_env(RUSH_LIBRARY_ROOT="/srv/lib", RUSH_UID="1026"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        out = getattr(proc, stream)
        assert "RUSH_LIBRARY_ROOT" in out and "did you mean RUSH_LIBRARY__ROOT?" in out, argv
        assert "RUSH_UID" not in proc.stdout + proc.stderr


def test_every_rush_variable_of_the_project_is_known() -> None:
    """Variables the code, the tests and deploy/ use are config keys or listed as the
    project's own, so none of them is ever reported as a misspelt key."""
    names: set[str] = set()
    files = [
        *(REPO_ROOT / "deploy").rglob("*"),
        *(REPO_ROOT / "scripts").rglob("*"),
        *REPO_ROOT.glob("*/*.py"),
        *REPO_ROOT.glob("*/*/*.py"),
    ]
    for path in files:
        # config.py and this file name misspelt variables on purpose.
        if path.is_file() and path.name not in ("config.py", "test_config.py"):
            names |= set(re.findall(r"\bRUSH_[A-Z0-9_]*[A-Z0-9]", path.read_text(errors="replace")))
    assert {"RUSH_UID", "RUSH_TEST_PG", "RUSH_DEMO_PASSWORD", "RUSH_DATA_DIR"} <= names
    assert config_mod.unknown_env_variables(dict.fromkeys(names, "x")) == []


def test_bad_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"RUSH_SCANNER__INTERVAL_S": "often"})
    assert "scanner.interval_s" in str(err.value) and "'often'" in str(err.value)
    with pytest.raises(ConfigError, match=r"scanner\.bogus: unknown key"):
        load_config(None, environ={"RUSH_SCANNER__BOGUS": "1"})


def test_secret_files(tmp_path: Path) -> None:
    secret = write(tmp_path, "s3cret-pass\n", "secrets/mqtt")
    config = load_config(
        None,
        environ={"RUSH_MQTT__PASSWORD_FILE": str(secret), "RUSH_WEB__SESSION_SECRET": "k" * 32},
    )
    assert isinstance(config.mqtt.password, SecretStr)
    assert config.mqtt.password.get_secret_value() == "s3cret-pass"
    assert "s3cret-pass" not in repr(config) and "s3cret-pass" not in str(config.model_dump())
    assert config.web.session_secret is not None
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"RUSH_MQTT__PASSWORD_FILE": str(tmp_path / "nope")})
    assert "RUSH_MQTT__PASSWORD_FILE" in str(err.value) and "cannot read" in str(err.value)


def test_env_keys_ending_in_file_are_set_directly(tmp_path: Path) -> None:
    """`mqtt.ca_file` is a key of its own: RUSH_MQTT__CA_FILE names the CA bundle, it is
    not the `_FILE` indirection for a `mqtt.ca` key that does not exist."""
    ca = write(tmp_path, "-----BEGIN CERTIFICATE-----\n", "ca.pem")
    config = load_config(None, environ={"RUSH_MQTT__CA_FILE": str(ca)})
    assert config.mqtt.ca_file == ca
    # ...and the indirection still works for it: the path of the CA bundle read from a file.
    pointer = write(tmp_path, f"{ca}\n", "ca-path")
    assert load_config(None, environ={"RUSH_MQTT__CA_FILE_FILE": str(pointer)}).mqtt.ca_file == ca
    # No file is read for a key that exists neither way.
    with pytest.raises(ConfigError, match=r"mqtt\.bogus_file: unknown key"):
        load_config(None, environ={"RUSH_MQTT__BOGUS_FILE": str(tmp_path / "nope")})


def test_env_text_values_stay_strings(tmp_path: Path) -> None:
    """Text fields keep the variable as written, even when it looks like a TOML number,
    boolean or quoted string; other fields still read TOML literals."""
    secret = write(tmp_path, "987654\n", "secrets/qb")
    config = load_config(
        None,
        environ={
            "RUSH_MQTT__PASSWORD": "123456",
            "RUSH_MQTT__USERNAME": "1001",
            "RUSH_AGENT__ID": "42",
            "RUSH_WEB__SESSION_SECRET": '"quoted"',
            "RUSH_SEEDBOX__QBITTORRENT__USERNAME": "true",
            "RUSH_SEEDBOX__QBITTORRENT__PASSWORD_FILE": str(secret),
            "RUSH_LIBRARY__ROOT": "2024",
            "RUSH_LOGGING__LEVEL": "DEBUG",
            "RUSH_MQTT__PORT": "8883",
            "RUSH_MQTT__TLS": "true",
            "RUSH_SEEDBOX__FREE_TARGET_GB": "1.5",
            "RUSH_AGENT__JOB_TYPES": '["transcription"]',
        },
    )
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "123456"
    assert (config.mqtt.username, config.agent.id) == ("1001", "42")
    assert config.web.session_secret is not None
    assert config.web.session_secret.get_secret_value() == '"quoted"'
    qb = config.seedbox.qbittorrent
    assert qb.username == "true"
    assert qb.password is not None and qb.password.get_secret_value() == "987654"
    assert config.library.root == Path("2024")
    assert config.logging.level == "DEBUG"
    assert (config.mqtt.port, config.mqtt.tls, config.seedbox.free_target_gb) == (8883, True, 1.5)
    assert config.agent.job_types == ["transcription"]


def test_qbittorrent_url_may_not_be_our_own_web_ui(tmp_path: Path) -> None:
    assert Config().web.port != int(Config().seedbox.qbittorrent.url.rsplit(":", 1)[1])
    clash = (
        '[web]\nhost = "0.0.0.0"\nport = 8080\n'
        '[seedbox]\nenabled = true\n[seedbox.qbittorrent]\nurl = "http://localhost:8080/"\n'
    )
    path = write(tmp_path, clash)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={"RUSH_MQTT__PASSWORD": "hunter2"})
    text = str(err.value)
    assert "seedbox.qbittorrent.url (http://localhost:8080/)" in text
    assert "web.host:web.port = 0.0.0.0:8080" in text
    assert "hunter2" not in text  # the whole input is not dumped
    # The public URL counts too (reverse proxy, another interface).
    via_base = {"RUSH_WEB__BASE_URL": "https://rush.lan", "RUSH_SEEDBOX__ENABLED": "true"}
    env = {**via_base, "RUSH_SEEDBOX__QBITTORRENT__URL": "https://rush.lan/"}
    with pytest.raises(ConfigError, match=r"seedbox\.qbittorrent\.url .* web\.port"):
        load_config(None, environ=env)
    # Another port, or another host while RushCatalog listens on loopback only: fine.
    ok = {"RUSH_SEEDBOX__ENABLED": "true", "RUSH_WEB__PORT": "8080"}
    assert load_config(None, environ={**ok, "RUSH_SEEDBOX__QBITTORRENT__URL": "http://qb:8080"})
    assert load_config(None, environ={"RUSH_SEEDBOX__ENABLED": "true"}).seedbox.enabled

    # Seedbox off: RushCatalog may keep 8080, but a manual `rush seedbox run` refuses.
    path = write(tmp_path, f'data_dir = "{tmp_path / "data"}"\n[web]\nport = 8080\n', "off.toml")
    assert load_config(path, environ={}).web.port == 8080
    proc = subprocess.run(
        [sys.executable, "-m", "rush", "seedbox", "run", "--config", str(path)],
        env=rush_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "seedbox.qbittorrent.url (http://127.0.0.1:8080) points at" in proc.stderr
    assert "web.host:web.port = 127.0.0.1:8080" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_default_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "etc" / "rush" / "config.toml"
    monkeypatch.setattr(config_mod, "DEFAULT_CONFIG_PATHS", (Path("config.toml"), system))
    monkeypatch.chdir(tmp_path)
    assert load_config(None, environ={}).source is None  # embedded defaults
    write(tmp_path, "[web]\nport = 9001\n", "etc/rush/config.toml")
    assert load_config(None, environ={}).web.port == 9001
    write(tmp_path, "[web]\nport = 9002\n")
    config = load_config(None, environ={})
    assert (config.web.port, config.source) == (9002, Path("config.toml"))
    explicit = write(tmp_path, "[web]\nport = 9003\n", "other.toml")
    assert load_config(explicit, environ={}).web.port == 9003
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", environ={})


def test_relative_paths_are_anchored_to_the_config_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'data_dir = "data"\n[library]\nroot = "lib"\narchive_root = "/abs/archive"\n'
        '[agent]\nvosk_model = "models/vosk"\n'
        '[seedbox]\nnvme_root = "nvme"\nsyno_root = "syno"\n',
        "conf/rush.toml",
    )
    config = load_config(path, environ={})
    base = tmp_path / "conf"
    assert config.data_dir == base / "data"
    assert config.library.root == base / "lib"
    assert config.library.archive_root == Path("/abs/archive")
    assert config.agent.vosk_model == base / "models" / "vosk"
    assert (config.seedbox.nvme_root, config.seedbox.syno_root) == (base / "nvme", base / "syno")
    assert config.database_url() == f"sqlite://{base / 'data' / 'rush.db'}"


def test_runtime_folders_live_under_data_dir(tmp_path: Path) -> None:
    """/etc/rush/config.toml with data_dir=/var/lib/rush: the seedbox's state, logs and
    locks must land in the writable data dir, not next to the (read-only) config file."""
    data = tmp_path / "var" / "lib" / "rush"
    path = write(
        tmp_path,
        f'data_dir = "{data}"\n[agent]\nwork_dir = "work"\n[logging]\ndir = "logs"\n'
        '[seedbox]\nstate_dir = "state"\nlock_dir = "/run/rush/locks"\n',
        "etc/rush/config.toml",
    )
    config = load_config(path, environ={})
    sb = config.seedbox
    assert sb.state_dir == data / "state"
    assert (sb.log_dir, sb.backup_dir) == (data / "seedbox" / "log", data / "seedbox" / "backup")
    assert sb.lock_dir == Path("/run/rush/locks")  # absolute paths are kept as they are
    assert config.logging.dir == data / "logs"
    assert config.agent.work_dir == data / "work"
    etc = tmp_path / "etc" / "rush"
    every = [sb.state_dir, sb.log_dir, sb.backup_dir, config.logging.dir, config.agent.work_dir]
    assert not any(etc in p.parents for p in every if p is not None)

    # RUSH_DATA_DIR (the systemd unit, the container) moves them with it.
    env = load_config(path, environ={"RUSH_DATA_DIR": str(tmp_path / "srv")})
    assert env.seedbox.state_dir == tmp_path / "srv" / "state"
    assert env.seedbox.lock_dir == Path("/run/rush/locks")
    # A relative data_dir is relative to the config file; the runtime folders follow it.
    rel = load_config(write(tmp_path, 'data_dir = "d"\n', "c/config.toml"), environ={})
    assert rel.seedbox.log_dir == tmp_path / "c" / "d" / "seedbox" / "log"
    # Without a file: under data_dir, relative to the current directory.
    bare = load_config(None, environ={"RUSH_DATA_DIR": "/data"})
    assert bare.seedbox.state_dir == Path("/data/seedbox/state")


def _rush_config_check(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rush", "config", "check", "--config", str(path)],
        env=rush_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_check_command(tmp_path: Path) -> None:
    good = write(tmp_path, '[library]\nroot = "lib"\n[scanner]\ninterval_s = 30\n')
    ok = _rush_config_check(good, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout and "rush init" in ok.stdout

    bad = write(tmp_path, "[scanner]\ninterval_s = 'soon'\ntypo = 1\n", "bad.toml")
    res = _rush_config_check(bad, tmp_path)
    assert res.returncode == 2
    assert "scanner.interval_s" in res.stdout and "scanner.typo: unknown key" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr

    missing = _rush_config_check(tmp_path / "nope.toml", tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stdout + missing.stderr


# -- config.example.toml can never drift from the models ---------------------------------


def _fields(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> default for every field of every section."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name == "source":
            continue
        default = info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            out.update(_fields(type(default), f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = default
    return out


def _under_data_dir(key: str) -> bool:
    """Whether a relative value of this dotted key is anchored to data_dir."""
    model: Any = Config
    *sections, name = key.split(".")
    for part in sections:
        model = model.model_fields[part].annotation
    return config_mod.UNDER_DATA_DIR in model.model_fields[name].metadata


def _example_keys(text: str) -> tuple[set[str], set[str]]:
    """(keys set in the file, keys shown commented out) as dotted names."""
    data = tomllib.loads(text)
    present: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            # A table is a section, unless the key is itself a field (a mapping such as
            # transcription.models); an empty inline table is a dict value.
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and value and dotted not in _fields(Config):
                walk(value, f"{dotted}.")
            else:
                present.add(f"{prefix}{key}")

    walk(data, "")
    commented: set[str] = set()
    section = ""
    for line in text.splitlines():
        header = re.match(r"^\[([\w.]+)\]\s*$", line)
        if header:
            section = header.group(1) + "."
            continue
        key = re.match(r"^# ([a-z0-9_]+) = ", line)
        if key:
            commented.add(section + key.group(1))
    return present, commented


def test_example_config_covers_every_key_with_its_default() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    fields = _fields(Config)
    present, commented = _example_keys(text)
    documented = present | commented
    assert sorted(set(fields) - documented) == [], "keys missing from config.example.toml"
    assert sorted(documented - set(fields)) == [], "config.example.toml documents unknown keys"
    # Keys shown commented out are exactly those without a default.
    assert {k for k in commented if k in fields} == {k for k, v in fields.items() if v is None}

    config = load_config(EXAMPLE, environ={})
    loaded = config.model_dump()
    # Validated once, so normalising validators (sorted extensions) apply to defaults too.
    expected = Config.model_validate(Config().model_dump()).model_dump()
    for key in present:
        got: Any = loaded
        want: Any = expected
        for part in key.split("."):
            got, want = got[part], want[part]
        if isinstance(want, Path) and not want.is_absolute():
            want = (config.data_dir if _under_data_dir(key) else EXAMPLE.parent) / want
        assert got == want, f"{key}: example shows {got!r}, default is {want!r}"
