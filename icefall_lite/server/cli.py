"""The options of streaming_server.py and what they build: the recognizer (an export or a checkpoint), the limits,
the batching, and the server running until interrupted.

Usage::

    parser = argparse.ArgumentParser(); add_server_arguments(parser)
    args = parser.parse_args()
    asyncio.run(serve_until_interrupted(recognizer_from_args(args), args))
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import torch

from icefall_lite.cli import positive_float, positive_int
from icefall_lite.decoding.checkpoint_selection import add_checkpoint_arguments, load_model_for_inference
from icefall_lite.decoding.methods import SearchOptions, make_search
from icefall_lite.export.cli import UNK, add_tokens_argument, build_model_for_tokens
from icefall_lite.export.inputs import read_tokens, symbol_id
from icefall_lite.export.onnx_export import OnnxPaths
from icefall_lite.model.options import add_model_arguments
from icefall_lite.server.app import StreamingServer, ssl_context_for
from icefall_lite.server.connection import ConnectionLimits
from icefall_lite.server.endpoint import EndpointRules, add_endpoint_arguments
from icefall_lite.server.errors import ServerOptionError
from icefall_lite.server.recognizers import CheckpointRecognizer, Recognizer, SherpaRecognizer
from icefall_lite.server.worker import BatchingOptions

DECODING_METHODS = ("greedy_search", "modified_beam_search")
ONNX_PARTS = ("encoder", "decoder", "joiner")  # --{part}-model-filename
DEFAULT_PORT = 6006  # sherpa-onnx's


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Model (export or checkpoint), search, endpointing, batching, limits, network."""
    group = parser.add_argument_group("model: an export (sherpa-onnx), or else a checkpoint (this project's decoder)")
    for part in ONNX_PARTS:
        group.add_argument(f"--{part}-model-filename", type=str, default=None, help=f"{part}-*.onnx of export-onnx.py")
    add_tokens_argument(parser)
    add_checkpoint_arguments(parser, epoch=30, avg=9)
    add_model_arguments(parser)

    group = parser.add_argument_group("search")
    group.add_argument("--decoding-method", choices=DECODING_METHODS, default="greedy_search", help="(default greedy_search)")
    group.add_argument("--num-active-paths", type=positive_int, default=4, help="modified_beam_search: hypotheses kept (default 4)")
    group.add_argument("--num-threads", type=positive_int, default=1, help="threads of the model computation (default 1)")
    add_endpoint_arguments(parser)

    defaults, batching = ConnectionLimits(), BatchingOptions()
    group = parser.add_argument_group("batching and limits")
    group.add_argument(
        "--max-batch-size", type=positive_int, default=batching.max_batch_size,
        help=f"streams decoded together at most (default {batching.max_batch_size})",
    )
    group.add_argument(
        "--max-wait-ms", type=float, default=batching.max_wait_ms,
        help=f"once a stream has a chunk ready, wait up to this for more to fill the batch (default {batching.max_wait_ms:g})",
    )
    group.add_argument(
        "--max-active-connections", type=positive_int, default=defaults.max_active_connections,
        help=f"clients served at once; more get HTTP 503; the checkpoint back-end holds a decoder slot for each "
        f"(default {defaults.max_active_connections})",
    )
    group.add_argument(
        "--max-message-size", type=positive_int, default=defaults.max_message_size,
        help=f"bytes of one websocket message at most (default {defaults.max_message_size})",
    )
    group.add_argument(
        "--idle-timeout", type=positive_float, default=defaults.idle_timeout,
        help=f"seconds a client may send nothing before 'Done' (default {defaults.idle_timeout:g})",
    )
    group.add_argument(
        "--max-queue-size", type=positive_int, default=defaults.max_queue_size,
        help=f"messages of a connection waiting to be decoded before its reading pauses (default {defaults.max_queue_size})",
    )

    group = parser.add_argument_group("network")
    group.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 for every interface (default 127.0.0.1)")
    group.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"(default {DEFAULT_PORT})")
    group.add_argument(
        "--certificate", type=Path, default=None,
        help="PEM file with the certificate and its private key: serve https:// and wss:// (a browser allows the "
        "microphone on other hosts than localhost only then)",
    )


def recognizer_from_args(args: argparse.Namespace) -> Recognizer:
    """sherpa-onnx on the export if ``--encoder-model-filename`` is given, else this project's decoder on the
    checkpoint that ``--epoch/--avg/--exp-dir`` select (with one slot per possible connection).
    Raises ServerOptionError naming the missing options if only part of an export is given."""
    torch.set_num_threads(args.num_threads)
    rules = EndpointRules.from_args(args)
    onnx_files = {f"--{part}-model-filename": getattr(args, f"{part}_model_filename") for part in ONNX_PARTS}
    if any(onnx_files.values()):
        missing = [option for option, name in onnx_files.items() if not name]
        if missing:
            raise ServerOptionError(
                f"missing {' and '.join(missing)}: an export is served from all three of {', '.join(onnx_files)} "
                f"(or give none of them to serve a checkpoint)"
            )
        paths = OnnxPaths(*(Path(name) for name in onnx_files.values()))
        return SherpaRecognizer(paths, args.tokens, rules, args.num_threads, args.decoding_method, args.num_active_paths)
    table = read_tokens(args.tokens)
    model = load_model_for_inference(args, build_model_for_tokens(args, args.tokens))
    search = make_search(args.decoding_method, model, SearchOptions(beam_size=args.num_active_paths), symbol_id(table, UNK))
    return CheckpointRecognizer(model, search, table, rules, num_slots=args.max_active_connections)


def limits_from_args(args: argparse.Namespace) -> ConnectionLimits:
    return ConnectionLimits(args.max_active_connections, args.max_message_size, args.idle_timeout, args.max_queue_size)


def batching_from_args(args: argparse.Namespace) -> BatchingOptions:
    return BatchingOptions(args.max_batch_size, args.max_wait_ms)


async def serve_until_interrupted(recognizer: Recognizer, args: argparse.Namespace) -> None:
    """Serve on --host/--port until the task is cancelled (Ctrl-C under ``asyncio.run``)."""
    server = StreamingServer(recognizer, limits_from_args(args), batching_from_args(args))
    runner = await server.start(args.host, args.port, ssl_context_for(args.certificate))
    scheme = "https" if args.certificate else "http"
    logging.info(
        f"{recognizer.name} back-end, {args.decoding_method}; serving {scheme}://{args.host}:{server.port}/ "
        f"(the page, and the websocket for clients); health at /health"
    )
    if args.certificate is None and args.host not in ("127.0.0.1", "localhost"):
        logging.info("without --certificate, browsers allow the microphone only on http://localhost")
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop(runner)
