#!/usr/bin/env bash
# The main job: install whatever is missing (as install.sh), prepare the data, train a streaming Zipformer
# transducer, decode the test sets (simulated and real streaming, greedy and modified beam search), export to
# ONNX, decode with sherpa-onnx, and print the table of WERs and real-time factors. Every stage skips work that
# is already done.
#
#   ./run.sh [--stage 0] [--stop-stage 10] [--dl-dir download] [--synthetic-hours 5] [--nj 2]
#
# Stages (0-5 are those of prepare.sh):
#   0-5  data: corpus (synthesized with espeak-ng unless DL_DIR/LibriSpeech exists), manifests, fbank, BPE
#   6    train.py: the small demo model on the synthetic corpus, icefall's full-size model on real LibriSpeech
#   7    decode.py (simulated streaming, 320 ms chunks): greedy_search, modified_beam_search; and with the CTC head
#        (the demo model has one) ctc_decode.py: ctc-greedy-search
#   8    streaming_decode.py (real chunk-wise streaming): greedy_search, modified_beam_search
#   9    export-onnx.py, then sherpa-onnx decodes the test sets (greedy_search, 1 thread)
#   10   EXP/curves.png (training and validation loss) and the results table (EXP/RESULTS.md)
# EXP is egs/librispeech/ASR/pruned_transducer_stateless7_streaming/exp.
set -euo pipefail

repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
caller_dir=$PWD
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

stage=0
stop_stage=10
dl_dir=download  # relative to egs/librispeech/ASR unless given on the command line
synthetic_hours=5
nj=2
readonly max_stage=10
readonly recipe=pruned_transducer_stateless7_streaming
readonly exp_dir=$recipe/exp
readonly decode_chunk_len=32

# shellcheck source=icefall_lite/shell/stages.sh
source "$repo_root/icefall_lite/shell/stages.sh"

