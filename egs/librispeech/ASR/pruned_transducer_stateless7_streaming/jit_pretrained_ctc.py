#!/usr/bin/env python3
"""Transcribe wave files with the CTC head (and attention decoders) of export.py --jit 1's cpu_jit.pt: the
streaming encoder chunk by chunk, then CTC greedy search, CTC prefix beam search or attention rescoring of the
prefix-beam n-best (no model code needed: the TorchScript file holds it).

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/jit_pretrained_ctc.py \\
      --nn-model-filename pruned_transducer_stateless7_streaming/exp/cpu_jit.pt \\
      --tokens data/lang_bpe_500/tokens.txt --method ctc-greedy-search foo.wav bar.wav
  # WeNet U2++'s attention rescoring, with the right-to-left decoder of a model trained with it:
  ./pruned_transducer_stateless7_streaming/jit_pretrained_ctc.py --nn-model-filename .../cpu_jit.pt \\
      --tokens data/lang_bpe_500/tokens.txt --method ctc-prefix-beam-search-attention-decoder-rescoring \\
      --beam-size 10 --ctc-weight 0.3 --attention-decoder-reverse-weight 0.3 foo.wav

The model must have been trained with --use-ctc 1 (the rescoring methods also with --use-attention-decoder 1).
Files must be 16 kHz mono. Prints one "file: text" line per file.
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from icefall_lite.decoding.ctc_methods import CTC_DECODING_METHODS
from icefall_lite.decoding.options import run_script
from icefall_lite.export.cli import add_search_arguments, transcribe_with_cpu_jit


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nn-model-filename", type=Path, required=True, help="cpu_jit.pt written by export.py --jit 1")
    add_search_arguments(parser, methods=CTC_DECODING_METHODS, default_method="ctc-greedy-search")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    transcribe_with_cpu_jit(get_parser(), argv)


if __name__ == "__main__":
    sys.exit(run_script(main))
