"""Invariants of the asymmetric loss and its inverse-link derivatives (_asymmetric.py)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skfocal.losses import (
    asymmetric_neg_log_abs_dloss,
    asymmetric_pos_log_abs_dloss,
    binary_asymmetric_loss_with_logits,
    binary_focal_loss_with_logits,
)

REDUCTIONS = ["mean", "sum", "none"]
GAMMAS = [0.0, 0.25, 1.0, 4.0]
CLIPS = [0.0, 1e-5, 0.05, 0.3]  # 1e-5: the log-space path for a tiny clip


def _value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


class _ReferenceAsymmetricLossOptimized(torch.nn.Module):
    """Alibaba-MIIL/ASL src/loss_functions/losses.py AsymmetricLossOptimized, verbatim.

    (with its default ``disable_torch_grad_focal_loss=False``: the focusing weight is
    differentiated, and global grad mode is left alone)
    """

    def __init__(self, gamma_neg=4, gamma_pos=1, clip=0.05, eps=1e-8):
        super().__init__()
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.eps = eps

    def forward(self, x, y):
        self.targets = y
        self.anti_targets = 1 - y
        self.xs_pos = torch.sigmoid(x)
        self.xs_neg = 1.0 - self.xs_pos
        if self.clip is not None and self.clip > 0:
            self.xs_neg.add_(self.clip).clamp_(max=1)
        self.loss = self.targets * torch.log(self.xs_pos.clamp(min=self.eps))
        self.loss.add_(self.anti_targets * torch.log(self.xs_neg.clamp(min=self.eps)))
        if self.gamma_neg > 0 or self.gamma_pos > 0:
            self.xs_pos = self.xs_pos * self.targets
            self.xs_neg = self.xs_neg * self.anti_targets
            self.asymmetric_w = torch.pow(
                1 - self.xs_pos - self.xs_neg,
                self.gamma_pos * self.targets + self.gamma_neg * self.anti_targets,
            )
            self.loss *= self.asymmetric_w
        return -self.loss.sum()


def _reference_asymmetric_loss(x, y, gamma_neg=4, gamma_pos=1, clip=0.05, eps=1e-8):
    """The same repository's (unoptimised) AsymmetricLoss.forward, verbatim."""
    x_sigmoid = torch.sigmoid(x)
    xs_pos = x_sigmoid
    xs_neg = 1 - x_sigmoid
    if clip is not None and clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    los_pos = y * torch.log(xs_pos.clamp(min=eps))
    los_neg = (1 - y) * torch.log(xs_neg.clamp(min=eps))
    loss = los_pos + los_neg
    if gamma_neg > 0 or gamma_pos > 0:
        pt0 = xs_pos * y
        pt1 = xs_neg * (1 - y)
        pt = pt0 + pt1
        one_sided_gamma = gamma_pos * y + gamma_neg * (1 - y)
        one_sided_w = torch.pow(1 - pt, one_sided_gamma)
        loss *= one_sided_w
    return -loss.sum()


@pytest.mark.parametrize("gamma_pos", GAMMAS)
@pytest.mark.parametrize("gamma_neg", GAMMAS)
@pytest.mark.parametrize("clip", CLIPS)
def test_equals_reference_in_value_and_gradient(seed, gamma_pos, gamma_neg, clip):
    # |x| <= 8 keeps p inside the reference's eps clamp; drop points within 1e-6 of the kink
    x = (torch.rand(32, 6, dtype=torch.float64) * 16 - 8).clamp(-8, 8)
    x = torch.where((torch.sigmoid(x) - clip).abs() < 1e-6, x + 0.01, x)
    y = (torch.rand(32, 6) < 0.4).double()
    ours = _value_and_grad(
        lambda z: binary_asymmetric_loss_with_logits(
            z, y, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction="sum"
        ),
        x,
    )
    reference = _ReferenceAsymmetricLossOptimized(gamma_neg, gamma_pos, clip)
    # the reference's gradient is NaN (0 * inf from pow) exactly on easy negatives p <= m
    # when gamma_neg < 1; the loss is flat there, and ours is 0
    flat = (y == 0) & (torch.sigmoid(x) <= clip)
    for ref_fn in (
        lambda z: reference(z, y),
        lambda z: _reference_asymmetric_loss(z, y, gamma_neg, gamma_pos, clip),
    ):
        ref = _value_and_grad(ref_fn, x)
        torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
        nan = torch.isnan(ref[1])
        assert torch.equal(nan, flat if 0 < gamma_neg < 1 else torch.zeros_like(nan))
        assert bool((ours[1][flat] == 0).all())
        torch.testing.assert_close(ours[1][~nan], ref[1][~nan], rtol=1e-10, atol=1e-12)


