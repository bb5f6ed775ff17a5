"""ScaledAdam optimizer and Eden learning-rate schedule (spec sections 4.1 and 4.2).

Usage::

    optimizer = ScaledAdam(
        model.parameters(),
        lr=0.05,
        clipping_scale=2.0,
        parameters_names=[[name for name, _ in model.named_parameters()]],
    )
    scheduler = Eden(optimizer, lr_batches=5000, lr_epochs=3.5)
    for epoch in range(1, num_epochs + 1):
        scheduler.step_epoch(epoch - 1)
        for batch in loader:
            loss.backward()
            batch_idx_train += 1
            scheduler.step_batch(batch_idx_train)
            optimizer.step()
            optimizer.zero_grad()
"""

import logging
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

_TINY_NORM = 1.0e-20
"""Added to the gradient norm before dividing by it."""

_DOMINANT_PARAMETER_SCALE = 0.1
"""Clipping harder than this (gradient scale below it) logs the parameter that dominates the norm."""

_BIAS_CORRECTION_LIMIT = 0.99
"""Non-scalar updates stop applying Adam's second-moment bias correction once it exceeds this."""


@dataclass
class _ShapeBatch:
    """Parameters of one param group sharing dtype, device and shape, stacked along a new dim 0.

    params: the B original parameters, each of shape `shape`.
    names: their B names, for logging.
    stacked: (B, *shape) copy of the parameters; updated in place, then written back.
    grad: (B, *shape) their gradients (zeros where a parameter has no gradient).
    """

    params: List[Tensor]
    names: List[str]
    stacked: Tensor
    grad: Tensor

    @property
    def key_param(self) -> Tensor:
        """The parameter under which this batch's optimizer state is stored."""
        return self.params[0]

    @property
    def holds_scalars(self) -> bool:
        """True if every parameter in the batch has exactly one element."""
        return self.stacked.numel() == self.stacked.shape[0]

    def write_back(self) -> None:
        """Copy the updated stacked values into the original parameters."""
        for index, param in enumerate(self.params):
            param.copy_(self.stacked[index])


def _stack_by_shape(params: Sequence[Tensor], names: Sequence[str]) -> List[_ShapeBatch]:
    """Group `params` by (dtype, device, shape) and stack each group.

    The order of the batches and of the parameters inside each batch depends only on the order of `params`, so a
    fresh optimizer over the same parameters finds its loaded state under the same key parameters.
    """
    grouped: Dict[Tuple[str, str, Tuple[int, ...]], List[int]] = {}
    for index, param in enumerate(params):
        if param.grad is not None and param.grad.is_sparse:
            raise ValueError(f"ScaledAdam does not support sparse gradients (parameter {names[index]!r})")
        key = (str(param.dtype), str(param.device), tuple(param.shape))
        grouped.setdefault(key, []).append(index)
    batches = []
    for key in sorted(grouped):
        members = [params[index] for index in grouped[key]]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in members]
        batches.append(
            _ShapeBatch(
                params=members,
                names=[names[index] for index in grouped[key]],
                stacked=torch.stack([p.detach() for p in members]),
                grad=torch.stack(grads),
            )
        )
    return batches


def _non_batch_dims(stacked: Tensor) -> List[int]:
    """The dims of a (B, *shape) tensor other than the batch dim 0."""
    return list(range(1, stacked.ndim))


def _rms_per_param(stacked: Tensor) -> Tensor:
    """Root mean square of each stacked parameter.

    stacked: (B, *shape). Returns (B, 1, ..., 1), broadcastable against `stacked`.
    """
    return stacked.pow(2).mean(dim=_non_batch_dims(stacked), keepdim=True).sqrt()


def _default_names(param_groups: List[dict]) -> List[List[str]]:
    """Placeholder names `group{g}.param{i}` for when the caller gives none."""
    return [[f"group{g}.param{i}" for i in range(len(group["params"]))] for g, group in enumerate(param_groups)]


