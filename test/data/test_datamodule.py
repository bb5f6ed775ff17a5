"""The data module: batch shapes and padding, augmentation, the training-cut filter, options, resumable sampling."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import sentencepiece as spm
from lhotse import SupervisionSegment
from lhotse.testing.dummies import dummy_cut

from conftest import TINY_VOCAB_SIZE
from icefall_lite.data.datamodule import (
    AsrDataConfig,
    LibriSpeechAsrDataModule,
    TrainCutFilter,
    encoder_output_frames,
)

LOG_ZERO = math.log(1e-10)
pytestmark = pytest.mark.usefixtures("in_prepared_dir")


def make_config(prepared_dir: Path, *argv: str) -> AsrDataConfig:
    parser = argparse.ArgumentParser()
    LibriSpeechAsrDataModule.add_arguments(parser)
    args = parser.parse_args(["--manifest-dir", str(prepared_dir / "data" / "fbank"), "--num-workers", "0", *argv])
    return AsrDataConfig.from_args(args)


@pytest.fixture(scope="module")
def sp(prepared_dir: Path) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(prepared_dir / "data" / f"lang_bpe_{TINY_VOCAB_SIZE}" / "bpe.model"))


def test_defaults_match_icefall() -> None:
    config = make_config(Path("unused"))
    assert (config.max_duration, config.num_buckets, config.spec_aug_time_warp_factor) == (200.0, 30, 80)
    assert config.bucketing_sampler and config.shuffle and config.drop_last and config.return_cuts
    assert config.enable_spec_aug and config.enable_musan and not config.on_the_fly_feats
    assert config.input_strategy == "PrecomputedFeatures"


def test_eval_batches_are_padded_with_log_zero_longest_first(prepared_dir: Path) -> None:
    data = LibriSpeechAsrDataModule(make_config(prepared_dir, "--max-duration", "30"))
    cuts = data.dev_clean_cuts()
    seen = 0
    for batch in data.eval_dataloaders(cuts):
        inputs, supervisions = batch["inputs"], batch["supervisions"]
        num_frames = supervisions["num_frames"]
        assert inputs.ndim == 3 and inputs.shape[0] == len(supervisions["text"]) and inputs.shape[2] == 80
        assert inputs.shape[1] == int(num_frames.max())
        assert num_frames.tolist() == sorted(num_frames.tolist(), reverse=True)
        for row, frames in enumerate(num_frames.tolist()):
            assert (inputs[row, frames:] == LOG_ZERO).all()
            assert (inputs[row, :frames] > LOG_ZERO).any()
        assert [cut.supervisions[0].text for cut in supervisions["cut"]] == supervisions["text"]
        seen += inputs.shape[0]
    assert seen == len(cuts.to_eager())


def test_train_batches_with_noise_and_spec_augment(prepared_dir: Path) -> None:
    data = LibriSpeechAsrDataModule(make_config(prepared_dir, "--max-duration", "40", "--num-buckets", "2"))
    batches = list(data.train_dataloaders(data.train_cuts()))
    assert batches
    for batch in batches:
        assert batch["inputs"].shape[2] == 80
        assert sum(batch["supervisions"]["num_frames"].tolist()) <= 40 * 100 + batch["inputs"].shape[0]
    assert any(cut.id.endswith("_sp0.9") for batch in batches for cut in batch["supervisions"]["cut"])


def test_on_the_fly_features_match_precomputed_shapes(prepared_dir: Path) -> None:
    data = LibriSpeechAsrDataModule(make_config(prepared_dir, "--on-the-fly-feats", "1", "--max-duration", "30"))
    batch = next(iter(data.eval_dataloaders(data.test_clean_cuts())))
    assert batch["inputs"].shape[2] == 80
    assert batch["inputs"].shape[1] == int(batch["supervisions"]["num_frames"].max())


def test_sampler_state_resumes_at_the_same_batch(prepared_dir: Path) -> None:
    config = make_config(
        prepared_dir, "--max-duration", "20", "--num-buckets", "2", "--enable-musan", "0", "--enable-spec-aug", "0"
    )
    data = LibriSpeechAsrDataModule(config)
    loader = data.train_dataloaders(data.train_cuts())
    iterator = iter(loader)
    next(iterator)
    state = loader.sampler.state_dict()
    expected = [cut.id for cut in next(iterator)["supervisions"]["cut"]]
    resumed = data.train_dataloaders(data.train_cuts(), sampler_state_dict=state)
    assert [cut.id for cut in next(iter(resumed))["supervisions"]["cut"]] == expected


def _cut(cut_id: str, duration: float, text: str):
    cut = dummy_cut(0, duration=duration)
    cut.id = cut_id
    cut.supervisions = [SupervisionSegment(id=cut_id, recording_id=cut.recording_id, start=0, duration=duration, text=text)]
    return cut


def test_train_cut_filter_counts_each_reason(sp: spm.SentencePieceProcessor) -> None:
    many_words = " ".join(["THE"] * 40)
    cuts = [
        _cut("short", 0.5, "THE"),
        _cut("long", 25.0, "THE"),
        _cut("crowded", 1.2, many_words),
        _cut("fine", 3.0, "THE CAT"),
    ]
    keep = TrainCutFilter(sp)
    kept = [cut.id for cut in cuts if keep(cut)]
    assert kept == ["fine"]
    assert (keep.kept, keep.too_short, keep.too_long, keep.fewer_frames_than_tokens) == (1, 1, 1, 1)
    assert "dropped 3" in keep.summary()


def test_encoder_output_frames_follows_the_subsampling_formula() -> None:
    assert encoder_output_frames(229) == 56
    assert encoder_output_frames(39) == 8


def test_bad_options_are_named() -> None:
    parser = argparse.ArgumentParser()
    LibriSpeechAsrDataModule.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--max-duration", "-5"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--input-strategy", "Magic"])
    with pytest.raises(ValueError, match="--input-strategy"):
        LibriSpeechAsrDataModule(AsrDataConfig(input_strategy="Magic"))


def test_missing_manifest_names_the_file(tmp_path: Path) -> None:
    data = LibriSpeechAsrDataModule(AsrDataConfig(manifest_dir=tmp_path))
    with pytest.raises(FileNotFoundError, match="librispeech_cuts_test-clean.jsonl.gz"):
        data.test_clean_cuts()
