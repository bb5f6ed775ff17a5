#!/usr/bin/env bash
# Data preparation for the LibriSpeech recipe (icefall's stage numbering).
#
#   ./prepare.sh [--stage 0] [--stop-stage 5] [--dl-dir download] [--vocab-size 500]
#                [--synthetic-hours 5] [--nj 2] [--download 0]
#                [--hf-dataset DIR [--hf-audio-column audio] [--hf-text-column text]
#                 [--hf-sampling-rate-column sampling_rate] [--hf-split-map train=train-clean-100,...]]
#
# Stages:
#   0  corpus: DL_DIR/LibriSpeech if it exists (with --download 1, fetched first with lhotse's downloaders,
#      MUSAN too); else with --hf-dataset, that Hugging Face dataset's splits written in LibriSpeech's layout
#      (local/import_hf_dataset.py; needs `datasets`); otherwise a LibriSpeech-format corpus synthesized with espeak-ng
#   1  lhotse manifests of LibriSpeech          -> data/manifests/librispeech_{recordings,supervisions}_*.jsonl.gz
#   2  noise manifests: DL_DIR/musan, or a synthesized noise set -> data/manifests/musan_recordings_*.jsonl.gz
#   3  fbank (80-dim, lilcom; speed 0.9/1.1 on train) -> data/fbank/librispeech_cuts_{subset}.jsonl.gz
#   4  noise fbank                               -> data/fbank/musan_cuts.jsonl.gz
#   5  BPE: sentencepiece unigram, <blk>=0 <sos/eos>=1 <unk>=2 -> data/lang_bpe_V/{bpe.model,tokens.txt,...}
# Every stage skips work that is already done. Paths are relative to the directory it is run from.
set -euo pipefail

recipe_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo_root=$(cd "$recipe_dir/../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
local_dir="$recipe_dir/local"

stage=0
stop_stage=5
dl_dir=download
vocab_size=500
synthetic_hours=5
nj=2
download=0
seed=0
hf_dataset=
hf_options=()
readonly max_stage=5
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
    --vocab-size|--vocab_size) vocab_size=$value ;;
    --synthetic-hours|--synthetic_hours) synthetic_hours=$value ;;
    --nj) nj=$value ;;
    --download) download=$value ;;
    --seed) seed=$value ;;
    --hf-dataset|--hf_dataset) hf_dataset=$value ;;
    --hf-audio-column|--hf-text-column|--hf-sampling-rate-column|--hf-split-map) hf_options+=("$option" "$value") ;;
    *) die "unknown option '$option'. Options: --stage --stop-stage --dl-dir --vocab-size --synthetic-hours --nj --download --seed --hf-dataset --hf-audio-column --hf-text-column --hf-sampling-rate-column --hf-split-map" ;;
  esac
  shift 2
done

require_int --stage "$stage" 0 "$max_stage"
require_int --stop-stage "$stop_stage" 0 "$max_stage"
(( stage <= stop_stage )) || die "--stage ($stage) is after --stop-stage ($stop_stage)"
require_int --vocab-size "$vocab_size" 3 1000000
require_int --nj "$nj" 1 1024
require_int --download "$download" 0 1
require_int --seed "$seed" 0 2147483647
[[ "$synthetic_hours" =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v h="$synthetic_hours" 'BEGIN { exit !(h > 0) }' \
  || die "--synthetic-hours expects a positive number, got '$synthetic_hours'"

corpus_dir=$dl_dir/LibriSpeech
manifest_dir=data/manifests
fbank_dir=data/fbank
lang_dir=data/lang_bpe_${vocab_size}

if run_stage 0; then
  log "Stage 0: corpus in $corpus_dir"
  if [[ "$download" == 1 && ! -d "$corpus_dir" ]]; then
    lhotse download librispeech --full "$dl_dir"
    [[ -d "$dl_dir/musan" ]] || lhotse download musan "$dl_dir"
  fi
  if [[ -d "$corpus_dir" ]]; then
    log "Using the corpus in $corpus_dir"
  elif [[ -n "$hf_dataset" ]]; then
    log "Writing the Hugging Face dataset $hf_dataset as a LibriSpeech-format corpus in $corpus_dir"
    python3 "$local_dir/import_hf_dataset.py" --hf-dataset "$hf_dataset" --out-dir "$corpus_dir" "${hf_options[@]}"
  else
    for program in $system_packages; do
      command -v "$program" >/dev/null || die "'$program' is not installed. Install the system packages with: $install_command"
    done
    log "No LibriSpeech in $dl_dir: synthesizing $synthetic_hours hours of training speech with espeak-ng"
    python3 "$local_dir/synthesize_librispeech.py" --out-dir "$corpus_dir" --hours "$synthetic_hours" --nj "$nj" --seed "$seed"
  fi
fi

librispeech_manifests() {
  lhotse prepare librispeech -j "$nj" "$corpus_dir" "$manifest_dir"
  python3 "$local_dir/validate_manifest.py" "$manifest_dir"/librispeech_*.jsonl.gz
}

noise_manifests() {
  if [[ -d "$dl_dir/musan" ]]; then
    lhotse prepare musan "$dl_dir/musan" "$manifest_dir"
  else
    log "No MUSAN in $dl_dir: synthesizing a small noise set"
    python3 "$local_dir/synthesize_noise.py" --out-dir "$dl_dir/synthetic_noise" --manifest-dir "$manifest_dir" --seed "$seed"
  fi
  python3 "$local_dir/validate_manifest.py" "$manifest_dir"/musan_recordings_*.jsonl.gz
}

librispeech_fbank() {
  python3 "$local_dir/compute_fbank_librispeech.py" --manifest-dir "$manifest_dir" --fbank-dir "$fbank_dir" --nj "$nj"
  python3 "$local_dir/validate_manifest.py" "$fbank_dir"/librispeech_cuts_*.jsonl.gz
}

noise_fbank() {
  python3 "$local_dir/compute_fbank_musan.py" --manifest-dir "$manifest_dir" --fbank-dir "$fbank_dir" --nj "$nj"
  python3 "$local_dir/validate_manifest.py" "$fbank_dir/musan_cuts.jsonl.gz"
}

if run_stage 1; then
  log "Stage 1: lhotse manifests of $corpus_dir"
  [[ -d "$corpus_dir" ]] || die "$corpus_dir not found: run stage 0 first"
  run_once "$manifest_dir/.librispeech.done" librispeech_manifests
fi

if run_stage 2; then
  log "Stage 2: noise manifests"
  run_once "$manifest_dir/.musan.done" noise_manifests
fi

if run_stage 3; then
  log "Stage 3: fbank of LibriSpeech"
  run_once "$fbank_dir/.librispeech.done" librispeech_fbank
fi

if run_stage 4; then
  log "Stage 4: fbank of the noise set"
  run_once "$fbank_dir/.musan.done" noise_fbank
fi

if run_stage 5; then
  log "Stage 5: BPE model with vocab size $vocab_size in $lang_dir"
  run_once "$lang_dir/.done" python3 "$local_dir/prepare_lang_bpe.py" \
    --corpus-dir "$corpus_dir" --lang-dir "$lang_dir" --vocab-size "$vocab_size"
fi

log "Done: stages $stage to $stop_stage"
