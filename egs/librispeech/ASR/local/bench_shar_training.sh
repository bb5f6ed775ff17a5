#!/usr/bin/env bash
# Training throughput from Shar shards against from the cut manifests: the main job's train.py (demo model and
# training options, local/demo_options.sh, 2 DDP processes), the same cuts read either way, each from a fresh
# exp dir until the log line of batch BATCHES; the rate is the sum over the ranks of the audio seconds per second
# of wall time since the epoch began (train.py's own log line), printed with the CPU.
#
#   ./local/bench_shar_training.sh [BATCHES [MASTER_PORT]]    (from egs/librispeech/ASR, after prepare.sh and
#       export_shar.py; shards in data/shar; default 300 batches, DDP on port 12360, apart from train.py's 12354)
set -euo pipefail

repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo_root/egs/librispeech/ASR"
readonly recipe=pruned_transducer_stateless7_streaming
readonly batches=${1:-300} master_port=${2:-12360}
# shellcheck source=icefall_lite/shell/stages.sh
source "$repo_root/icefall_lite/shell/stages.sh"
# shellcheck source=egs/librispeech/ASR/local/demo_options.sh
source local/demo_options.sh
require_int BATCHES "$batches" 1 100000
require_int MASTER_PORT "$master_port" 1024 65535
[[ -f data/shar/cuts.000000.jsonl.gz ]] || die "no Shar shards in data/shar: run ./local/export_shar.py first"

# Trains from SOURCE ($1: manifests or shar) until batch $batches is logged, then stops the job; prints the rate.
measure() {
  local source=$1 exp_dir
  exp_dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-shar-$source.XXXXXX")
  local from=()
  [[ $source == shar ]] && from=(--shar-dir data/shar)
  setsid "./$recipe/train.py" --exp-dir "$exp_dir" --bpe-model data/lang_bpe_1000/bpe.model \
    "${demo_model_options[@]}" "${demo_head_options[@]}" "${demo_train_options[@]}" --master-port "$master_port" "${from[@]}" \
    > "$exp_dir/train.out" 2>&1 &
  local job=$!
  until (( $(grep -c "batch $batches," "$exp_dir/train.out") >= 2 )); do
    kill -0 "$job" 2> /dev/null || { tail -20 "$exp_dir/train.out" >&2; die "train.py from $source stopped early"; }
    sleep 2
  done
  kill -- -"$job"
  wait "$job" 2> /dev/null || true
  grep "batch $batches," "$exp_dir/train.out" | sed -E 's/.* ([0-9.]+) audio-s\/s.*/\1/' \
    | awk -v source="$source" -v batches="$batches" \
      '{ total += $1 } END { printf "%-9s %.1f audio-s/s (2 ranks, over the first %d batches)\n", source, total, batches }'
  rm -rf "$exp_dir"
}

measure manifests
measure shar
python3 -c "from icefall_lite.benchmarks import cpu_description; print('CPU', cpu_description())"
