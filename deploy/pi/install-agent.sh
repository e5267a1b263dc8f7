#!/usr/bin/env bash
# Install a RushIndexer processing agent on a Raspberry Pi (or any Debian-like machine).
#
#   sudo deploy/pi/install-agent.sh --id pi-kitchen --mqtt-host nas.local \
#        --share //nas.local/RUSHES_DB --mount-type cifs [--apply]
#
# What it does, in order (each step printed; --dry-run prints without doing):
#   1. ffmpeg and python3-venv via apt when missing (skip with --no-apt);
#   2. a virtualenv in PREFIX/opt/rush/venv with RushCatalog installed from this checkout;
#   3. the agent config PREFIX/etc/rush/agent.toml (strict: `rush config check` reads it);
#   4. the agent's MQTT credentials in PREFIX/etc/rush/agent.env, mode 0600 (EnvironmentFile);
#      the broker username is the agent id (the shipped ACL grants rush/agents/<username>/);
#   5. the fstab line mounting the library share (printed; appended to PREFIX/etc/fstab
#      only with --apply);
#   6. the systemd unit PREFIX/etc/systemd/system/rush-agent.service with this machine's
#      paths; enabled and started only when installing for real (no --prefix, no --dry-run).
# With --prefix DIR everything lands under DIR (used by the tests and for staging an image).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
SOURCE=$(cd "$SCRIPT_DIR/../.." && pwd)
PREFIX=""
DRY_RUN=0
NO_APT=0
APPLY=0
AGENT_ID=$(hostname -s 2>/dev/null || echo agent)
AGENT_ID=${AGENT_ID//[^A-Za-z0-9_-]/-}
MQTT_HOST="nas.local"
MQTT_PORT=1883
MQTT_USER=""
MQTT_PASSWORD_FILE=""
MOUNT="/mnt/rushes"
SHARE=""
MOUNT_TYPE="cifs"
LIBRARY_ID=""
HWACCEL="none"
PYTHON=${PYTHON:-python3}
PIP_ARGS=()
SYSTEM_SITE=0

usage() {
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --prefix DIR               install under DIR instead of / (no systemctl, no useradd)
  --dry-run                  print every action, change nothing
  --no-apt                   never call apt-get (ffmpeg must already be there)
  --apply                    append the mount line to fstab and create the mount point
  --id ID                    agent id (default: short host name)
  --mqtt-host HOST           broker host (default nas.local)
  --mqtt-port PORT           broker port (default 1883)
  --mqtt-user USER           broker user: must be the agent id (the ACL's rule)
  --mqtt-password-file FILE  read the broker password from FILE (default: generate one)
  --share SHARE              //nas/RUSHES_DB (cifs) or nas:/volume1/RUSHES_DB (nfs)
  --mount-type cifs|nfs      how the share is mounted (default cifs)
  --mount DIR                where the library is mounted (default /mnt/rushes)
  --library-id ID            expected library id (from the .rushes_db marker)
  --hwaccel none|v4l2m2m|vaapi  hardware encoder (Raspberry Pi: v4l2m2m)
  --source DIR               RushCatalog checkout or sdist to install (default: this one)
  --system-site-packages     let the venv see the system's Python packages
  --pip-arg ARG              extra argument for pip install (repeatable)
EOF
}

die() { echo "install-agent: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --no-apt) NO_APT=1; shift ;;
    --apply) APPLY=1; shift ;;
    --id) AGENT_ID=${2:?}; shift 2 ;;
    --mqtt-host) MQTT_HOST=${2:?}; shift 2 ;;
    --mqtt-port) MQTT_PORT=${2:?}; shift 2 ;;
    --mqtt-user) MQTT_USER=${2:?}; shift 2 ;;
    --mqtt-password-file) MQTT_PASSWORD_FILE=${2:?}; shift 2 ;;
    --share) SHARE=${2:?}; shift 2 ;;
    --mount-type) MOUNT_TYPE=${2:?}; shift 2 ;;
    --mount) MOUNT=${2:?}; shift 2 ;;
    --library-id) LIBRARY_ID=${2:?}; shift 2 ;;
    --hwaccel) HWACCEL=${2:?}; shift 2 ;;
    --source) SOURCE=${2:?}; shift 2 ;;
    --system-site-packages) SYSTEM_SITE=1; shift ;;
    --pip-arg) PIP_ARGS+=("${2:?}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[[ "$AGENT_ID" =~ ^[A-Za-z0-9_-]+$ ]] || die "--id must use only letters, digits, '-' and '_'"
[[ "$MQTT_PORT" =~ ^[0-9]+$ ]] || die "--mqtt-port must be a number"
case "$MOUNT_TYPE" in cifs|nfs) ;; *) die "--mount-type must be cifs or nfs" ;; esac
case "$HWACCEL" in none|v4l2m2m|vaapi|videotoolbox) ;; *) die "--hwaccel: unknown $HWACCEL" ;; esac
case "$MOUNT" in /*) ;; *) die "--mount must be an absolute path" ;; esac
# Naming rule (docs/deploy.md): broker username = agent id, because the shipped ACL
# grants the topics rush/agents/%u/... by username; any other name is refused there.
[ -n "$MQTT_USER" ] || MQTT_USER="$AGENT_ID"
[ "$MQTT_USER" = "$AGENT_ID" ] \
  || die "--mqtt-user must equal --id ($AGENT_ID): the broker ACL grants rush/agents/<username>/"
[ -z "$PREFIX" ] || PREFIX=$(realpath -m "$PREFIX")

OPT="$PREFIX/opt/rush"
VENV="$OPT/venv"
ETC="$PREFIX/etc/rush"
UNIT_DIR="$PREFIX/etc/systemd/system"
STATE="$PREFIX/var/lib/rush-agent"
FSTAB="$PREFIX/etc/fstab"

say() { echo "install-agent: $*"; }
run() {
  # Print, then run unless --dry-run.
  echo "+ $*"
  [ "$DRY_RUN" -eq 1 ] || "$@"
}
write_file() {
  # write_file PATH MODE [secret] < content: atomic, with the mode set before the content
  # lands; a dry run shows the content, with values redacted for a secret file.
  local path=$1 mode=$2 secret=${3:-} tmp
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "+ write $path (mode $mode):"
    if [ -n "$secret" ]; then
      sed '/PASSWORD\|password/s/=.*/=<redacted>/; s/^/|   /'
    else
      sed 's/^/|   /'
    fi
    return
  fi
  mkdir -p "$(dirname "$path")"
  tmp=$(mktemp "$path.XXXXXX")
  chmod "$mode" "$tmp"
  cat >"$tmp"
  mv -f "$tmp" "$path"
}

