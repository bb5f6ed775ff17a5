#!/usr/bin/env bash
# The main job: prepare the data (the embedded synthetic corpus unless --dl-dir holds LibriSpeech).
# Training, decoding and export join this script as the recipe grows; --stage/--stop-stage pick a part.
#
#   ./run.sh [--dl-dir download] [--synthetic-hours 5] [--nj 2]
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
exec ./prepare.sh --stage 0 --stop-stage 5 "$@"
