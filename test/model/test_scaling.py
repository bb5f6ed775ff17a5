"""ScaledLinear, BasicNorm, DoubleSwish and the saving softmax."""

from __future__ import annotations

import pytest
import torch

from icefall_lite.model.scaling import (
    BasicNorm,
    DoubleSwish,
    ScaledLinear,
    dequantize_derivative,
    quantize_derivative,
    softmax,
)


def test_scaled_linear_scales_initial_values() -> None:
    linear = ScaledLinear(256, 64, initial_scale=0.01)
    assert linear.weight.abs().max() <= 0.01 / 16 + 1e-9
    assert linear.bias.abs().max() <= 0.001


def test_basic_norm_normalizes_by_rms_plus_learned_eps() -> None:
    norm = BasicNorm(8).eval()
    x = torch.randn(3, 5, 8) * 4.0
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 0.25)
    torch.testing.assert_close(norm(x), expected)
    with pytest.raises(ValueError, match=r"\(\.\.\., 8\)"):
        norm(torch.randn(3, 7))


def test_double_swish_value_and_gradient() -> None:
    x = torch.linspace(-6.0, 6.0, 1001, requires_grad=True)
    y = DoubleSwish()(x)
    torch.testing.assert_close(y, x * torch.sigmoid(x - 1.0))
    y.sum().backward()
    reference = x.detach().requires_grad_(True)
    (reference * torch.sigmoid(reference - 1.0)).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad)


def test_quantized_derivative_is_within_one_step_and_unbiased() -> None:
    """The form DoubleSwish saves on CUDA."""
    x = torch.linspace(-6.0, 6.0, 100_001)
    s = torch.sigmoid(x - 1.0)
    deriv = x * s * (1.0 - s) + s
    restored = dequantize_derivative(quantize_derivative(deriv), torch.float32)
    step = (1.2 + 0.043637) / 255.0
    assert (restored - deriv).abs().max() <= step + 1e-6
    assert abs(float((restored - deriv).mean())) < step / 50


def test_softmax_gradient_matches_torch() -> None:
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(4, 6, dtype=torch.float64)
    (softmax(x, dim=-1) * weights).sum().backward()
    reference = x.detach().requires_grad_(True)
    (reference.softmax(dim=-1) * weights).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad)
