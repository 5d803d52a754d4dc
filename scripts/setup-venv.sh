#!/usr/bin/env bash
# Create (or refresh) the Python venv used by edgec's checks and print its python path.
#
#   scripts/setup-venv.sh                  # venv at <repo>/.venv
#   EDGEC_VENV=/tmp/v scripts/setup-venv.sh
#   PY=$(scripts/setup-venv.sh)            # progress goes to stderr, the path to stdout
#
# Environment:
#   EDGEC_VENV   venv directory (default: <repo>/.venv)
#   PYTHON       interpreter used to create it (default: python3; needs >= 3.9, 3.11 is pinned)
#
# Idempotent: tests/python/requirements.txt is installed only when the sha256 stamp kept inside
# the venv (.edgec-requirements.sha256) differs from the file or the pinned packages no longer
# import. A second run with nothing changed makes no network access.
#
# On Debian/Ubuntu the system python lacks ensurepip unless python3-venv is installed. Running as
# root with apt-get available, this script installs it; otherwise it stops with instructions.
set -euo pipefail

log() { printf 'setup-venv: %s\n' "$*" >&2; }
die() { printf 'setup-venv: error: %s\n' "$*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQ="$ROOT/tests/python/requirements.txt"
VENV=${EDGEC_VENV:-$ROOT/.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.edgec-requirements.sha256"
VPY="$VENV/bin/python"

[[ -f "$REQ" ]] || die "missing $REQ"
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install python3 (3.11) or set PYTHON"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "$("$PYTHON" -V 2>&1) is too old; python >= 3.9 is needed (3.11 is what CI uses)"
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

req_hash() {
  "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

venv_works() {
  [[ -x "$VPY" ]] && "$VPY" -c 'import sys' >/dev/null 2>&1 && "$VPY" -m pip --version >/dev/null 2>&1
}

install_python_venv_pkg() {
  # Debian splits ensurepip's wheels into python3-venv / python3.X-venv.
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  # install only what is missing: re-installing an installed package would upgrade it
  local pkgs=() p
  for p in python3-venv "python${PYVER}-venv"; do
    dpkg -s "$p" >/dev/null 2>&1 || pkgs+=("$p")
  done
  if [[ ${#pkgs[@]} -eq 0 ]]; then
    log "python3-venv and python${PYVER}-venv are already installed; not an apt problem"
    return 1
  fi
  log "installing ${pkgs[*]} (apt-get update first)"
  apt-get update -qq >&2 || return 1
  if ! apt-cache show "python${PYVER}-venv" >/dev/null 2>&1; then
    pkgs=("${pkgs[@]/python${PYVER}-venv}")
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs[*]} >&2
}

create_venv() {
  local err
  log "creating venv at $VENV with $("$PYTHON" -V 2>&1)"
  if err=$("$PYTHON" -m venv --clear "$VENV" 2>&1); then
    return 0
  fi
  if grep -qi 'ensurepip' <<<"$err"; then
    log "'$PYTHON -m venv' failed because ensurepip is not available:"
    printf '%s\n' "$err" >&2
    if install_python_venv_pkg; then
      log "retrying venv creation"
      "$PYTHON" -m venv --clear "$VENV" >&2 && return 0
      die "venv creation still fails after installing python3-venv"
    fi
    die "ensurepip is missing. On Debian/Ubuntu run (as root): apt-get update && apt-get install -y python3-venv python${PYVER}-venv; then re-run this script"
  fi
  printf '%s\n' "$err" >&2
  die "'$PYTHON -m venv $VENV' failed"
}

if ! venv_works; then
  [[ -e "$VENV" ]] && log "existing $VENV is missing or broken; recreating it"
  create_venv
  rm -f "$STAMP"
fi

want=$(req_hash "$REQ")
have=$(cat "$STAMP" 2>/dev/null || true)
if [[ "$want" == "$have" ]] && "$VPY" -c 'import coremltools, onnx, onnxruntime, numpy' >/dev/null 2>&1; then
  log "requirements up to date ($VENV)"
else
  log "upgrading pip"
  "$VPY" -m pip install --disable-pip-version-check -q --upgrade pip >&2
  log "installing $REQ"
  "$VPY" -m pip install --disable-pip-version-check -q -r "$REQ" >&2
  "$VPY" -m pip check >&2 || die "pip check found broken requirements in $VENV"
  "$VPY" -c 'import coremltools, onnx, onnxruntime, numpy' 2>/dev/null \
    || die "the pinned packages installed but do not import"
  printf '%s\n' "$want" >"$STAMP"
  log "requirements installed"
fi

echo "$VPY"
