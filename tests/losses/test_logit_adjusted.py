"""Invariants of the logit-adjusted losses (skfocal/losses/_logit_adjusted.py)."""

import math

import pytest
import torch
import torch.nn.functional as F

from skfocal.losses import (
    binary_logit_adjusted_loss_with_logits,
    logit_adjusted_log_posterior,
    logit_adjusted_loss,
)

REDUCTIONS = ["mean", "sum", "none"]


def _value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _menon(logits, target, prior, tau):
    """Menon et al. (2021): -log(e^{f_y + tau log pi_y} / sum_j e^{f_j + tau log pi_j})."""
    adjusted = torch.exp(logits + tau * torch.log(prior))
    return -torch.log(adjusted.gather(1, target[:, None]).squeeze(1) / adjusted.sum(1))


def _balanced_softmax(logits, target, prior):
    """Ren et al. (2020): -log(pi_y e^{z_y} / sum_j pi_j e^{z_j})."""
    weighted = prior * torch.exp(logits)
    return -torch.log(weighted.gather(1, target[:, None]).squeeze(1) / weighted.sum(1))


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_equals_published_formula_in_value_and_gradient(seed, tau):
    x = torch.randn(64, 4, dtype=torch.float64)
    t = torch.randint(0, 4, (64,))
    prior = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=torch.float64)
    ours = _value_and_grad(
        lambda z: logit_adjusted_loss(z, t, prior=prior, tau=tau, reduction="none"), x
    )
    ref = _value_and_grad(lambda z: _menon(z, t, prior, tau), x)
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours[1], ref[1], rtol=1e-12, atol=1e-12)
    if tau == 1.0:
        ref = _value_and_grad(lambda z: _balanced_softmax(z, t, prior), x)
        torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ours[1], ref[1], rtol=1e-12, atol=1e-12)


def test_counts_and_frequencies_give_the_same_loss(seed):
    x = torch.randn(20, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (20,))
    counts = [700, 200, 100]
    torch.testing.assert_close(
        logit_adjusted_loss(x, t, prior=counts, reduction="none"),
        logit_adjusted_loss(x, t, prior=[0.7, 0.2, 0.1], reduction="none"),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_alpha", [False, True])
@pytest.mark.parametrize("shape", [(37, 4), (5, 4, 6), (4, 4, 3, 2)])
def test_tau_zero_equals_cross_entropy(seed, reduction, with_alpha, shape):
    x = torch.randn(*shape, dtype=torch.float64) * 3
    t = torch.randint(0, shape[1], (shape[0],) + shape[2:])
    t.view(-1)[::7] = -100
    alpha = torch.rand(shape[1], dtype=torch.float64) + 0.1 if with_alpha else None
    prior = [0.4, 0.3, 0.2, 0.1]
    ours = _value_and_grad(
        lambda z: logit_adjusted_loss(z, t, prior=prior, tau=0.0, alpha=alpha, reduction=reduction),
        x,
    )
    ref = _value_and_grad(lambda z: F.cross_entropy(z, t, weight=alpha, reduction=reduction), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_spatial_ignore_index_and_alpha_like_cross_entropy(seed, reduction):
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    t = torch.randint(0, 4, (3, 5))
    prior = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    alpha = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    ours = _value_and_grad(
        lambda z: logit_adjusted_loss(
            z, t, prior=prior, tau=1.5, alpha=alpha, ignore_index=1, reduction=reduction
        ),
        x,
    )
    shift = 1.5 * torch.log(prior).view(1, 4, 1)
    ref = _value_and_grad(
        lambda z: F.cross_entropy(z + shift, t, weight=alpha, ignore_index=1, reduction=reduction),
        x,
    )
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


def test_unbatched_input(seed):
    x = torch.randn(3, dtype=torch.float64)
    t = torch.tensor(1)
    for reduction in REDUCTIONS:
        ours = logit_adjusted_loss(x, t, prior=[5, 3, 2], reduction=reduction)
        batched = logit_adjusted_loss(x[None], t[None], prior=[5, 3, 2], reduction=reduction)
        assert ours.shape == F.cross_entropy(x, t, reduction=reduction).shape
        torch.testing.assert_close(ours, batched.reshape(ours.shape))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau", [0.0, 1.0, 100.0])
@pytest.mark.parametrize("smallest", [0.1, 1e-30])
def test_finite_at_extreme_logits_and_hyperparameters(seed, dtype, tau, smallest):
    prior = [1.0, 0.5, smallest]
    x = (torch.randn(128, 3, dtype=dtype) * 1e4).requires_grad_()
    t = torch.randint(0, 3, (128,))
    t[:32] = x[:32].argmax(dim=1)
    loss = logit_adjusted_loss(x, t, prior=prior, tau=tau)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(x.grad).all())
    xb = (torch.randn(128, dtype=dtype) * 1e4).requires_grad_()
    yb = (xb.detach() > 0).to(dtype)
    yb[:32] = 1 - yb[:32]
    loss = binary_logit_adjusted_loss_with_logits(xb, yb, prior=smallest, tau=tau, alpha=0.3)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(xb.grad).all())
    log_post = logit_adjusted_log_posterior(x.detach(), torch.log(torch.tensor(prior)), tau)
    assert bool(torch.isfinite(log_post).all())


