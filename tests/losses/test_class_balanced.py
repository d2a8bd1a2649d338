"""Class-balanced weights from the effective number of samples (_class_balanced.py)."""

import numpy as np
import pytest
import torch

from skfocal.losses import class_balanced_weights


def _cui(counts, beta):
    """Cui et al. (2019): w_c = (1 - beta) / (1 - beta^n_c), normalised to sum to C."""
    counts = np.asarray(counts, dtype=np.float64)
    effective_num = 1.0 - np.power(beta, counts)
    weights = (1.0 - beta) / effective_num
    return weights / np.sum(weights) * len(counts)


COUNTS = [5000, 700, 90, 3]


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99, 0.999, 0.9999])
def test_proportional_to_reference_and_normalised_per_sample(beta):
    ours = class_balanced_weights(COUNTS, beta)
    counts = torch.tensor(COUNTS, dtype=torch.float64)
    torch.testing.assert_close((counts * ours).sum(), counts.sum())
    reference = torch.tensor(_cui(COUNTS, beta))
    torch.testing.assert_close(ours / ours.sum(), reference / reference.sum(), rtol=1e-12, atol=0)
    assert ours.dtype == torch.float64 and ours.shape == (4,)


def test_beta_zero_is_all_ones():
    torch.testing.assert_close(
        class_balanced_weights(COUNTS, 0.0), torch.ones(4, dtype=torch.float64)
    )


@pytest.mark.parametrize("gap", [1e-6, 1e-9, 1e-12])
def test_beta_to_one_approaches_inverse_frequency(gap):
    counts = torch.tensor([300.0, 60.0, 12.0, 1.0], dtype=torch.float64)
    inverse = counts.sum() / (len(counts) * counts)  # scikit-learn's "balanced"
    ours = class_balanced_weights(counts, 1.0 - gap)
    torch.testing.assert_close(ours, inverse, rtol=500 * gap, atol=0)


def test_rarer_classes_weigh_more(seed):
    counts = np.sort(np.random.default_rng(0).integers(1, 10_000, size=8))[::-1].copy()
    for beta in (0.9, 0.999):
        weights = class_balanced_weights(counts, beta)
        assert bool((weights.diff() >= 0).all())


def test_accepts_arrays_tensors_and_float_counts():
    a = class_balanced_weights(np.array([10, 5]), 0.9)
    b = class_balanced_weights(torch.tensor([10, 5]), 0.9)
    c = class_balanced_weights([10.0, 5.0], 0.9)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"beta": 1.0}, ValueError, r"beta must be a float in \[0, 1\), got 1.0"),
        ({"beta": -0.1}, ValueError, r"beta must be a float in \[0, 1\), got -0.1"),
        ({"beta": float("nan")}, ValueError, r"beta must be a float in \[0, 1\), got nan"),
        ({"beta": "0.9"}, TypeError, r"beta must be a real number .* got '0.9'"),
        (
            {"class_counts": [10, 0]},
            ValueError,
            r"class_counts must be a one-dimensional sequence of positive, finite class counts, "
            r"got \[10.0, 0.0\]",
        ),
        ({"class_counts": [10, -2]}, ValueError, r"class_counts must be .* got \[10.0, -2.0\]"),
        ({"class_counts": [[1, 2]]}, ValueError, r"class_counts must be .* got \(1, 2\)"),
        ({"class_counts": 5}, ValueError, r"class_counts must be .* got 5"),
    ],
)
def test_bad_arguments_fail_fast(kwargs, exc, match):
    kwargs = {"class_counts": [10, 5], "beta": 0.9, **kwargs}
    with pytest.raises(exc, match=match):
        class_balanced_weights(**kwargs)