def test_reference_defaults_and_mean_reduction(seed):
    x = torch.randn(16, 5, dtype=torch.float64) * 2
    y = (torch.rand(16, 5) < 0.3).double()
    mean = binary_asymmetric_loss_with_logits(x, y)
    torch.testing.assert_close(mean, _ReferenceAsymmetricLossOptimized()(x, y) / x.numel())
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, 3.0, "per-label"])
def test_neutral_setting_equals_bce(seed, reduction, pos_weight):
    x = torch.randn(12, 3, dtype=torch.float64) * 3
    y = (torch.rand(12, 3) < 0.3).double()
    pw = {
        None: None,
        3.0: torch.tensor(3.0, dtype=torch.float64),
        "per-label": torch.tensor([1.0, 5.0, 0.5], dtype=torch.float64),
    }[pos_weight]
    ours = _value_and_grad(
        lambda z: binary_asymmetric_loss_with_logits(
            z, y, gamma_pos=0, gamma_neg=0, clip=0, pos_weight=pw, reduction=reduction
        ),
        x,
    )
    ref = _value_and_grad(
        lambda z: F.binary_cross_entropy_with_logits(z, y, pos_weight=pw, reduction=reduction), x
    )
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25, [0.2, 0.5, 0.9]])
def test_symmetric_gammas_without_clip_equal_focal(seed, gamma, alpha):
    x = torch.randn(12, 3, dtype=torch.float64) * 3
    y = (torch.rand(12, 3) < 0.3).double()
    pw = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    ours = _value_and_grad(
        lambda z: binary_asymmetric_loss_with_logits(
            z, y, gamma_pos=gamma, gamma_neg=gamma, clip=0, alpha=alpha, pos_weight=pw
        ),
        x,
    )
    ref = _value_and_grad(
        lambda z: binary_focal_loss_with_logits(z, y, gamma=gamma, alpha=alpha, pos_weight=pw), x
    )
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


def test_easy_negatives_below_clip_are_discarded(seed):
    clip = 0.2
    x = torch.randn(200, dtype=torch.float64) * 3
    y = torch.zeros(200, dtype=torch.float64)
    loss, grad = _value_and_grad(
        lambda z: binary_asymmetric_loss_with_logits(z, y, clip=clip, reduction="none"), x
    )
    easy = torch.sigmoid(x) <= clip
    assert easy.any() and (~easy).any()
    assert bool((loss[easy] == 0).all()) and bool((grad[easy] == 0).all())
    assert bool((loss[~easy] > 0).all()) and bool((grad[~easy] > 0).all())


def test_soft_labels_mix_linearly(seed):
    x = torch.randn(10, 4, dtype=torch.float64)
    y = torch.rand(10, 4, dtype=torch.float64)
    kwargs = {"gamma_pos": 0.5, "gamma_neg": 3.0, "clip": 0.1, "reduction": "none"}
    pos = binary_asymmetric_loss_with_logits(x, torch.ones_like(x), **kwargs)
    neg = binary_asymmetric_loss_with_logits(x, torch.zeros_like(x), **kwargs)
    torch.testing.assert_close(
        binary_asymmetric_loss_with_logits(x, y, **kwargs), y * pos + (1 - y) * neg
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reductions_and_weights(seed, reduction):
    x = torch.randn(7, 3, dtype=torch.float64)
    y = (torch.rand(7, 3) < 0.5).double()
    alpha = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64)
    pw = torch.tensor([2.0, 1.0, 4.0], dtype=torch.float64)
    per = binary_asymmetric_loss_with_logits(x, y, reduction="none")
    weighted = binary_asymmetric_loss_with_logits(
        x, y, alpha=alpha, pos_weight=pw, reduction="none"
    )
    torch.testing.assert_close(weighted, per * (y * alpha * pw + (1 - y) * (1 - alpha)))
    out = binary_asymmetric_loss_with_logits(x, y, alpha=alpha, pos_weight=pw, reduction=reduction)
    expected = {"none": weighted, "sum": weighted.sum(), "mean": weighted.mean()}[reduction]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("gamma_pos", GAMMAS)
