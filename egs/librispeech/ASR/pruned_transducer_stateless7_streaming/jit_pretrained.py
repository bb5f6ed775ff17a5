#!/usr/bin/env python3
"""Transcribe wave files with export.py --jit 1's cpu_jit.pt, chunk by chunk with the encoder's streaming forward
(no model code needed: the TorchScript file holds it).

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/jit_pretrained.py \\
      --nn-model-filename pruned_transducer_stateless7_streaming/exp/cpu_jit.pt \\
      --tokens data/lang_bpe_500/tokens.txt --method greedy_search foo.wav bar.wav

The chunk size is the one the model was exported with. Files must be 16 kHz mono; features and padding are
those of pretrained.py, which gives the same text. Prints one "file: text" line per file.
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional

import torch

from icefall_lite.decoding.options import run_script
from icefall_lite.export.cli import add_search_arguments, parse_for_decoding, print_search_results
from icefall_lite.export.inputs import pad_batch, wave_features
from icefall_lite.export.torchscript import encode_in_chunks, load_script_module


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nn-model-filename", type=Path, required=True, help="cpu_jit.pt written by export.py --jit 1")
    add_search_arguments(parser)
    return parser


@torch.no_grad()
def main(argv: Optional[List[str]] = None) -> None:
    args, table = parse_for_decoding(get_parser(), argv)
    model = load_script_module(args.nn_model_filename)
    features = wave_features(args.sound_files, model.encoder.decode_chunk_len)
    # TorchScript's profiling executor re-optimizes the encoder over its first calls (about 1.5 s each on 2
    # threads, 10 calls); for a few files plain interpretation is much faster.
    with torch.jit.optimized_execution(False):
        encoder_out, encoder_lens = pad_batch([encode_in_chunks(model.encoder, f) for f in features])
        print_search_results(args, model, encoder_out, encoder_lens, table)


if __name__ == "__main__":
    sys.exit(run_script(main))
