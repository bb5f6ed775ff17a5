#!/usr/bin/env python3
"""Forward+backward time and peak memory of the RNN-T losses: pruned, full packed, torchaudio's full loss.

Paths, all starting from am (B, T, V) and lm (B, U+1, V) that require grad, the loss built in a
function and back-propagated outside it (as in training, so that tensors the autograd graph does
not keep are freed before the backward):
  pruned      icefall_lite.rnnt_loss: rnnt_loss_smoothed (lm_only_scale 0.25, return_grad) +
              get_rnnt_prune_ranges (s_range 5) + do_rnnt_pruning + rnnt_loss_pruned on the
              additive joiner am_pruned + lm_pruned; loss 0.5 * simple + pruned.
  full-packed icefall_lite.transducer_loss: transducer_loss (exact loss, packed logits) on the
              additive joiner pack_pairs(am, lm), of shape (sum_i T_i * (U_i + 1), V).
  full-chunked icefall_lite.transducer_loss: chunked_transducer_loss (the exact loss as train.py's
              --transducer-loss full computes it): the additive joiner runs on 2^20 / V packed rows
              at a time, each chunk recomputed in the backward; the packed logits never exist whole.
  optimized-transducer  optimized_transducer.transducer_loss (1.4, when it is installed) on the
              same packed logits pack_pairs(am, lm).
  torchaudio  torchaudio.functional.rnnt_loss (blank 0) on the full additive joiner
              am[:, :, None] + lm[:, None], of shape (B, T, U+1, V).

Lengths (--spreads): with spread 1 every utterance has T frames and U symbols; with spread 0.5
utterance i of B has round(T * f_i) frames and round(U * f_i) symbols, f_i evenly spaced from 1 down
to 0.5 (lengths spread uniformly over 50-100% of the maximum); the padded paths still pad to (T, U).

Every measurement runs in a fresh Python process (this script with --worker), which first runs
its path once at a tiny size so that lazy initialisation is not counted, then creates the inputs.
- time: one untimed pass, then the median (and min) of --repeats timed passes.
- memory: one pass; reported is the peak resident set size (VmHWM, after resetting it through
  /proc/self/clear_refs) minus the resident set size before the pass. The process runs with
  glibc's MALLOC_MMAP_THRESHOLD_=65536, so every buffer of 64 KiB or more is its own mapping,
  returned to the system when freed: resident memory then follows the live tensors, instead of
  also holding memory that malloc keeps after a free (which depends on the order of earlier
  allocations, not on the path). The time workers keep the default allocator, whose resident
  growth over all their passes is reported too ("RSS growth, default malloc").

Workers run with OMP_WAIT_POLICY=PASSIVE unless --omp-wait-policy says otherwise: on a machine
whose cores other processes also use, libgomp's default spin-waiting makes a 2-thread process
wait whole scheduler slices at each parallel op (a 20x slowdown was seen at load 9 on 2 cores);
passive waiting puts idle OpenMP threads to sleep instead.

Example (the numbers in docs/BENCHMARKS.md):
  python egs/librispeech/ASR/local/bench_rnnt_loss.py --threads 2
  python egs/librispeech/ASR/local/bench_rnnt_loss.py --threads 2 --sizes 8,200,50,500 --spreads 1 0.5 \
      --paths torchaudio full-packed full-chunked optimized-transducer pruned
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

from icefall_lite.benchmarks import cpu_description

SIZES = ["8,200,50,500", "4,1000,150,500"]
MEMORY_WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def get_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each worker")
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="B,T,U,V sizes to run")
    parser.add_argument("--spreads", nargs="+", type=float, default=[1.0], help="length spreads (see above)")
    parser.add_argument(
        "--paths", nargs="+", default=["torchaudio", "pruned"], choices=list(LOSSES), help="loss paths to run"
    )
    parser.add_argument("--repeats", type=int, default=15, help="timed passes of the fast paths")
    parser.add_argument(
        "--reference-repeats", type=int, default=3,
        help="timed passes of the full losses (torchaudio, full-packed, full-chunked, optimized-transducer)",
    )
    parser.add_argument(
        "--skip-reference-above",
        type=float,
        default=8.0,
        help="skip the full losses where the (B, T, U+1, V) logits would exceed this many GB",
    )
    parser.add_argument(
        "--omp-wait-policy",
        default="PASSIVE",
        choices=["PASSIVE", "ACTIVE", "default"],
        help="OMP_WAIT_POLICY of the workers ('default': leave the environment as it is)",
    )
    parser.add_argument("--worker", nargs=4, metavar=("PATH", "SIZE", "SPREAD", "MEASURE"), help=argparse.SUPPRESS)
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------
# Worker side (a fresh process per measurement)
# ---------------------------------------------------------------------------------------------


def _status_mib(field: str) -> float:
    """A field of /proc/self/status in MiB (VmRSS: resident set size, VmHWM: its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def spread_lengths(batch: int, maximum: int, spread: float, minimum: int) -> List[int]:
    """B lengths round(maximum * f_i), f_i evenly spaced from 1 down to `spread`, at least `minimum`."""
    fractions = [1.0 - (1.0 - spread) * i / max(batch - 1, 1) for i in range(batch)]
    return [max(minimum, round(maximum * f)) for f in fractions]


def _make_inputs(batch: int, frames: int, num_symbols: int, vocab: int, spread: float = 1.0):
    """am (B, T, V), lm (B, U+1, V) requiring grad, symbols (B, U) in [1, V), boundary (B, 4)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    am = torch.randn(batch, frames, vocab, generator=gen).requires_grad_()
    lm = torch.randn(batch, num_symbols + 1, vocab, generator=gen).requires_grad_()
    symbols = torch.randint(1, vocab, (batch, num_symbols), generator=gen)
    frame_lens = spread_lengths(batch, frames, spread, 1)
    symbol_lens = spread_lengths(batch, num_symbols, spread, 0)
    boundary = torch.tensor([[0, 0, s, t] for s, t in zip(symbol_lens, frame_lens)])
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


def _packed_additive_logits(am, lm, boundary):
    """The additive joiner am + lm on each utterance's valid cells, packed: (logits (R, V), T_i (B,), U_i (B,))."""
    from icefall_lite.transducer_loss import pack_pairs

    logit_lengths, target_lengths = boundary[:, 3], boundary[:, 2]
    return pack_pairs(am, lm, logit_lengths, target_lengths), logit_lengths, target_lengths


def _full_packed_loss(am, lm, symbols, boundary):
    from icefall_lite.transducer_loss import transducer_loss

    logits, logit_lengths, target_lengths = _packed_additive_logits(am, lm, boundary)
    return transducer_loss(logits, symbols, logit_lengths, target_lengths, blank=0, reduction="sum")


def _full_chunked_loss(am, lm, symbols, boundary):
    from icefall_lite.transducer_loss import chunked_transducer_loss

    return chunked_transducer_loss(
        _identity, am, lm, symbols, boundary[:, 3], boundary[:, 2], num_classes=am.shape[2], blank=0, reduction="sum"
    )


def _identity(pairs):
    """The additive joiner's output layer: the sum am + lm itself."""
    return pairs


def _optimized_transducer_loss(am, lm, symbols, boundary):
    import optimized_transducer

    logits, logit_lengths, target_lengths = _packed_additive_logits(am, lm, boundary)
    return optimized_transducer.transducer_loss(
        logits=logits, targets=symbols.int(), logit_lengths=logit_lengths.int(), target_lengths=target_lengths.int(),
        blank=0, from_log_softmax=False, reduction="sum",
    )


LOSSES: Dict[str, Callable] = {
    "pruned": _pruned_loss, "full-packed": _full_packed_loss, "full-chunked": _full_chunked_loss,
    "optimized-transducer": _optimized_transducer_loss,
    "torchaudio": _torchaudio_loss,
}
FAST_PATHS = ("pruned",)


def run_worker(path: str, size: str, spread: float, measure: str, threads: int, repeats: int) -> Dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    loss_fn = LOSSES[path]
    batch, frames, num_symbols, vocab = (int(x) for x in size.split(","))
    loss_fn(*_make_inputs(2, 8, 3, vocab)).backward()
    inputs = _make_inputs(batch, frames, num_symbols, vocab, spread)
    baseline_mib = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    times = []
    for _ in range(1 if measure == "memory" else repeats + 1):
        start = time.perf_counter()
        loss_fn(*inputs).backward()
        times.append(time.perf_counter() - start)
        inputs[0].grad = inputs[1].grad = None
    growth = {"peak_growth_mib": _status_mib("VmHWM") - baseline_mib}
    if measure == "memory":
        return growth
    return {"median_ms": 1000 * statistics.median(times[1:]), "min_ms": 1000 * min(times[1:]), **growth}


# ---------------------------------------------------------------------------------------------
# Driver side
# ---------------------------------------------------------------------------------------------


def run_in_fresh_process(
    path: str, size: str, spread: float, measure: str, args: argparse.Namespace, repeats: int
) -> Dict[str, float]:
    command = [sys.executable, __file__, "--worker", path, size, str(spread), measure]
    command += ["--threads", str(args.threads), "--repeats", str(repeats)]
    env = dict(os.environ, **(MEMORY_WORKER_ENV if measure == "memory" else {}))
    if args.omp_wait_policy != "default":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
        raise RuntimeError(f"{path} {size} {measure}: {lines[-1]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def logits_gb(size: str) -> float:
    batch, frames, num_symbols, vocab = (int(x) for x in size.split(","))
    return batch * frames * (num_symbols + 1) * vocab * 4 / 1e9


def measure_path(path: str, size: str, spread: float, args: argparse.Namespace) -> Dict[str, float]:
    repeats = args.repeats if path in FAST_PATHS else args.reference_repeats
    memory = run_in_fresh_process(path, size, spread, "memory", args, repeats)
    timing = run_in_fresh_process(path, size, spread, "time", args, repeats)
    return {
        "median_ms": timing["median_ms"],
        "min_ms": timing["min_ms"],
        "live_peak_mib": memory["peak_growth_mib"],
        "default_malloc_growth_mib": timing["peak_growth_mib"],
    }


def format_row(size: str, spread: float, path: str, result: Dict[str, float], reference: Dict[str, float]) -> str:
    ratios = ["", ""]
    if path != "torchaudio" and "live_peak_mib" in reference:
        ratios = [
            f"{result['median_ms'] / reference['median_ms']:.3f}",
            f"{result['live_peak_mib'] / reference['live_peak_mib']:.3f}",
        ]
    return (
        f"| {size} | {spread:g} | {path} | {result['median_ms']:.1f} | {result['min_ms']:.1f} | {ratios[0]} | "
        f"{result['live_peak_mib']:.1f} | {ratios[1]} | {result['default_malloc_growth_mib']:.1f} |"
    )


def path_available(path: str) -> bool:
    """optimized-transducer runs only where optimized_transducer is installed."""
    if path != "optimized-transducer":
        return True
    return importlib.util.find_spec("optimized_transducer") is not None


def main() -> None:
    args = get_args()
    if args.worker:
        path, size, spread, measure = args.worker
        print(json.dumps(run_worker(path, size, float(spread), measure, args.threads, args.repeats)))
        return
    print(
        f"CPU: {cpu_description()}; threads={args.threads}, OMP_WAIT_POLICY={args.omp_wait_policy}, "
        f"cpus={os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}"
    )
    print(
        "| B,T,U,V | length spread | path | median ms | min ms | time / torchaudio | peak memory growth MiB "
        "| growth / torchaudio | RSS growth, default malloc, MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    paths = ["torchaudio"] + [p for p in args.paths if p != "torchaudio"] if "torchaudio" in args.paths else args.paths
    for size in args.sizes:
        for spread in args.spreads:
            reference: Dict[str, float] = {}
            for path in paths:
                if not path_available(path):
                    print(f"| {size} | {spread:g} | {path} | not installed | | | | | |", flush=True)
                elif path not in FAST_PATHS and logits_gb(size) > args.skip_reference_above:
                    print(f"| {size} | {spread:g} | {path} | skipped: logits of {logits_gb(size):.1f} GB | | | | | |", flush=True)
                else:
                    result = measure_path(path, size, spread, args)
                    reference = result if path == "torchaudio" else reference
                    print(format_row(size, spread, path, result, reference), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
