"""Invariants of the inverse links (skfocal/losses/_links.py).

The population minimisers below come from float64 root solves of the stationarity conditions
(``scipy.optimize.brentq``), with |l'| written out naively from q and 1 - q: independent of
the log-space formulas under test.
"""

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import brentq
from scipy.special import expit

from skfocal.losses import (
    binary_focal_posterior,
    cross_entropy_log_abs_dloss,
    focal_log_abs_dloss,
    focal_posterior,
    sigmoid_log_odds,
    soft_margin_link_is_invertible,
    soft_margin_log_abs_dloss,
    softmax_log_posterior,
)

GAMMAS = [0.0, 0.5, 1.0, 2.0, 5.0]
SOFT_MARGINS = [(0.5, 1.0), (0.3, 0.8), (0.7, 2.0)]  # (margin, softness), all invertible


def _focal(gamma):
    return functools.partial(focal_log_abs_dloss, gamma=gamma)


def _soft_margin(margin, softness):
    return functools.partial(soft_margin_log_abs_dloss, margin=margin, softness=softness)


LOSSES = {
    "ce": cross_entropy_log_abs_dloss,
    **{f"focal{g}": _focal(g) for g in GAMMAS},
    **{f"margin{m},{k}": _soft_margin(m, k) for m, k in SOFT_MARGINS},
}


# -- independent float64 reference: naive |l'(q)| at q = sigmoid(t) ---------------------------


def _naive_abs_dloss(t, loss, **hyper):
    """|l'(q)| for q = expit(t), from q, 1 - q = expit(-t) and log q, written out naively."""
    q, omq, log_q = expit(t), expit(-t), -np.logaddexp(0.0, -t)
    if loss == "focal":
        g = hyper["gamma"]
        return omq**g / q - g * omq ** (g - 1.0) * log_q
    m, k = hyper["margin"], hyper["softness"]
    lam = expit(k * (math.log(m / (1.0 - m)) - t))
    return lam / q * (1.0 + k * (1.0 - lam) * (-log_q) / omq)


def _solve_t(log_target, loss, hyper):
    """t with log |l'(expit(t))| = log_target (|l'| strictly decreasing), clamped to +-60."""

    def f(t):
        return math.log(_naive_abs_dloss(t, loss, **hyper)) - log_target

    if f(60.0) > 0:
        return 60.0
    if f(-60.0) < 0:
        return -60.0
    return brentq(f, -60.0, 60.0, xtol=1e-14, rtol=8.9e-16, maxiter=500)


def _softmax_minimiser(eta, w, loss, hyper):
    """log q minimising sum_k eta_k w_k l(q_k) on the simplex.

    For a multiplier lam each q_k solves eta_k w_k |l'(q_k)| = lam (inner root on the strictly
    decreasing |l'|); an outer root on log lam makes sum_k q_k = 1.
    """
    log_ew = np.log(eta) + np.log(w)

    def ts(log_lam):
        return np.array([_solve_t(log_lam - v, loss, hyper) for v in log_ew])

    def excess(log_lam):
        return expit(ts(log_lam)).sum() - 1.0

    lo, hi = -1.0, 1.0
    while excess(lo) < 0:
        lo -= 2.0
    while excess(hi) > 0:
        hi += 2.0
    log_lam = brentq(excess, lo, hi, xtol=1e-15, rtol=8.9e-16, maxiter=500)
    return -np.logaddexp(0.0, -ts(log_lam))


def _sigmoid_minimiser(eta, w_pos, w_neg, loss, hyper):
    """Logit t minimising eta w_pos l(p) + (1 - eta) w_neg l(1 - p), p = expit(t)."""

    def f(t):
        pos = math.log(eta * w_pos * _naive_abs_dloss(t, loss, **hyper))
        neg = math.log((1.0 - eta) * w_neg * _naive_abs_dloss(-t, loss, **hyper))
        return pos - neg

    return brentq(f, -60.0, 60.0, xtol=1e-14, rtol=8.9e-16, maxiter=500)


def _etas(n_classes, rng):
    extreme = np.full(n_classes, 1e-6)
    extreme[0] = 1.0 - 1e-6 * (n_classes - 1)
    lopsided = np.geomspace(1.0, 1e-6, n_classes)
    return [extreme, lopsided / lopsided.sum()] + list(rng.dirichlet(np.ones(n_classes), 3))


