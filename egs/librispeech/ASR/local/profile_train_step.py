#!/usr/bin/env python3
"""Where a training step's time goes: torch.profiler over forward + backward of the whole transducer (encoder,
decoder, joiner, smoothed simple and pruned losses) in training mode, on random fbank, after warm-up; prints the
step time and the operators by self CPU time (with --shapes, grouped by input shapes too).

Usage (from egs/librispeech/ASR):
  ./local/profile_train_step.py --config demo --threads 1        # run.sh's demo model, 5 x 4 s (one DDP rank's batch)
  ./local/profile_train_step.py --config default --batch 8 --seconds 10 --threads 2 --shapes 1
"""

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from icefall_lite.benchmarks import cpu_description
from icefall_lite.cli import str2bool
from icefall_lite.model.options import add_model_arguments, build_model
from icefall_lite.model.warmup import set_batch_count

DEMO = (
    "--num-encoder-layers 1,1,1,1,1 --feedforward-dims 256,256,256,256,256 --nhead 4,4,4,4,4 --encoder-dims "
    "128,128,128,128,128 --attention-dims 64,64,64,64,64 --encoder-unmasked-dims 128,128,128,128,128 "
    "--decoder-dim 128 --joiner-dim 128"
).split()
CONFIGS = {"demo": (DEMO, 1000), "default": ([], 500)}
TOKENS_PER_SECOND = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="demo")
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 3 warm-up steps)")
    parser.add_argument("--shapes", type=str2bool, default=False, help="also group the operators by input shapes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options, vocab_size = CONFIGS[args.config]
    model_parser = argparse.ArgumentParser()
    add_model_arguments(model_parser)
    model = build_model(model_parser.parse_args(options), vocab_size=vocab_size).train()
    set_batch_count(model, 10_000)  # past the regularizers' warm-up, as for most of training
    generator = torch.Generator().manual_seed(0)
    num_frames = int(args.seconds * 100)
    x, x_lens = torch.randn(args.batch, num_frames, 80), torch.full((args.batch,), num_frames)
    y = torch.randint(3, vocab_size, (args.batch, int(args.seconds * TOKENS_PER_SECOND)), generator=generator).tolist()

    def step() -> None:
        losses = model(x, x_lens, y, am_scale=0.1)
        (0.5 * losses["simple_loss"] + losses["pruned_loss"]).backward()
        model.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    print(f"CPU {cpu_description()}, {args.threads} thread(s): {args.config}, batch {args.batch} x {args.seconds:g} s: "
          f"{seconds * 1000:.0f} ms per step = {args.batch * args.seconds / seconds:.1f} audio-s/s")
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
        for _ in range(args.steps):
            step()
    averages = prof.key_averages(group_by_input_shape=args.shapes)
    print(averages.table(sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=40, max_shapes_column_width=70))


if __name__ == "__main__":
    main()
