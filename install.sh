#!/usr/bin/env bash
# Installs everything icefall_lite needs on a fresh Debian machine (run as root, or with sudo available).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
sudo_if_needed() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
sudo_if_needed apt-get update -qq
sudo_if_needed apt-get install -y --no-install-recommends espeak-ng sox
python3 -m pip install -r requirements.txt