@pytest.mark.parametrize("gamma_neg", GAMMAS)
@pytest.mark.parametrize("clip", CLIPS)
def test_gradcheck(seed, gamma_pos, gamma_neg, clip):
    x = torch.randn(6, 3, dtype=torch.float64) * 2
    x = torch.where((torch.sigmoid(x) - clip).abs() < 1e-3, x + 0.1, x).requires_grad_()
    y = (torch.rand(6, 3) < 0.4).double()
    assert torch.autograd.gradcheck(
        lambda z: binary_asymmetric_loss_with_logits(
            z,
            y,
            gamma_pos=gamma_pos,
            gamma_neg=gamma_neg,
            clip=clip,
            alpha=[0.3, 0.6, 0.5],
            pos_weight=torch.tensor(2.0),
        ),
        (x,),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gammas", [(0.0, 0.0), (0.25, 0.5), (1.0, 4.0), (20.0, 50.0)])
@pytest.mark.parametrize("clip", [0.0, 1e-5, 0.05, 0.999])
def test_finite_at_extreme_logits_and_hyperparameters(seed, dtype, gammas, clip):
    x = (torch.randn(256, 4, dtype=dtype) * 1e4).requires_grad_()
    y = (torch.rand(256, 4) < 0.5).to(dtype)
    y[:64] = (x[:64].detach() > 0).to(dtype)  # confident and right
    loss = binary_asymmetric_loss_with_logits(
        x, y, gamma_pos=gammas[0], gamma_neg=gammas[1], clip=clip, alpha=0.3
    )
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(x.grad).all())


def test_closed_form_is_finite_where_textbook_gradient_is_nan():
    """gamma < 1 at p = 1 (positives) or p = m (negatives): pow's derivative is 0 * inf."""
    x = torch.tensor([40.0, math.log(0.05 / 0.95)], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    _reference_asymmetric_loss(x, y, gamma_neg=0.5, gamma_pos=0.5, clip=0.05).backward()
    assert torch.isnan(x.grad).any()
    x.grad = None
    binary_asymmetric_loss_with_logits(x, y, gamma_pos=0.5, gamma_neg=0.5, clip=0.05).backward()
    assert bool(torch.isfinite(x.grad).all())


@pytest.mark.parametrize("clip", [1e-8, 1e-5, 1e-3, 0.05])
@pytest.mark.parametrize("gamma_neg", [0.0, 4.0])
def test_confident_wrong_negatives_are_accurate(clip, gamma_neg):
    """-s^g log((1 - p) + m) for p -> 1, where the linear-space 1 - p_m loses digits."""
    x = torch.tensor([5.0, 20.0, 40.0, 1e4], dtype=torch.float64)
    ours = binary_asymmetric_loss_with_logits(
        x, torch.zeros_like(x), gamma_pos=0.0, gamma_neg=gamma_neg, clip=clip, reduction="none"
    )
    log_1mp = F.logsigmoid(-x)
    log_1ms = torch.logaddexp(log_1mp, torch.tensor(math.log(clip), dtype=torch.float64))
    expected = -((torch.sigmoid(x) - clip) ** gamma_neg) * log_1ms
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=0)


def test_half_precision_forward_is_finite(seed):
    x = (torch.randn(64, 3) * 1e3).to(torch.bfloat16)
    out = binary_asymmetric_loss_with_logits(x, (x > 0).to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out)


