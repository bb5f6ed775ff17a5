#!/usr/bin/env bash
# Installs what icefall_lite needs and is missing: Debian's espeak-ng and sox, and requirements.txt's pinned
# Python packages (into REPO/.venv where the system Python is externally managed). run.sh and test.sh do the
# same check first, so calling this yourself is optional. Fast when everything is present.
set -euo pipefail
repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (install.sh) $*"; }
# shellcheck source=icefall_lite/shell/environment.sh
source "$repo_root/icefall_lite/shell/environment.sh"
ensure_environment "$repo_root"
log "everything is installed (python: $python)"
