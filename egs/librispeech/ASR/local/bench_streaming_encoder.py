#!/usr/bin/env python3
"""Where the PyTorch streaming encoder's time goes: milliseconds per chunk of the default 70 M Zipformer's
``streaming_forward`` (1 stream, random weights, 320 ms chunks) run as eager code, as TorchScript, and compiled by
inductor; and how fast this CPU's BLAS reads the encoder's weights in the chunk's small matrix products.

Modes (each in a fresh process, 5 warm-up chunks, then the median of --chunks chunks, under inference_mode):
  eager            StreamingEncoder as streaming_decode.py and the server's checkpoint mode run it
  script           torch.jit.script(StreamingEncoder) (what export.py --jit 1 writes, jit_pretrained.py runs)
  compile          torch.compile(StreamingEncoder, dynamic=False) (inductor's CPU code, static chunk shapes)
  compile-freeze   the same with torch._inductor.config.freezing (weights constant-folded and prepacked)
The first chunk's time (tracing and compiling included) is reported too.

Weight reading (--gemm): a chunk of the default model multiplies 2-16 frames by every weight matrix once, so the
products read the weights from memory and little else. For (rows x 384) @ (384 x 1024), over 100 distinct weight
matrices (150 MiB, more than any cache), the weight bytes read per second by: torch.nn.functional.linear (MKL
sgemm), MKL's packed sgemm (torch.ops.mkl._mkl_linear, what inductor's freezing uses), oneDNN's prepacked linear,
beside a plain sum over 256 MiB (the memory's read rate) and, if numpy is installed, numpy's matmul (its BLAS, with
one thread).

  python egs/librispeech/ASR/local/bench_streaming_encoder.py                  # every mode and --gemm
  python egs/librispeech/ASR/local/bench_streaming_encoder.py --modes eager script --no-gemm
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

import torch

from icefall_lite.benchmarks import cpu_description

MODES = ("eager", "script", "compile", "compile-freeze")
CHUNK_FRAMES = 32  # 320 ms of fbank; the chunk fed to streaming_forward has 7 more frames of right context
GEMM_SHAPE = (384, 1024)


def get_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--chunks", type=int, default=60, help="timed chunks per mode (default 60)")
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument("--gemm", action=argparse.BooleanOptionalAction, default=True, help="the weight-reading table")
    parser.add_argument("--worker", choices=MODES + ("gemm",), help=argparse.SUPPRESS)
    return parser.parse_args()


def streaming_encoder(mode: str) -> Callable:
    """The default model's StreamingEncoder (random weights, 320 ms chunks) prepared as `mode` says."""
    from icefall_lite.export.torchscript import StreamingEncoder
    from icefall_lite.model.config import ZipformerConfig
    from icefall_lite.model.zipformer import Zipformer

    torch.manual_seed(0)
    encoder = StreamingEncoder(Zipformer(ZipformerConfig(decode_chunk_size=CHUNK_FRAMES // 2))).eval()
    if mode == "script":
        return torch.jit.script(encoder)
    if mode.startswith("compile"):
        from torch._inductor import config as inductor_config

        inductor_config.freezing = mode == "compile-freeze"
        return torch.compile(encoder, dynamic=False)
    return encoder


def time_chunks(mode: str, num_chunks: int) -> Dict[str, float]:
    """ms of the first chunk (preparation included) and the median and min ms of `num_chunks` later ones."""
    encoder = streaming_encoder(mode)
    states = encoder.get_init_state(torch.device("cpu"))
    x = torch.randn(1, CHUNK_FRAMES + 7, 80)
    x_lens = torch.tensor([x.size(1)])
    times: List[float] = []
    with torch.inference_mode():
        for _ in range(num_chunks + 6):
            start = time.perf_counter()
            _, _, states = encoder(x, x_lens, states)
            times.append(time.perf_counter() - start)
    timed = times[6:]
    return {"first_s": times[0], "median_ms": 1000 * statistics.median(timed), "min_ms": 1000 * min(timed)}


def run_worker(mode: str, args: argparse.Namespace) -> str:
    """This script's --worker `mode` in a fresh process (numpy's BLAS limited to --num-threads); its stdout."""
    command = [sys.executable, __file__, "--worker", mode, "--chunks", str(args.chunks)]
    command += ["--num-threads", str(args.num_threads)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.num_threads), OMP_NUM_THREADS=str(args.num_threads))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
        raise RuntimeError(f"mode {mode}: {lines[-1]}")
    return result.stdout


def bytes_per_second(function: Callable[[], object], num_bytes: int, repeats: int = 5) -> float:
    """num_bytes / the mean seconds of one call, after one untimed call."""
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return num_bytes * repeats / (time.perf_counter() - start)


def weight_reading_rates(rows: int, num_matrices: int = 100) -> Dict[str, float]:
    """GB/s of weights read by (rows x K) @ (K x N) products over `num_matrices` distinct weights, per BLAS path."""
    in_dim, out_dim = GEMM_SHAPE
    linears = [torch.nn.Linear(in_dim, out_dim).eval() for _ in range(num_matrices)]
    x = torch.randn(rows, in_dim)
    total_bytes = num_matrices * in_dim * out_dim * 4
    mkl_packed = [(torch.ops.mkl._mkl_reorder_linear_weight(m.weight, rows), m.weight, m.bias) for m in linears]
    onednn_packed = [(torch.ops.mkldnn._reorder_linear_weight(m.weight, rows), m.bias) for m in linears]
    paths = {
        "F.linear (MKL sgemm)": lambda: [torch.nn.functional.linear(x, m.weight, m.bias) for m in linears],
        "MKL packed sgemm": lambda: [torch.ops.mkl._mkl_linear(x, p, w, b, rows) for p, w, b in mkl_packed],
        "oneDNN prepacked": lambda: [
            torch.ops.mkldnn._linear_pointwise(x, p, b, "none", [], "") for p, b in onednn_packed
        ],
    }
    rates = {}
    with torch.no_grad():
        for name, function in paths.items():
            rates[name] = bytes_per_second(function, total_bytes) / 1e9
        rates.update(numpy_rate(x, linears, total_bytes))
    return rates


def numpy_rate(x: torch.Tensor, linears: List[torch.nn.Linear], total_bytes: int) -> Dict[str, float]:
    """numpy's matmul on the same products, its BLAS on --num-threads threads (set before numpy loads), if numpy
    is there."""
    try:
        import numpy
    except ImportError:
        return {}
    weights = [numpy.ascontiguousarray(m.weight.detach().numpy().T) for m in linears]
    rows = x.numpy()
    rate = bytes_per_second(lambda: [rows @ w for w in weights], total_bytes) / 1e9
    return {f"numpy matmul (its BLAS, {torch.get_num_threads()} thread(s))": rate}


def memory_read_rate() -> float:
    """GB/s of a sum over 256 MiB."""
    data = torch.randn(64 * 1024 * 1024)
    return bytes_per_second(data.sum, data.numel() * 4) / 1e9


def print_gemm_table() -> None:
    print(f"\nmemory read rate (sum over 256 MiB): {memory_read_rate():.2f} GB/s")
    print(f"\n| rows @ {GEMM_SHAPE[0]}x{GEMM_SHAPE[1]}, 100 distinct weights | path | weight GB/s |")
    print("|---|---|---|")
    for rows in (2, 8, 16):
        for name, rate in weight_reading_rates(rows).items():
            print(f"| {rows} | {name} | {rate:.2f} |", flush=True)


def main() -> None:
    args = get_args()
    torch.set_num_threads(args.num_threads)
    if args.worker == "gemm":
        print_gemm_table()
        return
    if args.worker:
        print(json.dumps(time_chunks(args.worker, args.chunks)))
        return
    print(f"CPU: {cpu_description()}; {args.num_threads} thread(s); load average before: {os.getloadavg()[0]:.2f}")
    print("| mode | first chunk s | ms per chunk (median) | min ms | RTF | time / eager |")
    print("|---|---|---|---|---|---|")
    eager_ms = None
    for mode in args.modes:
        result = json.loads(run_worker(mode, args).strip().splitlines()[-1])
        eager_ms = result["median_ms"] if mode == "eager" else eager_ms
        ratio = f"{result['median_ms'] / eager_ms:.2f}" if eager_ms else ""
        rtf = result["median_ms"] / (CHUNK_FRAMES * 10)
        print(
            f"| {mode} | {result['first_s']:.1f} | {result['median_ms']:.1f} | {result['min_ms']:.1f} | {rtf:.3f} "
            f"| {ratio} |",
            flush=True,
        )
    if args.gemm:
        print(run_worker("gemm", args), end="")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
