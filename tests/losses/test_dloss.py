"""The shared log-space derivative of the per-probability losses (skfocal/losses/_dloss.py)."""

import math

import mpmath
import numpy as np
import pytest
import torch

from skfocal.losses._dloss import _log_c, as_log_pair, log_abs_dfocal


def _pairs():
    """u over (1e-30, 1 - 1e-15), both logs accurate, and the exact u for mpmath."""
    u = np.concatenate([np.logspace(-30, -1, 60), np.linspace(0.02, 0.98, 49)])
    u = np.concatenate([u, 1 - np.logspace(-1, -15, 40)])
    with np.errstate(divide="ignore"):
        log_u = np.where(u < 0.5, np.log(u), np.log1p(-(1 - u)))
        log_1mu = np.where(u < 0.5, np.log1p(-u), np.log(1 - u))
    return [mpmath.mpf(float(v)) for v in u], torch.tensor(log_u), torch.tensor(log_1mu)


def test_log_c_matches_high_precision_across_the_series_switch():
    """c(u) = -log(1 - u) - u: the series below 0.05 and the direct form above agree."""
    u_exact, log_u, log_1mu = _pairs()
    with mpmath.workdps(100):
        expected = [float(mpmath.log(-mpmath.log(1 - u) - u)) for u in u_exact]
    expected = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(_log_c(log_u, log_1mu), expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 3.0])
@pytest.mark.parametrize("lin", [0.0, 1.0, 7.5])
def test_log_abs_dfocal_matches_its_definition_in_high_precision(gamma, lin):
    u_exact, log_u, log_1mu = _pairs()

    def value(u):
        c = -mpmath.log(1 - u) - u
        return mpmath.log(u ** (gamma - 1) * (lin * u + u**2 / (1 - u) + gamma * c))

    with mpmath.workdps(100):
        expected = [float(value(u)) for u in u_exact]
    expected = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(
        log_abs_dfocal(log_u, log_1mu, gamma, lin), expected, rtol=1e-13, atol=1e-13
    )


def test_as_log_pair_broadcasts_and_promotes():
    log_q, log_1mq = as_log_pair(torch.zeros(3, 1, dtype=torch.float64), math.log(0.5))
    assert log_q.shape == log_1mq.shape == (3, 1)
    assert log_q.dtype == log_1mq.dtype == torch.float64
    log_q, _ = as_log_pair(-1, -2)
    assert log_q.dtype == torch.get_default_dtype()
