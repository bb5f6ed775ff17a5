#!/usr/bin/env python3
"""WER and real-time factor of every decoding method of a trained model, with 1 and 2 threads.

Runs decode.py (simulated streaming) and streaming_decode.py (real streaming) with each method and thread
count, then sherpa_onnx_decode.py (greedy and modified beam search) on export-onnx.py's files if they exist;
reads each run's WERs and real-time factors from its results and prints a markdown table. Options this script
does not know (checkpoint, model configuration) are passed to every decoding script. The 2-thread runs come
last, so the result files left in EXP_DIR are those of 2 threads.

Usage (from egs/librispeech/ASR; the options run.sh decodes the demo model with):
  ./local/bench_decoding_methods.py --exp-dir pruned_transducer_stateless7_streaming/exp \\
      --epoch 2 --avg 1 --use-averaged-model 1 --num-encoder-layers 1,1,1,1,1 ...
"""

import argparse
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

from icefall_lite.decoding.results import ResultRow, collect_results, decode_log_suffix

RECIPE = Path("pruned_transducer_stateless7_streaming")
TEST_SETS = ["test-clean", "test-other"]
METHODS = ["greedy_search", "modified_beam_search", "fast_beam_search"]
SHERPA_METHODS = ["greedy_search", "modified_beam_search"]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dir", type=Path, default=RECIPE / "exp")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--decode-chunk-len", type=int, default=32)
    parser.add_argument("--onnx-suffix", default="", help="e.g. epoch-2-avg-1-with-averaged-model: also run sherpa-onnx")
    parser.add_argument("--tokens", type=Path, default=Path("data/lang_bpe_500/tokens.txt"))
    return parser


def run(command: List[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def newest_row(exp_dir: Path, label: str, result_dir: str) -> ResultRow:
    """The row of the run that wrote the newest log in EXP_DIR/result_dir."""
    newest = max((exp_dir / result_dir).glob("log-decode-*"), key=lambda path: path.stat().st_mtime)
    rows = collect_results(exp_dir, [(label, result_dir)], TEST_SETS)
    return next(row for row in rows if row.suffix == decode_log_suffix(newest))


def pytorch_runs(args: argparse.Namespace, passthrough: Sequence[str], threads: int) -> List[Tuple[str, str, ResultRow]]:
    results = []
    common = ["--exp-dir", str(args.exp_dir), "--decode-chunk-len", str(args.decode_chunk_len), "--num-threads", str(threads)]
    for script, label, prefix in (("decode.py", "decode.py", ""), ("streaming_decode.py", "streaming_decode.py", "streaming/")):
        for method in METHODS:
            run([sys.executable, str(RECIPE / script), *common, "--decoding-method", method, *passthrough])
            results.append((label, method, newest_row(args.exp_dir, label, prefix + method)))
    return results


def sherpa_runs(args: argparse.Namespace, threads: int) -> List[Tuple[str, str, ResultRow]]:
    results = []
    files = [f"--{part}-model-filename" for part in ("encoder", "decoder", "joiner")]
    paths = [str(args.exp_dir / f"{part}-{args.onnx_suffix}.onnx") for part in ("encoder", "decoder", "joiner")]
    for method in SHERPA_METHODS:
        run([sys.executable, str(RECIPE / "sherpa_onnx_decode.py"), "--exp-dir", str(args.exp_dir), "--tokens", str(args.tokens),
             *[item for pair in zip(files, paths) for item in pair], "--decoding-method", method, "--num-threads", str(threads)])
        results.append(("sherpa-onnx", method, newest_row(args.exp_dir, "sherpa-onnx", f"sherpa-onnx/{method}")))
    return results


def main() -> None:
    args, passthrough = get_parser().parse_known_args()
    lines = ["| decoding | method | threads | test-clean WER % | test-other WER % | RTF test-clean | RTF test-other |",
             "|---|---|---|---|---|---|---|"]
    for threads in [int(t) for t in args.threads.split(",")]:
        rows = pytorch_runs(args, passthrough, threads)
        if args.onnx_suffix:
            rows += sherpa_runs(args, threads)
        for label, method, row in rows:
            wers = [f"{row.wers[name]:.2f}" for name in TEST_SETS]
            rtfs = [f"{row.rtfs[name]:.4f}" if name in row.rtfs else "-" for name in TEST_SETS]
            lines.append(f"| {label} | {method} | {threads} | " + " | ".join(wers + rtfs) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
