#!/usr/bin/env python3
"""Forward+backward time and peak memory of the pruned RNN-T loss path vs torchaudio's full loss.

Paths, both starting from am (B, T, V) and lm (B, U+1, V) that require grad:
  pruned     icefall_lite.rnnt_loss: rnnt_loss_smoothed (lm_only_scale 0.25, return_grad) +
             get_rnnt_prune_ranges (s_range 5) + do_rnnt_pruning + rnnt_loss_pruned on the
             additive joiner am_pruned + lm_pruned; backward of 0.5 * simple + pruned.
  torchaudio torchaudio.functional.rnnt_loss on the full additive joiner
             am[:, :, None] + lm[:, None] (B, T, U+1, V); backward.

Each (path, size) runs in a fresh Python process (this script with --worker) so that peak memory
is not shared between runs. Memory: the worker runs the path once at a tiny size (so that lazy
initialisation is not counted), creates the inputs, records its resident set size, resets the
kernel's peak-RSS mark (writes 5 to /proc/self/clear_refs), runs all timed repeats and reports
peak RSS (VmHWM) minus that baseline: the memory the path itself needed, including allocator
slack. Time: the median of the repeats (after one untimed warm-up at full size).

Example (the numbers in docs/BENCHMARKS.md):
  python egs/librispeech/ASR/local/bench_rnnt_loss.py --threads 2
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

SIZES = ["8,200,50,500", "4,1000,150,500"]


def get_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each worker")
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="B,T,U,V sizes to run")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats of the pruned path")
    parser.add_argument(
        "--reference-repeats", type=int, default=3, help="timed repeats of torchaudio's full loss (slow)"
    )
    parser.add_argument(
        "--skip-reference-above",
        type=float,
        default=8.0,
        help="skip torchaudio where its (B, T, U+1, V) logits would exceed this many GB",
    )
    parser.add_argument("--worker", nargs=2, metavar=("PATH", "SIZE"), help=argparse.SUPPRESS)
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------
# Worker side (fresh process)
# ---------------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: current resident set, VmHWM: its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _make_inputs(batch: int, frames: int, num_symbols: int, vocab: int):
    import torch

    gen = torch.Generator().manual_seed(0)
    am = torch.randn(batch, frames, vocab, generator=gen).requires_grad_()
    lm = torch.randn(batch, num_symbols + 1, vocab, generator=gen).requires_grad_()
    symbols = torch.randint(1, vocab, (batch, num_symbols), generator=gen)
    boundary = torch.tensor([[0, 0, num_symbols, frames]] * batch)
    return am, lm, symbols, boundary


def _pruned_loss(am, lm, symbols, boundary):
    from icefall_lite.rnnt_loss import do_rnnt_pruning, get_rnnt_prune_ranges, rnnt_loss_pruned, rnnt_loss_smoothed

    simple_loss, (px_grad, py_grad) = rnnt_loss_smoothed(
        lm=lm, am=am, symbols=symbols, termination_symbol=0, lm_only_scale=0.25, am_only_scale=0.0,
        boundary=boundary, reduction="sum", return_grad=True,
    )
    ranges = get_rnnt_prune_ranges(px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=5)
    am_pruned, lm_pruned = do_rnnt_pruning(am=am, lm=lm, ranges=ranges)
    pruned_loss = rnnt_loss_pruned(
        logits=am_pruned + lm_pruned, symbols=symbols, ranges=ranges, termination_symbol=0,
        boundary=boundary, reduction="sum",
    )
    return 0.5 * simple_loss + pruned_loss


def _torchaudio_loss(am, lm, symbols, boundary):
    import torchaudio

    logits = am[:, :, None, :] + lm[:, None, :, :]
    return torchaudio.functional.rnnt_loss(
        logits, symbols.int(), boundary[:, 3].int(), boundary[:, 2].int(), blank=0, reduction="sum"
    )


# The loss is built inside a function and back-propagated outside it, as in training, so that
# intermediate tensors the autograd graph does not keep are freed before the backward.
LOSSES: Dict[str, Callable] = {"pruned": _pruned_loss, "torchaudio": _torchaudio_loss}


def run_worker(path: str, size: str, threads: int, repeats: int) -> Dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    loss_fn = LOSSES[path]
    batch, frames, num_symbols, vocab = (int(x) for x in size.split(","))
    loss_fn(*_make_inputs(2, 8, 3, vocab)).backward()
    inputs = _make_inputs(batch, frames, num_symbols, vocab)
    baseline_kib = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss_fn(*inputs).backward()
        times.append(time.perf_counter() - start)
        inputs[0].grad = inputs[1].grad = None
    peak_kib = _status_kib("VmHWM")
    return {
        "median_ms": 1000 * statistics.median(times[1:]),
        "min_ms": 1000 * min(times[1:]),
        "peak_growth_mb": (peak_kib - baseline_kib) / 1024,
    }


# ---------------------------------------------------------------------------------------------
# Driver side
# ---------------------------------------------------------------------------------------------


def measure(path: str, size: str, threads: int, repeats: int) -> Dict[str, float]:
    """Runs one (path, size) in a fresh process; returns its measurements."""
    command = [sys.executable, __file__, "--worker", path, size, "--threads", str(threads), "--repeats", str(repeats)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def logits_gb(size: str) -> float:
    batch, frames, num_symbols, vocab = (int(x) for x in size.split(","))
    return batch * frames * (num_symbols + 1) * vocab * 4 / 1e9


def format_row(size: str, path: str, result: Dict[str, float], reference: Dict[str, float]) -> str:
    if "error" in result:
        return f"| {size} | {path} | failed: {result['error']} | | | |"
    ratio = ""
    if "peak_growth_mb" in reference and path != "torchaudio":
        ratio = f"{result['peak_growth_mb'] / reference['peak_growth_mb']:.3f}"
    return (
        f"| {size} | {path} | {result['median_ms']:.1f} | {result['min_ms']:.1f} | "
        f"{result['peak_growth_mb']:.1f} | {ratio} |"
    )


def main() -> None:
    args = get_args()
    if args.worker:
        path, size = args.worker
        repeats = args.repeats
        print(json.dumps(run_worker(path, size, args.threads, repeats)))
        return
    print(f"threads={args.threads}, load average before: {os.getloadavg()[0]:.2f} (1 min), cpus={os.cpu_count()}")
    print("| B,T,U,V | path | median ms | min ms | peak RSS growth MB | growth / torchaudio |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        results: List[Tuple[str, Dict[str, float]]] = []
        if logits_gb(size) <= args.skip_reference_above:
            reference = measure("torchaudio", size, args.threads, args.reference_repeats)
        else:
            reference = {"error": f"skipped: logits of {logits_gb(size):.1f} GB"}
        results.append(("torchaudio", reference))
        results.append(("pruned", measure("pruned", size, args.threads, args.repeats)))
        for path, result in results:
            print(format_row(size, path, result, reference), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
