#!/usr/bin/env python3
"""A real-time streaming recognition server: sherpa-onnx's websocket protocol, a web page at /, a health
endpoint at /health.

Clients send binary messages of float32 samples (16 kHz mono, in [-1, 1]) and then the text message "Done"; they
get JSON results {"text", "segment", "is_final", "decoded_seconds"} after every decoded chunk and at the end of
every segment (endpoint rules, or "Done"). sherpa-onnx's clients work with it, and streaming_client.py with
sherpa-onnx's server. Streams that have a chunk ready are decoded together on one worker thread.

Usage (from egs/librispeech/ASR):
  # an export of export-onnx.py, through sherpa-onnx (the fast default)
  ./pruned_transducer_stateless7_streaming/streaming_server.py \\
      --encoder-model-filename pruned_transducer_stateless7_streaming/exp/encoder-epoch-30-avg-9.onnx \\
      --decoder-model-filename pruned_transducer_stateless7_streaming/exp/decoder-epoch-30-avg-9.onnx \\
      --joiner-model-filename pruned_transducer_stateless7_streaming/exp/joiner-epoch-30-avg-9.onnx \\
      --tokens data/lang_bpe_500/tokens.txt
  # or a checkpoint, through this project's streaming decoder (pass the model options it was trained with)
  ./pruned_transducer_stateless7_streaming/streaming_server.py --epoch 30 --avg 9 \\
      --exp-dir pruned_transducer_stateless7_streaming/exp --tokens data/lang_bpe_500/tokens.txt

Then open http://localhost:6006/ (the microphone needs localhost, or --certificate for https://), or run
  ./pruned_transducer_stateless7_streaming/streaming_client.py --server-port 6006 foo.wav
"""

import argparse
import asyncio
import sys
from typing import List, Optional

from icefall_lite.cli import setup_logging
from icefall_lite.decoding.options import run_script
from icefall_lite.server.cli import add_server_arguments, recognizer_from_args, serve_until_interrupted


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    recognizer = recognizer_from_args(args)
    try:
        asyncio.run(serve_until_interrupted(recognizer, args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(run_script(main))
