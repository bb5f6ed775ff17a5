#!/usr/bin/env python3
"""Transcribe wave files with a checkpoint (e.g. export.py's pretrained.pt), in simulated streaming: the whole
utterance through the encoder with the --decode-chunk-len attention mask.

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/pretrained.py \\
      --checkpoint pruned_transducer_stateless7_streaming/exp/pretrained.pt \\
      --tokens data/lang_bpe_500/tokens.txt --method greedy_search --decode-chunk-len 32 foo.wav bar.wav

The model options must be those the checkpoint was trained with; a model with a CTC head (and attention
decoder) also decodes with --method ctc-greedy-search, ctc-prefix-beam-search and the rescoring methods. Files must be 16 kHz mono; each gets the
training fbank and log(1e-10) tail padding up to a whole number of chunks, so that jit_pretrained.py and
onnx_pretrained.py (chunk by chunk) see the same frames. Prints one "file: text" line per file.
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional

import torch

from icefall_lite.decoding.options import run_script
from icefall_lite.export.cli import add_search_arguments, build_model_for_tokens, parse_for_decoding, print_search_results
from icefall_lite.export.inputs import pad_batch, wave_features
from icefall_lite.model.options import add_model_arguments
from icefall_lite.training.checkpoint import load_checkpoint


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint with a 'model' entry (pretrained.pt)")
    add_search_arguments(parser, reverse_weight_option=False)
    add_model_arguments(parser)
    return parser


@torch.no_grad()
def main(argv: Optional[List[str]] = None) -> None:
    args, table = parse_for_decoding(get_parser(), argv)
    model = build_model_for_tokens(args, args.tokens)
    load_checkpoint(args.checkpoint, model)
    model.eval()
    x, x_lens = pad_batch(wave_features(args.sound_files, args.decode_chunk_len))
    encoder_out, encoder_lens = model.encoder(x, x_lens)
    print_search_results(args, model, encoder_out, encoder_lens, table)


if __name__ == "__main__":
    sys.exit(run_script(main))
