"""Speaker verification and identification metrics: EER, minDCF, top-k accuracy, cosine scores, DET plot.

Conventions: a trial is accepted when its score is >= the threshold. For each threshold t (every distinct score,
and +inf), ``P_miss(t)`` = fraction of target scores < t and ``P_fa(t)`` = fraction of non-target scores >= t.

- EER: where P_miss = P_fa, linearly interpolated between the two thresholds where P_miss - P_fa changes sign.
- minDCF (NIST SRE / VoxSRC): ``min_t (C_miss P_miss(t) p_target + C_fa P_fa(t) (1 - p_target))`` divided by
  ``min(C_miss p_target, C_fa (1 - p_target))``, the cost of the best decision without the scores.

Example::

    >>> equal_error_rate(np.array([0.9, 0.8, 0.3]), np.array([0.7, 0.2, 0.1]))   # 1/3
    >>> min_dcf(np.array([0.9, 0.8, 0.3]), np.array([0.7, 0.2, 0.1]), p_target=0.01)   # 1/3
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist
from typing import Tuple

import matplotlib
import numpy as np
import torch
from torch import Tensor

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

P_TARGET = 0.01


def error_rates(target_scores: np.ndarray, nontarget_scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, P_miss, P_fa), each (K,) float64, thresholds ascending (the distinct scores, then +inf).

    Args:
      target_scores: (Nt,) scores of same-speaker trials, Nt >= 1.
      nontarget_scores: (Nn,) scores of different-speaker trials, Nn >= 1.
    """
    if target_scores.size == 0 or nontarget_scores.size == 0:
        raise ValueError(
            f"EER and minDCF need target and non-target trials, got {target_scores.size} and {nontarget_scores.size}"
        )
    targets, nontargets = np.sort(target_scores.astype(np.float64)), np.sort(nontarget_scores.astype(np.float64))
    thresholds = np.append(np.unique(np.concatenate([targets, nontargets])), np.inf)
    p_miss = np.searchsorted(targets, thresholds, side="left") / targets.size
    p_fa = 1.0 - np.searchsorted(nontargets, thresholds, side="left") / nontargets.size
    return thresholds, p_miss, p_fa


def equal_error_rate(target_scores: np.ndarray, nontarget_scores: np.ndarray) -> float:
    """The EER in [0, 1] (module docstring)."""
    _, p_miss, p_fa = error_rates(target_scores, nontarget_scores)
    i = int(np.argmax(p_miss >= p_fa))  # P_miss rises and P_fa falls with t; at +inf P_miss = 1 >= P_fa = 0
    if i == 0:
        return float(p_miss[0])
    before, after = p_fa[i - 1] - p_miss[i - 1], p_miss[i] - p_fa[i]
    alpha = before / (before + after)
    return float(p_miss[i - 1] + alpha * (p_miss[i] - p_miss[i - 1]))


def min_dcf(
    target_scores: np.ndarray, nontarget_scores: np.ndarray, p_target: float = P_TARGET, c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """The normalized minimum detection cost (module docstring)."""
    _, p_miss, p_fa = error_rates(target_scores, nontarget_scores)
    cost = c_miss * p_miss * p_target + c_fa * p_fa * (1.0 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1.0 - p_target)))


def top_k_accuracy(logits: Tensor, targets: Tensor, k: int) -> float:
    """logits: (N, S) float, targets: (N,) int64 -> fraction of rows whose target is among the k largest logits."""
    top = logits.topk(min(k, logits.size(1)), dim=1).indices
    return float((top == targets.unsqueeze(1)).any(dim=1).float().mean())


def cosine_scores(enrol: Tensor, test: Tensor) -> Tensor:
    """enrol, test: (N, E) float embeddings of the N trials' two sides -> (N,) float cosine similarities."""
    return torch.nn.functional.cosine_similarity(enrol, test, dim=1)


def plot_scores(target_scores: np.ndarray, nontarget_scores: np.ndarray, path: Path, title: str) -> None:
    """A PNG with the score histograms and the DET curve (P_miss against P_fa on normal-deviate axes)."""
    _, p_miss, p_fa = error_rates(target_scores, nontarget_scores)
    eer = equal_error_rate(target_scores, nontarget_scores)
    probit = NormalDist().inv_cdf
    figure, (hist, det) = plt.subplots(1, 2, figsize=(11, 4.5))
    bins = np.linspace(min(target_scores.min(), nontarget_scores.min()), max(target_scores.max(), nontarget_scores.max()), 50)
    hist.hist(nontarget_scores, bins=bins, alpha=0.6, density=True, label=f"different speaker ({nontarget_scores.size})")
    hist.hist(target_scores, bins=bins, alpha=0.6, density=True, label=f"same speaker ({target_scores.size})")
    hist.set_xlabel("cosine score")
    hist.legend()
    det.plot([probit(p) for p in np.clip(p_fa, 1e-4, 1 - 1e-4)], [probit(p) for p in np.clip(p_miss, 1e-4, 1 - 1e-4)], label=f"EER {100 * eer:.2f}%")
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8]
    for set_ticks, set_labels in ((det.set_xticks, det.set_xticklabels), (det.set_yticks, det.set_yticklabels)):
        set_ticks([probit(p) for p in ticks])
        set_labels([f"{100 * p:g}" for p in ticks])
    limits = (probit(0.0005), probit(0.95))
    det.set_xlim(*limits)
    det.set_ylim(*limits)
    det.set_xlabel("false alarm rate (%)")
    det.set_ylabel("miss rate (%)")
    det.grid(True)
    det.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
