"""EER, minDCF and top-k accuracy (icefall_lite/decoding/verification.py) on score sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icefall_lite.decoding.verification import equal_error_rate, error_rates, min_dcf, top_k_accuracy


def test_eer_and_min_dcf_of_hand_computed_examples() -> None:
    targets, nontargets = np.array([0.9, 0.8, 0.3]), np.array([0.7, 0.2, 0.1])
    # threshold in (0.3, 0.7]: misses 0.3 (1/3), accepts 0.7 (1/3) -> EER 1/3
    assert equal_error_rate(targets, nontargets) == pytest.approx(1 / 3)
    # best threshold in (0.7, 0.8]: P_miss 1/3, P_fa 0 -> 0.01 / 3 / min(0.01, 0.99) = 1/3
    assert min_dcf(targets, nontargets, p_target=0.01) == pytest.approx(1 / 3)
    # with p_target 0.5 the cost is (P_miss + P_fa) / 2 / 0.5: best 1/3 as well, at (0.7, 0.8] or (0.3, 0.7]
    assert min_dcf(targets, nontargets, p_target=0.5) == pytest.approx(1 / 3)


def test_separable_reversed_and_interpolated_scores() -> None:
    assert equal_error_rate(np.array([0.8, 0.9]), np.array([0.1, 0.2])) == 0.0
    assert min_dcf(np.array([0.8, 0.9]), np.array([0.1, 0.2])) == 0.0
    assert equal_error_rate(np.array([0.1]), np.array([0.9])) == 1.0
    assert min_dcf(np.array([0.1]), np.array([0.9])) == pytest.approx(1.0)  # reject everything: cost p_target
    # P_miss rises 0 -> 1/2 from t = 0.5 to 0.6 while P_fa stays 1/4 (0.6 accepted): they meet at 1/4
    assert equal_error_rate(np.array([0.5, 0.9]), np.array([0.1, 0.2, 0.3, 0.6])) == pytest.approx(1 / 4)
    # a tie at 0.5: from t = 0.5 to 0.9, P_miss 0 -> 1/2 and P_fa 1/2 -> 0 at once; the lines cross at 1/4
    assert equal_error_rate(np.array([0.5, 0.9]), np.array([0.1, 0.5])) == pytest.approx(1 / 4)


def test_error_rates_are_monotonic_and_need_both_kinds() -> None:
    rng = np.random.default_rng(0)
    _, p_miss, p_fa = error_rates(rng.normal(1, 1, 50), rng.normal(0, 1, 80))
    assert np.all(np.diff(p_miss) >= 0) and np.all(np.diff(p_fa) <= 0)
    assert (p_miss[0], p_fa[0], p_miss[-1], p_fa[-1]) == (0.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="target and non-target"):
        equal_error_rate(np.array([0.3]), np.array([]))


def test_top_k_accuracy() -> None:
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    targets = torch.tensor([2, 0, 0])
    assert top_k_accuracy(logits, targets, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(logits, targets, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(logits, targets, 5) == 1.0
