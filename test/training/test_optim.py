"""Tests for icefall_lite/training/optim.py: ScaledAdam and Eden."""

import io
import logging
from typing import List

import pytest
import torch

from icefall_lite.training.optim import Eden, ScaledAdam, eden_lr_factor

torch.set_num_threads(1)

LR = 0.05
BETA1, BETA2 = 0.9, 0.98


def _set_grads(params: List[torch.Tensor], grads: List[torch.Tensor]) -> None:
    for param, grad in zip(params, grads):
        param.grad = grad.clone()


def _random_grads(params: List[torch.Tensor], generator: torch.Generator) -> List[torch.Tensor]:
    return [torch.randn(p.shape, generator=generator) for p in params]


def _run_steps(optimizer: ScaledAdam, params: List[torch.Tensor], num_steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(num_steps):
        _set_grads(params, _random_grads(params, generator))
        optimizer.step()


def _mixed_params(seed: int = 0) -> List[torch.nn.Parameter]:
    """Two (3, 4) matrices that get stacked, a (5,) vector, and two scalars that get stacked."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (3, 4), (), ()]
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]


def test_first_step_moves_each_tensor_by_lr_times_its_rms():
    small = torch.nn.Parameter(torch.full((4, 4), 0.01))
    large = torch.nn.Parameter(torch.full((4, 4), 2.0))
    optimizer = ScaledAdam([small, large], lr=LR, eps=0.0)
    grad = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    _set_grads([small, large], [grad, grad])
    optimizer.step()
    # On step 0 the bias-corrected second moment is grad^2, so grad / sqrt(.) = sign(grad).
    expected_change = -LR * (1 - BETA1) * grad.sign()
    torch.testing.assert_close(small.detach() - 0.01, 0.01 * expected_change)
    torch.testing.assert_close(large.detach() - 2.0, 2.0 * expected_change)


def test_scalars_use_scaled_lr_and_are_clamped():
    free = torch.nn.Parameter(torch.tensor(1.0))
    at_limit = torch.nn.Parameter(torch.tensor(10.0))
    optimizer = ScaledAdam([free, at_limit], lr=LR, eps=0.0, scalar_lr_scale=0.1, scalar_max=10.0)
    _set_grads([free, at_limit], [torch.tensor(3.0), torch.tensor(-3.0)])
    optimizer.step()
    torch.testing.assert_close(free.detach(), torch.tensor(1.0 - LR * 0.1 * (1 - BETA1)))
    assert at_limit.item() == 10.0


def test_too_large_tensor_is_shrunk_at_size_update_period():
    period = 4
    param = torch.nn.Parameter(torch.full((2, 3), 5.0))  # rms 5 > param_max_rms 3
    optimizer = ScaledAdam([param], lr=LR, size_update_period=period, param_max_rms=3.0)
    for _ in range(period - 1):
        _set_grads([param], [torch.zeros(2, 3)])
        optimizer.step()
    torch.testing.assert_close(param.detach(), torch.full((2, 3), 5.0))
    _set_grads([param], [torch.zeros(2, 3)])
    optimizer.step()
    shrink = 1 - LR * 0.1 * period * (1 - BETA1)
    torch.testing.assert_close(param.detach(), torch.full((2, 3), 5.0 * shrink))


def test_stacked_update_equals_separate_updates():
    together = _mixed_params()
    separate = _mixed_params()
    optimizer = ScaledAdam(together, lr=LR, size_update_period=2)
    single_optimizers = [ScaledAdam([p], lr=LR, size_update_period=2) for p in separate]
    generator = torch.Generator().manual_seed(2)
    for _ in range(6):
        grads = _random_grads(together, generator)
        _set_grads(together, grads)
        _set_grads(separate, grads)
        optimizer.step()
        for single in single_optimizers:
            single.step()
    for joint, alone in zip(together, separate):
        torch.testing.assert_close(joint, alone, rtol=1e-6, atol=1e-7)


def test_optimizer_reduces_a_regression_loss():
    generator = torch.Generator().manual_seed(3)
    inputs = torch.randn(64, 8, generator=generator)
    targets = inputs @ torch.randn(8, 4, generator=generator)
    model = torch.nn.Linear(8, 4)
    optimizer = ScaledAdam(model.parameters(), lr=0.1, clipping_scale=2.0, clipping_update_period=10)

    def loss() -> torch.Tensor:
        return (model(inputs) - targets).pow(2).mean()

    initial = loss().item()
    for _ in range(200):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < 0.05 * initial


def _effective_grad(before_exp_avg_sq: torch.Tensor, after_exp_avg_sq: torch.Tensor) -> torch.Tensor:
    """|gradient| the optimizer used, recovered from its second-moment update."""
    return ((after_exp_avg_sq - BETA2 * before_exp_avg_sq) / (1 - BETA2)).sqrt()


PERIOD = 8
NORMAL_GRADS = [torch.full((2, 2), 0.1), torch.full((3,), 0.1)]
HUGE_GRADS = [torch.full((2, 2), 1000.0), torch.full((3,), 0.1)]


class _ClippingProbe:
    """A (2, 2) "encoder.big" and a (3,) "decoder.small" parameter under a clipping ScaledAdam."""

    def __init__(self) -> None:
        self.big = torch.nn.Parameter(torch.ones(2, 2))
        self.small = torch.nn.Parameter(torch.ones(3))
        self.optimizer = ScaledAdam(
            [self.big, self.small], lr=LR, clipping_scale=2.0, clipping_update_period=PERIOD,
            parameters_names=[["encoder.big", "decoder.small"]],
        )

    def step(self, grads: List[torch.Tensor]) -> torch.Tensor:
        """Step with `grads`; returns the (2, 2) |gradient| of "encoder.big" the optimizer used."""
        state = self.optimizer.state[self.big]
        before = state["exp_avg_sq"].clone() if state else torch.zeros(1, 2, 2)
        _set_grads([self.big, self.small], grads)
        self.optimizer.step()
        return _effective_grad(before, self.optimizer.state[self.big]["exp_avg_sq"])[0]


def test_first_period_clips_at_twice_the_median_norm_so_far():
    """icefall does not clip before its first threshold; one huge early gradient is clipped here instead of
    filling the second moment."""
    probe = _ClippingProbe()
    for _ in range(3):
        probe.step(NORMAL_GRADS)  # steps 0-2; the norm of step 0 is not recorded (no state yet)
    used = probe.step(HUGE_GRADS)  # step 3: threshold = 2 * median(normal, normal, huge)
    norms = probe.optimizer.state[probe.big]["model_norms"]
    normal_norm, huge_norm = norms[1].item(), norms[3].item()
    assert huge_norm > 1000 * normal_norm
    torch.testing.assert_close(used, torch.full((2, 2), 1000.0 * 2.0 * normal_norm / huge_norm), rtol=1e-3, atol=0)


def test_a_single_recorded_norm_is_not_clipped():
    probe = _ClippingProbe()
    probe.step(NORMAL_GRADS)
    torch.testing.assert_close(probe.step(HUGE_GRADS), torch.full((2, 2), 1000.0))


def test_clipping_at_twice_median_norm_logs_dominant_parameter(caplog):
    probe = _ClippingProbe()
    for _ in range(PERIOD):
        probe.step(NORMAL_GRADS)
    big_rms = probe.optimizer.state[probe.big]["param_rms"].item()
    small_rms = probe.optimizer.state[probe.small]["param_rms"].item()
    with caplog.at_level(logging.INFO, logger="icefall_lite.training.optim"):
        used = probe.step(HUGE_GRADS)  # step PERIOD: threshold updated, then clipped
    first_state = probe.optimizer.state[probe.big]
    huge_norm = ((1000.0 * big_rms) ** 2 * 4 + (0.1 * small_rms) ** 2 * 3) ** 0.5
    assert first_state["model_norms"][0].item() == pytest.approx(huge_norm, rel=1e-5)
    median_norm = first_state["model_norms"].sort().values[PERIOD // 2].item()
    assert first_state["model_norm_threshold"] == pytest.approx(2.0 * median_norm)
    expected_scale = first_state["model_norm_threshold"] / huge_norm
    torch.testing.assert_close(used, torch.full((2, 2), 1000.0 * expected_scale), rtol=1e-3, atol=0)
    messages = [record.getMessage() for record in caplog.records]
    assert any("grad-norm quartiles" in message for message in messages)
    assert any("dominating" in message and "encoder.big" in message for message in messages)


def _save_and_load(state_dict: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_state_dict_round_trip_continues_bit_identically():
    params = _mixed_params()
    options = dict(lr=LR, clipping_scale=2.0, clipping_update_period=3, size_update_period=2)
    optimizer = ScaledAdam(params, **options)
    scheduler = Eden(optimizer, lr_batches=10, lr_epochs=2, warmup_batches=3)
    _run_steps(optimizer, params, num_steps=7, seed=4)
    scheduler.step_batch(7)
    scheduler.step_epoch(1)

    resumed_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = ScaledAdam(resumed_params, **options)
    resumed_scheduler = Eden(resumed, lr_batches=10, lr_epochs=2, warmup_batches=3)
    resumed.load_state_dict(_save_and_load(optimizer.state_dict()))
    resumed_scheduler.load_state_dict(_save_and_load(scheduler.state_dict()))
    assert resumed_scheduler.get_last_lr() == scheduler.get_last_lr()

    _run_steps(optimizer, params, num_steps=5, seed=5)
    _run_steps(resumed, resumed_params, num_steps=5, seed=5)
    for original, continued in zip(params, resumed_params):
        assert torch.equal(original, continued)


def test_wrong_number_of_names_is_rejected():
    with pytest.raises(ValueError, match=r"parameters_names\[0\] has 1 names but param group 0 has 5"):
        ScaledAdam(_mixed_params(), parameters_names=[["only_one"]])


@pytest.mark.parametrize(
    "batch, epoch, expected",
    [(0, 0, 0.025), (500, 0, 0.0499), (3000, 0, 0.0463), (10000, 2, 0.0312), (40000, 10, 0.0101),
     (80000, 20, 0.0052), (120000, 29, 0.0035)],
)
def test_eden_matches_reference_values(batch, epoch, expected):
    optimizer = ScaledAdam(_mixed_params(), lr=0.05)
    scheduler = Eden(optimizer, lr_batches=5000, lr_epochs=3.5)
    scheduler.step_batch(batch)
    scheduler.step_epoch(epoch)
    assert scheduler.get_last_lr()[0] == pytest.approx(expected, abs=5e-5)
    assert all(group["lr"] == scheduler.get_last_lr()[0] for group in optimizer.param_groups)


def test_eden_warmup_is_linear_and_steps_count_by_one():
    assert eden_lr_factor(250, 0, 1e12, 1e12, 500) == pytest.approx(0.75)
    params = _mixed_params()
    optimizer = ScaledAdam([{"params": params[:2]}, {"params": params[2:], "lr": 0.01}], lr=0.05)
    scheduler = Eden(optimizer, lr_batches=5000, lr_epochs=3.5)
    for _ in range(3):
        scheduler.step_batch()
    scheduler.step_epoch()
    factor = eden_lr_factor(3, 1, 5000, 3.5, 500)
    assert scheduler.get_last_lr() == pytest.approx([0.05 * factor, 0.01 * factor])