# -- the inverse link maps the population minimiser back to eta -------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("n_classes", [3, 4])
@pytest.mark.parametrize("emphasis", [False, True])
def test_focal_softmax_link_recovers_eta(seed, gamma, n_classes, emphasis):
    w = np.geomspace(0.2, 5.0, n_classes) if emphasis else np.ones(n_classes)
    for eta in _etas(n_classes, seed):
        log_q = torch.tensor(_softmax_minimiser(eta, w, "focal", {"gamma": gamma}))
        log_w = torch.tensor(np.log(w)) if emphasis else None
        got = softmax_log_posterior(log_q, _focal(gamma), log_w)
        torch.testing.assert_close(got, torch.tensor(np.log(eta)), rtol=0, atol=1e-10)
        alpha = torch.tensor(w) if emphasis else None
        got = focal_posterior(log_q, gamma=gamma, alpha=alpha)
        torch.testing.assert_close(got, torch.tensor(eta), rtol=1e-10, atol=0)


@pytest.mark.parametrize("margin, softness", SOFT_MARGINS)
@pytest.mark.parametrize("emphasis", [False, True])
def test_soft_margin_softmax_link_recovers_eta(seed, margin, softness, emphasis):
    assert soft_margin_link_is_invertible(margin, softness)
    hyper = {"margin": margin, "softness": softness}
    w = np.array([0.3, 1.0, 4.0]) if emphasis else np.ones(3)
    for eta in _etas(3, seed):
        log_q = torch.tensor(_softmax_minimiser(eta, w, "margin", hyper))
        log_w = torch.tensor(np.log(w)) if emphasis else None
        got = softmax_log_posterior(log_q, _soft_margin(margin, softness), log_w)
        torch.testing.assert_close(got, torch.tensor(np.log(eta)), rtol=0, atol=1e-10)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha, pos_weight", [(None, None), (0.25, None), (0.8, 3.0)])
def test_focal_sigmoid_link_recovers_eta(gamma, alpha, pos_weight):
    w_pos = (1.0 if alpha is None else alpha) * (1.0 if pos_weight is None else pos_weight)
    w_neg = 1.0 if alpha is None else 1.0 - alpha
    etas = np.array([1e-6, 1e-3, 0.2, 0.5, 0.77, 1.0 - 1e-6])
    t = [_sigmoid_minimiser(e, w_pos, w_neg, "focal", {"gamma": gamma}) for e in etas]
    logits = torch.tensor(t, dtype=torch.float64)
    expected = torch.tensor(np.log(etas) - np.log1p(-etas))
    ratio = None
    if alpha is not None or pos_weight is not None:
        ratio = torch.tensor(math.log(w_pos / w_neg), dtype=torch.float64)
    torch.testing.assert_close(
        sigmoid_log_odds(logits, _focal(gamma), None, ratio), expected, rtol=0, atol=1e-10
    )
    got = binary_focal_posterior(logits, gamma=gamma, alpha=alpha, pos_weight=pos_weight)
    torch.testing.assert_close(got, torch.tensor(etas), rtol=1e-10, atol=0)


@pytest.mark.parametrize("margin, softness", SOFT_MARGINS)
def test_soft_margin_sigmoid_link_recovers_eta_per_label(margin, softness):
    hyper = {"margin": margin, "softness": softness}
    etas = np.array([[1e-6, 0.3, 0.9], [0.5, 1.0 - 1e-6, 0.05]])
    w_pos, w_neg = np.array([2.0, 1.0, 0.5]), np.array([1.0, 3.0, 0.5])
    logits = torch.tensor(
        [
            [_sigmoid_minimiser(e, wp, wn, "margin", hyper) for e, wp, wn in zip(row, w_pos, w_neg)]
            for row in etas
        ],
        dtype=torch.float64,
    )
    ratio = torch.tensor(np.log(w_pos / w_neg))
    got = sigmoid_log_odds(logits, _soft_margin(margin, softness), log_emphasis_ratio=ratio)
    torch.testing.assert_close(
        got, torch.tensor(np.log(etas) - np.log1p(-etas)), rtol=0, atol=1e-10
    )


# -- exactness at gamma = 0, and the identities between the links -----------------------------


