#!/usr/bin/env python3
"""Decode test sets chunk by chunk from audio, as a streaming server would, and report the real-time factor.

Each utterance's audio is fed in pieces of --decode-chunk-len frames; fbank frames are computed as the audio
arrives (the training fbank), the encoder's streaming_forward runs on chunks of --decode-chunk-len + 7 frames
with cached states, and up to --num-decode-streams utterances are decoded together as one batch (a slot is
refilled as soon as its utterance ends).

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/streaming_decode.py --epoch 28 --avg 15 \\
      --exp-dir pruned_transducer_stateless7_streaming/exp --decode-chunk-len 32 --num-decode-streams 2000 \\
      --decoding-method greedy_search            # or modified_beam_search, fast_beam_search
  # the CTC head of a model trained with --use-ctc 1 (same results as ctc_decode.py's ctc-greedy-search):
  ./pruned_transducer_stateless7_streaming/streaming_decode.py --epoch 28 --avg 15 --use-ctc 1 \
      --decoding-method ctc_greedy_search

Writes recogs-{set}-{suffix}.txt, errs-{set}-{suffix}.txt, wer-summary-{set}-{suffix}.txt and
log-decode-{suffix}-{date} into EXP_DIR/streaming/DECODING_METHOD/.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from icefall_lite.data.datamodule import AsrDataConfig, LibriSpeechAsrDataModule
from icefall_lite.decoding.checkpoint_selection import add_checkpoint_arguments, checkpoint_suffix
from icefall_lite.decoding.methods import STREAMING_DECODING_METHODS, SearchOptions, make_search
from icefall_lite.decoding.options import (
    add_common_decoding_arguments,
    add_fast_beam_search_arguments,
    fast_beam_search_names,
    run_script,
    setup_decoding,
    test_sets,
)
from icefall_lite.decoding.results import streaming_settings_key
from icefall_lite.decoding.streaming import decode_cuts_streaming
from icefall_lite.decoding.wer import save_results
from icefall_lite.model.options import add_model_arguments


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(parser, epoch=28, avg=15)
    add_common_decoding_arguments(parser)
    group = parser.add_argument_group("search")
    group.add_argument(
        "--decoding-method",
        choices=STREAMING_DECODING_METHODS,
        default="greedy_search",
        help="search (default greedy_search)",
    )
    group.add_argument(
        "--num_active_paths", type=int, default=4, help="modified_beam_search: hypotheses kept per frame (default 4)"
    )
    add_fast_beam_search_arguments(group, beam=4.0, max_contexts=4, max_states=32)
    group.add_argument(
        "--num-decode-streams",
        type=int,
        default=2000,
        help="utterances decoded together, each holding about 2 MB of encoder state with the default model (default 2000)",
    )
    add_model_arguments(parser)
    LibriSpeechAsrDataModule.add_arguments(parser)
    return parser


def result_key_and_suffix(args: argparse.Namespace) -> Tuple[str, str]:
    """icefall's settings key (wer-summary) and file-name suffix for these options."""
    suffix = f"{checkpoint_suffix(args)}-streaming-chunk-size-{args.decode_chunk_len}"
    if args.decoding_method == "fast_beam_search":
        key, names = fast_beam_search_names(args)
        suffix += names
    else:
        key = streaming_settings_key(args.decoding_method, args.num_active_paths)
    if args.use_averaged_model:
        suffix += "-use-averaged-model"
    return key, suffix


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    key, suffix = result_key_and_suffix(args)
    res_dir = Path(args.exp_dir) / "streaming" / args.decoding_method
    device, sp, model = setup_decoding(args, res_dir, suffix)
    options = SearchOptions(
        beam_size=args.num_active_paths, beam=args.beam, max_contexts=args.max_contexts, max_states=args.max_states
    )
    search = make_search(args.decoding_method, model, options, unk_id=sp.piece_to_id("<unk>"))

    data = LibriSpeechAsrDataModule(AsrDataConfig.from_args(args))
    for name, cuts in test_sets(args.cuts, data):
        logging.info(f"Decoding {name}")
        results = decode_cuts_streaming(model, search, cuts, sp, args.decode_chunk_len, args.num_decode_streams)
        save_results(res_dir, name, key, suffix, results)
    logging.info("Done!")


if __name__ == "__main__":
    sys.exit(run_script(main))