class ScaledAdam(torch.optim.Optimizer):
    """Adam whose step for each tensor is proportional to the tensor's RMS, with learned scales and clipping.

    Differences from Adam (spec 4.1):
    - Parameters of the same dtype, device and shape are stacked and updated together as one batch.
    - A non-scalar tensor's update is `lr * max(rms, param_min_rms) * grad / sqrt(second moment)`, applied through
      a momentum buffer `delta` (`delta <- beta1 * delta + (1 - beta1) * update`, `p <- p + delta`; no first-moment
      bias correction; second-moment bias correction only while it is below 0.99).
    - Each non-scalar tensor's overall scale is learned as if `p = p_normalized * exp(log_scale)`: every
      `size_update_period` steps, an Adam step on log_scale with lr `lr * scalar_lr_scale`, from the accumulated
      `sum(p * grad)`. A tensor whose RMS is below `param_min_rms` stops shrinking; one above `param_max_rms` is
      forced to shrink. The RMS used by the update is re-measured at the same period.
    - Scalars (one element): plain Adam with lr `lr * scalar_lr_scale`, clamped to +-`scalar_max`.
    - Gradient clipping per param group: the norm is `sqrt(sum ||grad * rms||^2 + sum scalar_grad^2)`; every
      `clipping_update_period` steps the threshold becomes `clipping_scale` times the median of the last
      `clipping_update_period` norms (the quartiles are logged); gradients are scaled by
      `min(1, threshold / norm)`. During the first `clipping_update_period` steps, where icefall does not clip,
      the threshold is `clipping_scale` times the median of the norms seen so far: one early gradient thousands
      of times larger than the rest (the attention-score penalties can make one) would otherwise fill Adam's
      second moment and freeze its tensors for hundreds of steps. When the scale falls below 0.1, the parameter
      with the largest share of the norm is logged.
    - No weight decay.

    Args:
        params: the parameters to optimize, or a list of param-group dicts.
        lr: the learning rate; the actual step of a non-scalar tensor is about `lr` times its RMS.
        clipping_scale: threshold = `clipping_scale` * median recent gradient norm; None or 1.0 disables clipping.
        betas: (beta1, beta2): momentum and second-moment decay.
        scalar_lr_scale: learning-rate factor for scalar parameters and for the learned log-scales.
        eps: added to the square root of the second moment.
        param_min_rms: floor on the RMS used in updates; tensors below it stop shrinking.
        param_max_rms: tensors whose RMS exceeds it are made to shrink.
        scalar_max: scalar parameters are clamped to [-scalar_max, scalar_max].
        size_update_period: steps between learned-scale updates (and RMS re-measurements).
        clipping_update_period: steps between clipping-threshold updates; also the number of norms remembered.
        parameters_names: one list of names per param group, matching its parameters in order; used only in
            logs. Defaults to `group{g}.param{i}`.

    The optimizer state of each batch of stacked parameters is kept under the batch's first parameter; the clipping
    statistics of a param group (`model_norms`, `model_norm_threshold`, `num_clipped`) are kept in the state of the
    group's first batch. `state_dict()` therefore round-trips through torch's Optimizer machinery.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 3e-2,
        clipping_scale: Optional[float] = None,
        betas: Tuple[float, float] = (0.9, 0.98),
        scalar_lr_scale: float = 0.1,
        eps: float = 1.0e-8,
        param_min_rms: float = 1.0e-5,
        param_max_rms: float = 3.0,
        scalar_max: float = 10.0,
        size_update_period: int = 4,
        clipping_update_period: int = 100,
        parameters_names: Optional[List[List[str]]] = None,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"ScaledAdam: lr must be positive, got {lr}")
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"ScaledAdam: betas must lie in [0, 1), got {betas}")
        if size_update_period < 1 or clipping_update_period < 1:
            raise ValueError(
                "ScaledAdam: size_update_period and clipping_update_period must be >= 1, got "
                f"{size_update_period} and {clipping_update_period}"
            )
        defaults = dict(
            lr=lr,
            clipping_scale=clipping_scale,
            betas=betas,
            scalar_lr_scale=scalar_lr_scale,
            eps=eps,
            param_min_rms=param_min_rms,
            param_max_rms=param_max_rms,
            scalar_max=scalar_max,
            size_update_period=size_update_period,
            clipping_update_period=clipping_update_period,
        )
        super().__init__(params, defaults)
        self.parameters_names = parameters_names or _default_names(self.param_groups)
        self._check_names()

    def _check_names(self) -> None:
        """Raise ValueError unless `parameters_names` has one name per parameter of each group."""
        if len(self.parameters_names) != len(self.param_groups):
            raise ValueError(
                f"ScaledAdam: parameters_names has {len(self.parameters_names)} lists but there are "
                f"{len(self.param_groups)} param groups"
            )
        for index, (group, names) in enumerate(zip(self.param_groups, self.parameters_names)):
            if len(names) != len(group["params"]):
                raise ValueError(
                    f"ScaledAdam: parameters_names[{index}] has {len(names)} names but param group {index} has "
                    f"{len(group['params'])} parameters"
                )

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Tensor]] = None) -> Optional[Tensor]:
        """Update all parameters from their `.grad`; returns the closure's loss if a closure is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group, names in zip(self.param_groups, self.parameters_names):
            batches = _stack_by_shape(group["params"], names)
            states = [self._state_of(group, batch) for batch in batches]
            clipping_scale = self._clipping_scale(group, batches, states)
            for batch, state in zip(batches, states):
                self._step_batch(group, batch, state, clipping_scale)
                batch.write_back()
        return loss

    def _state_of(self, group: dict, batch: _ShapeBatch) -> dict:
        """The state of `batch`, created on first use.

        step: number of updates done so far.
        delta: (B, *shape) momentum buffer, the next change to the parameters.
        exp_avg_sq: (B, *shape) second moment of the gradient.
        Non-scalar batches also hold:
        param_rms: (B, 1, ..., 1) RMS of each parameter, re-measured every size_update_period steps.
        scale_exp_avg_sq: (B, 1, ..., 1) second moment of the log-scale gradient.
        scale_grads: (size_update_period, B, 1, ..., 1) recent log-scale gradients sum(p * grad).
        """
        state = self.state[batch.key_param]
        if state:
            return state
        stacked = batch.stacked
        state["step"] = 0
        state["delta"] = torch.zeros_like(stacked)
        state["exp_avg_sq"] = torch.zeros_like(stacked)
        if not batch.holds_scalars:
            param_rms = _rms_per_param(stacked)
            state["param_rms"] = param_rms
            state["scale_exp_avg_sq"] = torch.zeros_like(param_rms)
            state["scale_grads"] = torch.zeros(group["size_update_period"], *param_rms.shape, dtype=stacked.dtype,
                                               device=stacked.device)
        return state

    def _step_batch(self, group: dict, batch: _ShapeBatch, state: dict, clipping_scale: float) -> None:
        """Update one batch of stacked parameters (in `batch.stacked`) and its state."""
        grad = batch.grad if clipping_scale == 1.0 else batch.grad * clipping_scale
        stacked = batch.stacked
        state["delta"].mul_(group["betas"][0])
        if batch.holds_scalars:
            self._scalar_adam_update(group, grad, state)
            stacked.add_(state["delta"]).clamp_(min=-group["scalar_max"], max=group["scalar_max"])
        else:
            self._learn_scale(group, stacked, grad, state)
            self._rms_scaled_update(group, grad, state)
            stacked.add_(state["delta"])
        state["step"] += 1

    @staticmethod
    def _update_second_moment(group: dict, grad: Tensor, state: dict) -> Tensor:
        """Decay `exp_avg_sq` by beta2 and add (1 - beta2) * grad^2; returns it. grad: (B, *shape)."""
        beta2 = group["betas"][1]
        return state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

    def _scalar_adam_update(self, group: dict, grad: Tensor, state: dict) -> None:
        """Add an Adam step with lr `lr * scalar_lr_scale` to `delta`. grad: (B, 1) or (B,)."""
        beta1, beta2 = group["betas"]
        exp_avg_sq = self._update_second_moment(group, grad, state)
        bias_correction2 = 1 - beta2 ** (state["step"] + 1)
        denom = (exp_avg_sq / bias_correction2).sqrt() + group["eps"]
        lr = group["lr"] * group["scalar_lr_scale"]
        state["delta"].add_(grad / denom, alpha=-lr * (1 - beta1))

    def _rms_scaled_update(self, group: dict, grad: Tensor, state: dict) -> None:
        """Add `-lr * (1 - beta1) * max(rms, param_min_rms) * grad / (sqrt(second moment) + eps)` to `delta`."""
        beta1, beta2 = group["betas"]
        exp_avg_sq = self._update_second_moment(group, grad, state)
        bias_correction2 = 1 - beta2 ** (state["step"] + 1)
        if bias_correction2 < _BIAS_CORRECTION_LIMIT:
            exp_avg_sq = exp_avg_sq / bias_correction2
        denom = exp_avg_sq.sqrt() + group["eps"]
        step_size = -group["lr"] * (1 - beta1) * state["param_rms"].clamp(min=group["param_min_rms"])
        state["delta"].add_(grad / denom * step_size)

    def _learn_scale(self, group: dict, stacked: Tensor, grad: Tensor, state: dict) -> None:
        """Record the log-scale gradient; every size_update_period steps re-measure the RMS and step the scale.

        stacked, grad: (B, *shape). d(loss)/d(log_scale) = sum(p * grad) over each parameter's elements.
        """
        step = state["step"]
        period = group["size_update_period"]
        state["scale_grads"][step % period] = (stacked * grad).sum(dim=_non_batch_dims(stacked), keepdim=True)
        if step % period != period - 1:
            return
        state["param_rms"].copy_(_rms_per_param(stacked))
        if step > 0:
            self._step_scale(group, stacked, state)

    @staticmethod
    def _step_scale(group: dict, stacked: Tensor, state: dict) -> None:
        """Add to `delta` an Adam step on each parameter's log-scale, from the last `size_update_period` gradients.

        The step multiplies the parameter by about exp(scale_step); parameters whose RMS is below param_min_rms do
        not shrink further, those above param_max_rms shrink by lr * scalar_lr_scale per step.
        """
        beta1, beta2 = group["betas"]
        scale_grads = state["scale_grads"]
        period = scale_grads.shape[0]
        size_lr = group["lr"] * group["scalar_lr_scale"]
        beta2_per_update = beta2**period
        scale_exp_avg_sq = state["scale_exp_avg_sq"]
        scale_exp_avg_sq.mul_(beta2_per_update).add_(scale_grads.pow(2).mean(dim=0), alpha=1 - beta2_per_update)
        num_scale_updates = (state["step"] + 1) // period
        bias_correction2 = 1 - beta2_per_update**num_scale_updates
        denom = scale_exp_avg_sq.sqrt() + group["eps"]
        scale_step = -size_lr * bias_correction2**0.5 * scale_grads.sum(dim=0) / denom
        param_rms = state["param_rms"]
        scale_step.masked_fill_(param_rms < group["param_min_rms"], 0.0)
        scale_step.masked_fill_(param_rms > group["param_max_rms"], -size_lr * period)
        state["delta"].add_(stacked * scale_step, alpha=1 - beta1)

    def _clipping_scale(self, group: dict, batches: List[_ShapeBatch], states: List[dict]) -> float:
        """The factor (<= 1) by which this step's gradients of `group` are scaled; records the gradient norm."""
        clipping_scale = group["clipping_scale"]
        first_state = states[0]
        step = first_state["step"]
        if clipping_scale is None or clipping_scale == 1.0 or step == 0:
            return 1.0
        period = group["clipping_update_period"]
        sumsq_per_batch = [_scaled_grad_sumsq(batch, state) for batch, state in zip(batches, states)]
        tot_sumsq = sum(sumsq.sum() for sumsq in sumsq_per_batch)
        tot_norm = tot_sumsq.sqrt()
        if "model_norms" not in first_state:
            first_state["model_norms"] = torch.zeros(period, device=tot_norm.device)
            first_state["num_clipped"] = 0
        first_state["model_norms"][step % period] = tot_norm
        if step % period == 0:
            self._update_clipping_threshold(clipping_scale, first_state)
        if step < period:
            threshold = clipping_scale * first_state["model_norms"][1 : step + 1].median().item()
        elif "model_norm_threshold" in first_state:
            threshold = first_state["model_norm_threshold"]
        else:
            return 1.0  # clipping switched on when resuming: no threshold until the next update
        scale = min(1.0, threshold / (tot_norm.item() + _TINY_NORM))
        if scale < 1.0:
            first_state["num_clipped"] += 1
        if scale < _DOMINANT_PARAMETER_SCALE:
            logger.warning(
                f"Scaling gradients by {scale:.3e}, model_norm_threshold={threshold:.3e}"
            )
            _log_dominant_parameter(batches, sumsq_per_batch, states, tot_sumsq.item())
        return scale

    @staticmethod
    def _update_clipping_threshold(clipping_scale: float, first_state: dict) -> None:
        """Set the threshold to clipping_scale * median of the remembered norms; log quartiles and % clipped."""
        norms = first_state["model_norms"]
        period = norms.numel()
        sorted_norms = norms.sort().values.cpu()
        quartiles = [sorted_norms[min(period - 1, (period // 4) * n)].item() for n in range(5)]
        threshold = clipping_scale * quartiles[2]
        first_state["model_norm_threshold"] = threshold
        percent_clipped = first_state["num_clipped"] * 100.0 / period
        first_state["num_clipped"] = 0
        logger.info(
            f"Clipping_scale={clipping_scale}, grad-norm quartiles {' '.join(f'{q:.3e}' for q in quartiles)}, "
            f"threshold={threshold:.3e}, percent-clipped={percent_clipped:.1f}"
        )


def _scaled_grad_sumsq(batch: _ShapeBatch, state: dict) -> Tensor:
    """Each parameter's contribution to the squared clipping norm: (B,) sum of (grad * rms)^2 (grad^2 for scalars)."""
    grad = batch.grad if batch.holds_scalars else batch.grad * state["param_rms"]
    return grad.pow(2).reshape(grad.shape[0], -1).sum(dim=1)


def _log_dominant_parameter(
    batches: List[_ShapeBatch], sumsq_per_batch: List[Tensor], states: List[dict], tot_sumsq: float
) -> None:
    """Log the parameter with the largest share of the squared gradient norm."""
    best_batch, best_index, best_sumsq = 0, 0, -1.0
    for batch_index, sumsq in enumerate(sumsq_per_batch):
        value, index = sumsq.max(dim=0)
        if value.item() > best_sumsq:
            best_batch, best_index, best_sumsq = batch_index, index.item(), value.item()
    batch, state = batches[best_batch], states[best_batch]
    grad_sumsq = batch.grad[best_index].pow(2).sum().item()
    rms_sq = 1.0 if batch.holds_scalars else state["param_rms"][best_index].pow(2).item()
    logger.info(
        f"Parameter dominating tot_sumsq {batch.names[best_index]} with proportion "
        f"{best_sumsq / (tot_sumsq + _TINY_NORM):.2f}, where dominant_sumsq=(grad_sumsq*orig_rms_sq)="
        f"{best_sumsq:.3e}, grad_sumsq={grad_sumsq:.3e}, orig_rms_sq={rms_sq:.3e}"
    )


def eden_lr_factor(batch: float, epoch: float, lr_batches: float, lr_epochs: float, warmup_batches: float) -> float:
    """Eden's multiplier of the base learning rate (spec 4.2).

    `((batch^2 + lr_batches^2) / lr_batches^2)^(-1/4) * ((epoch^2 + lr_epochs^2) / lr_epochs^2)^(-1/4) * warmup`,
    where warmup rises linearly from 0.5 at batch 0 to 1 at `warmup_batches`, and stays 1 afterwards.
    `epoch` is 0-based (the training loop passes epoch - 1).
    """
    batch_factor = ((batch**2 + lr_batches**2) / lr_batches**2) ** -0.25
    epoch_factor = ((epoch**2 + lr_epochs**2) / lr_epochs**2) ** -0.25
    warmup = 1.0 if batch >= warmup_batches else 0.5 + 0.5 * batch / warmup_batches
    return batch_factor * epoch_factor * warmup


class Eden:
    """Learning rate that decays with both the batch count and the epoch, after a linear warmup (spec 4.2).

    Each param group's lr becomes `base_lr * eden_lr_factor(batch, epoch, ...)`, where base_lr is the group's lr
    when the scheduler was created (kept in the group as "base_lr"). The rate is set at construction and after
    every `step_batch`, `step_epoch` and `load_state_dict`.

    Args:
        optimizer: the optimizer whose param groups' "lr" this scheduler sets.
        lr_batches: batch count at which the batch factor has fallen to 2^(-1/4); e.g. 5000.
        lr_epochs: epoch count at which the epoch factor has fallen to 2^(-1/4); e.g. 3.5.
        warmup_batches: batches over which the warmup factor rises from 0.5 to 1.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, lr_batches: float, lr_epochs: float, warmup_batches: float = 500.0
    ) -> None:
        if lr_batches <= 0 or lr_epochs <= 0 or warmup_batches <= 0:
            raise ValueError(
                f"Eden: lr_batches, lr_epochs and warmup_batches must be positive, got {lr_batches}, {lr_epochs}, "
                f"{warmup_batches}"
            )
        self.optimizer = optimizer
        self.lr_batches = lr_batches
        self.lr_epochs = lr_epochs
        self.warmup_batches = warmup_batches
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
        self.base_lrs = [group["base_lr"] for group in optimizer.param_groups]
        self.batch = 0
        self.epoch = 0
        self._set_lrs()

    def step_batch(self, batch: Optional[int] = None) -> None:
        """Set the batch count (the global batch index of training) to `batch`, or advance it by one."""
        self.batch = self.batch + 1 if batch is None else batch
        self._set_lrs()

    def step_epoch(self, epoch: Optional[int] = None) -> None:
        """Set the 0-based epoch to `epoch`, or advance it by one."""
        self.epoch = self.epoch + 1 if epoch is None else epoch
        self._set_lrs()

    def get_last_lr(self) -> List[float]:
        """The learning rate of each param group, as last set."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> Dict[str, object]:
        """The schedule position and base rates, all primitives: base_lrs, batch, epoch."""
        return {"base_lrs": list(self.base_lrs), "batch": self.batch, "epoch": self.epoch}

    def load_state_dict(self, state_dict: Dict[str, object]) -> None:
        """Restore what `state_dict()` returned and set the optimizer's rates accordingly."""
        base_lrs = list(state_dict["base_lrs"])
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(
                f"Eden.load_state_dict: state has {len(base_lrs)} base_lrs but the optimizer has "
                f"{len(self.optimizer.param_groups)} param groups"
            )
        self.base_lrs = base_lrs
        self.batch = state_dict["batch"]
        self.epoch = state_dict["epoch"]
        self._set_lrs()

    def _set_lrs(self) -> None:
        """Write base_lr * factor into every param group."""
        factor = eden_lr_factor(self.batch, self.epoch, self.lr_batches, self.lr_epochs, self.warmup_batches)
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
