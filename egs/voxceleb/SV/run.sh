#!/usr/bin/env bash
# The speaker recognition recipe, one command: prepare the data (the synthesized VoxCeleb-format corpus unless
# DL_DIR/VoxCeleb1 exists), train the Conformer + self-attentive pooling + AM-softmax model, evaluate
# identification and verification, export the embedding extractor (TorchScript, ONNX), identify a few files with
# pretrained.py, and print the table. Every stage skips work already done.
#
#   ./run.sh [--stage 0] [--stop-stage 6] [--dl-dir download] [--nj 2] [--num-epochs 6] [--world-size 2]
#
# Stages:
#   0-2  prepare.sh: corpus, lhotse manifests and trial list, fbank of train / valid / iden / test
#   3    conformer_am_softmax/train.py           -> EXP/epoch-*.pt, EXP/log/, EXP/tensorboard/
#   4    conformer_am_softmax/evaluate.py        -> EXP/evaluation/{summary,identification,scores}-*.txt, scores-*.png
#   5    conformer_am_softmax/export.py          -> EXP/pretrained.pt, EXP/embedding_extractor.{pt,onnx}
#   6    pretrained.py on two held-out speakers (enrolled from their own files), then the results table
# EXP is egs/voxceleb/SV/conformer_am_softmax/exp. Extra model options go to every script through MODEL_OPTIONS,
# e.g. MODEL_OPTIONS="--encoder transformer --pooling mean --loss softmax" ./run.sh --stage 3.
set -euo pipefail

recipe_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo_root=$(cd "$recipe_dir/../../.." && pwd)
caller_dir=$PWD
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

stage=0
stop_stage=6
dl_dir=download
nj=2
num_epochs=6
world_size=2
readonly max_stage=6
readonly exp_dir=conformer_am_softmax/exp
read -r -a model_options <<< "${MODEL_OPTIONS:-}"

# shellcheck source=../../../icefall_lite/shell/stages.sh
source "$repo_root/icefall_lite/shell/stages.sh"

while (( $# > 0 )); do
  option=$1
  (( $# >= 2 )) || die "$option needs a value (see the header of $0)"
  case "$option" in
    --stage) stage=$2 ;;
    --stop-stage|--stop_stage) stop_stage=$2 ;;
    --dl-dir|--dl_dir) dl_dir=$2; [[ "$dl_dir" = /* ]] || dl_dir="$caller_dir/$dl_dir" ;;
    --nj) nj=$2 ;;
    --num-epochs) num_epochs=$2 ;;
    --world-size) world_size=$2 ;;
    *) die "unknown option '$option'. Options: --stage --stop-stage --dl-dir --nj --num-epochs --world-size" ;;
  esac
  shift 2
done
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage and --stop-stage expect integers"
(( stage <= stop_stage && stop_stage <= max_stage )) || die "need --stage <= --stop-stage <= $max_stage"
[[ "$num_epochs" =~ ^[0-9]+$ ]] && (( num_epochs >= 2 )) || die "--num-epochs must be >= 2 (evaluation averages 2 epochs)"
# shellcheck source=../../../icefall_lite/shell/environment.sh
source "$repo_root/icefall_lite/shell/environment.sh"
ensure_environment "$repo_root"
cd "$recipe_dir"
checkpoint=(--exp-dir "$exp_dir" --epoch "$num_epochs" --avg 2)

if (( stage <= 2 )); then
  banner "0-2: data preparation"
  ./prepare.sh --stage "$stage" --stop-stage $(( stop_stage < 2 ? stop_stage : 2 )) --dl-dir "$dl_dir" --nj "$nj"
fi

if run_stage 3; then
  banner "3: training"
  # Two DDP processes of one thread each on the 2-core machine (as the ASR recipe's demo training).
  run_once "$exp_dir/.train.done" ./conformer_am_softmax/train.py "${model_options[@]}" --exp-dir "$exp_dir" \
    --num-epochs "$num_epochs" --world-size "$world_size" --num-threads 1 --num-workers 1
fi

if run_stage 4; then
  banner "4: evaluation"
  run_once "$exp_dir/.evaluate.done" ./conformer_am_softmax/evaluate.py "${model_options[@]}" "${checkpoint[@]}"
fi

if run_stage 5; then
  banner "5: export"
  run_once "$exp_dir/.export.done" ./conformer_am_softmax/export.py "${model_options[@]}" "${checkpoint[@]}"
fi

if run_stage 6; then
  banner "6: pretrained.py and the results table"
  # Enrol two unseen speakers from all but one of their files; identify the files left out (with the ONNX-checked
  # TorchScript extractor, torch alone).
  enrol_dir=$exp_dir/enrol
  rm -rf "$enrol_dir"
  held_out=()
  for speaker in $(awk -F'\t' '$5 == "test" { print $1 }' "$dl_dir/VoxCeleb1/vox1_meta.csv" | head -n 2); do
    mapfile -t files < <(find "$dl_dir/VoxCeleb1/wav/$speaker" -name '*.wav' | sort)
    mkdir -p "$enrol_dir/$speaker"
    cp "${files[@]:1}" "$enrol_dir/$speaker/"
    held_out+=("${files[0]}")
  done
  ./conformer_am_softmax/pretrained.py --nn-model-filename "$exp_dir/embedding_extractor.pt" \
    --enrol-dir "$enrol_dir" "${held_out[@]}"
  echo
  summary=$(ls -t "$exp_dir"/evaluation/summary-*.txt | head -n 1)
  log "Results ($summary):"
  awk -F'\t' '{ printf "| %-32s | %8.2f%s |\n", $1, ($1 ~ /dcf/ ? $2 : 100 * $2), ($1 ~ /dcf/ ? " " : "%") }' "$summary"
fi
