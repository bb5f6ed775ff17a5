"""Regularizers that are the identity in the forward pass and only change gradients.

- ``ActivationBalancer`` nudges each channel's fraction of positive values and mean absolute value into range.
- ``Whiten`` penalizes features whose covariance is far from a multiple of the identity.
- ``penalize_abs_values_gt`` adds a small gradient pushing values with |x| > limit back towards zero.

All are skipped in eval mode, under TorchScript and when the input needs no gradient.
"""

import random
from typing import Tuple

import torch
from torch import Tensor, nn

# The probability of balancing decays from 0.5 with this many calls, down to ``min_prob``.
_BALANCER_PROB_HALF_LIFE_CALLS = 4000.0


def _acts_on(x: Tensor, training: bool) -> bool:
    """Regularizers act in training on tensors that need a gradient, never under TorchScript or tracing."""
    return training and x.requires_grad and not (torch.jit.is_scripting() or torch.jit.is_tracing())


def _per_channel_mean(x: Tensor, channel_dim: int) -> Tensor:
    """x: any shape, channels on ``channel_dim`` -> (C,) float32 mean over every other dim."""
    other_dims = [d for d in range(x.ndim) if d != channel_dim]
    return x.float().mean(dim=other_dims)


def _broadcastable(factor: Tensor, x: Tensor, channel_dim: int) -> Tensor:
    """factor: (C,) -> a view that broadcasts against x along ``channel_dim``."""
    return factor.reshape([-1] + [1] * (x.ndim - 1 - channel_dim))


class _BalancerFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sign_factor: Tensor, scale_factor: Tensor, channel_dim: int) -> Tensor:
        ctx.save_for_backward(x > 0, sign_factor, scale_factor)
        ctx.channel_dim = channel_dim
        return x

    @staticmethod
    def backward(ctx, x_grad: Tensor) -> Tuple[Tensor, None, None, None]:
        positive, sign_factor, scale_factor = ctx.saved_tensors
        sign_factor = _broadcastable(sign_factor, x_grad, ctx.channel_dim)
        scale_factor = _broadcastable(scale_factor, x_grad, ctx.channel_dim)
        factor = sign_factor + scale_factor * (positive.to(x_grad.dtype) - 0.5)
        return x_grad - x_grad.abs() * factor.to(x_grad.dtype), None, None, None


