"""The per-element kernels in terms of ell = log p_t (skfocal/losses/_kernels.py).

One kernel per loss serves the single losses (float hyperparameters) and the stacked ones
(per-member columns): each row of a column evaluation equals the float evaluation, and the
derivative a kernel returns is d loss / d ell (p = exp(ell) and q = 1 - p included).
"""

import math

import pytest
import torch

from skfocal.losses._kernels import bind_focal, bind_margin, focal_kernel, margin_kernel, power


def _ell(n=200):
    """log p_t over (0, 1), confident samples (p_t -> 1, q underflowing) included."""
    ell = -torch.logspace(-20, 1.5, n, dtype=torch.float64)
    return torch.cat([ell, torch.zeros(1, dtype=torch.float64)])


def _pq(ell):
    return ell.exp(), torch.expm1(ell).neg()


def _autograd_derivative(loss_of, ell):
    ell = ell.detach().clone().requires_grad_()
    p, q = _pq(ell)
    (grad,) = torch.autograd.grad(loss_of(ell, p, q).sum(), ell)
    return grad


@pytest.mark.parametrize(
    "kernel, textbook",
    [
        (bind_focal(2.0), lambda ell, p, q: -(q**2) * ell),
        (bind_focal(3.7), lambda ell, p, q: -(q**3.7) * ell),
        (bind_focal(1.0), lambda ell, p, q: -q * ell),
        (
            bind_margin(math.log(0.6), math.log(0.6 / 0.4), 2.0),
            lambda ell, p, q: -torch.sigmoid(2.0 * (math.log(0.6 / 0.4) - (ell - q.log()))) * ell,
        ),
    ],
)
def test_kernel_returns_its_loss_and_the_derivative_in_ell(kernel, textbook):
    ell = _ell()[:-1]  # away from p = 1, where the textbook forms are 0 * inf
    ell = ell[ell < -1e-6]
    p, q = _pq(ell)
    loss, grad = kernel(ell, p, q, True)
    torch.testing.assert_close(loss, textbook(ell, p, q), rtol=1e-12, atol=1e-300)
    torch.testing.assert_close(grad, _autograd_derivative(textbook, ell), rtol=1e-9, atol=1e-300)
    assert kernel(ell, p, q, False)[1] is None


@pytest.mark.parametrize("gammas", [[0.0, 0.5, 1.0, 2.0, 3.7], [0.25, 0.25]])
def test_focal_kernel_rows_of_a_gamma_column_equal_the_float_evaluations(gammas):
    ell = _ell()
    p, q = _pq(ell)
    rows = [t.expand(len(gammas), -1).clone() for t in (ell, p, q)]  # (members, batch)
    column = torch.tensor(gammas, dtype=torch.float64).reshape(-1, 1)
    loss, grad = focal_kernel(*rows, column, True)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    for row, gamma in enumerate(gammas):
        ref_loss, ref_grad = focal_kernel(ell, p, q, gamma, True)
        torch.testing.assert_close(loss[row], ref_loss, rtol=1e-15, atol=0.0)
        torch.testing.assert_close(grad[row], ref_grad, rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("softness", [None, 0.5, 4.0])
def test_margin_kernel_rows_of_threshold_columns_equal_the_float_evaluations(softness):
    ell = _ell()
    p, q = _pq(ell)
    margins = [0.3, 0.6, 0.9]
    logs = [math.log(m) for m in margins]
    logits = [math.log(m) - math.log1p(-m) for m in margins]
    column = torch.tensor(logs, dtype=torch.float64).reshape(-1, 1)
    logit_column = torch.tensor(logits, dtype=torch.float64).reshape(-1, 1)
    rows = [t.expand(len(margins), -1).clone() for t in (ell, p, q)]  # (members, batch)
    loss, grad = margin_kernel(*rows, column, logit_column, softness, True)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    for row in range(len(margins)):
        ref = margin_kernel(ell, p, q, logs[row], logits[row], softness, True)
        torch.testing.assert_close(loss[row], ref[0], rtol=1e-15, atol=0.0)
        torch.testing.assert_close(grad[row], ref[1], rtol=1e-15, atol=0.0)


def test_power_is_the_focal_factor():
    base = torch.tensor([0.25, 0.5])
    assert power(base, 0.0) is None
    assert power(base, 1.0) is base  # the base itself: callers must not modify it in place
    torch.testing.assert_close(power(base, 2.0), base * base)
    torch.testing.assert_close(power(base, 0.5), base.sqrt())
    assert power(base, 2.0) is not base
