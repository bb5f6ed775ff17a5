#!/usr/bin/env bash
# Runs the LibriSpeech recipe's data preparation (egs/librispeech/ASR/prepare.sh) from the repo root.
# Data goes where the recipe scripts look for it: egs/librispeech/ASR/{download,data}. Options are the recipe's;
# a relative --dl-dir is taken relative to the directory you run this from.
set -euo pipefail
args=()
while (( $# > 0 )); do
  if [[ ( "$1" == --dl-dir || "$1" == --dl_dir ) && $# -ge 2 && "$2" != /* ]]; then
    args+=("$1" "$PWD/$2"); shift 2
  else
    args+=("$1"); shift
  fi
done
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/egs/librispeech/ASR"
exec ./prepare.sh "${args[@]}"