def test_gradcheck(seed):
    x = torch.randn(10, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (10,))
    t[0] = -100
    alpha = torch.rand(4, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda z: logit_adjusted_loss(z, t, prior=[4, 3, 2, 1], tau=1.3, alpha=alpha), (x,)
    )
    xb = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    yb = (torch.rand(6, 2) < 0.4).double()
    assert torch.autograd.gradcheck(
        lambda z: binary_logit_adjusted_loss_with_logits(
            z, yb, prior=[0.1, 0.6], alpha=[0.3, 0.5], pos_weight=torch.tensor([2.0, 1.0])
        ),
        (xb,),
    )


# ---------------------------------------------------------------- one-logit binary form


@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("alpha", [None, 0.3])
@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_binary_equals_two_logit_form(seed, reduction, alpha, tau):
    z = torch.randn(40, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (40,))
    pi = 0.15
    ours = _value_and_grad(
        lambda v: binary_logit_adjusted_loss_with_logits(
            v, y.double(), prior=pi, tau=tau, alpha=alpha, reduction=reduction
        ),
        z,
    )

    def two_logit(v):
        logits = torch.stack([torch.zeros_like(v), v], dim=1)
        return logit_adjusted_loss(
            logits, y, prior=[1 - pi, pi], tau=tau, alpha=alpha, reduction=reduction
        )

    ref = _value_and_grad(two_logit, z)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_binary_tau_zero_equals_bce(seed, reduction, pos_weight):
    z = torch.randn(10, 3, dtype=torch.float64) * 3
    y = (torch.rand(10, 3) < 0.3).double()
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    ours = _value_and_grad(
        lambda v: binary_logit_adjusted_loss_with_logits(
            v, y, prior=[0.1, 0.2, 0.3], tau=0.0, pos_weight=pw, reduction=reduction
        ),
        z,
    )
    ref = _value_and_grad(
        lambda v: F.binary_cross_entropy_with_logits(v, y, pos_weight=pw, reduction=reduction), z
    )
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


def test_binary_per_label_prior(seed):
    z = torch.randn(8, 3, dtype=torch.float64)
    y = (torch.rand(8, 3) < 0.5).double()
    prior = torch.tensor([0.05, 0.5, 0.9], dtype=torch.float64)
    ours = binary_logit_adjusted_loss_with_logits(z, y, prior=prior, tau=2.0, reduction="none")
    shifted = z + 2.0 * torch.log(prior / (1 - prior))
    torch.testing.assert_close(
        ours, F.binary_cross_entropy_with_logits(shifted, y, reduction="none")
    )


# ---------------------------------------------------------------- inverse link


@pytest.mark.parametrize("tau", [0.0, 1.0, 1.7])
def test_log_posterior_is_softmax_of_adjusted_logits(seed, tau):
    x = torch.randn(5, 3, 2, dtype=torch.float64)
    log_prior = torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    out = logit_adjusted_log_posterior(x, log_prior, tau)
    torch.testing.assert_close(out, torch.log_softmax(x + tau * log_prior.view(1, 3, 1), dim=1))
    torch.testing.assert_close(out.exp().sum(1), torch.ones(5, 2, dtype=torch.float64))
    flat = logit_adjusted_log_posterior(x[0, :, 0], log_prior, tau)
    torch.testing.assert_close(flat, out[0, :, 0])
    # an unnormalised log-prior (log counts) gives the same posterior
    torch.testing.assert_close(logit_adjusted_log_posterior(x, log_prior + 7.0, tau), out)


