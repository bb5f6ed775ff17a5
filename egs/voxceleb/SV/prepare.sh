#!/usr/bin/env bash
# Data preparation for the VoxCeleb speaker recognition recipe.
#
#   ./prepare.sh [--stage 0] [--stop-stage 2] [--dl-dir download] [--nj 2] [--seed 0]
#                [--synthetic-speakers 300] [--synthetic-utterances 24]
#                [--synthetic-test-speakers 40] [--synthetic-test-utterances 12]
#                [--valid-per-speaker 1] [--iden-per-speaker 3]
#
# Stages:
#   0  corpus: DL_DIR/VoxCeleb1 (and DL_DIR/VoxCeleb2 if present) if it exists; otherwise a VoxCeleb1-format corpus
#      synthesized with espeak-ng (training speakers x utterances, held-out speakers with a trial list)
#   1  lhotse manifests (lhotse's VoxCeleb recipe; the synthesized corpus is read directly) and the trial list
#      -> data/manifests/voxceleb_{recordings,supervisions}_{train,test}.jsonl.gz, data/manifests/voxceleb_trials.txt
#   2  80-dim fbank (lilcom) of train / valid / iden (held out of the training speakers) / test, speaker list
#      -> data/fbank/voxceleb_cuts_{train,valid,iden,test}.jsonl.gz, data/fbank/voxceleb_speakers.txt
# Every stage skips work that is already done. Paths are relative to the directory it is run from.
set -euo pipefail

recipe_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo_root=$(cd "$recipe_dir/../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
local_dir="$recipe_dir/local"

stage=0
stop_stage=2
dl_dir=download
nj=2
seed=0
synthetic_speakers=300
synthetic_utterances=24
synthetic_test_speakers=40
synthetic_test_utterances=12
valid_per_speaker=1
iden_per_speaker=3
readonly max_stage=2
readonly system_packages="espeak-ng sox"
readonly install_command="apt-get install -y --no-install-recommends $system_packages"

# shellcheck source=../../../icefall_lite/shell/stages.sh
source "$repo_root/icefall_lite/shell/stages.sh"

while (( $# > 0 )); do
  option=$1
  (( $# >= 2 )) || die "$option needs a value (see the header of $0)"
  value=$2
  case "$option" in
    --stage) stage=$value ;;
    --stop-stage|--stop_stage) stop_stage=$value ;;
    --dl-dir|--dl_dir) dl_dir=$value ;;
    --nj) nj=$value ;;
    --seed) seed=$value ;;
    --synthetic-speakers) synthetic_speakers=$value ;;
    --synthetic-utterances) synthetic_utterances=$value ;;
    --synthetic-test-speakers) synthetic_test_speakers=$value ;;
    --synthetic-test-utterances) synthetic_test_utterances=$value ;;
    --valid-per-speaker) valid_per_speaker=$value ;;
    --iden-per-speaker) iden_per_speaker=$value ;;
    *) die "unknown option '$option'. Options: --stage --stop-stage --dl-dir --nj --seed --synthetic-speakers --synthetic-utterances --synthetic-test-speakers --synthetic-test-utterances --valid-per-speaker --iden-per-speaker" ;;
  esac
  shift 2
done

require_int --stage "$stage" 0 "$max_stage"
require_int --stop-stage "$stop_stage" 0 "$max_stage"
(( stage <= stop_stage )) || die "--stage ($stage) is after --stop-stage ($stop_stage)"
require_int --nj "$nj" 1 1024
require_int --seed "$seed" 0 2147483647
require_int --synthetic-speakers "$synthetic_speakers" 2 100000
require_int --synthetic-test-speakers "$synthetic_test_speakers" 2 100000
require_int --valid-per-speaker "$valid_per_speaker" 0 1000
require_int --iden-per-speaker "$iden_per_speaker" 0 1000
require_int --synthetic-utterances "$synthetic_utterances" $(( valid_per_speaker + iden_per_speaker + 1 )) 100000
require_int --synthetic-test-utterances "$synthetic_test_utterances" 2 100000

corpus_dir=$dl_dir/VoxCeleb1
voxceleb2_dir=$dl_dir/VoxCeleb2
manifest_dir=data/manifests
fbank_dir=data/fbank

if run_stage 0; then
  log "Stage 0: corpus in $corpus_dir"
  if [[ -d "$corpus_dir" ]]; then
    log "Using the corpus in $corpus_dir"
  else
    for program in $system_packages; do
      command -v "$program" >/dev/null || die "'$program' is not installed. Install the system packages with: $install_command"
    done
    log "No VoxCeleb1 in $dl_dir: synthesizing $synthetic_speakers x $synthetic_utterances training and" \
      "$synthetic_test_speakers x $synthetic_test_utterances held-out utterances with espeak-ng"
    python3 "$local_dir/synthesize_voxceleb.py" --out-dir "$corpus_dir" --speakers "$synthetic_speakers" \
      --utterances "$synthetic_utterances" --test-speakers "$synthetic_test_speakers" \
      --test-utterances "$synthetic_test_utterances" --nj "$nj" --seed "$seed"
  fi
fi

manifests() {
  local voxceleb2=()
  [[ -d "$voxceleb2_dir" ]] && voxceleb2=(--voxceleb2-dir "$voxceleb2_dir")
  python3 "$local_dir/prepare_manifests.py" --voxceleb1-dir "$corpus_dir" "${voxceleb2[@]}" \
    --manifest-dir "$manifest_dir" --nj "$nj"
}

if run_stage 1; then
  log "Stage 1: lhotse manifests of $corpus_dir"
  [[ -d "$corpus_dir" ]] || die "$corpus_dir not found: run stage 0 first"
  run_once "$manifest_dir/.voxceleb.done" manifests
fi

if run_stage 2; then
  log "Stage 2: fbank and the held-out subsets"
  run_once "$fbank_dir/.voxceleb.done" python3 "$local_dir/compute_fbank_voxceleb.py" --manifest-dir "$manifest_dir" \
    --fbank-dir "$fbank_dir" --nj "$nj" --valid-per-speaker "$valid_per_speaker" \
    --iden-per-speaker "$iden_per_speaker" --seed "$seed"
fi

log "Done: stages $stage to $stop_stage"