# 1. System packages -------------------------------------------------------------------
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
"$PYTHON" -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$NO_APT" -eq 1 ]; then
    say "WARNING: missing ${missing[*]} and --no-apt given: install them before starting the agent"
  else
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  say "ffmpeg and python venv present"
fi

# 2. Virtualenv --------------------------------------------------------------------------
venv_args=()
[ "$SYSTEM_SITE" -eq 1 ] && venv_args+=(--system-site-packages)
if [ ! -x "$VENV/bin/python" ]; then
  run mkdir -p "$OPT"
  run "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
fi
run "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIP_ARGS[@]}" "$SOURCE"

# 3. Agent config (no secret in it) --------------------------------------------------------
config_body() {
  cat <<EOF
# RushIndexer agent $AGENT_ID (written by install-agent.sh; see config.example.toml).
data_dir = "$STATE"

[mqtt]
host = "$MQTT_HOST"
port = $MQTT_PORT
# username/password come from $ETC/agent.env (RUSH_MQTT__USERNAME / RUSH_MQTT__PASSWORD)

[agent]
id = "$AGENT_ID"
library_mount = "$MOUNT"
library_id = "$LIBRARY_ID"
work_dir = "$STATE/work"

[agent.proxy]
hwaccel = "$HWACCEL"
EOF
}
if [ -e "$ETC/agent.toml" ]; then
  say "$ETC/agent.toml exists: kept (remove it to regenerate)"
else
  config_body | write_file "$ETC/agent.toml" 0644
fi

# 4. Credentials (EnvironmentFile, 0600 root: systemd reads it before dropping privileges) ---
if [ -n "$MQTT_PASSWORD_FILE" ]; then
  [ -r "$MQTT_PASSWORD_FILE" ] || die "cannot read $MQTT_PASSWORD_FILE"
  MQTT_PASSWORD=$(head -n1 "$MQTT_PASSWORD_FILE")
