"""AttentionDownsample, SimpleUpsample, SimpleCombiner."""

from __future__ import annotations

import pytest
import torch

from icefall_lite.model.frame_rate import AttentionDownsample, SimpleCombiner, SimpleUpsample


def test_downsample_shapes_and_lengths() -> None:
    downsample = AttentionDownsample(6, 6, 4)
    out, lengths = downsample(torch.randn(10, 2, 6), torch.tensor([10, 5]))
    assert out.shape == (3, 2, 6)
    assert lengths.tolist() == [3, 2]


def test_downsample_with_zero_query_averages_valid_frames() -> None:
    downsample = AttentionDownsample(3, 3, 4)
    with torch.no_grad():
        downsample.query.zero_()
    x = torch.randn(6, 1, 3)
    out, _ = downsample(x, torch.tensor([6]))
    torch.testing.assert_close(out[0, 0], x[:4, 0].mean(0))
    torch.testing.assert_close(out[1, 0], x[4:, 0].mean(0))


def test_downsample_ignores_padding_content() -> None:
    downsample = AttentionDownsample(4, 7, 3)
    x = torch.randn(8, 1, 4)
    lengths = torch.tensor([5])
    noisy = x.clone()
    noisy[5:] = 100.0 * torch.randn(3, 1, 4)
    out, _ = downsample(x, lengths)
    assert out.shape == (3, 1, 7)
    torch.testing.assert_close(downsample(noisy, lengths)[0][:2], out[:2])


def test_upsample_repeats_frames_with_bias() -> None:
    upsample = SimpleUpsample(3, 2)
    x = torch.randn(4, 2, 3)
    out = upsample(x)
    assert out.shape == (8, 2, 3)
    torch.testing.assert_close(out[5] - upsample.bias[1], x[2])


def test_combiner_weights_and_pads_channels() -> None:
    combiner = SimpleCombiner(2, 3).eval()
    src1, src2 = torch.randn(4, 1, 2), torch.randn(4, 1, 3)
    torch.testing.assert_close(combiner(src1, src2), src2)
    with torch.no_grad():
        combiner.weight1.fill_(1.0)
    assert torch.equal(combiner(src1, src2)[..., 2], torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"\(T, N, 2\) and \(T, N, 3\)"):
        combiner(src2, src2)
