"""Invariants of the poly-1 losses and their inverse-link derivative (skfocal/losses/_poly.py)."""

import math

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skfocal.losses import (
    binary_focal_loss_with_logits,
    binary_poly1_loss_with_logits,
    focal_loss,
    poly1_log_abs_dloss,
    poly1_loss,
)

REDUCTIONS = ["mean", "sum", "none"]
EPSILONS = [-1.0, -0.5, 0.0, 1.0, 2.0]
GAMMAS = [0.0, 0.25, 1.0, 2.0, 3.7]


def _value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _reference_poly1_ce(logits, labels, epsilon):
    """Leng et al. (2022), Poly-1 cross-entropy (their code, in torch, without smoothing)."""
    labels_onehot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    pt = torch.sum(labels_onehot * F.softmax(logits, dim=-1), dim=-1)
    ce = F.cross_entropy(logits, labels, reduction="none")
    return ce + epsilon * (1 - pt)


def _reference_poly1_focal_softmax(logits, labels, epsilon, gamma):
    """FL + epsilon (1 - p_t)^(gamma + 1) with the textbook softmax focal loss."""
    pt = F.softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)
    ce = F.cross_entropy(logits, labels, reduction="none")
    return ce * (1 - pt) ** gamma + epsilon * (1 - pt) ** (gamma + 1)


