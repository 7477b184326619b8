# Shared by scripts/test, scripts/demo and scripts/bench: set up .venv.
# Usage: . scripts/lib.sh; setup_venv [EXTRAS]   (EXTRAS e.g. "[dev]")

quiet() {  # run a command, showing its output only if it fails
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

ensure_libsodium() {  # pysodium (crypto/ristretto.py) loads the system libsodium >= 1.0.18
  if ldconfig -p 2>/dev/null | grep -q 'libsodium\.so'; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing libsodium23 (apt-get)"
    quiet apt-get update
    quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y libsodium23
  else
    echo "libsodium is not installed: install it (Debian: apt-get install libsodium23), then re-run" >&2
    return 1
  fi
}

setup_venv() {
  local extras=${1:-}
  ensure_libsodium
  local python=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    quiet "$python" -m venv .venv
  fi
  echo "== installing wlx$extras into .venv"
  quiet .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip
  quiet .venv/bin/python -m pip install --disable-pip-version-check \
    -e ".$extras" --config-settings editable_mode=strict
}
