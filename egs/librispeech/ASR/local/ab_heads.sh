#!/usr/bin/env bash
# A/B runs of the model heads on the synthetic corpus: the main job's demo model, data and updates
# (local/demo_options.sh), trained once per head set-up, then decoded with every method that set-up has.
#
#   ./local/ab_heads.sh [VARIANT...]    (from egs/librispeech/ASR, after ./prepare.sh; default: every variant)
#
# Variants (exp dir pruned_transducer_stateless7_streaming/exp-ab-VARIANT):
#   transducer      the main job's model (pruned transducer alone)
#   transducer_ctc  transducer + CTC head (--ctc-loss-scale 0.2, icefall's default)
#   ctc             CTC alone
#   ctc_aed         CTC + attention decoder (--ctc-loss-scale 0.3 --attention-decoder-loss-scale 0.7, WeNet's 0.3)
#   ctc_aed_r2l     the same with WeNet U2++'s right-to-left decoder (--attention-decoder-reverse-weight 0.3)
# Decoding: simulated streaming with 320 ms chunks, as run.sh stage 7; CTC prefix beam search and rescoring with
# beam 10 (WeNet's). Each exp dir gets RESULTS.md (local/results_table.py); finished steps are not redone.
set -euo pipefail

repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo_root/egs/librispeech/ASR"
readonly recipe=pruned_transducer_stateless7_streaming
readonly bpe_model=(--bpe-model data/lang_bpe_1000/bpe.model)
readonly all_variants=(transducer transducer_ctc ctc ctc_aed ctc_aed_r2l)

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (ab_heads.sh) $*"; }
# shellcheck source=icefall_lite/shell/stages.sh
source "$repo_root/icefall_lite/shell/stages.sh"
# shellcheck source=egs/librispeech/ASR/local/demo_options.sh
source local/demo_options.sh

# The model's head options of VARIANT ($1), its loss scales (train.py only) and the decoding methods it has, into
# $head_options, $loss_options and $methods.
variant_settings() {
  local aed=(--use-transducer 0 --use-ctc 1 --use-attention-decoder 1 "${demo_attention_decoder_options[@]}")
  local aed_scales=(--ctc-loss-scale 0.3 --attention-decoder-loss-scale 0.7)
  local ctc_methods=(ctc-greedy-search ctc-prefix-beam-search)
  local rescoring=(ctc-prefix-beam-search-attention-decoder-rescoring attention-decoder-rescoring-no-ngram)
  case "$1" in
    transducer) head_options=(); loss_options=(); methods=(greedy_search modified_beam_search) ;;
    transducer_ctc) head_options=(--use-ctc 1); loss_options=(--ctc-loss-scale 0.2)
                    methods=(greedy_search modified_beam_search ctc-greedy-search) ;;
    ctc) head_options=(--use-transducer 0 --use-ctc 1); loss_options=(--ctc-loss-scale 1)
         methods=("${ctc_methods[@]}") ;;
    ctc_aed) head_options=("${aed[@]}"); loss_options=("${aed_scales[@]}")
             methods=("${ctc_methods[@]}" "${rescoring[@]}") ;;
    ctc_aed_r2l) head_options=("${aed[@]}" --attention-decoder-reverse-weight 0.3); loss_options=("${aed_scales[@]}")
                 methods=("${ctc_methods[@]}" "${rescoring[@]}") ;;
    *) echo "ab_heads.sh: unknown variant '$1' (variants: ${all_variants[*]})" >&2; exit 1 ;;
  esac
}

# Decodes EXP_DIR ($1) with METHOD ($2): decode.py for the transducer's searches, ctc_decode.py for the rest.
decode() {
  local exp_dir=$1 method=$2
  local common=(--epoch "$demo_num_epochs" --avg 1 --use-averaged-model 1 --exp-dir "$exp_dir" "${bpe_model[@]}"
                "${demo_model_options[@]}" "${head_options[@]}" --decode-chunk-len 32 --max-duration 200 --num-threads 2)
  if [[ $method == ctc-* || $method == attention-* ]]; then
    "./$recipe/ctc_decode.py" "${common[@]}" --decoding-method "$method" --beam-size 10
  else
    "./$recipe/decode.py" "${common[@]}" --decoding-method "$method" --beam-size 4
  fi
}

variants=("$@")
(( ${#variants[@]} )) || variants=("${all_variants[@]}")
for variant in "${variants[@]}"; do
  variant_settings "$variant"
  exp_dir=$recipe/exp-ab-$variant
  log "variant $variant: ${head_options[*]:-(transducer alone)} ${loss_options[*]:-}"
  run_once "$exp_dir/.train.done" \
    "./$recipe/train.py" --exp-dir "$exp_dir" "${bpe_model[@]}" "${demo_model_options[@]}" "${head_options[@]}" \
    "${loss_options[@]}" "${demo_train_options[@]}"
  for method in "${methods[@]}"; do
    run_once "$exp_dir/.decode-$method.done" decode "$exp_dir" "$method"
  done
  ./local/results_table.py --exp-dir "$exp_dir"
done