def _reference_poly1_focal_sigmoid(logits, labels, epsilon, gamma):
    """Leng et al. (2022), Poly-1 focal loss (their sigmoid code, in torch, alpha < 0)."""
    p = torch.sigmoid(logits)
    ce_loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    pt = labels * p + (1 - labels) * (1 - p)
    FL = ce_loss * torch.pow(1 - pt, gamma)  # noqa: N806 (the reference's name)
    return FL + epsilon * torch.pow(1 - pt, gamma + 1)


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_ce_form_equals_reference(seed, epsilon):
    x = torch.randn(64, 5, dtype=torch.float64) * 2
    t = torch.randint(0, 5, (64,))
    ours = _value_and_grad(lambda z: poly1_loss(z, t, epsilon=epsilon, reduction="none"), x)
    ref = _value_and_grad(lambda z: _reference_poly1_ce(z, t, epsilon), x)
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours[1], ref[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_focal_forms_equal_reference(seed, epsilon, gamma):
    x = torch.randn(64, 5, dtype=torch.float64) * 2
    t = torch.randint(0, 5, (64,))
    ours = _value_and_grad(
        lambda z: poly1_loss(z, t, epsilon=epsilon, gamma=gamma, reduction="none"), x
    )
    ref = _value_and_grad(lambda z: _reference_poly1_focal_softmax(z, t, epsilon, gamma), x)
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours[1], ref[1], rtol=1e-10, atol=1e-12)
    xb = torch.randn(16, 4, dtype=torch.float64) * 2
    yb = (torch.rand(16, 4) < 0.3).double()
    ours = _value_and_grad(
        lambda z: binary_poly1_loss_with_logits(
            z, yb, epsilon=epsilon, gamma=gamma, reduction="none"
        ),
        xb,
    )
    ref = _value_and_grad(lambda z: _reference_poly1_focal_sigmoid(z, yb, epsilon, gamma), xb)
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours[1], ref[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_alpha", [False, True])
@pytest.mark.parametrize("shape", [(37, 4), (5, 3, 6)])
def test_epsilon_zero_equals_cross_entropy(seed, reduction, with_alpha, shape):
    x = torch.randn(*shape, dtype=torch.float64) * 3
    t = torch.randint(0, shape[1], (shape[0],) + shape[2:])
    t.view(-1)[::7] = -100
    alpha = torch.rand(shape[1], dtype=torch.float64) + 0.1 if with_alpha else None
    ours = _value_and_grad(
        lambda z: poly1_loss(z, t, epsilon=0.0, alpha=alpha, reduction=reduction), x
    )
    ref = _value_and_grad(lambda z: F.cross_entropy(z, t, weight=alpha, reduction=reduction), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_binary_epsilon_zero_equals_bce(seed, reduction, pos_weight):
    z = torch.randn(10, 3, dtype=torch.float64) * 3
    y = (torch.rand(10, 3) < 0.3).double()
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    ours = _value_and_grad(
        lambda v: binary_poly1_loss_with_logits(
            v, y, epsilon=0.0, pos_weight=pw, reduction=reduction
        ),
        z,
    )
    ref = _value_and_grad(
        lambda v: F.binary_cross_entropy_with_logits(v, y, pos_weight=pw, reduction=reduction), z
    )
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_epsilon_zero_equals_focal(seed, gamma):
    x = torch.randn(30, 4, dtype=torch.float64)
    t = torch.randint(0, 4, (30,))
    alpha = [0.1, 0.2, 0.3, 0.4]
    ours = _value_and_grad(lambda z: poly1_loss(z, t, epsilon=0.0, gamma=gamma, alpha=alpha), x)
    ref = _value_and_grad(lambda z: focal_loss(z, t, gamma=gamma, alpha=alpha), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])
    y = (torch.rand(30, 4) < 0.4).double()
    ours = _value_and_grad(
        lambda z: binary_poly1_loss_with_logits(z, y, epsilon=0.0, gamma=gamma, alpha=0.3), x
    )
    ref = _value_and_grad(lambda z: binary_focal_loss_with_logits(z, y, gamma=gamma, alpha=0.3), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_alpha_scales_each_sample_and_mean_divides_by_alpha_t(seed, reduction):
    x = torch.randn(30, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (30,))
    t[::5] = -100
    alpha = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    kwargs = {"epsilon": 1.5, "gamma": 1.0}
    plain = poly1_loss(x, t, reduction="none", **kwargs)
    weighted = poly1_loss(x, t, alpha=alpha, reduction="none", **kwargs)
    keep = t != -100
    torch.testing.assert_close(weighted[keep], plain[keep] * alpha[t[keep]])
    assert bool((weighted[~keep] == 0).all())
    out = poly1_loss(x, t, alpha=alpha, reduction=reduction, **kwargs)
    expected = {
        "none": weighted,
        "sum": weighted.sum(),
        "mean": weighted.sum() / alpha[t[keep]].sum(),
    }[reduction]
    torch.testing.assert_close(out, expected)


def test_unbatched_input(seed):
    x = torch.randn(4, dtype=torch.float64)
    t = torch.tensor(2)
    for reduction in REDUCTIONS:
        ours = poly1_loss(x, t, reduction=reduction)
        batched = poly1_loss(x[None], t[None], reduction=reduction)
        assert ours.shape == F.cross_entropy(x, t, reduction=reduction).shape
        torch.testing.assert_close(ours, batched.reshape(ours.shape))


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_gradcheck(seed, epsilon, gamma):
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (8,))
    t[0] = -100
    alpha = torch.rand(3, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda z: poly1_loss(z, t, epsilon=epsilon, gamma=gamma, alpha=alpha), (x,)
    )
    xb = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    yb = (torch.rand(6, 2) < 0.4).double()
    assert torch.autograd.gradcheck(
        lambda z: binary_poly1_loss_with_logits(
            z, yb, epsilon=epsilon, gamma=gamma, alpha=[0.3, 0.6], pos_weight=torch.tensor(2.0)
        ),
        (xb,),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("epsilon", [-1.0, 0.5, 1e4])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 3.7, 50.0])
def test_finite_at_extreme_logits_and_hyperparameters(seed, dtype, epsilon, gamma):
    x = (torch.randn(128, 5, dtype=dtype) * 1e4).requires_grad_()
    t = torch.randint(0, 5, (128,))
    t[:32] = x[:32].argmax(dim=1)
    loss = poly1_loss(x, t, epsilon=epsilon, gamma=gamma)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(x.grad).all())
    xb = (torch.randn(128, dtype=dtype) * 1e4).requires_grad_()
    yb = (xb.detach() > 0).to(dtype)
    yb[:32] = 1 - yb[:32]
    loss = binary_poly1_loss_with_logits(xb, yb, epsilon=epsilon, gamma=gamma, alpha=0.25)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(xb.grad).all())


