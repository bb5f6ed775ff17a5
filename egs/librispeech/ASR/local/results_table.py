#!/usr/bin/env python3
"""Print (and write to EXP_DIR/RESULTS.md) the table of WERs and real-time factors of every decoding run of an
experiment: decode.py (simulated streaming), ctc_decode.py, streaming_decode.py (real streaming) and sherpa-onnx.

Usage (from egs/librispeech/ASR):
  ./local/results_table.py --exp-dir pruned_transducer_stateless7_streaming/exp
"""

import argparse
from pathlib import Path

from icefall_lite.decoding.results import collect_results, format_table

RESULT_DIRS = [
    ("simulated streaming (decode.py)", "greedy_search"),
    ("simulated streaming (decode.py)", "modified_beam_search"),
    ("simulated streaming (decode.py)", "fast_beam_search"),
    ("CTC, simulated streaming (ctc_decode.py)", "ctc-greedy-search"),
    ("CTC, simulated streaming (ctc_decode.py)", "ctc-prefix-beam-search"),
    ("CTC + attention rescoring (ctc_decode.py)", "ctc-prefix-beam-search-attention-decoder-rescoring"),
    ("CTC + attention rescoring (ctc_decode.py)", "attention-decoder-rescoring-no-ngram"),
    ("real streaming (streaming_decode.py)", "streaming/greedy_search"),
    ("real streaming (streaming_decode.py)", "streaming/modified_beam_search"),
    ("real streaming (streaming_decode.py)", "streaming/fast_beam_search"),
    ("sherpa-onnx", "sherpa-onnx/greedy_search"),
    ("sherpa-onnx", "sherpa-onnx/modified_beam_search"),
]
TEST_SETS = ["test-clean", "test-other"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dir", type=Path, default=Path("pruned_transducer_stateless7_streaming/exp"))
    args = parser.parse_args()
    rows = collect_results(args.exp_dir, RESULT_DIRS, TEST_SETS)
    if not rows:
        raise SystemExit(f"no wer-summary files under {args.exp_dir}: run decode.py or streaming_decode.py first")
    table = format_table(rows, TEST_SETS)
    (args.exp_dir / "RESULTS.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
