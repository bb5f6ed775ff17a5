"""Gradient-only regularizers: identity forward, modified backward."""

from __future__ import annotations

import torch

from icefall_lite.model.grad_regularizers import ActivationBalancer, Whiten, penalize_abs_values_gt, whitening_metric


def test_penalize_adds_signed_gradient_above_limit() -> None:
    x = torch.tensor([-30.0, -5.0, 0.0, 5.0, 30.0], requires_grad=True)
    y = penalize_abs_values_gt(x, limit=10.0, penalty=0.5)
    assert torch.equal(y, x)
    y.sum().backward()
    assert x.grad.tolist() == [0.5, 1.0, 1.0, 1.0, 1.5]


def test_balancer_pushes_out_of_range_channels_only() -> None:
    balancer = ActivationBalancer(2, channel_dim=-1, min_prob=1.0).train()
    balanced = torch.randn(1000)
    x = torch.stack([balanced.abs() + 1.0, balanced], dim=-1).requires_grad_(True)
    y = balancer(x)
    assert torch.equal(y, x)
    y.backward(torch.ones_like(y))
    assert (x.grad[:, 0] > 1.0).all(), "an always-positive channel gets a gradient pushing it down"
    assert torch.allclose(x.grad[:, 1], torch.ones(1000))


def test_balancer_is_a_no_op_in_eval() -> None:
    balancer = ActivationBalancer(2, channel_dim=-1, min_prob=1.0).eval()
    x = (torch.rand(10, 2) + 1.0).requires_grad_(True)
    balancer(x).sum().backward()
    assert torch.equal(x.grad, torch.ones(10, 2))


def test_whitening_metric_is_one_for_white_and_channels_for_identical() -> None:
    white = torch.randn(20000, 4)
    assert abs(float(whitening_metric(white, 1)) - 1.0) < 0.05
    identical = torch.randn(2000, 1).expand(2000, 4)
    assert abs(float(whitening_metric(identical, 1)) - 4.0) < 1e-3
    assert abs(float(whitening_metric(identical, 2)) - 2.0) < 1e-3


def test_whiten_changes_gradient_of_correlated_features_only() -> None:
    whiten = Whiten(num_groups=1, whitening_limit=2.0, prob=(1.0, 1.0), grad_scale=0.1).train()
    correlated = torch.randn(500, 1).expand(500, 8).contiguous().requires_grad_(True)
    whiten(correlated).backward(torch.ones(500, 8))
    assert not torch.allclose(correlated.grad, torch.ones(500, 8))
    white = torch.randn(500, 8, requires_grad=True)
    whiten(white).backward(torch.ones(500, 8))
    assert torch.allclose(white.grad, torch.ones(500, 8))
