#!/usr/bin/env python3
"""Transcribe wave files with export-onnx.py's ONNX files in onnxruntime, chunk by chunk as sherpa-onnx does,
with greedy search.

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/onnx_pretrained.py \\
      --encoder-model-filename pruned_transducer_stateless7_streaming/exp/encoder-epoch-99-avg-1.onnx \\
      --decoder-model-filename pruned_transducer_stateless7_streaming/exp/decoder-epoch-99-avg-1.onnx \\
      --joiner-model-filename pruned_transducer_stateless7_streaming/exp/joiner-epoch-99-avg-1.onnx \\
      --tokens pruned_transducer_stateless7_streaming/exp/tokens.txt foo.wav bar.wav

The chunk size comes from the encoder's metadata. Files must be 16 kHz mono; features and padding are those of
pretrained.py. Prints one "file: text" line per file.
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from icefall_lite.cli import positive_int
from icefall_lite.decoding.options import run_script
from icefall_lite.export.cli import UNK, add_tokens_argument, parse_for_decoding, print_transcripts
from icefall_lite.export.inputs import symbol_id, wave_features
from icefall_lite.export.onnx_export import OnnxPaths
from icefall_lite.export.onnx_model import OnnxTransducer


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder-model-filename", type=Path, required=True, help="encoder-*.onnx")
    parser.add_argument("--decoder-model-filename", type=Path, required=True, help="decoder-*.onnx")
    parser.add_argument("--joiner-model-filename", type=Path, required=True, help="joiner-*.onnx")
    parser.add_argument("--num-threads", type=positive_int, default=1, help="onnxruntime threads (default 1)")
    add_tokens_argument(parser)
    parser.add_argument("sound_files", type=Path, nargs="+", help="16 kHz mono audio files (wav, flac, ...)")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args, table = parse_for_decoding(get_parser(), argv)
    paths = OnnxPaths(args.encoder_model_filename, args.decoder_model_filename, args.joiner_model_filename)
    model = OnnxTransducer(paths, num_threads=args.num_threads)
    skip_ids = {token for token in [symbol_id(table, UNK)] if token is not None}
    features = wave_features(args.sound_files, model.decode_chunk_len)
    token_ids = [model.greedy_search(model.encode(f), skip_ids) for f in features]
    print_transcripts(args.sound_files, token_ids, table)


if __name__ == "__main__":
    sys.exit(run_script(main))
