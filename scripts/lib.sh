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

setup_venv() {
  local extras=${1:-}
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
