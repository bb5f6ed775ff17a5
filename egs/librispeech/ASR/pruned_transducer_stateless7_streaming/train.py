#!/usr/bin/env python3
"""Train the streaming Zipformer transducer with the pruned (or exact) RNN-T loss (run from egs/librispeech/ASR).

Usage:
  # 4 GPUs (or 4 CPU processes with gloo when there is no GPU), fp16:
  ./pruned_transducer_stateless7_streaming/train.py --world-size 4 --num-epochs 30 --start-epoch 1 \\
      --use-fp16 1 --exp-dir pruned_transducer_stateless7_streaming/exp --max-duration 750
  # several nodes: torchrun --nnodes 2 --nproc-per-node 4 --node-rank 0 --master-addr HOST \\
  #     ./pruned_transducer_stateless7_streaming/train.py ...
  # the exact RNN-T loss on packed logits instead of the pruned one: --transducer-loss full
  # resume: --start-epoch E (from epoch-(E-1).pt) or --start-batch B (from checkpoint-B.pt, same data position)
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Iterable

import sentencepiece as spm
import torch

from icefall_lite.data.datamodule import AsrDataConfig, LibriSpeechAsrDataModule, TrainCutFilter, shar_duration
from icefall_lite.model.options import add_model_arguments, build_model, transducer_config_from_args
from icefall_lite.training.distributed import DistributedContext, launch
from icefall_lite.training.options import TrainConfig, add_training_arguments
from icefall_lite.training.trainer import Trainer, begin_training_run
from icefall_lite.training.asr_objective import AsrLossConfig, AsrObjective, check_loss_scales


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser)
    AsrLossConfig.add_arguments(parser)
    add_model_arguments(parser)
    LibriSpeechAsrDataModule.add_arguments(parser)
    return parser


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run(context: DistributedContext, args: argparse.Namespace) -> None:
    config = begin_training_run(context, args)
    loss_config = AsrLossConfig.from_args(args)
    if not Path(loss_config.bpe_model).is_file():
        raise FileNotFoundError(f"--bpe-model {loss_config.bpe_model} not found: run ./prepare.sh (stage 5) first")
    sp = spm.SentencePieceProcessor(model_file=str(loss_config.bpe_model))
    model = build_model(args, vocab_size=sp.get_piece_size(), blank_id=sp.piece_to_id("<blk>"))
    logging.info(f"Number of model parameters: {count_parameters(model)}")

    data = LibriSpeechAsrDataModule(AsrDataConfig.from_args(args))
    counting_filter = TrainCutFilter(sp)
    if args.shar_dir is None:
        train_cuts = data.train_cuts()
        epoch_audio_seconds = sum(cut.duration for cut in train_cuts.filter(counting_filter))
        train_cuts = train_cuts.filter(TrainCutFilter(sp))
    else:
        epoch_audio_seconds = shar_duration(args.shar_dir, counting_filter)
    logging.info(f"{counting_filter.summary()}; {epoch_audio_seconds / 3600:.2f} h of training audio per epoch")
    valid_cuts = data.valid_cuts()

    trainer = Trainer(model, AsrObjective(sp, loss_config, model.config), config, context, params={"args": vars(args)})
    trainer.resume_if_requested()

    def train_batches(epoch: int) -> Iterable:
        if args.shar_dir is None:
            return data.train_dataloaders(train_cuts, sampler_state_dict=trainer.sampler_state, seed=config.seed)
        return data.shar_train_batches(
            TrainCutFilter(sp), epoch, context.rank, context.world_size, trainer.sampler_state, seed=config.seed
        )

    trainer.fit(train_batches, data, valid_cuts, epoch_audio_seconds)
    logging.info("Done!")


def main() -> None:
    args = get_parser().parse_args()
    try:
        # The vocabulary is the BPE model's, read later; the options' checks do not depend on it.
        TrainConfig.from_args(args)
        check_loss_scales(transducer_config_from_args(args, vocab_size=500), AsrLossConfig.from_args(args))
    except ValueError as error:
        sys.exit(f"train.py: error: {error}")
    launch(run, world_size=args.world_size, master_port=args.master_port, args=args)


if __name__ == "__main__":
    main()
