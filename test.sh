#!/usr/bin/env bash
# The tests: install whatever is missing (as install.sh, and the browser test's chromium and chromium-driver),
# then run the suite with the installed Python.
#   ./test.sh [pytest options]      (default: -q test)
set -euo pipefail
repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (test.sh) $*"; }
# shellcheck source=icefall_lite/shell/environment.sh
source "$repo_root/icefall_lite/shell/environment.sh"
ensure_environment "$repo_root" test
cd "$repo_root"
(( $# )) || set -- -q test
exec "$python" -m pytest "$@"