# ---------------------------------------------------------------- inverse link: log |l'(q)|


def _log_pairs(lowest=1e-12, n=60):
    """(q, log q, log(1 - q)) with both logs describing the very float64 q (see test_poly)."""
    small = np.logspace(math.log10(lowest), math.log10(0.5), n)
    q = np.concatenate([small, 1 - np.logspace(math.log10(0.5), math.log10(lowest), n)[1:]])
    u = 1 - q
    log_q = np.where(q < 0.5, np.log(q), np.log1p(-u))
    log_1mq = np.where(q < 0.5, np.log1p(-q), np.log(u))
    return q, torch.tensor(log_q), torch.tensor(log_1mq)


@pytest.mark.parametrize("gamma_pos", GAMMAS + [10.0])
def test_pos_log_abs_dloss_equals_autograd_and_decreases(gamma_pos):
    q_np, log_q, log_1mq = _log_pairs()
    q = torch.tensor(q_np, requires_grad=True)
    (dl,) = torch.autograd.grad((-((1 - q) ** gamma_pos) * torch.log(q)).sum(), q)
    ours = asymmetric_pos_log_abs_dloss(log_q, log_1mq, gamma_pos=gamma_pos)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours.exp(), dl.abs(), rtol=1e-9, atol=0)
    assert bool((ours.diff() < 0).all())


@pytest.mark.parametrize("gamma_neg", GAMMAS + [10.0])
@pytest.mark.parametrize("clip", CLIPS)
def test_neg_log_abs_dloss_equals_autograd_and_decreases(gamma_neg, clip):
    """l_-(q) = -s^g log(1 - s), s = max(1 - q - m, 0): autograd of the reference's form."""
    q_np, log_q, log_1mq = _log_pairs()
    q = torch.tensor(q_np, requires_grad=True)
    xs_neg = (q + clip).clamp(max=1)  # the reference's clipped 1 - p
    loss = -((1 - xs_neg) ** gamma_neg) * torch.log(xs_neg)
    (dl,) = torch.autograd.grad(loss.sum(), q)
    ours = asymmetric_neg_log_abs_dloss(log_q, log_1mq, gamma_neg=gamma_neg, clip=clip)
    s = 1 - q_np - clip
    flat = s <= 0
    assert bool(torch.isneginf(ours[torch.tensor(flat)]).all())
    assert bool(torch.isfinite(ours[torch.tensor(~flat)]).all())
    # s = 1 - q - m itself is only known to ~1e-16 absolute: compare where s is resolved
    resolved = torch.tensor(s > 1e-6)
    torch.testing.assert_close(ours[resolved].exp(), dl.abs()[resolved], rtol=1e-8, atol=0)
    active = ours[torch.tensor(~flat)]
    assert bool((active.diff() < 0).all())  # strictly decreasing on (0, 1 - m)
    # towards the kink q -> 1 - m: |l'| ~ (1 + gamma) s^gamma, -> 0 for gamma > 0 (1 at 0)
    s_near = np.logspace(-6, -3, 7)
    q_near = torch.tensor(1 - clip - s_near, dtype=torch.float64)
    near = asymmetric_neg_log_abs_dloss(
        torch.log(q_near), torch.log1p(-q_near), gamma_neg=gamma_neg, clip=clip
    )
    s_near = torch.tensor(1 - clip, dtype=torch.float64) - q_near
    asymptote = math.log1p(gamma_neg) + gamma_neg * torch.log(s_near)
    torch.testing.assert_close(near, asymptote, rtol=0, atol=1e-2)


