# Sourced by scripts/setup, scripts/test and scripts/demo: which Python runs the project.
#
# Never the system interpreter.  Debian 12, Ubuntu 23.04+ and Raspberry Pi OS mark it
# "externally managed" (PEP 668), and installing into it would also make one clone the
# system-wide copy of the project.  In order:
#   1. an already active virtual environment ($VIRTUAL_ENV);
#   2. PYTHON=... when it names a virtual environment's interpreter;
#   3. the project's own .venv/ at the repository root, created from PYTHON (or python3).
# shellcheck shell=bash

rush_repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# True when the interpreter $1 runs inside a virtual environment.
rush_is_venv_python() {
  "$1" -c 'import sys; sys.exit(0 if sys.prefix != sys.base_prefix else 1)' >/dev/null 2>&1
}

# Prints the interpreter the project runs with (it may not exist yet: setup creates it).
rush_python() {
  if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    echo "$VIRTUAL_ENV/bin/python"
  elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python3" ]; then
    echo "$VIRTUAL_ENV/bin/python3"
  elif [ -n "${PYTHON:-}" ] && rush_is_venv_python "$PYTHON"; then
    command -v "$PYTHON"
  else
    echo "$(rush_repo_root)/.venv/bin/python"
  fi
}

# The interpreter a new .venv is made from: PYTHON when it is a plain interpreter, else python3.
rush_base_python() {
  if [ -n "${PYTHON:-}" ] && ! rush_is_venv_python "$PYTHON"; then
    command -v "$PYTHON"
  else
    command -v python3 || echo /usr/bin/python3
  fi
}

# The site-packages folders of the system interpreters (python3 on PATH and /usr/bin/python3):
# what scripts/test checks nobody wrote into.
rush_system_site_dirs() {
  local py
  for py in "$(command -v python3 || true)" /usr/bin/python3; do
    [ -x "$py" ] || continue
    rush_is_venv_python "$py" && continue
    "$py" -c 'import site, sysconfig
for d in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], site.getusersitepackages(), *site.getsitepackages()}:
    print(d)' 2>/dev/null
  done | sort -u
}

# One line that changes when any entry of those folders is added, removed or rewritten.
rush_system_site_fingerprint() {
  local d
  rush_system_site_dirs | while read -r d; do
    [ -d "$d" ] && find "$d" -maxdepth 1 -printf '%p %T@\n'
  done | sort | sha256sum | cut -d' ' -f1
}
