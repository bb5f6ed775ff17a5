#!/usr/bin/env python3
"""Export the model to ONNX for sherpa-onnx: encoder, decoder and joiner, in float32 and int8.

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/export-onnx.py --exp-dir pruned_transducer_stateless7_streaming/exp \\
      --tokens data/lang_bpe_500/tokens.txt --epoch 99 --avg 1 --use-averaged-model 0 --decode-chunk-len 32

Writes into EXP_DIR encoder-SUFFIX.onnx, decoder-SUFFIX.onnx, joiner-SUFFIX.onnx and their *.int8.onnx versions
(SUFFIX e.g. epoch-99-avg-1, plus -with-averaged-model with --use-averaged-model 1), and a copy of tokens.txt.
The encoder takes chunks of decode_chunk_len + 7 frames; its metadata tells sherpa-onnx the chunk size and the
state shapes. Decode with sherpa-onnx:

  sherpa-onnx --tokens=EXP_DIR/tokens.txt --encoder=EXP_DIR/encoder-SUFFIX.onnx \\
      --decoder=EXP_DIR/decoder-SUFFIX.onnx --joiner=EXP_DIR/joiner-SUFFIX.onnx foo.wav

or with ./pruned_transducer_stateless7_streaming/onnx_pretrained.py.
"""

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import List, Optional

from icefall_lite.decoding.checkpoint_selection import checkpoint_suffix
from icefall_lite.decoding.options import run_script
from icefall_lite.export.cli import add_export_arguments, parse_and_load
from icefall_lite.export.onnx_export import export_int8, export_onnx


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_export_arguments(parser, epoch=30, avg=9)
    return parser


def onnx_suffix(args: argparse.Namespace) -> str:
    """``epoch-E-avg-A`` or ``iter-N-avg-A``, plus ``-with-averaged-model`` with --use-averaged-model 1."""
    suffix = checkpoint_suffix(args)
    return suffix + "-with-averaged-model" if args.use_averaged_model else suffix


def main(argv: Optional[List[str]] = None) -> None:
    args, model = parse_and_load(get_parser(), argv)
    exp_dir = Path(args.exp_dir)
    paths = export_onnx(model, exp_dir, onnx_suffix(args))
    int8_paths = export_int8(model, paths)
    tokens_copy = exp_dir / "tokens.txt"
    if not tokens_copy.exists() or not tokens_copy.samefile(args.tokens):
        shutil.copyfile(args.tokens, tokens_copy)
    for path in paths.as_list() + int8_paths.as_list() + [tokens_copy]:
        logging.info(f"Wrote {path}")


if __name__ == "__main__":
    sys.exit(run_script(main))