@pytest.mark.parametrize("shape", [(7, 3), (2, 5, 4), (6,)])
def test_cross_entropy_link_is_log_softmax_exactly(seed, shape):
    x = torch.randn(*shape, dtype=torch.float64) * 4
    expected = F.log_softmax(x, dim=-1)
    assert torch.equal(softmax_log_posterior(x, cross_entropy_log_abs_dloss), expected)
    assert torch.equal(softmax_log_posterior(x, _focal(0.0)), expected)
    log_w = torch.randn(shape[-1], dtype=torch.float64)
    assert torch.equal(
        softmax_log_posterior(x, _focal(0.0), log_w), F.log_softmax(x - log_w, dim=-1)
    )
    assert torch.equal(sigmoid_log_odds(x, _focal(0.0)), x)
    assert torch.equal(sigmoid_log_odds(x, cross_entropy_log_abs_dloss, _focal(0.0)), x)


def test_gamma_zero_posteriors_are_softmax_and_sigmoid(seed):
    x = torch.randn(9, 4) * 3
    assert torch.equal(focal_posterior(x, gamma=0.0), torch.softmax(x, dim=1))
    assert torch.equal(binary_focal_posterior(x, gamma=0.0), torch.sigmoid(x))
    alpha = torch.tensor([0.5, 1.0, 2.0, 0.25])
    torch.testing.assert_close(
        focal_posterior(x, gamma=0.0, alpha=alpha), torch.softmax(x - alpha.log(), dim=1)
    )
    torch.testing.assert_close(
        binary_focal_posterior(x, gamma=0.0, alpha=0.25, pos_weight=2.0),
        torch.sigmoid(x - math.log(0.25 * 2.0 / 0.75)),
    )


def test_soft_margin_half_unit_is_focal_gamma_one(seed):
    x = torch.randn(50, 3, dtype=torch.float64) * 5
    torch.testing.assert_close(
        softmax_log_posterior(x, _soft_margin(0.5, 1.0)), softmax_log_posterior(x, _focal(1.0))
    )
    torch.testing.assert_close(
        sigmoid_log_odds(x, _soft_margin(0.5, 1.0)), sigmoid_log_odds(x, _focal(1.0))
    )


def test_emphasis_is_divided_out_after_the_link(seed):
    x = torch.randn(20, 4, dtype=torch.float64)
    log_w = torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(
        softmax_log_posterior(x, _focal(2.0), log_w),
        F.log_softmax(softmax_log_posterior(x, _focal(2.0)) - log_w, dim=-1),
    )


def test_two_class_softmax_is_the_sigmoid_link(seed):
    x = torch.randn(40, dtype=torch.float64) * 6
    for name, dloss in LOSSES.items():
        two = softmax_log_posterior(torch.stack([torch.zeros_like(x), x], dim=-1), dloss)
        torch.testing.assert_close(two[:, 1] - two[:, 0], sigmoid_log_odds(x, dloss), msg=name)


@pytest.mark.parametrize("shape, dim", [((4, 3, 5), 1), ((3,), 0), ((2, 4, 3, 2), 1)])
def test_focal_posterior_class_dimension_like_focal_loss(seed, shape, dim):
    x = torch.randn(*shape, dtype=torch.float64) * 3
    got = focal_posterior(x, gamma=2.0)
    expected = softmax_log_posterior(x.movedim(dim, -1), _focal(2.0)).exp().movedim(-1, dim)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got.sum(dim), torch.ones_like(got.sum(dim)))
    torch.testing.assert_close(softmax_log_posterior(x, _focal(2.0), dim=dim).exp(), got)


def test_single_class_has_posterior_one():
    x = torch.randn(5, 1)
    assert torch.equal(softmax_log_posterior(x, _focal(2.0)), torch.zeros(5, 1))


# -- log|l'| against autograd of l(q) ----------------------------------------------------------


def _q_grid():
    tail = torch.logspace(-12, math.log10(0.5), 300, dtype=torch.float64)
    return torch.cat([tail, 1.0 - tail.flip(0)[1:]])


def _reference_loss(q, name):
    if name == "ce":
        return -q.log()
    if name.startswith("focal"):
        return -((1.0 - q) ** float(name[5:])) * q.log()
    margin, softness = map(float, name[6:].split(","))
    logit_q = q.log() - torch.log1p(-q)
    lam = torch.sigmoid(softness * (math.log(margin / (1.0 - margin)) - logit_q))
    return -lam * q.log()


