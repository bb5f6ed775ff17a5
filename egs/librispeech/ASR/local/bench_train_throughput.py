#!/usr/bin/env python3
"""Training throughput of the whole transducer: encoder + decoder + joiner + pruned RNN-T loss (+ the CTC head and
its loss in the "+ctc" configurations, scale 0.2), forward and backward.

Seconds of audio per second of wall time and peak memory, for a batch of 8 utterances of 10 s (random fbank and
targets, 30 tokens each), CPU, 2 threads, in training mode, timed after warm-up. Each configuration runs in a
fresh process so that its peak memory is its own.

    ./local/bench_train_throughput.py                 # every configuration, a fresh process each
    ./local/bench_train_throughput.py --config small  # one, in this process
"""

import argparse
import resource
import statistics
import subprocess
import sys
import time

import torch

from icefall_lite.model.options import add_model_arguments, build_model

SMALL = (
    "--num-encoder-layers 1,1,1,1,1 --encoder-dims 128,128,128,128,128 --attention-dims 64,64,64,64,64 "
    "--feedforward-dims 256,256,256,256,256 --encoder-unmasked-dims 128,128,128,128,128"
).split()
CONFIGS = {"default": [], "small": SMALL, "small+ctc": SMALL + ["--use-ctc", "1"], "default+ctc": ["--use-ctc", "1"]}
LOSS_SCALES = {"simple_loss": 0.5, "pruned_loss": 1.0, "ctc_loss": 0.2}
BATCH, SECONDS, TOKENS, VOCAB = 8, 10.0, 30, 500


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(config: str, warmup: int, iterations: int, threads: int) -> str:
    torch.set_num_threads(threads)
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    model = build_model(parser.parse_args(CONFIGS[config]), vocab_size=VOCAB)
    model.train()
    num_frames = int(SECONDS * 100)
    x = torch.randn(BATCH, num_frames, 80)
    x_lens = torch.full((BATCH,), num_frames, dtype=torch.int64)
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(1, VOCAB, (BATCH, TOKENS), generator=generator).tolist()
    rss_before = peak_rss_mb()
    times = []
    for step in range(warmup + iterations):
        start = time.perf_counter()
        losses = model(x, x_lens, y)
        sum(LOSS_SCALES[name] * value for name, value in losses.items()).backward()
        model.zero_grad(set_to_none=True)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return (
        f"| {config} | {params:.2f} M | {BATCH * SECONDS / median:.1f} | {median * 1000:.0f} ms | "
        f"{peak_rss_mb():.0f} MB ({peak_rss_mb() - rss_before:.0f} MB over the model) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), help="one configuration, in this process")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.config:
        print(measure(args.config, args.warmup, args.iterations, args.threads), flush=True)
        return
    print("| config | parameters | audio-s/s | time per batch (median) | peak RSS |")
    print("|---|---|---|---|---|")
    for config in CONFIGS:
        command = [sys.executable, __file__, "--config", config, "--warmup", str(args.warmup),
                   "--iterations", str(args.iterations), "--threads", str(args.threads)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
