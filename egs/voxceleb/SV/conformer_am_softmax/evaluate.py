#!/usr/bin/env python3
"""Evaluate a speaker model (run from egs/voxceleb/SV): identification top-1 / top-5 accuracy on the held-out
utterances of the training speakers (iden), verification EER and minDCF (p_target 0.01) on the trial list with
cosine scoring of embeddings of the unseen speakers (test).

Usage:
  ./conformer_am_softmax/evaluate.py --exp-dir conformer_am_softmax/exp --epoch 6 --avg 2 [model options as in training]

Writes EXP/evaluation/{summary,identification,scores}-epoch-E-avg-A.txt and scores-epoch-E-avg-A.png (score
histograms and DET curve), and prints the summary table.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

import torch

from icefall_lite.cli import setup_logging
from icefall_lite.data.speaker_data import SpeakerDataConfig, SpeakerDataModule
from icefall_lite.data.speaker_manifests import SPEAKERS_FILE, TRIALS_MANIFEST, read_speakers, read_trials
from icefall_lite.decoding.checkpoint_selection import add_checkpoint_arguments, checkpoint_suffix
from icefall_lite.decoding.speaker_eval import (
    embed_cuts, identify, load_speaker_model, run_speaker_script, verify, write_results,
)
from icefall_lite.model.speaker_options import add_speaker_model_arguments

DEFAULT_EXP_DIR = Path("conformer_am_softmax/exp")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(parser, epoch=6, avg=2)
    add_speaker_model_arguments(parser)
    SpeakerDataModule.add_arguments(parser)
    parser.add_argument(
        "--trials", type=Path, default=Path("data/manifests") / TRIALS_MANIFEST,
        help=f"VoxCeleb trial list (default data/manifests/{TRIALS_MANIFEST})",
    )
    parser.add_argument("--num-threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.set_defaults(exp_dir=DEFAULT_EXP_DIR, num_workers=0)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.num_threads)
    speakers = read_speakers(args.manifest_dir / SPEAKERS_FILE)
    data = SpeakerDataModule(SpeakerDataConfig.from_args(args), speakers)
    test_cuts = data.cuts("test")
    trials = read_trials(args.trials, (cut.id for cut in test_cuts))
    model = load_speaker_model(args, num_speakers=len(speakers))

    iden = embed_cuts(model, data.eval_dataloaders(data.cuts("iden")))
    top1, top5, top = identify(model, iden, k=5)
    rows = [
        f"{cut_id}\t{speakers[int(target)]}\t{' '.join(speakers[int(i)] for i in best)}"
        for cut_id, target, best in zip(iden.ids, iden.speaker_index, top)
    ]
    verification = verify(trials, embed_cuts(model, data.eval_dataloaders(test_cuts)))
    summary = {
        "identification_top1_accuracy": top1, "identification_top5_accuracy": top5,
        "verification_eer": verification.eer, "verification_min_dcf_p0.01": verification.min_dcf,
    }
    suffix = checkpoint_suffix(args)
    path = write_results(Path(args.exp_dir) / "evaluation", suffix, summary, verification, rows)
    logging.info(f"Wrote {path}")
    print("| checkpoint | utterances (iden) | top-1 | top-5 | trials | EER | minDCF(0.01) |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {suffix} | {len(iden.ids)} | {100 * top1:.2f}% | {100 * top5:.2f}% | {len(trials)} | "
        f"{100 * verification.eer:.2f}% | {verification.min_dcf:.3f} |"
    )


if __name__ == "__main__":
    sys.exit(run_speaker_script(main))