@pytest.mark.parametrize("name", list(LOSSES))
def test_log_abs_dloss_matches_autograd(name):
    q = _q_grid().requires_grad_()
    (grad,) = torch.autograd.grad(_reference_loss(q, name).sum(), q)
    q = q.detach()
    assert bool((grad < 0).all())
    got = LOSSES[name](q.log(), torch.log1p(-q)).exp()
    torch.testing.assert_close(got, grad.abs(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_abs_dloss_finite_and_decreasing(name, dtype):
    t = torch.linspace(-80, 80, 4001, dtype=dtype)
    log_q, log_1mq = F.logsigmoid(t), F.logsigmoid(-t)
    value = LOSSES[name](log_q, log_1mq)
    assert bool(torch.isfinite(value).all())
    assert bool((value.diff() <= 0).all())


# -- finiteness, argmax and monotonicity -------------------------------------------------------


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_link_finite_at_huge_logits_and_keeps_argmax(seed, name, dtype):
    x = torch.randn(200, 5, dtype=dtype) * 3
    huge = torch.randint(-1, 2, (200, 5)).to(dtype) * 1e4 + torch.randn(200, 5, dtype=dtype)
    for logits in (x, huge, x * 1e4):
        out = softmax_log_posterior(logits, LOSSES[name])
        assert out.dtype == dtype and out.shape == logits.shape
        assert bool(torch.isfinite(out).all()), name
        assert torch.equal(out.argmax(-1), logits.argmax(-1)), name
        torch.testing.assert_close(out.logsumexp(-1), torch.zeros(200, dtype=dtype))


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_link_finite_and_monotone(name, dtype):
    for x in (torch.linspace(-30, 30, 3001, dtype=dtype), torch.linspace(-1e4, 1e4, 2001)):
        x = x.to(dtype)
        out = sigmoid_log_odds(x, LOSSES[name])
        assert out.dtype == dtype and bool(torch.isfinite(out).all())
        assert bool((out.diff() > 0).all()), name
        assert torch.equal(out.sign(), x.sign())  # symmetric losses keep p = 1/2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs(seed, dtype):
    x = (torch.randn(30, 4) * 5).to(dtype)
    out = focal_posterior(x, gamma=2.0)
    assert out.dtype == dtype and bool(torch.isfinite(out).all())
    assert binary_focal_posterior(x, gamma=2.0, alpha=0.25).dtype == dtype


def test_works_under_inference_mode(seed):
    x = torch.randn(8, 3)
    with torch.inference_mode():
        out = focal_posterior(x, gamma=2.0, alpha=[1.0, 2.0, 3.0])
        prob = binary_focal_posterior(x, gamma=2.0, alpha=[0.2, 0.5, 0.7], pos_weight=2.0)
    assert out.is_inference() and prob.is_inference()
    torch.testing.assert_close(out, focal_posterior(x, gamma=2.0, alpha=[1.0, 2.0, 3.0]))


@pytest.mark.parametrize("name", ["focal0.5", "focal2.0", "margin0.7,2.0"])
def test_gradcheck(seed, name):
    x = (torch.randn(6, 3, dtype=torch.float64) * 2).requires_grad_()
    log_w = torch.tensor([0.1, -0.3, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: softmax_log_posterior(z, LOSSES[name], log_w), x)
    assert torch.autograd.gradcheck(lambda z: sigmoid_log_odds(z, LOSSES[name]), x)


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradient_finite_at_huge_logits(seed, name):
    x = (torch.randint(-1, 2, (50, 4)) * 1e4 + torch.randn(50, 4)).requires_grad_()
    (grad,) = torch.autograd.grad(softmax_log_posterior(x, LOSSES[name])[:, 0].sum(), x)
    assert bool(torch.isfinite(grad).all())
    (grad,) = torch.autograd.grad(sigmoid_log_odds(x, LOSSES[name]).sum(), x)
    assert bool(torch.isfinite(grad).all())


# -- the order of samples within a class -------------------------------------------------------


def _discordant_pair_fraction(a, b):
    """Fraction of sample pairs ordered differently by a and b (per column, averaged)."""
    da = a.unsqueeze(0) - a.unsqueeze(1)
    db = b.unsqueeze(0) - b.unsqueeze(1)
    return float(((da * db) < 0).double().mean() * a.shape[0] / (a.shape[0] - 1))


def test_two_classes_never_reorder_samples_more_classes_can(seed):
    x2 = torch.randn(300, 2, dtype=torch.float64) * 2
    post = softmax_log_posterior(x2, _focal(2.0)).exp()
    assert _discordant_pair_fraction(torch.softmax(x2, 1), post) == 0.0
    x3 = torch.randn(300, 3, dtype=torch.float64) * 2
    post = softmax_log_posterior(x3, _focal(2.0)).exp()
    assert 0.0 < _discordant_pair_fraction(torch.softmax(x3, 1), post) < 0.2
    same = softmax_log_posterior(x3, _focal(0.0)).exp()
    assert _discordant_pair_fraction(torch.softmax(x3, 1), same) == 0.0


# -- invertibility of the soft margin link -----------------------------------------------------


def _naive_is_decreasing(margin, softness):
    t = np.linspace(-30.0, 15.0, 22501)
    value = _naive_abs_dloss(t, "margin", margin=margin, softness=softness)
    return bool((np.diff(np.log(value)) < 0).all())


@pytest.mark.parametrize("margin", [1e-4, 0.05, 0.2, 0.5, 0.8, 0.95, 0.9999])
@pytest.mark.parametrize("softness", [0.0, 0.3, 1.0, 1.5, 2.5, 4.0, 8.0])
def test_soft_margin_invertibility_matches_a_dense_grid(margin, softness):
    # the exact thresholds K*(m) of these margins are 2.08, 2.92, 3.30, 3.32, 2.77, 2.06, 1.13:
    # every softness above is at least 10% away from them
    assert soft_margin_link_is_invertible(margin, softness) == _naive_is_decreasing(
        margin, softness
    )


@pytest.mark.parametrize("margin", np.linspace(0.01, 0.99, 25).tolist())
def test_softness_up_to_one_is_always_invertible(margin):
    for softness in (0.1, 0.5, 0.9, 1.0):
        assert soft_margin_link_is_invertible(margin, softness)
        assert _naive_is_decreasing(margin, softness)


def test_hard_margin_has_no_inverse_link():
    assert not soft_margin_link_is_invertible(0.6, None)
    with pytest.raises(ValueError, match="hard margin loss"):
        soft_margin_log_abs_dloss(torch.zeros(1), torch.zeros(1), margin=0.6, softness=None)


def test_invertibility_threshold_is_monotone_in_softness():
    ks = np.linspace(1.0, 6.0, 51)
    flags = [soft_margin_link_is_invertible(0.5, k) for k in ks]
    first_false = flags.index(False)
    assert all(flags[:first_false]) and not any(flags[first_false:])
    assert 3.2 < ks[first_false] < 3.5


# -- errors -----------------------------------------------------------------------------------


def test_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="gamma must be a finite float >= 0, got -1.0"):
        focal_posterior(x, gamma=-1.0)
    with pytest.raises(ValueError, match="gamma must be a finite float >= 0"):
        focal_log_abs_dloss(x, x, gamma=float("inf"))
    with pytest.raises(ValueError, match=r"alpha must hold positive per-class weights.*0\.0"):
        focal_posterior(x, alpha=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="expected length 3, got length 2"):
        focal_posterior(x, alpha=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"alpha must lie in the open interval \(0, 1\)"):
        binary_focal_posterior(x, alpha=1.0)
    with pytest.raises(ValueError, match="pos_weight must hold positive weights"):
        binary_focal_posterior(x, pos_weight=0.0)
    with pytest.raises(ValueError, match=r"margin must be a float in the open interval \(0, 1\)"):
        soft_margin_link_is_invertible(1.0, 1.0)
    with pytest.raises(ValueError, match="softness must be None or a finite float >= 0"):
        soft_margin_log_abs_dloss(x, x, margin=0.5, softness=-1.0)
    with pytest.raises(TypeError, match="expects a torch tensor of logits, got list"):
        softmax_log_posterior([[0.0, 1.0]], cross_entropy_log_abs_dloss)
    with pytest.raises(TypeError, match="expects floating-point logits, got dtype torch.int64"):
        sigmoid_log_odds(torch.tensor([1, 2]), cross_entropy_log_abs_dloss)
    with pytest.raises(TypeError, match="log_abs_dloss must be a callable"):
        softmax_log_posterior(x, 2.0)
    with pytest.raises(TypeError, match="log_abs_dloss_neg must be a callable"):
        sigmoid_log_odds(x, cross_entropy_log_abs_dloss, "focal")
