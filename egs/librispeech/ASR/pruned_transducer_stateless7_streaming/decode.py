#!/usr/bin/env python3
"""Decode test sets with simulated streaming: whole utterances through the chunk-masked encoder.

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/decode.py --epoch 30 --avg 9 \\
      --exp-dir pruned_transducer_stateless7_streaming/exp --max-duration 600 --decode-chunk-len 32 \\
      --decoding-method greedy_search            # or beam_search, modified_beam_search, fast_beam_search
  # any cut manifest instead of test-clean and test-other:
  ./pruned_transducer_stateless7_streaming/decode.py ... --cuts data/fbank/librispeech_cuts_dev-clean.jsonl.gz

Writes recogs-{set}-{suffix}.txt, errs-{set}-{suffix}.txt, wer-summary-{set}-{suffix}.txt and
log-decode-{suffix}-{date} into EXP_DIR/DECODING_METHOD/.
"""

import argparse
import sys
from typing import List, Optional, Tuple

from icefall_lite.data.datamodule import LibriSpeechAsrDataModule
from icefall_lite.decoding.checkpoint_selection import add_checkpoint_arguments, checkpoint_suffix
from icefall_lite.decoding.methods import DECODING_METHODS, SearchOptions, make_search
from icefall_lite.decoding.options import (
    add_common_decoding_arguments,
    add_fast_beam_search_arguments,
    fast_beam_search_names,
    run_script,
)
from icefall_lite.decoding.simulated import decode_test_sets
from icefall_lite.model.options import add_model_arguments


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(parser, epoch=30, avg=9)
    add_common_decoding_arguments(parser)
    group = parser.add_argument_group("search")
    group.add_argument(
        "--decoding-method", choices=DECODING_METHODS, default="greedy_search", help="search (default greedy_search)"
    )
    group.add_argument("--beam-size", type=int, default=4, help="beam of beam_search and modified_beam_search (default 4)")
    add_fast_beam_search_arguments(group, beam=20.0, max_contexts=8, max_states=64)
    group.add_argument(
        "--max-sym-per-frame", type=int, default=1, help="greedy_search: symbols per frame at most (default 1)"
    )
    add_model_arguments(parser)
    LibriSpeechAsrDataModule.add_arguments(parser)
    return parser


def result_key_and_suffix(args: argparse.Namespace) -> Tuple[str, str]:
    """icefall's settings key (wer-summary) and file-name suffix for these options."""
    suffix = f"{checkpoint_suffix(args)}-streaming-chunk-size-{args.decode_chunk_len}"
    method = args.decoding_method
    if method == "fast_beam_search":
        key, names = fast_beam_search_names(args)
        suffix += names
    elif method in ("beam_search", "modified_beam_search"):
        key = f"beam_size_{args.beam_size}"
        suffix += f"-{method}-beam-size-{args.beam_size}"
    else:
        key = "greedy_search"
        suffix += f"-context-{args.context_size}-max-sym-per-frame-{args.max_sym_per_frame}"
    if args.use_averaged_model:
        suffix += "-use-averaged-model"
    return key, suffix


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    key, suffix = result_key_and_suffix(args)
    options = SearchOptions(args.max_sym_per_frame, args.beam_size, args.beam, args.max_contexts, args.max_states)
    decode_test_sets(
        args, key, suffix,
        lambda model, sp: make_search(args.decoding_method, model, options, unk_id=sp.piece_to_id("<unk>")),
    )


if __name__ == "__main__":
    sys.exit(run_script(main))