@pytest.mark.parametrize(("gamma_pos", "gamma_neg", "clip"), [(1, 4, 0.05), (0, 2, 0.2), (2, 1, 0)])
@pytest.mark.parametrize("eta", [0.02, 0.3, 0.7, 0.97])
def test_inverse_link_recovers_eta_at_the_risk_minimiser(gamma_pos, gamma_neg, clip, eta):
    """The Notes' formula: eta = a-|l-'(1-p*)| / (a+|l+'(p*)| + a-|l-'(1-p*)|), p* > m."""
    kwargs = {"gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip, "alpha": 0.3}
    one, zero = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    low, high = torch.tensor(-40.0, dtype=torch.float64), torch.tensor(40.0, dtype=torch.float64)
    for _ in range(200):  # bisection on the sign of d risk / d logit
        mid = ((low + high) / 2).requires_grad_()
        risk = eta * binary_asymmetric_loss_with_logits(mid, one, **kwargs) + (
            1 - eta
        ) * binary_asymmetric_loss_with_logits(mid, zero, **kwargs)
        (grad,) = torch.autograd.grad(risk, mid)
        low, high = (mid.detach(), high) if grad < 0 else (low, mid.detach())
    x = (low + high) / 2

    def link(log_p, log_1mp):
        pos = math.log(0.3) + asymmetric_pos_log_abs_dloss(log_p, log_1mp, gamma_pos=gamma_pos)
        neg = math.log(0.7) + asymmetric_neg_log_abs_dloss(
            log_1mp, log_p, gamma_neg=gamma_neg, clip=clip
        )
        return float(torch.sigmoid(neg - pos))

    assert float(torch.sigmoid(x)) > clip
    zero_ = torch.tensor(0.0, dtype=torch.float64)
    eta_max = link(zero_, torch.tensor(-80.0, dtype=torch.float64))  # at p -> 1
    if gamma_pos == 0 and clip > 0 and eta > eta_max:
        # the Notes' exception: gamma_pos = 0 < m leaves eta > eta_max unreachable,
        # the minimiser runs off to p = 1 (here: the bisection's upper end)
        assert eta_max < 0.95 and float(x) > 39.0
        return
    torch.testing.assert_close(link(F.logsigmoid(x), F.logsigmoid(-x)), eta, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: binary_asymmetric_loss_with_logits(torch.randn(4), torch.ones(4), gamma_pos=-1),
            ValueError,
            r"gamma_pos must be a finite float >= 0, got -1.0",
        ),
        (
            lambda: binary_asymmetric_loss_with_logits(
                torch.randn(4), torch.ones(4), gamma_neg=float("inf")
            ),
            ValueError,
            r"gamma_neg must be a finite float >= 0, got inf",
        ),
        (
            lambda: binary_asymmetric_loss_with_logits(
                torch.randn(4), torch.ones(4), gamma_neg="4"
            ),
            TypeError,
            r"gamma_neg must be a real number \(a finite float >= 0\), got '4'",
        ),
        (
            lambda: binary_asymmetric_loss_with_logits(torch.randn(4), torch.ones(4), clip=1.0),
            ValueError,
            r"clip must be a float in \[0, 1\), got 1.0",
        ),
        (
            lambda: binary_asymmetric_loss_with_logits(torch.randn(4), torch.ones(4), clip=-0.05),
            ValueError,
            r"clip must be a float in \[0, 1\), got -0.05",
        ),
        (
            lambda: binary_asymmetric_loss_with_logits(torch.randn(4), torch.ones(4), clip=None),
            TypeError,
            r"clip must be a real number \(a float in \[0, 1\)\), got None",
        ),
        (
            lambda: binary_asymmetric_loss_with_logits(torch.randn(4), torch.ones(4), alpha=1.5),
            ValueError,
            r"alpha must be None, a float in \[0, 1\]",
        ),
        (
            lambda: binary_asymmetric_loss_with_logits(
                torch.randn(4, 2), torch.ones(4, 2), reduction="mean "
            ),
            ValueError,
            r"reduction must be one of",
        ),
        (
            lambda: asymmetric_neg_log_abs_dloss(-1.0, -0.5, clip=2.0),
            ValueError,
            r"clip must be a float in \[0, 1\), got 2.0",
        ),
        (
            lambda: asymmetric_pos_log_abs_dloss(-1.0, -0.5, gamma_pos=-2.0),
            ValueError,
            r"gamma_pos must be a finite float >= 0, got -2.0",
        ),
    ],
)
def test_bad_arguments_fail_fast(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
