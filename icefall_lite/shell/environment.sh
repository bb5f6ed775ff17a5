# Everything the recipes need, installed when missing and checked in about a second when present: the system
# packages (espeak-ng, sox) and the pinned Python packages of requirements.txt with this repository's library.
# Where the system Python refuses pip (PEP 668, Debian 12 / Ubuntu 23.04 and later), they go into a virtual
# environment REPO/.venv, which is then used from here on (and by every script started from the caller: PATH).
#
# Sourced by install.sh, run.sh and test.sh:   ensure_environment "$repo_root" [test]
# ("test" adds what only the tests need: Debian's chromium and chromium-driver for the browser test.)
# Needs a `log` function. $PYTHON picks the interpreter (default python3).

# command:Debian package
readonly required_commands=(espeak-ng:espeak-ng sox:sox)
readonly test_commands=(chromium:chromium chromedriver:chromium-driver)

# The Debian packages (apt-get install) given as arguments, as root or through passwordless sudo; otherwise a
# message naming them.
install_system_packages() {
  local runner=()
  if [[ $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      runner=(sudo)
    else
      echo "error: missing system packages: $*. Install them as root: apt-get install -y --no-install-recommends $*" >&2
      return 1
    fi
  fi
  log "installing system packages: $*"
  "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
  "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# The Debian packages of the commands given as command:package arguments that are not on PATH, installed.
ensure_system_packages() {
  local missing=() entry
  for entry in "$@"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
  done
  (( ${#missing[@]} == 0 )) || install_system_packages "${missing[@]}"
}

# Creates REPO/.venv ($1) with $python, installing Debian's python3-venv first if venv is missing.
create_virtual_environment() {
  local venv=$1
  log "$python is externally managed (PEP 668): installing into the virtual environment $venv"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    install_system_packages python3-venv || return 1
    "$python" -m venv "$venv"
  fi
}

ensure_environment() {
  local repo_root=$1 purpose=${2:-run}
  local commands=("${required_commands[@]}")
  [[ $purpose != test ]] || commands+=("${test_commands[@]}")
  local venv=$repo_root/.venv checker=$repo_root/icefall_lite/shell/check_requirements.py problems
  python=${PYTHON:-python3}
  ensure_system_packages "${commands[@]}" || return 1
  if [[ ! -x $venv/bin/python3 ]] && "$python" "$checker" --externally-managed; then
    create_virtual_environment "$venv" || return 1
  fi
  if [[ -x $venv/bin/python3 ]]; then
    export VIRTUAL_ENV=$venv PATH=$venv/bin:$PATH
    python=$venv/bin/python3
  fi
  if ! problems=$("$python" "$checker" "$repo_root/requirements.txt" "$repo_root"); then
    log "installing the pinned Python packages (${problems//$'\n'/; })"
    (cd "$repo_root" && "$python" -m pip install -q -r requirements.txt)
  fi
}