class ActivationBalancer(nn.Module):
    """Identity forward; in backward, changes each channel's gradient by up to +-``max_factor`` of its size so
    the fraction of positive values moves into [min_positive, max_positive] and the mean |x| into
    [min_abs, max_abs]. Applied on a random subset of calls, with probability
    ``max(min_prob, 0.5 ** (1 + calls / 4000))`` (the call count is not saved in checkpoints).
    """

    def __init__(
        self,
        num_channels: int,
        channel_dim: int,
        min_positive: float = 0.05,
        max_positive: float = 0.95,
        max_factor: float = 0.04,
        sign_gain_factor: float = 0.01,
        scale_gain_factor: float = 0.02,
        min_abs: float = 0.2,
        max_abs: float = 100.0,
        min_prob: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.channel_dim = channel_dim
        self.min_positive, self.max_positive = min_positive, max_positive
        self.min_abs, self.max_abs = min_abs, max_abs
        self.max_factor = max_factor
        self.sign_gain_factor, self.scale_gain_factor = sign_gain_factor, scale_gain_factor
        self.min_prob = min_prob
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        """x: any shape with ``num_channels`` on ``channel_dim`` -> x itself."""
        if not _acts_on(x, self.training):
            return x
        return self._balance(x)

    @torch.jit.unused
    def _balance(self, x: Tensor) -> Tensor:
        prob = max(self.min_prob, 0.5 ** (1.0 + self.calls / _BALANCER_PROB_HALF_LIFE_CALLS))
        self.calls += 1
        if random.random() >= prob:
            return x
        channel_dim = self.channel_dim % x.ndim
        with torch.no_grad():
            sign_factor = self._sign_factor(_per_channel_mean(x > 0, channel_dim), self.sign_gain_factor / prob)
            scale_factor = self._scale_factor(_per_channel_mean(x.abs(), channel_dim), self.scale_gain_factor / prob)
        return _BalancerFunction.apply(x, sign_factor, scale_factor, channel_dim)

    def _sign_factor(self, proportion_positive: Tensor, gain: float) -> Tensor:
        """(C,) fraction of positive values -> (C,) factor; > 0 raises that fraction, < 0 lowers it."""
        too_few = torch.zeros_like(proportion_positive)
        too_many = torch.zeros_like(proportion_positive)
        if self.min_positive > 0.0:
            too_few = (self.min_positive - proportion_positive) * (gain / self.min_positive)
        if self.max_positive < 1.0:
            too_many = (proportion_positive - self.max_positive) * (gain / (1.0 - self.max_positive))
        return too_few.clamp(0.0, self.max_factor) - too_many.clamp(0.0, self.max_factor)

    def _scale_factor(self, mean_abs: Tensor, gain: float) -> Tensor:
        """(C,) mean |x| -> (C,) factor; > 0 grows the values' magnitude, < 0 shrinks it."""
        too_small = torch.zeros_like(mean_abs)
        if self.min_abs > 0.0:
            too_small = (self.min_abs - mean_abs) * (gain / self.min_abs)
        too_large = (mean_abs - self.max_abs) * (gain / self.max_abs)
        return too_small.clamp(0.0, self.max_factor) - too_large.clamp(0.0, self.max_factor)


def whitening_metric(x: Tensor, num_groups: int) -> Tensor:
    """How far x's covariance is from a multiple of the identity: 1.0 when white, larger otherwise.

    Args:
      x: (..., C) float32 features; channels are split into ``num_groups`` contiguous groups.
    Returns:
      () float: ``mean(diag(C @ C)) / mean(diag(C))^2`` over the groups' centred covariances C.
    """
    num_channels = x.size(-1)
    group_size = num_channels // num_groups
    x = x.reshape(-1, num_groups, group_size).transpose(0, 1)
    x = x - x.mean(dim=1, keepdim=True)
    covariance = torch.matmul(x.transpose(1, 2), x)
    mean_diagonal = covariance.diagonal(dim1=1, dim2=2).mean()
    mean_squared_diagonal = (covariance**2).sum() / (num_groups * group_size)
    return mean_squared_diagonal / (mean_diagonal**2 + 1.0e-20)


class _WhiteningPenaltyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, num_groups: int, whitening_limit: float, grad_scale: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.num_groups, ctx.whitening_limit, ctx.grad_scale = num_groups, whitening_limit, grad_scale
        return x

    @staticmethod
    def backward(ctx, x_grad: Tensor) -> Tuple[Tensor, None, None, None]:
        (x,) = ctx.saved_tensors
        with torch.enable_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            x = x.detach().float().requires_grad_(True)
            excess = (whitening_metric(x, ctx.num_groups) - ctx.whitening_limit).relu()
            (penalty_grad,) = torch.autograd.grad(excess, x)
        scale = ctx.grad_scale * x_grad.float().norm() / (penalty_grad.norm() + 1.0e-20)
        return x_grad + (penalty_grad * scale).to(x_grad.dtype), None, None, None


class Whiten(nn.Module):
    """Identity forward; in backward, adds the gradient of ``relu(whitening_metric(x) - whitening_limit)``
    rescaled to ``grad_scale`` times the incoming gradient's norm.

    Applied with probability ``prob[1]`` while the metric is over the limit, else ``prob[0]`` (re-checked on a
    quarter of the applied calls).
    """

    def __init__(self, num_groups: int, whitening_limit: float, prob: Tuple[float, float], grad_scale: float) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.whitening_limit = whitening_limit
        self.min_prob, self.max_prob = prob
        self.prob = self.max_prob
        self.grad_scale = grad_scale

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., C) with C divisible by ``num_groups`` -> x itself."""
        if not _acts_on(x, self.training):
            return x
        return self._whiten(x)

    @torch.jit.unused
    def _whiten(self, x: Tensor) -> Tensor:
        if x.size(-1) % self.num_groups != 0:
            raise ValueError(f"Whiten expects channels divisible by num_groups={self.num_groups}, got {list(x.shape)}")
        if random.random() > self.prob:
            return x
        if random.random() < 0.25:
            over_limit = float(whitening_metric(x.detach().float(), self.num_groups)) > self.whitening_limit
            self.prob = self.max_prob if over_limit else self.min_prob
        return _WhiteningPenaltyFunction.apply(x, self.num_groups, self.whitening_limit, self.grad_scale)


class _PenalizeAbsValuesFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, limit: float, penalty: float) -> Tensor:
        over_limit_sign = (x.abs() > limit).to(torch.int8) * x.sign().to(torch.int8)
        ctx.save_for_backward(over_limit_sign)
        ctx.penalty = penalty
        return x

    @staticmethod
    def backward(ctx, x_grad: Tensor) -> Tuple[Tensor, None, None]:
        (over_limit_sign,) = ctx.saved_tensors
        return x_grad + ctx.penalty * over_limit_sign.to(x_grad.dtype), None, None


def penalize_abs_values_gt(x: Tensor, limit: float, penalty: float) -> Tensor:
    """Identity forward; backward adds ``penalty * sign(x)`` where |x| > limit, as if
    ``penalty * sum(relu(|x| - limit))`` were added to the loss. x: any shape."""
    if not _acts_on(x, training=True):
        return x
    return _PenalizeAbsValuesFunction.apply(x, limit, penalty)