@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_binary_log_posterior_matches_two_logit_form(seed, tau):
    z = torch.randn(20, dtype=torch.float64) * 3
    pi = torch.tensor(0.2, dtype=torch.float64)
    out = logit_adjusted_log_posterior(z, torch.log(pi), tau, binary=True)
    logits = torch.stack([torch.zeros_like(z), z], dim=1)
    two = logit_adjusted_log_posterior(logits, torch.log(torch.stack([1 - pi, pi])), tau)
    torch.testing.assert_close(out, two[:, 1])
    per_label = torch.tensor([0.1, 0.7], dtype=torch.float64)
    zz = torch.randn(4, 2, dtype=torch.float64)
    torch.testing.assert_close(
        logit_adjusted_log_posterior(zz, torch.log(per_label), tau, binary=True),
        F.logsigmoid(zz + tau * torch.log(per_label / (1 - per_label))),
    )


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_inverse_link_recovers_the_posterior_at_the_risk_minimiser(tau):
    """At argmin_z sum_y eta_y L(z, y), the log-posterior is log eta (it calibrates)."""
    eta = torch.tensor([0.5, 0.35, 0.15], dtype=torch.float64)
    log_prior = torch.log(torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64))
    z = (torch.log(eta) - tau * log_prior).requires_grad_()  # the claimed minimiser
    risk = sum(
        eta[y] * logit_adjusted_loss(z, torch.tensor(y), prior=log_prior.exp(), tau=tau)
        for y in range(3)
    )
    (grad,) = torch.autograd.grad(risk, z)
    torch.testing.assert_close(grad, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        logit_adjusted_log_posterior(z.detach(), log_prior, tau), torch.log(eta)
    )


def test_log_posterior_is_finite_for_extreme_binary_priors():
    z = torch.tensor([-1e4, 0.0, 1e4])
    for pi in (1e-30, 0.5, 1 - 1e-7):
        out = logit_adjusted_log_posterior(z, math.log(pi), 1.0, binary=True)
        assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: logit_adjusted_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), prior=[1, 2]
            ),
            ValueError,
            r"prior must have one entry per class: expected length 3, got length 2",
        ),
        (
            lambda: logit_adjusted_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), prior=[0.5, 0.0, 0.5]
            ),
            ValueError,
            r"prior must be a one-dimensional sequence of positive class frequencies "
            r"\(or counts\), got \[0.5, 0.0, 0.5\]",
        ),
        (
            lambda: logit_adjusted_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), prior=[0.5, float("inf"), 0.5]
            ),
            ValueError,
            r"prior must be .* got \[0.5, inf, 0.5\]",
        ),
        (
            lambda: logit_adjusted_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), prior=0.5),
            ValueError,
            r"prior must be a one-dimensional sequence .* got 0.5",
        ),
        (
            lambda: logit_adjusted_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), prior=[1, 1, 1], tau=-1
            ),
            ValueError,
            r"tau must be a finite float >= 0, got -1.0",
        ),
        (
            lambda: logit_adjusted_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), prior=[1, 1, 1], tau=None
            ),
            TypeError,
            r"tau must be a real number \(a finite float >= 0\), got None",
        ),
        (
            lambda: binary_logit_adjusted_loss_with_logits(
                torch.randn(4), torch.ones(4), prior=1.0
            ),
            ValueError,
            r"prior must be a float or a sequence of per-label positive rates in the "
            r"open interval \(0, 1\), got \[?1.0",
        ),
        (
            lambda: binary_logit_adjusted_loss_with_logits(
                torch.randn(4, 3), torch.ones(4, 3), prior=[0.1, 0.2]
            ),
            ValueError,
            r"prior must be a float or have one entry per label .*expected length 3, "
            r"got length 2",
        ),
        (
            lambda: logit_adjusted_log_posterior(torch.randn(4, 3), torch.zeros(2)),
            ValueError,
            r"log_prior must have one entry per class .* got shape \(2,\) for logits of "
            r"shape \(4, 3\)",
        ),
        (
            lambda: logit_adjusted_log_posterior(torch.randn(4, 3), torch.zeros(2), binary=True),
            ValueError,
            r"log_prior must be a float or one log positive rate per label",
        ),
        (
            lambda: logit_adjusted_log_posterior(torch.tensor([1, 2]), torch.zeros(2)),
            TypeError,
            r"logits must be a floating-point tensor",
        ),
    ],
)
def test_bad_arguments_fail_fast(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
