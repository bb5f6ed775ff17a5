"""Batches for training and decoding: icefall's LibriSpeech data module, built on lhotse.

A batch is lhotse's ``K2SpeechRecognitionDataset`` output::

    {"inputs": (N, T, 80) float  log-mel fbank, padded with log(1e-10),
     "supervisions": {"text": list[str], "sequence_idx": (N,) int, "start_frame": (N,) int,
                      "num_frames": (N,) int, "cut": list[Cut] (with --return-cuts)}}

Example::

    >>> parser = argparse.ArgumentParser(); LibriSpeechAsrDataModule.add_arguments(parser)
    >>> data = LibriSpeechAsrDataModule(AsrDataConfig.from_args(parser.parse_args([])))
    >>> train_dl = data.train_dataloaders(filter_train_cuts(data.train_cuts(), TrainCutFilter(sp)))
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import sentencepiece as spm
import torch
from lhotse import CutSet, load_manifest, load_manifest_lazy
from lhotse.cut import Cut
from lhotse.dataset import (
    CutConcatenate,
    CutMix,
    DynamicBucketingSampler,
    IterableDatasetWrapper,
    K2SpeechRecognitionDataset,
    SimpleCutSampler,
    SpecAugment,
)
from lhotse.dataset.dataloading import make_worker_init_fn
from lhotse.dataset.input_strategies import AudioSamples, BatchIO, OnTheFlyFeatures, PrecomputedFeatures
from lhotse.dataset.sampling.dynamic_bucketing import estimate_duration_buckets
from lhotse.utils import compute_num_frames
from torch.utils.data import DataLoader

from icefall_lite.cli import positive_float, positive_int, str2bool
from icefall_lite.data.features import make_fbank

DEV_SUBSETS = ("dev-clean", "dev-other")
TRAIN_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500")
INPUT_STRATEGIES = ("PrecomputedFeatures", "AudioSamples")
FRAME_SHIFT_SECONDS = 0.01
EVAL_NUM_BUCKETS = 10
SHAR_CONSUMED = "shar_batches_consumed"
BINS_ESTIMATE_CUTS = 10000  # lhotse's num_cuts_for_bins_estimate


@dataclass
class AsrDataConfig:
    """icefall's data options (asr_datamodule.py), with the same names and defaults."""

    manifest_dir: Path = Path("data/fbank")
    full_libri: bool = True
    max_duration: float = 200.0
    bucketing_sampler: bool = True
    num_buckets: int = 30
    concatenate_cuts: bool = False
    duration_factor: float = 1.0
    gap: float = 1.0
    on_the_fly_feats: bool = False
    shuffle: bool = True
    drop_last: bool = True
    return_cuts: bool = True
    num_workers: int = 2
    enable_spec_aug: bool = True
    spec_aug_time_warp_factor: int = 80
    enable_musan: bool = True
    input_strategy: str = "PrecomputedFeatures"
    shar_dir: Optional[Path] = None
    shar_buffer_size: int = 10000

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "AsrDataConfig":
        return cls(**{field.name: getattr(args, field.name) for field in dataclasses.fields(cls)})


def _add_option(group: argparse._ArgumentGroup, name: str, type_: Any, help_: str) -> None:
    default = getattr(AsrDataConfig, name)
    group.add_argument(f"--{name.replace('_', '-')}", type=type_, default=default, help=f"{help_} (default {default})")


class TrainCutFilter:
    """Keeps training cuts usable by the pruned RNN-T loss and counts what it drops.

    A cut is dropped when its duration is outside [min_duration, max_duration] seconds, or when the encoder
    output has fewer frames than the cut has BPE tokens: T' = ((T - 7) // 2 + 1) // 2 < num_tokens.

    Example::

        >>> keep = TrainCutFilter(sp); cuts = cuts.filter(keep); ...; logging.info(keep.summary())
    """

    def __init__(self, sp: spm.SentencePieceProcessor, min_duration: float = 1.0, max_duration: float = 20.0):
        self.sp = sp
        self.min_duration = min_duration
        self.max_duration = max_duration
        self.kept = 0
        self.too_short = 0
        self.too_long = 0
        self.fewer_frames_than_tokens = 0

    def __call__(self, cut: Cut) -> bool:
        if cut.duration < self.min_duration:
            self.too_short += 1
            return False
        if cut.duration > self.max_duration:
            self.too_long += 1
            return False
        num_frames = cut.num_frames or compute_num_frames(cut.duration, FRAME_SHIFT_SECONDS, cut.sampling_rate)
        num_tokens = len(self.sp.encode(cut.supervisions[0].text))
        if encoder_output_frames(num_frames) < num_tokens:
            self.fewer_frames_than_tokens += 1
            logging.debug(f"dropping cut {cut.id}: {num_frames} frames for {num_tokens} tokens")
            return False
        self.kept += 1
        return True

    @property
    def dropped(self) -> int:
        return self.too_short + self.too_long + self.fewer_frames_than_tokens

    def summary(self) -> str:
        return (
            f"training cut filter: kept {self.kept}, dropped {self.dropped} "
            f"({self.too_short} shorter than {self.min_duration} s, {self.too_long} longer than "
            f"{self.max_duration} s, {self.fewer_frames_than_tokens} with fewer encoder frames than tokens)"
        )


