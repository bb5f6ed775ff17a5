#!/usr/bin/env python3
"""Send wave files to a streaming server (streaming_server.py, or sherpa-onnx's) and print its results.

Each file goes over its own websocket connection, in messages of --seconds-per-message, paced as if recorded live
(or --as-fast-as-possible), followed by "Done". Partial results are printed as they change, the final result of
each segment when it ends, and at last one line per file: "FILE: TEXT" (every segment's final text).

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/streaming_client.py --server-addr localhost --server-port 6006 \\
      download/LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac
"""

import argparse
import asyncio
import ssl
import sys
from pathlib import Path
from typing import Dict, List, Optional

from icefall_lite.cli import positive_float
from icefall_lite.decoding.options import run_script
from icefall_lite.export.inputs import read_wave
from icefall_lite.server.client import stream_samples


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-addr", default="localhost", help="(default localhost)")
    parser.add_argument("--server-port", type=int, default=6006, help="(default 6006)")
    parser.add_argument("--secure", action="store_true", help="wss:// (a server started with --certificate); the certificate is not verified")
    parser.add_argument("--seconds-per-message", type=positive_float, default=0.1, help="audio per message (default 0.1)")
    parser.add_argument("--as-fast-as-possible", action="store_true", help="send without waiting for real time")
    parser.add_argument("sound_files", type=Path, nargs="+", help="16 kHz mono audio files")
    return parser


def printer(name: str):
    """Prints a result when its text changes: partial ones as 'FILE partial N: TEXT', final 'FILE final N: TEXT'."""
    shown: Dict[int, str] = {}

    def show(message: Dict) -> None:
        if "error" in message:
            print(f"{name} error: {message['error']}", flush=True)
            return
        segment, text = message["segment"], message["text"]
        if message.get("is_final"):
            print(f"{name} final {segment}: {text}", flush=True)
        elif shown.get(segment) != text:
            print(f"{name} partial {segment}: {text}", flush=True)
        shown[segment] = text

    return show


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    scheme = "wss" if args.secure else "ws"
    url = f"{scheme}://{args.server_addr}:{args.server_port}/"
    context = None
    if args.secure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    for path in args.sound_files:
        samples = read_wave(path).numpy()
        transcript = asyncio.run(
            stream_samples(url, samples, args.seconds_per_message, not args.as_fast_as_possible, printer(str(path)), context)
        )
        print(f"{path}: {transcript.text}", flush=True)


if __name__ == "__main__":
    sys.exit(run_script(main))
