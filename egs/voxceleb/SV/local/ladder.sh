#!/usr/bin/env bash
# The speaker classification exercise's ladder on the prepared corpus: one model per rung, every rung with the
# same data, crops and updates as run.sh's training (6 epochs, 2 DDP processes), each evaluated as run.sh stage 4;
# then one table of identification accuracy and verification EER / minDCF.
#
#   ./local/ladder.sh [RUNG...]    (from egs/voxceleb/SV, after ./prepare.sh; default: every rung, in order)
#
# Rungs (exp dir conformer_am_softmax/exp-ladder-RUNG):
#   transformer_mean_softmax           --encoder transformer --pooling mean --loss softmax
#   conformer_mean_softmax             --encoder conformer --pooling mean --loss softmax
#   conformer_attention_am_softmax     --encoder conformer --pooling self-attention --loss am-softmax (run.sh's model)
#   conformer_statistics_am_softmax    --encoder conformer --pooling attentive-statistics --loss am-softmax
# Finished trainings and evaluations are not redone. MASTER_PORT=P picks another DDP port than 12354 (to run beside
# another training).
set -euo pipefail

recipe_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
repo_root=$(cd "$recipe_dir/../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
cd "$recipe_dir"
readonly num_epochs=6
readonly master_port=${MASTER_PORT:-12354}
readonly all_rungs=(transformer_mean_softmax conformer_mean_softmax conformer_attention_am_softmax
                    conformer_statistics_am_softmax)

# shellcheck source=../../../../icefall_lite/shell/stages.sh
source "$repo_root/icefall_lite/shell/stages.sh"

# The model options of RUNG ($1) into $rung_options.
rung_settings() {
  case "$1" in
    transformer_mean_softmax) rung_options=(--encoder transformer --pooling mean --loss softmax) ;;
    conformer_mean_softmax) rung_options=(--encoder conformer --pooling mean --loss softmax) ;;
    conformer_attention_am_softmax) rung_options=(--encoder conformer --pooling self-attention --loss am-softmax) ;;
    conformer_statistics_am_softmax)
      rung_options=(--encoder conformer --pooling attentive-statistics --loss am-softmax) ;;
    *) die "unknown rung '$1' (rungs: ${all_rungs[*]})" ;;
  esac
}

rungs=("$@")
(( ${#rungs[@]} )) || rungs=("${all_rungs[@]}")
for rung in "${rungs[@]}"; do rung_settings "$rung"; done
for rung in "${rungs[@]}"; do
  rung_settings "$rung"
  exp_dir=conformer_am_softmax/exp-ladder-$rung
  log "rung $rung: ${rung_options[*]}"
  run_once "$exp_dir/.train.done" ./conformer_am_softmax/train.py "${rung_options[@]}" --exp-dir "$exp_dir" \
    --num-epochs "$num_epochs" --world-size 2 --master-port "$master_port" --num-threads 1 --num-workers 1
  run_once "$exp_dir/.evaluate.done" ./conformer_am_softmax/evaluate.py "${rung_options[@]}" --exp-dir "$exp_dir" \
    --epoch "$num_epochs" --avg 2
done

echo
echo "| rung | model options | parameters | top-1 | top-5 | EER | minDCF(0.01) |"
echo "|---|---|---|---|---|---|---|"
for rung in "${rungs[@]}"; do
  rung_settings "$rung"
  exp_dir=conformer_am_softmax/exp-ladder-$rung
  parameters=$(grep -m1 -o "number of model parameters: [0-9]*" "$exp_dir"/log/log-train-* | head -n 1 | awk '{ print $NF }')
  awk -F'\t' -v rung="$rung" -v options="${rung_options[*]}" -v parameters="$parameters" '
    { value[$1] = $2 }
    END { printf "| %s | %s | %.2f M | %.2f%% | %.2f%% | %.2f%% | %.3f |\n", rung, options, parameters / 1e6,
          100 * value["identification_top1_accuracy"], 100 * value["identification_top5_accuracy"],
          100 * value["verification_eer"], value["verification_min_dcf_p0.01"] }' \
    "$exp_dir/evaluation/summary-epoch-$num_epochs-avg-2.txt"
done
