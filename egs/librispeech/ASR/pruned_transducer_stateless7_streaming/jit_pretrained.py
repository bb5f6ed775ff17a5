#!/usr/bin/env python3
"""Transcribe wave files with export.py --jit 1's cpu_jit.pt, chunk by chunk with the encoder's streaming forward
(no model code needed: the TorchScript file holds it).

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/jit_pretrained.py \\
      --nn-model-filename pruned_transducer_stateless7_streaming/exp/cpu_jit.pt \\
      --tokens data/lang_bpe_500/tokens.txt --method greedy_search foo.wav bar.wav

The chunk size is the one the model was exported with. Files must be 16 kHz mono; features and padding are
those of pretrained.py, which gives the same text. Prints one "file: text" line per file. (A model with a CTC head
also takes the CTC methods; jit_pretrained_ctc.py is this script with CTC greedy search as the default.)
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from icefall_lite.decoding.options import run_script
from icefall_lite.export.cli import add_search_arguments, transcribe_with_cpu_jit


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nn-model-filename", type=Path, required=True, help="cpu_jit.pt written by export.py --jit 1")
    add_search_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    transcribe_with_cpu_jit(get_parser(), argv)


if __name__ == "__main__":
    sys.exit(run_script(main))