def encoder_output_frames(num_frames: int) -> int:
    """Frames left after the encoder's 4x subsampling (Conv2dSubsampling then the output downsampling)."""
    return ((num_frames - 7) // 2 + 1) // 2


class _SeedWorkers:
    """worker_init_fn giving each DataLoader worker its own deterministic seed."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, worker_id: int) -> None:
        torch.manual_seed(self.seed + worker_id)


def shar_cut_shards(shar_dir: Path) -> List[Path]:
    """The cut shards (cuts.NNNNNN.jsonl.gz) of a Shar directory."""
    return sorted(Path(shar_dir).glob("cuts.*.jsonl*"))


def check_shar_shards(shar_dir: Optional[Path], readers: int) -> None:
    """FileNotFoundError / ValueError unless `shar_dir` holds at least `readers` (ranks x workers) shards: with
    fewer, a reader would get none."""
    if shar_dir is None or not Path(shar_dir).is_dir():
        raise FileNotFoundError(f"--shar-dir {shar_dir} is not a directory (write it with local/export_shar.py)")
    num_shards = len(shar_cut_shards(shar_dir))
    if num_shards < readers:
        raise ValueError(
            f"--shar-dir {shar_dir} has {num_shards} shards, fewer than the {readers} readers (ranks x DataLoader "
            "workers) that each need one: export with a smaller --shard-size, or use fewer workers"
        )


def shar_cuts_alone(shar_dir: Path) -> CutSet:
    """The Shar directory's cuts read from its cut shards alone: durations and supervisions, no features or audio."""
    return CutSet.from_shar(fields={"cuts": shar_cut_shards(shar_dir)})


def shar_duration(shar_dir: Path, cut_filter: Callable[[Cut], bool]) -> float:
    """Seconds of audio in the Shar directory's cuts that pass `cut_filter` (reads the cut shards only)."""
    return sum(cut.duration for cut in shar_cuts_alone(shar_dir).filter(cut_filter))


def shar_duration_bins(shar_dir: Path, num_buckets: int) -> List[float]:
    """The bucketing sampler's duration bins, estimated from the first BINS_ESTIMATE_CUTS cuts of the cut
    shards alone (the sampler's own estimate would read them with their features, then read them again)."""
    return estimate_duration_buckets(itertools.islice(shar_cuts_alone(shar_dir), BINS_ESTIMATE_CUTS), num_buckets)


class SharBatches:
    """One epoch of training batches read from Shar shards, resumable by count: the first `skip` batches (those a
    checkpoint says were consumed) are read and dropped, the order being the same for the same epoch and seed."""

    def __init__(self, loader: DataLoader, skip: int = 0) -> None:
        self.loader = loader
        self.skip = skip

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        batches = iter(self.loader)
        for _ in range(self.skip):
            if next(batches, None) is None:
                return
        yield from batches

    def resume_state(self, batches_consumed: int) -> Dict[str, Any]:
        """What a checkpoint stores to continue after `batches_consumed` batches of this epoch."""
        return {SHAR_CONSUMED: batches_consumed}


class LibriSpeechAsrDataModule:
    """Cut manifests and DataLoaders of the LibriSpeech recipe (real or synthetic corpus)."""

    def __init__(self, config: AsrDataConfig):
        if config.input_strategy not in INPUT_STRATEGIES:
            raise ValueError(f"--input-strategy must be one of {INPUT_STRATEGIES}, got {config.input_strategy!r}")
        self.config = config

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("ASR data related options")
        _add_option(group, "manifest_dir", Path, "directory with the lhotse cut manifests and features")
        _add_option(group, "full_libri", str2bool, "train on all train subsets found, not only train-clean-100")
        _add_option(group, "max_duration", positive_float, "seconds of audio per batch (before padding)")
        _add_option(group, "bucketing_sampler", str2bool, "bucket cuts of similar duration together")
        _add_option(group, "num_buckets", positive_int, "buckets of the bucketing sampler")
        _add_option(group, "concatenate_cuts", str2bool, "concatenate short cuts into longer ones")
        _add_option(group, "duration_factor", positive_float, "max concatenated duration / longest cut")
        _add_option(group, "gap", float, "seconds of padding between concatenated cuts")
        _add_option(group, "on_the_fly_feats", str2bool, "compute fbank on the fly instead of precomputed")
        _add_option(group, "shuffle", str2bool, "shuffle the training cuts each epoch")
        _add_option(group, "drop_last", str2bool, "drop the last incomplete training batch")
        _add_option(group, "return_cuts", str2bool, "put the cuts in batch['supervisions']['cut']")
        _add_option(group, "num_workers", int, "DataLoader worker processes")
        _add_option(group, "enable_spec_aug", str2bool, "SpecAugment the training features")
        _add_option(group, "spec_aug_time_warp_factor", int, "SpecAugment time warp factor (< 1 disables)")
        _add_option(group, "enable_musan", str2bool, "mix noise from musan_cuts.jsonl.gz into training cuts")
        group.add_argument(
            "--shar-dir", type=Path, default=None,
            help="train from the lhotse Shar shards in this directory (local/export_shar.py), read lazily: ranks and "
            "DataLoader workers read disjoint shards, reshuffled each epoch (default: the cut manifests)",
        )
        _add_option(
            group, "shar_buffer_size", positive_int,
            "with --shar-dir: cuts each DataLoader worker's bucketing sampler holds; cuts read from Shar carry their "
            "features (and audio) in memory, so this bounds the memory whatever the corpus size (about 35 KB a cut "
            "of features)",
        )
        group.add_argument(
            "--input-strategy",
            choices=INPUT_STRATEGIES,
            default=AsrDataConfig.input_strategy,
            help="how the dataset reads inputs (default PrecomputedFeatures)",
        )

    def _input_strategy(self) -> BatchIO:
        if self.config.on_the_fly_feats:
            return OnTheFlyFeatures(make_fbank(), use_batch_extract=False)
        return AudioSamples() if self.config.input_strategy == "AudioSamples" else PrecomputedFeatures()

    def _train_transforms(self) -> List[Any]:
        transforms: List[Any] = []
        if self.config.enable_musan:
            musan_path = self.config.manifest_dir / "musan_cuts.jsonl.gz"
            logging.info(f"Mixing noise from {musan_path}")
            transforms.append(CutMix(cuts=load_manifest(musan_path), p=0.5, snr=(10, 20), preserve_id=True))
        if self.config.concatenate_cuts:
            transforms.insert(0, CutConcatenate(duration_factor=self.config.duration_factor, gap=self.config.gap))
        return transforms

    def _spec_augment(self) -> List[SpecAugment]:
        if not self.config.enable_spec_aug:
            return []
        return [
            SpecAugment(
                time_warp_factor=self.config.spec_aug_time_warp_factor,
                num_frame_masks=10,
                features_mask_size=27,
                num_feature_masks=2,
                frames_mask_size=100,
            )
        ]

    def _dataloader(self, dataset: K2SpeechRecognitionDataset, sampler: Any, num_workers: int, seed: int) -> DataLoader:
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=num_workers,
            persistent_workers=False,
            worker_init_fn=_SeedWorkers(seed),
        )

    def _train_dataset(self) -> K2SpeechRecognitionDataset:
        return K2SpeechRecognitionDataset(
            input_strategy=self._input_strategy(),
            cut_transforms=self._train_transforms(),
            input_transforms=self._spec_augment(),
            return_cuts=self.config.return_cuts,
        )

    def _train_sampler(
        self, cuts: CutSet, seed: int, bucketing: Optional[Dict[str, Any]] = None, **distributed: int
    ) -> Any:
        """The bucketing (or simple) training sampler; `bucketing` overrides DynamicBucketingSampler's options
        (default buffer_size num_buckets * 2000, icefall's), `distributed` its world_size and rank."""
        config = self.config
        if config.bucketing_sampler:
            options = {"buffer_size": config.num_buckets * 2000, **(bucketing or {}), **distributed}
            return DynamicBucketingSampler(
                cuts, max_duration=config.max_duration, shuffle=config.shuffle, num_buckets=config.num_buckets,
                drop_last=config.drop_last, seed=seed, **options,
            )
        return SimpleCutSampler(
            cuts, max_duration=config.max_duration, shuffle=config.shuffle, drop_last=config.drop_last, seed=seed,
            **distributed,
        )

    def train_dataloaders(
        self, cuts: CutSet, sampler_state_dict: Optional[Dict[str, Any]] = None, seed: int = 42
    ) -> DataLoader:
        """Shuffled, bucketed, augmented training batches; `sampler_state_dict` resumes mid-epoch."""
        sampler = self._train_sampler(cuts, seed)
        if sampler_state_dict is not None:
            sampler.load_state_dict(sampler_state_dict)
        return self._dataloader(self._train_dataset(), sampler, self.config.num_workers, seed)

    @functools.cached_property
    def _shar_duration_bins(self) -> List[float]:
        """shar_duration_bins of --shar-dir, read once: the shards are the same every epoch."""
        return shar_duration_bins(self.config.shar_dir, self.config.num_buckets)

    def shar_train_batches(
        self, cut_filter: Callable[[Cut], bool], epoch: int, rank: int, world_size: int,
        resume_state: Optional[Dict[str, Any]] = None, seed: int = 42,
    ) -> SharBatches:
        """Training batches of one epoch from --shar-dir: this rank's share of the shards (shuffled with the
        epoch), split again between the DataLoader workers, each bucketing its own cuts by duration (holding
        --shar-buffer-size cuts at most; the same duration bins for every worker and rank)."""
        shar_dir = self.config.shar_dir
        check_shar_shards(shar_dir, world_size * max(self.config.num_workers, 1))
        cuts = CutSet.from_shar(
            in_dir=shar_dir, split_for_dataloading=True, shuffle_shards=self.config.shuffle, stateful_shuffle=False,
            seed=seed + epoch,
        ).filter(cut_filter)
        bucketing = {"buffer_size": self.config.shar_buffer_size, "duration_bins": self._shar_duration_bins}
        sampler = self._train_sampler(cuts, seed + epoch, bucketing, world_size=1, rank=0)
        loader = DataLoader(
            IterableDatasetWrapper(self._train_dataset(), sampler), batch_size=None,
            num_workers=self.config.num_workers, worker_init_fn=make_worker_init_fn(rank, world_size, seed=seed),
        )
        return SharBatches(loader, skip=(resume_state or {}).get(SHAR_CONSUMED, 0))

    def eval_dataloaders(self, cuts: CutSet) -> DataLoader:
        """Unshuffled, unaugmented batches for validation and decoding."""
        dataset = K2SpeechRecognitionDataset(input_strategy=self._input_strategy(), return_cuts=self.config.return_cuts)
        num_cuts = sum(1 for _ in cuts)  # bucketing needs at least one cut per bucket
        sampler = DynamicBucketingSampler(
            cuts, max_duration=self.config.max_duration, shuffle=False, num_buckets=min(num_cuts, EVAL_NUM_BUCKETS)
        )
        return self._dataloader(dataset, sampler, num_workers=self.config.num_workers, seed=0)

    def _cuts(self, subset: str) -> CutSet:
        path = self.config.manifest_dir / f"librispeech_cuts_{subset}.jsonl.gz"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run ./prepare.sh (stage 3) or check --manifest-dir")
        return load_manifest_lazy(path)

    def train_cuts(self) -> CutSet:
        """train-clean-100, or with --full-libri every train subset that was prepared."""
        if not self.config.full_libri:
            return self._cuts("train-clean-100")
        available = [s for s in TRAIN_SUBSETS if (self.config.manifest_dir / f"librispeech_cuts_{s}.jsonl.gz").is_file()]
        missing = sorted(set(TRAIN_SUBSETS) - set(available))
        if missing:
            logging.warning(f"--full-libri: no cuts for {missing} in {self.config.manifest_dir}; using {available}")
        if not available:
            return self._cuts("train-clean-100")
        return CutSet.mux(*[self._cuts(s) for s in available]) if len(available) > 1 else self._cuts(available[0])

    def dev_clean_cuts(self) -> CutSet:
        return self._cuts("dev-clean")

    def valid_cuts(self) -> CutSet:
        """dev-clean + dev-other, or whichever of the two was prepared (a corpus from a Hugging Face dataset may
        have one validation split)."""
        available = [s for s in DEV_SUBSETS if (self.config.manifest_dir / f"librispeech_cuts_{s}.jsonl.gz").is_file()]
        if len(available) == 1:
            logging.info(f"Validating on {available[0]} alone (no {set(DEV_SUBSETS) - set(available)} cuts)")
            return self._cuts(available[0])
        return self.dev_clean_cuts() + self.dev_other_cuts()

    def dev_other_cuts(self) -> CutSet:
        return self._cuts("dev-other")

    def test_clean_cuts(self) -> CutSet:
        return self._cuts("test-clean")

    def test_other_cuts(self) -> CutSet:
        return self._cuts("test-other")
