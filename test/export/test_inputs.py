"""Wave reading with clear errors, padding and chunking of features, token tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from icefall_lite.decoding.features import LOG_EPS, SILENCE_LOG_ENERGY, TAIL_PADDING_FRAMES, AudioError
from icefall_lite.export.inputs import (
    compute_fbank,
    feature_chunks,
    pad_batch,
    pad_for_chunks,
    read_tokens,
    read_wave,
    symbol_id,
    tokens_to_text,
    vocab_size,
    wave_features,
)

from .conftest import write_tokens, write_wave


def test_read_wave_returns_mono_samples_in_range(tmp_path: Path) -> None:
    samples = read_wave(write_wave(tmp_path / "a.wav", seconds=0.5, seed=0))
    assert samples.shape == (8000,) and samples.dtype == torch.float32
    assert 0 < samples.abs().max() <= 1.0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: write_wave(p, 0.5, seed=0, sample_rate=8000), "sample rate 8000 Hz but the model expects 16000 Hz"),
        (lambda p: write_wave(p, 0.5, seed=0, channels=2), "has 2 channels but the model expects mono"),
        (lambda p: p.write_bytes(b"RIFF not really a wave file") and p, "cannot read audio file"),
        (lambda p: p, "cannot read audio file"),
        (lambda p: write_wave(p, 0.0, seed=0), "holds no samples"),
    ],
    ids=["8kHz", "stereo", "corrupt", "missing", "empty"],
)
def test_read_wave_names_the_file_at_fault(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as error:
        read_wave(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("num_frames", [1, 25, 32, 33, 100, 130])
def test_pad_for_chunks_appends_the_tail_then_keeps_whole_chunks(num_frames: int) -> None:
    features = torch.randn(num_frames, 80)
    padded = pad_for_chunks(features, decode_chunk_len=32)
    if num_frames + TAIL_PADDING_FRAMES < 39:
        assert padded.size(0) == 0
        return
    assert (padded.size(0) - 7) % 32 == 0
    assert num_frames + TAIL_PADDING_FRAMES - 32 < padded.size(0) <= num_frames + TAIL_PADDING_FRAMES
    kept = min(num_frames, padded.size(0))
    assert torch.equal(padded[:kept], features[:kept])
    assert bool((padded[kept:] == SILENCE_LOG_ENERGY).all())


def test_feature_chunks_overlap_by_seven_frames_and_drop_an_incomplete_tail() -> None:
    features = torch.arange(32 * 3 + 7 + 20).float().unsqueeze(1)
    chunks = feature_chunks(features, decode_chunk_len=32)
    assert [chunk.shape for chunk in chunks] == [torch.Size([1, 39, 1])] * 3
    assert [int(chunk[0, 0, 0]) for chunk in chunks] == [0, 32, 64]
    assert torch.equal(chunks[1][0, :7], chunks[0][0, 32:])


def test_wave_features_are_the_training_fbank_padded(tmp_path: Path) -> None:
    path = write_wave(tmp_path / "a.wav", seconds=1.0, seed=1)
    (features,) = wave_features([path], decode_chunk_len=16)
    fbank = compute_fbank(read_wave(path))
    assert fbank.shape == (100, 80)
    assert torch.equal(features[:100], fbank) and (features.size(0) - 7) % 16 == 0


def test_wave_too_short_for_one_chunk_is_named(tmp_path: Path) -> None:
    path = write_wave(tmp_path / "blip.wav", seconds=0.05, seed=2)
    with pytest.raises(AudioError, match="blip.wav is too short"):
        wave_features([path], decode_chunk_len=32)


def test_pad_batch_pads_with_log_eps() -> None:
    x, x_lens = pad_batch([torch.zeros(3, 2), torch.ones(5, 2)])
    assert x.shape == (2, 5, 2) and x_lens.tolist() == [3, 5]
    assert bool((x[0, 3:] == LOG_EPS).all()) and bool((x[1] == 1).all())


def test_token_table_round_trip(tmp_path: Path) -> None:
    table = read_tokens(write_tokens(tmp_path / "tokens.txt", vocab_size=10))
    assert vocab_size(table) == 10 and symbol_id(table, "<unk>") == 2 and symbol_id(table, "nothing") is None
    assert tokens_to_text([3, 4, 5, 6], table) == "P0P1P2 P3"


def test_malformed_token_table_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text("<blk> 0\n<unk>\n")
    with pytest.raises(ValueError, match=f"{path}:2: expected 'symbol id'"):
        read_tokens(path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_tokens(tmp_path / "missing.txt")
