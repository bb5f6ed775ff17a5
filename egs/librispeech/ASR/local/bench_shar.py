#!/usr/bin/env python3
"""The training data pipeline read from the cut manifests against read from Shar shards (local/export_shar.py):
audio seconds of batches per second of wall time over one epoch (1 rank, --num-workers workers, the recipe's
DynamicBucketingSampler and K2SpeechRecognitionDataset, no model), and the peak resident memory of the reading
process and of its largest DataLoader worker. Run it on a 1x and a 10x Shar set (`export_shar.py --copies 10`) to
see whether memory grows with the corpus.

Usage (from egs/librispeech/ASR, after prepare.sh and export_shar.py):
  ./local/bench_shar.py --source manifests
  ./local/bench_shar.py --source shar --shar-dir data/shar
  ./local/bench_shar.py --source shar --shar-dir data/shar-10x
  ./local/bench_shar.py --source shar --shar-dir data/shar-10x --shar-buffer-size 60000   # the manifests' buffer
Each run is its own process, so that its peak memory is its own.
"""

import argparse
import resource
import time
from pathlib import Path

import sentencepiece as spm

from icefall_lite.benchmarks import cpu_description
from icefall_lite.data.datamodule import AsrDataConfig, LibriSpeechAsrDataModule, TrainCutFilter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=("manifests", "shar"), required=True)
    parser.add_argument("--shar-dir", type=Path, default=Path("data/shar"))
    parser.add_argument("--bpe-model", type=Path, default=Path("data/lang_bpe_1000/bpe.model"))
    parser.add_argument("--max-duration", type=float, default=40.0)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--shar-buffer-size", type=int, default=AsrDataConfig.shar_buffer_size,
                        help="cuts the Shar sampler holds (default: train.py's)")
    args = parser.parse_args()
    shar_dir = args.shar_dir if args.source == "shar" else None
    config = AsrDataConfig(full_libri=False, max_duration=args.max_duration, num_workers=args.num_workers,
                           enable_musan=False, enable_spec_aug=False, shar_dir=shar_dir,
                           shar_buffer_size=args.shar_buffer_size)
    data = LibriSpeechAsrDataModule(config)
    cut_filter = TrainCutFilter(spm.SentencePieceProcessor(model_file=str(args.bpe_model)))
    if shar_dir is None:
        batches = data.train_dataloaders(data.train_cuts().filter(cut_filter))
    else:
        batches = data.shar_train_batches(cut_filter, epoch=1, rank=0, world_size=1)
    start, audio_seconds, num_batches = time.perf_counter(), 0.0, 0
    for batch in batches:
        audio_seconds += float(batch["supervisions"]["num_frames"].sum()) / 100
        num_batches += 1
    elapsed = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{args.source} {shar_dir or ''}: {num_batches} batches, {audio_seconds / 3600:.2f} h in {elapsed:.1f} s = "
          f"{audio_seconds / elapsed:.0f} audio-s/s; peak RSS {own:.0f} MiB (main), {worker:.0f} MiB (largest worker); "
          f"CPU {cpu_description()}")


if __name__ == "__main__":
    main()