while (( $# > 0 )); do
  option=$1
  (( $# >= 2 )) || die "$option needs a value (see the header of $0)"
  case "$option" in
    --stage) stage=$2 ;;
    --stop-stage|--stop_stage) stop_stage=$2 ;;
    --dl-dir|--dl_dir) dl_dir=$2; [[ "$dl_dir" = /* ]] || dl_dir="$caller_dir/$dl_dir" ;;
    --synthetic-hours|--synthetic_hours) synthetic_hours=$2 ;;
    --nj) nj=$2 ;;
    *) die "unknown option '$option'. Options: --stage --stop-stage --dl-dir --synthetic-hours --nj" ;;
  esac
  shift 2
done
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage and --stop-stage expect integers"
(( stage <= stop_stage && stop_stage <= max_stage )) || die "need --stage <= --stop-stage <= $max_stage"
# shellcheck source=icefall_lite/shell/environment.sh
source "$repo_root/icefall_lite/shell/environment.sh"
ensure_environment "$repo_root"
cd "$repo_root/egs/librispeech/ASR"

# Stage 0 synthesizes the corpus unless DL_DIR/LibriSpeech exists. The synthetic corpus gets the small demo
# model, sized for a 2-core CPU, and 1000 BPE pieces (its ~1,500 distinct words in 1.4 pieces each; 500 pieces
# give 1.8 and clearly worse WER, docs/BENCHMARKS.md); real LibriSpeech gets icefall's default model, 500
# pieces and full-size training (see README.md).
synthetic=1
[[ -d "$dl_dir/LibriSpeech" && ! -f "$dl_dir/LibriSpeech/SYNTHETIC.txt" ]] && synthetic=0
vocab_size=$(( synthetic ? 1000 : 500 ))
readonly lang_dir=data/lang_bpe_$vocab_size
readonly bpe_model=(--bpe-model "$lang_dir/bpe.model")

if (( stage <= 5 )); then
  banner "0-5: data preparation"
  ./prepare.sh --stage "$stage" --stop-stage $(( stop_stage < 5 ? stop_stage : 5 )) \
    --dl-dir "$dl_dir" --synthetic-hours "$synthetic_hours" --nj "$nj" --vocab-size "$vocab_size"
fi

if (( synthetic )); then
  # shellcheck source=egs/librispeech/ASR/local/demo_options.sh
  source local/demo_options.sh
  model_options=("${demo_model_options[@]}" "${demo_head_options[@]}")
  num_epochs=$demo_num_epochs
  train_options=("${demo_train_options[@]}")
  avg=1
  decode_streams=50
else
  model_options=()
  num_epochs=30
  train_options=(--num-epochs $num_epochs --max-duration 750 --full-libri 1 --use-fp16 1 --world-size 1)
  avg=9
  decode_streams=100
fi
checkpoint=(--epoch "$num_epochs" --avg "$avg" --use-averaged-model 1 --exp-dir "$exp_dir")

if run_stage 6; then
  banner "6: train.py"
  run_once "$exp_dir/.train.done" \
    "./$recipe/train.py" --exp-dir "$exp_dir" "${bpe_model[@]}" "${model_options[@]}" "${train_options[@]}"
fi

if run_stage 7; then
  banner "7: decode.py (simulated streaming)"
  for method in greedy_search modified_beam_search; do
    run_once "$exp_dir/.decode-$method.done" \
      "./$recipe/decode.py" "${checkpoint[@]}" "${bpe_model[@]}" "${model_options[@]}" --decode-chunk-len $decode_chunk_len \
      --decoding-method $method --beam-size 4 --max-duration 200 --num-threads 2
  done
  if [[ " ${model_options[*]} " == *" --use-ctc 1 "* ]]; then
    run_once "$exp_dir/.decode-ctc-greedy-search.done" \
      "./$recipe/ctc_decode.py" "${checkpoint[@]}" "${bpe_model[@]}" "${model_options[@]}" --decode-chunk-len $decode_chunk_len \
      --decoding-method ctc-greedy-search --max-duration 200 --num-threads 2
  fi
fi

if run_stage 8; then
  banner "8: streaming_decode.py (real streaming)"
  for method in greedy_search modified_beam_search; do
    run_once "$exp_dir/.streaming-decode-$method.done" \
      "./$recipe/streaming_decode.py" "${checkpoint[@]}" "${bpe_model[@]}" "${model_options[@]}" --decode-chunk-len $decode_chunk_len \
      --decoding-method $method --num-decode-streams $decode_streams --num-threads 2
  done
fi

if run_stage 9; then
  banner "9: export-onnx.py and sherpa-onnx"
  suffix="epoch-$num_epochs-avg-$avg-with-averaged-model"
  run_once "$exp_dir/.export-onnx.done" \
    "./$recipe/export-onnx.py" "${checkpoint[@]}" "${model_options[@]}" --decode-chunk-len $decode_chunk_len \
    --tokens "$lang_dir/tokens.txt"
  run_once "$exp_dir/.sherpa-onnx-decode.done" \
    "./$recipe/sherpa_onnx_decode.py" --exp-dir "$exp_dir" --tokens "$lang_dir/tokens.txt" \
    --encoder-model-filename "$exp_dir/encoder-$suffix.onnx" \
    --decoder-model-filename "$exp_dir/decoder-$suffix.onnx" \
    --joiner-model-filename "$exp_dir/joiner-$suffix.onnx" --num-threads 1
fi

if run_stage 10; then
  banner "10: loss curves and results"
  ./local/plot_curves.py --exp-dir "$exp_dir"
  ./local/results_table.py --exp-dir "$exp_dir"
  echo "Loss curves: egs/librispeech/ASR/$exp_dir/curves.png; table: egs/librispeech/ASR/$exp_dir/RESULTS.md"
  onnx="egs/librispeech/ASR/$exp_dir/%s-epoch-$num_epochs-avg-$avg-with-averaged-model.onnx"
  # shellcheck disable=SC2059
  echo "Live recognition of this model (then open http://localhost:6006/):" \
    "egs/librispeech/ASR/$recipe/streaming_server.py --tokens egs/librispeech/ASR/$lang_dir/tokens.txt" \
    "--encoder-model-filename $(printf "$onnx" encoder) --decoder-model-filename $(printf "$onnx" decoder)" \
    "--joiner-model-filename $(printf "$onnx" joiner)"
fi
