#!/usr/bin/env python3
"""Real-time factor of sherpa-onnx decoding this project's ONNX export of the default (70 M) model.

The default streaming Zipformer (every model option at its default, vocab 500, --decode-chunk-len 32, i.e.
320 ms chunks) is randomly initialised (the timing does not depend on the weights, only on how many tokens
the search emits; a random model emits about one per frame, more than a trained one) and exported with the
code of export-onnx.py, float32 and int8. sherpa-onnx's OnlineRecognizer then decodes every audio file with
greedy search on --num-threads threads: the whole file is accepted, followed by 0.3 s of silence, and chunks
are decoded as long as they are ready (as a file-decoding client of sherpa-onnx does). With --num-streams S,
S files are decoded at once: each step decodes one chunk of every stream as one batch (decode_streams), and a
finished stream is replaced by the next file, as a sherpa-onnx server does with its connections.

Reported per model file: the real-time factor (processing time / audio duration) by wall clock and by CPU
time of this process (less sensitive to other processes on a shared machine), minimum and median over
--repeats passes over all files, after one untimed pass; and the tokens emitted per encoder frame. Then, per
model file, the time of one encoder run in onnxruntime alone (batch 1, minimum and median of 100 runs).

Example (from egs/librispeech/ASR, after ./prepare.sh):
  python local/bench_sherpa_onnx.py --audio-dir download/LibriSpeech/test-clean --num-threads 1
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

from icefall_lite.export.inputs import SAMPLE_RATE, read_wave
from icefall_lite.export.onnx_export import OnnxPaths, export_int8, export_onnx
from icefall_lite.export.onnx_model import OnnxTransducer
from icefall_lite.export.sherpa import decode_waves, make_recognizer
from icefall_lite.model.options import add_model_arguments, build_model

VOCAB_SIZE = 500


def get_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-dir", type=Path, required=True, help="directory searched for *.flac and *.wav files")
    parser.add_argument("--max-files", type=int, default=20, help="decode at most this many files (default 20)")
    parser.add_argument("--num-threads", type=int, default=1, help="sherpa-onnx (onnxruntime) threads (default 1)")
    parser.add_argument(
        "--num-streams", type=int, nargs="+", default=[1], help="files decoded together, one run each (default 1)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over all files (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initialisation (default 0)")
    parser.add_argument("--out-dir", type=Path, default=None, help="keep the ONNX files here (default: a temporary dir)")
    add_model_arguments(parser)
    return parser.parse_args()


def export_default_model(args: argparse.Namespace, out_dir: Path) -> Dict[str, OnnxPaths]:
    """Export the randomly initialised model of the options, float32 and int8, plus a tokens.txt."""
    torch.manual_seed(args.seed)
    model = build_model(args, VOCAB_SIZE)
    print(f"model parameters: {sum(p.numel() for p in model.parameters())}", flush=True)
    paths = export_onnx(model, out_dir, "random")
    pieces = ["<blk>", "<sos/eos>", "<unk>"] + [f"\u2581T{i}" for i in range(VOCAB_SIZE - 3)]
    (out_dir / "tokens.txt").write_text("".join(f"{piece} {i}\n" for i, piece in enumerate(pieces)))
    return {"float32": paths, "int8": export_int8(model, paths)}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def benchmark(
    paths: OnnxPaths, tokens: Path, audio: List[np.ndarray], num_threads: int, num_streams: int, repeats: int
) -> Dict[str, float]:
    recognizer = make_recognizer(paths, tokens, num_threads)
    seconds = sum(len(samples) for samples in audio) / SAMPLE_RATE
    num_tokens = sum(len(result.tokens) for result in decode_waves(recognizer, audio, num_streams))
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), cpu_seconds()
        decode_waves(recognizer, audio, num_streams)
        wall.append((time.perf_counter() - start_wall) / seconds)
        cpu.append((cpu_seconds() - start_cpu) / seconds)
    return {
        "audio_seconds": seconds,
        "tokens_per_frame": num_tokens / (seconds * 25),
        "wall_min": min(wall), "wall_median": statistics.median(wall),
        "cpu_min": min(cpu), "cpu_median": statistics.median(cpu),
    }


def encoder_milliseconds(paths: OnnxPaths, num_threads: int, num_chunks: int = 100) -> Tuple[float, float]:
    """Minimum and median milliseconds of one encoder run in onnxruntime alone (batch 1, random 39-frame chunks,
    the states carried from run to run), after 5 untimed runs."""
    model = OnnxTransducer(paths, num_threads)
    names = [model_input.name for model_input in model.encoder.get_inputs()]
    feature_dim = model.encoder.get_inputs()[0].shape[2]
    chunk = np.random.default_rng(0).standard_normal((1, model.chunk_frames, feature_dim), dtype=np.float32)
    states = model.init_states()
    milliseconds = []
    for _ in range(5 + num_chunks):
        start = time.perf_counter()
        _, *states = model.encoder.run(None, dict(zip(names, [chunk] + states)))
        milliseconds.append(1000 * (time.perf_counter() - start))
    return min(milliseconds[5:]), statistics.median(milliseconds[5:])


def print_row(kind: str, num_threads: int, num_streams: int, result: Dict[str, float]) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"| {kind} | {num_threads} | {num_streams} | {result['audio_seconds']:.1f} | {result['tokens_per_frame']:.2f} "
        f"| {result['wall_min']:.4f} | {result['wall_median']:.4f} | {result['cpu_min']:.4f} "
        f"| {result['cpu_median']:.4f} | {load} |",
        flush=True,
    )


def main() -> None:
    args = get_args()
    files = sorted(p for pattern in ("*.flac", "*.wav") for p in args.audio_dir.rglob(pattern))[: args.max_files]
    if not files:
        sys.exit(f"no *.flac or *.wav files under --audio-dir {args.audio_dir}")
    audio = [read_wave(path).numpy() for path in files]
    with tempfile.TemporaryDirectory() as temporary:
        out_dir = args.out_dir or Path(temporary)
        out_dir.mkdir(parents=True, exist_ok=True)
        exported = export_default_model(args, out_dir)
        print(
            "| model | threads | streams | audio s | tokens/frame | RTF wall min | RTF wall median | RTF CPU min "
            "| RTF CPU median | load after |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for kind, paths in exported.items():
            for streams in args.num_streams:
                result = benchmark(paths, out_dir / "tokens.txt", audio, args.num_threads, streams, args.repeats)
                print_row(kind, args.num_threads, streams, result)
        for kind, paths in exported.items():
            fastest, median = encoder_milliseconds(paths, args.num_threads)
            print(f"{kind} encoder alone (onnxruntime, 1 stream): {fastest:.2f} ms per chunk minimum, {median:.2f} median")


if __name__ == "__main__":
    main()
