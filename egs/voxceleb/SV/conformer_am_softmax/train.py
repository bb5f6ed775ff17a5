#!/usr/bin/env python3
"""Train a speaker embedding model (Conformer or Transformer encoder, pooling, AM-softmax) on the training speakers
(run from egs/voxceleb/SV).

Usage:
  ./conformer_am_softmax/train.py --world-size 2 --num-epochs 6 --exp-dir conformer_am_softmax/exp
  # the exercise's ladder: --encoder transformer --pooling mean --loss softmax, ..., --pooling attentive-statistics
  # resume: --start-epoch E (from epoch-(E-1).pt) or --start-batch B (from checkpoint-B.pt, same data position)

The loop is icefall_lite's Trainer (DDP, --use-fp16, skipped non-finite batches, atomic checkpoints, averaging,
tensorboard); this script supplies the speaker objective. Logged "loss" is the cross-entropy per crop and "error"
the top-1 error rate of the training crops.
"""

import argparse
import logging
import sys
from pathlib import Path

from torch.utils.data import DataLoader

from icefall_lite.data.speaker_data import SpeakerDataConfig, SpeakerDataModule
from icefall_lite.data.speaker_manifests import SPEAKERS_FILE, read_speakers
from icefall_lite.model.speaker import SpeakerModel
from icefall_lite.model.speaker_options import add_speaker_model_arguments, speaker_config_from_args
from icefall_lite.training.distributed import DistributedContext, launch
from icefall_lite.training.options import TrainConfig, add_training_arguments
from icefall_lite.training.speaker_objective import SpeakerLossConfig, SpeakerObjective
from icefall_lite.training.trainer import Trainer, begin_training_run

DEFAULTS = {
    "exp_dir": Path("conformer_am_softmax/exp"), "num_epochs": 6, "base_lr": 0.045, "lr_batches": 1000.0,
    "lr_epochs": 3.0, "log_interval": 20, "valid_interval": 500, "save_every_n": 500, "average_period": 10,
}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser)
    add_speaker_model_arguments(parser)
    SpeakerLossConfig.add_arguments(parser)
    SpeakerDataModule.add_arguments(parser)
    parser.set_defaults(**DEFAULTS)
    return parser


def run(context: DistributedContext, args: argparse.Namespace) -> None:
    config = begin_training_run(context, args)

    speakers = read_speakers(args.manifest_dir / SPEAKERS_FILE)
    model = SpeakerModel(speaker_config_from_args(args, num_speakers=len(speakers)))
    logging.info(f"{len(speakers)} training speakers; number of model parameters: {sum(p.numel() for p in model.parameters())}")
    data = SpeakerDataModule(SpeakerDataConfig.from_args(args), speakers)
    train_cuts, valid_cuts = data.cuts("train"), data.cuts("valid")
    epoch_audio_seconds = data.epoch_audio_seconds(train_cuts)

    objective = SpeakerObjective(SpeakerLossConfig.from_args(args))
    trainer = Trainer(model, objective, config, context, params={"args": vars(args)})
    trainer.resume_if_requested()

    def train_batches(epoch: int) -> DataLoader:
        return data.train_dataloaders(train_cuts, sampler_state_dict=trainer.sampler_state, seed=config.seed)

    trainer.fit(train_batches, data, valid_cuts, epoch_audio_seconds)
    logging.info("Done!")


def main() -> None:
    args = get_parser().parse_args()
    try:
        speaker_config_from_args(args, num_speakers=2)
        SpeakerLossConfig.from_args(args)
        SpeakerDataConfig.from_args(args)
        TrainConfig.from_args(args)
    except ValueError as error:
        sys.exit(f"train.py: error: {error}")
    launch(run, world_size=args.world_size, master_port=args.master_port, args=args)


if __name__ == "__main__":
    main()