else
  MQTT_PASSWORD=$("$PYTHON" -c "import secrets; print(secrets.token_urlsafe(24))")
  say "generated an MQTT password for $MQTT_USER"
fi
say "on the broker host (password file of deploy/mosquitto/mosquitto.conf), run:"
say "  mosquitto_passwd -b /etc/mosquitto/rush.passwd $MQTT_USER '<password from $ETC/agent.env>'"
case "$MQTT_PASSWORD" in *$'\n'*|*"'"*) die "the MQTT password may not contain quotes or newlines" ;; esac
if [ -e "$ETC/agent.env" ]; then
  say "$ETC/agent.env exists: kept"
  [ "$DRY_RUN" -eq 1 ] || chmod 0600 "$ETC/agent.env"
else
  printf "RUSH_MQTT__USERNAME=%s\nRUSH_MQTT__PASSWORD=%s\n" "$MQTT_USER" "$MQTT_PASSWORD" \
    | write_file "$ETC/agent.env" 0600 secret
fi

# 5. Mount line -------------------------------------------------------------------------------
# The agent writes .derived/ on the share, so the mount is read-write; hardening keeps the
# originals read-only for the agent process (ReadOnlyPaths in the unit).
if [ "$MOUNT_TYPE" = cifs ]; then
  [ -n "$SHARE" ] || SHARE="//$MQTT_HOST/RUSHES_DB"
  opts="credentials=$ETC/cifs-credentials,uid=rush-agent,gid=rush-agent,file_mode=0644,dir_mode=0755,vers=3.0,noserverino,_netdev,nofail,x-systemd.automount"
else
  [ -n "$SHARE" ] || SHARE="$MQTT_HOST:/volume1/RUSHES_DB"
  opts="rw,hard,noatime,nfsvers=4.1,_netdev,nofail,x-systemd.automount"
fi
FSTAB_LINE="$SHARE ${MOUNT// /\\040} $MOUNT_TYPE $opts 0 0"
say "fstab line for the library share:"
echo "    $FSTAB_LINE"
if [ "$APPLY" -eq 1 ]; then
  if [ -f "$FSTAB" ] && grep -qF -- "$FSTAB_LINE" "$FSTAB"; then
    say "$FSTAB already has it"
  elif [ "$DRY_RUN" -eq 1 ]; then
    echo "+ append to $FSTAB"
  else
    mkdir -p "$(dirname "$FSTAB")"
    printf '%s\n' "$FSTAB_LINE" >>"$FSTAB"
    say "appended to $FSTAB"
  fi
  run mkdir -p "$PREFIX$MOUNT"
  if [ "$MOUNT_TYPE" = cifs ] && [ ! -e "$ETC/cifs-credentials" ]; then
    printf "username=CHANGE_ME\npassword=CHANGE_ME\n" | write_file "$ETC/cifs-credentials" 0600 secret
    say "edit $ETC/cifs-credentials (the SMB user of this agent), then: mount $MOUNT"
  fi
else
  say "(not written: rerun with --apply to append it to $FSTAB)"
fi

# 6. systemd unit -----------------------------------------------------------------------------
unit_body() {
  sed -e "s#/opt/rush/#$OPT/#g" \
      -e "s#/etc/rush/#$ETC/#g" \
      -e "s#/var/lib/rush-agent#$STATE#g" \
      -e "s#/mnt/rushes#$MOUNT#g" \
      "$SOURCE/deploy/systemd/rush-agent.service"
}
[ -f "$SOURCE/deploy/systemd/rush-agent.service" ] || die "unit template missing in $SOURCE"
unit_body | write_file "$UNIT_DIR/rush-agent.service" 0644
run mkdir -p "$STATE/work"

if [ -z "$PREFIX" ] && [ "$DRY_RUN" -eq 0 ]; then
  if ! id rush-agent >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir "$STATE" --shell /usr/sbin/nologin rush-agent
  fi
  for group in video render; do
    if getent group "$group" >/dev/null; then run usermod -a -G "$group" rush-agent; fi
  done
  run chown -R rush-agent:rush-agent "$STATE"
  run systemctl daemon-reload
  run systemctl enable --now rush-agent.service
else
  say "unit written; to start it on a real install: systemctl daemon-reload && systemctl enable --now rush-agent"
fi
say "done: agent $AGENT_ID, config $ETC/agent.toml, unit $UNIT_DIR/rush-agent.service"
