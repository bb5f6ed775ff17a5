#!/usr/bin/env python3
"""Decode test sets with the CTC head (and the attention decoder): simulated streaming, as decode.py.

The model must have been trained with --use-ctc 1 (and --use-attention-decoder 1 for the rescoring methods); pass
the same head options here.

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/ctc_decode.py --epoch 30 --avg 9 --use-ctc 1 \\
      --exp-dir pruned_transducer_stateless7_streaming/exp --decode-chunk-len 32 \\
      --decoding-method ctc-greedy-search       # or ctc-prefix-beam-search
  # WeNet U2++'s attention rescoring of the CTC prefix-beam n-best, with the right-to-left decoder:
  ./pruned_transducer_stateless7_streaming/ctc_decode.py --epoch 30 --avg 9 --use-transducer 0 --use-ctc 1 \\
      --use-attention-decoder 1 --attention-decoder-reverse-weight 0.3 --ctc-weight 0.3 --beam-size 10 \\
      --decoding-method ctc-prefix-beam-search-attention-decoder-rescoring

Writes recogs-{set}-{suffix}.txt, errs-{set}-{suffix}.txt, wer-summary-{set}-{suffix}.txt and
log-decode-{suffix}-{date} into EXP_DIR/DECODING_METHOD/.
"""

import argparse
import sys
from typing import List, Optional, Tuple

from icefall_lite.data.datamodule import LibriSpeechAsrDataModule
from icefall_lite.decoding.checkpoint_selection import add_checkpoint_arguments, checkpoint_suffix
from icefall_lite.decoding.ctc_methods import (
    CTC_DECODING_METHODS, RESCORING_METHODS, CtcSearchOptions, add_rescoring_arguments, make_ctc_search,
)
from icefall_lite.decoding.options import add_common_decoding_arguments, run_script
from icefall_lite.decoding.simulated import decode_test_sets
from icefall_lite.model.options import add_model_arguments


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(parser, epoch=30, avg=9)
    add_common_decoding_arguments(parser)
    group = parser.add_argument_group("search")
    group.add_argument(
        "--decoding-method", choices=CTC_DECODING_METHODS, default="ctc-greedy-search",
        help="search (default ctc-greedy-search)",
    )
    group.add_argument(
        "--beam-size", type=int, default=4, help="prefixes kept by the prefix beam search, and the n-best size (default 4)"
    )
    add_rescoring_arguments(group, reverse_weight_option=False)
    add_model_arguments(parser)
    LibriSpeechAsrDataModule.add_arguments(parser)
    return parser


def result_key_and_suffix(args: argparse.Namespace) -> Tuple[str, str]:
    """The settings key (wer-summary) and file-name suffix for these options."""
    suffix = f"{checkpoint_suffix(args)}-streaming-chunk-size-{args.decode_chunk_len}"
    key = args.decoding_method
    if args.decoding_method != "ctc-greedy-search":
        suffix += f"-beam-size-{args.beam_size}"
        key += f"-beam-size-{args.beam_size}"
    if args.decoding_method in RESCORING_METHODS:
        details = f"-ctc-weight-{args.ctc_weight}-reverse-weight-{args.attention_decoder_reverse_weight}"
        if args.decoding_method == "attention-decoder-rescoring-no-ngram":
            details += f"-nbest-scale-{args.nbest_scale}"
        suffix += details
        key += details
    if args.use_averaged_model:
        suffix += "-use-averaged-model"
    return key, suffix


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    key, suffix = result_key_and_suffix(args)
    options = CtcSearchOptions.from_args(args)
    decode_test_sets(args, key, suffix, lambda model, sp: make_ctc_search(args.decoding_method, model, options))


if __name__ == "__main__":
    sys.exit(run_script(main))