def test_textbook_focal_form_is_nan_where_ours_is_finite():
    x = torch.tensor([[50.0, 0.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0])
    _reference_poly1_focal_softmax(x, t, 1.0, 0.5).sum().backward()
    assert torch.isnan(x.grad).any()
    x.grad = None
    poly1_loss(x, t, epsilon=1.0, gamma=0.5).backward()
    assert bool(torch.isfinite(x.grad).all())


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_loss_decreases_in_p_t_for_epsilon_at_least_minus_one(seed, epsilon, gamma):
    """Raising the true logit never raises the loss (d loss / d z_t <= 0)."""
    x = torch.randn(256, 3, dtype=torch.float64) * 6
    t = torch.randint(0, 3, (256,))
    _, grad = _value_and_grad(
        lambda z: poly1_loss(z, t, epsilon=epsilon, gamma=gamma, reduction="sum"), x
    )
    assert bool((grad.gather(1, t[:, None]) <= 0).all())


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_epsilon_below_minus_one_would_reward_lower_confidence(gamma):
    """Why epsilon < -1 is an error: the textbook formula then increases with p_t near 1."""
    q = torch.tensor([0.99, 0.999], dtype=torch.float64)
    loss = -((1 - q) ** gamma) * torch.log(q) - 1.2 * (1 - q) ** (gamma + 1)
    assert bool(loss[1] > loss[0])
    with pytest.raises(ValueError, match=r"epsilon must be a finite float >= -1, got -1.2"):
        poly1_loss(torch.zeros(1, 2), torch.tensor([0]), epsilon=-1.2, gamma=gamma)


# ---------------------------------------------------------------- inverse link: log |l'(q)|


def _log_pairs(lowest=1e-12, n=60):
    """(q, log q, log(1 - q), exact q) over [lowest, 1 - lowest], accurate at both ends.

    Above 1/2, ``u = 1 - q`` is exact in float64 (Sterbenz), so ``log(1 - q) = log(u)`` and
    ``log q = log1p(-u)`` describe the very float64 ``q`` that autograd sees.
    """
    small = np.logspace(math.log10(lowest), math.log10(0.5), n)
    q = np.concatenate([small, 1 - np.logspace(math.log10(0.5), math.log10(lowest), n)[1:]])
    u = 1 - q
    log_q = np.where(q < 0.5, np.log(q), np.log1p(-u))
    log_1mq = np.where(q < 0.5, np.log1p(-q), np.log(u))
    q_exact = [mpmath.mpf(float(v)) for v in q]
    return q, torch.tensor(log_q), torch.tensor(log_1mq), q_exact


def _poly_textbook(q, epsilon, gamma):
    return -((1 - q) ** gamma) * torch.log(q) + epsilon * (1 - q) ** (gamma + 1)


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_log_abs_dloss_equals_autograd(epsilon, gamma):
    q_np, log_q, log_1mq, _ = _log_pairs()
    q = torch.tensor(q_np, requires_grad=True)
    (dl,) = torch.autograd.grad(_poly_textbook(q, epsilon, gamma).sum(), q)
    ours = poly1_log_abs_dloss(log_q, log_1mq, epsilon=epsilon, gamma=gamma)
    assert ours.dtype == torch.float64 and bool(torch.isfinite(ours).all())
    # autograd of the textbook formula cancels catastrophically near q = 1 when epsilon < 0
    # (relative error ~ 1e-16 / (1 - q)); compare there only where it is accurate
    trusted = (1 - q_np) >= (1e-6 if epsilon < 0 else 0)
    torch.testing.assert_close(
        ours.exp()[trusted], dl.abs()[trusted], rtol=1e-9 if epsilon >= 0 else 1e-8, atol=0
    )


@pytest.mark.parametrize("epsilon", [-1.0, 0.0, 2.0])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 2.0])
def test_log_abs_dloss_is_accurate_to_high_precision(epsilon, gamma):
    """Against 40-digit numerical differentiation over the whole range, both ends included."""
    _, log_q, log_1mq, q_exact = _log_pairs()

    def loss(q):
        return -((1 - q) ** gamma) * mpmath.log(q) + epsilon * (1 - q) ** (gamma + 1)

    with mpmath.workdps(40):
        expected = [float(mpmath.log(abs(mpmath.diff(loss, q)))) for q in q_exact]
    expected = torch.tensor(expected, dtype=torch.float64)
    ours = poly1_log_abs_dloss(log_q, log_1mq, epsilon=epsilon, gamma=gamma)
    torch.testing.assert_close(ours, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("gamma", GAMMAS + [10.0])
def test_abs_dloss_strictly_decreasing(epsilon, gamma):
    _, log_q, log_1mq, _ = _log_pairs(n=200)
    values = poly1_log_abs_dloss(log_q, log_1mq, epsilon=epsilon, gamma=gamma)
    assert bool((values.diff() < 0).all())


def test_log_abs_dloss_far_beyond_float_range():
    """Finite from log-space arguments whose q underflows (q = e^-1e4 or 1 - e^-1e4)."""
    log_tiny = torch.tensor(-1e4, dtype=torch.float64)
    for log_q, log_1mq in (
        (log_tiny, torch.log(-torch.expm1(log_tiny))),
        (torch.tensor(0.0).double(), log_tiny),
    ):
        for epsilon, gamma in ((-1.0, 0.0), (1.0, 2.0), (-1.0, 0.25)):
            out = poly1_log_abs_dloss(log_q, log_1mq, epsilon=epsilon, gamma=gamma)
            assert bool(torch.isfinite(out))
    # q -> 0: |l'| ~ 1 / q;  epsilon = -1, gamma = 0: |l'| = 1 / q - 1 = (1 - q) / q
    out = poly1_log_abs_dloss(log_tiny, 0.0, epsilon=1.0, gamma=0.0)
    torch.testing.assert_close(out, torch.tensor(1e4, dtype=torch.float64))
    out = poly1_log_abs_dloss(0.0, log_tiny, epsilon=-1.0, gamma=0.0)
    torch.testing.assert_close(out, torch.tensor(-1e4, dtype=torch.float64))


@pytest.mark.parametrize("epsilon", [-1.0, 1.0])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("eta", [0.1, 0.4, 0.85])
def test_inverse_link_recovers_eta_at_binary_risk_minimiser(epsilon, gamma, eta):
    """eta = |l'(1-p)| / (|l'(p)| + |l'(1-p)|) at argmin_p of eta l(p) + (1 - eta) l(1 - p)."""
    low, high = torch.tensor(-40.0, dtype=torch.float64), torch.tensor(40.0, dtype=torch.float64)
    one, zero = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    for _ in range(200):  # bisection on the sign of d risk / d logit
        mid = ((low + high) / 2).requires_grad_()
        risk = eta * binary_poly1_loss_with_logits(mid, one, epsilon=epsilon, gamma=gamma) + (
            1 - eta
        ) * binary_poly1_loss_with_logits(mid, zero, epsilon=epsilon, gamma=gamma)
        (grad,) = torch.autograd.grad(risk, mid)
        low, high = (mid.detach(), high) if grad < 0 else (low, mid.detach())
    x = (low + high) / 2
    log_p, log_1mp = F.logsigmoid(x), F.logsigmoid(-x)
    pos = poly1_log_abs_dloss(log_p, log_1mp, epsilon=epsilon, gamma=gamma)
    neg = poly1_log_abs_dloss(log_1mp, log_p, epsilon=epsilon, gamma=gamma)
    torch.testing.assert_close(float(torch.sigmoid(neg - pos)), eta, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: poly1_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), epsilon=-1.5),
            ValueError,
            r"epsilon must be a finite float >= -1, got -1.5",
        ),
        (
            lambda: poly1_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), epsilon=float("inf")),
            ValueError,
            r"epsilon must be a finite float >= -1, got inf",
        ),
        (
            lambda: poly1_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), epsilon=float("nan")),
            ValueError,
            r"epsilon must be a finite float >= -1, got nan",
        ),
        (
            lambda: poly1_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), epsilon="1"),
            TypeError,
            r"epsilon must be a real number \(a finite float >= -1\), got '1'",
        ),
        (
            lambda: poly1_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), gamma=-0.5),
            ValueError,
            r"gamma must be a finite float >= 0, got -0.5",
        ),
        (
            lambda: binary_poly1_loss_with_logits(torch.randn(4), torch.ones(4), epsilon=-2),
            ValueError,
            r"epsilon must be a finite float >= -1, got -2",
        ),
        (
            lambda: binary_poly1_loss_with_logits(torch.randn(4), torch.ones(3)),
            ValueError,
            r"input and target must have the same shape",
        ),
        (
            lambda: poly1_log_abs_dloss(-1.0, -0.5, epsilon=-3.0),
            ValueError,
            r"epsilon must be a finite float >= -1, got -3.0",
        ),
        (
            lambda: poly1_log_abs_dloss(-1.0, -0.5, gamma=float("inf")),
            ValueError,
            r"gamma must be a finite float >= 0, got inf",
        ),
    ],
)
def test_bad_arguments_fail_fast(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
