"""Batches of the speaker recipe: random 2-3 s crops for training, whole utterances for evaluation.

A batch (``SpeakerDataset``) carries the keys the shared Trainer reads (``supervisions.num_frames``, ``.cut``)::

    {"inputs": (N, T, 80) float  fbank, mean-normalized per utterance (per crop in training), padded with 0,
     "supervisions": {"num_frames": (N,) int64, "cut": list[Cut],
                      "speaker_index": (N,) int64  class of the cut's speaker, -1 if not a training speaker}}

Example::

    >>> speakers = read_speakers(Path("data/fbank/voxceleb_speakers.txt"))
    >>> data = SpeakerDataModule(SpeakerDataConfig(), speakers)
    >>> train_dl = data.train_dataloaders(data.cuts("train"))
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from lhotse import CutSet, load_manifest_lazy
from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from icefall_lite.cli import positive_float, positive_int, str2bool
from icefall_lite.data.datamodule import EVAL_NUM_BUCKETS, _SeedWorkers
from icefall_lite.data.speaker_manifests import cuts_path

FRAME_SHIFT_SECONDS = 0.01


def mean_normalize(features: Tensor) -> Tensor:
    """features: (T, F) float -> (T, F) float minus its mean over time (cepstral mean normalization)."""
    return features - features.mean(dim=0, keepdim=True)


@dataclass(frozen=True)
class SpeakerDataConfig:
    """Data options of the speaker recipe."""

    manifest_dir: Path = Path("data/fbank")
    batch_size: int = 64
    min_crop_seconds: float = 2.0
    max_crop_seconds: float = 3.0
    max_duration: float = 300.0
    num_workers: int = 2
    shuffle: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SpeakerDataConfig":
        config = cls(**{field.name: getattr(args, field.name) for field in dataclasses.fields(cls)})
        if config.min_crop_seconds > config.max_crop_seconds:
            raise ValueError(
                f"--min-crop-seconds ({config.min_crop_seconds}) is above --max-crop-seconds ({config.max_crop_seconds})"
            )
        return config

    @property
    def mean_crop_seconds(self) -> float:
        return 0.5 * (self.min_crop_seconds + self.max_crop_seconds)


class SpeakerDataset(torch.utils.data.Dataset):
    """lhotse-style dataset: a CutSet (a sampler's batch) -> a batch (module docstring).

    With `crop`, every batch draws one crop length uniformly in [crop[0], crop[1]] seconds (one length per batch:
    no padding) and each cut is cut to it at a random offset (whole, if shorter).
    """

    def __init__(self, speaker_index: Dict[str, int], crop: Optional[Tuple[float, float]] = None) -> None:
        self.speaker_index = speaker_index
        self.crop = crop

    def __getitem__(self, cuts: CutSet) -> Dict[str, Any]:
        cuts = list(cuts)
        if self.crop is not None:
            seconds = self.crop[0] + (self.crop[1] - self.crop[0]) * float(torch.rand(()))
            cropped = []
            for cut in cuts:
                duration = min(seconds, cut.duration)
                offset = (cut.duration - duration) * float(torch.rand(()))
                cropped.append(cut.truncate(offset=offset, duration=duration, preserve_id=True))
            cuts = cropped
        features = [mean_normalize(torch.from_numpy(cut.load_features())) for cut in cuts]
        speakers = [self.speaker_index.get(cut.supervisions[0].speaker, -1) for cut in cuts]
        return {
            "inputs": pad_sequence(features, batch_first=True),
            "supervisions": {
                "num_frames": torch.tensor([f.size(0) for f in features], dtype=torch.int64),
                "cut": cuts,
                "speaker_index": torch.tensor(speakers, dtype=torch.int64),
            },
        }


class SpeakerDataModule:
    """Cut manifests and DataLoaders of the speaker recipe (lhotse samplers, the ASR data module's seeding)."""

    def __init__(self, config: SpeakerDataConfig, speakers: Sequence[str]) -> None:
        self.config = config
        self.speaker_index = {speaker: i for i, speaker in enumerate(speakers)}

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("speaker data options")
        defaults = SpeakerDataConfig()
        options = (
            ("manifest_dir", Path, "directory with voxceleb_cuts_*.jsonl.gz and voxceleb_speakers.txt"),
            ("batch_size", positive_int, "training crops per batch (per DDP process)"),
            ("min_crop_seconds", positive_float, "shortest random training crop"),
            ("max_crop_seconds", positive_float, "longest random training crop"),
            ("max_duration", positive_float, "seconds of audio per evaluation batch"),
            ("num_workers", int, "DataLoader worker processes"),
            ("shuffle", str2bool, "shuffle the training cuts each epoch"),
        )
        for name, type_, help_text in options:
            default = getattr(defaults, name)
            group.add_argument(
                "--" + name.replace("_", "-"), type=type_, default=default, help=f"{help_text} (default {default})"
            )

    def cuts(self, subset: str) -> CutSet:
        path = cuts_path(self.config.manifest_dir, subset)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run ./prepare.sh (stage 2) or check --manifest-dir")
        return load_manifest_lazy(path)

    def epoch_audio_seconds(self, cuts: CutSet) -> float:
        """Expected seconds of (cropped) audio in one training epoch, for the progress ETA."""
        return sum(min(cut.duration, self.config.mean_crop_seconds) for cut in cuts)

    def _dataloader(self, dataset: SpeakerDataset, sampler: Any, seed: int) -> DataLoader:
        return DataLoader(
            dataset, sampler=sampler, batch_size=None, num_workers=self.config.num_workers,
            persistent_workers=False, worker_init_fn=_SeedWorkers(seed),
        )

    def train_dataloaders(
        self, cuts: CutSet, sampler_state_dict: Optional[Dict[str, Any]] = None, seed: int = 42
    ) -> DataLoader:
        """Shuffled batches of `batch_size` random crops; `sampler_state_dict` resumes mid-epoch."""
        config = self.config
        sampler = SimpleCutSampler(cuts, max_cuts=config.batch_size, shuffle=config.shuffle, drop_last=True, seed=seed)
        if sampler_state_dict is not None:
            sampler.load_state_dict(sampler_state_dict)
        dataset = SpeakerDataset(self.speaker_index, crop=(config.min_crop_seconds, config.max_crop_seconds))
        return self._dataloader(dataset, sampler, seed)

    def eval_dataloaders(self, cuts: CutSet) -> DataLoader:
        """Whole utterances, unshuffled, bucketed by duration (for validation, embeddings and identification)."""
        num_cuts = sum(1 for _ in cuts)
        sampler = DynamicBucketingSampler(
            cuts, max_duration=self.config.max_duration, shuffle=False, num_buckets=max(1, min(num_cuts, EVAL_NUM_BUCKETS))
        )
        return self._dataloader(SpeakerDataset(self.speaker_index), sampler, seed=0)
