"""The README's two commands on a stock machine: the project lives in a virtual environment.

Debian 12, Ubuntu 23.04+ and Raspberry Pi OS mark the system Python "externally managed"
(PEP 668), so `scripts/setup` installs into `.venv/` (or an active virtual environment) and
never into the system interpreter.  `scripts/test` also compares the system site-packages
before and after the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["scripts/setup", "scripts/test", "scripts/demo", "scripts/python.sh", ".ci/run"]


def _base_python() -> str:
    """The interpreter this virtual environment was made from (the system one on CI)."""
    for name in ("python3", "python"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.exists():
            return str(candidate)
    pytest.fail(f"no interpreter under {sys.base_prefix}")


def test_the_suite_runs_in_a_virtual_environment() -> None:
    assert sys.prefix != sys.base_prefix, f"tests run with a system Python: {sys.executable}"


def test_the_system_python_does_not_have_the_project(tmp_path: Path) -> None:
    probe = "import importlib.metadata as m\ntry:\n m.distribution('rushcatalog')\nexcept m.PackageNotFoundError:\n raise SystemExit(0)\nraise SystemExit(1)"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([_base_python(), "-c", probe], cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 0, f"rushcatalog is installed into {_base_python()}"


def test_setup_refuses_to_install_into_a_system_python(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    env["VIRTUAL_ENV"] = sys.base_prefix  # pretends the system prefix is an active venv
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/setup")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "refusing to install into a system Python" in proc.stderr


def test_setup_finds_the_environment_it_made() -> None:
    """With nothing active, the scripts run the project with `.venv/bin/python`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "VIRTUAL_ENV")}
    out = subprocess.run(
        ["bash", "-c", f". {REPO_ROOT / 'scripts/python.sh'} && rush_python"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    assert out == str(REPO_ROOT / ".venv" / "bin" / "python")


def test_an_active_virtual_environment_is_respected(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    env["VIRTUAL_ENV"] = sys.prefix
    out = subprocess.run(
        ["bash", "-c", f". {REPO_ROOT / 'scripts/python.sh'} && rush_python"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    assert out == str(Path(sys.prefix) / "bin" / "python")


def test_ci_runs_with_the_system_path_only() -> None:
    text = (REPO_ROOT / ".ci/run").read_text()
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in text
    assert "scripts/test" in text


def test_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    proc = subprocess.run(
        [shellcheck, "-x", "--severity=style", *SCRIPTS],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
