"""Invariants of the margin (truncated cross-entropy) losses (skfocal/losses/_margin.py)."""

import math

import pytest
import torch
import torch.nn.functional as F

from skfocal.losses import (
    binary_focal_loss_with_logits,
    binary_margin_loss_with_logits,
    focal_loss,
    margin_loss,
)

REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_half_margin_unit_softness_is_focal_gamma_one(seed, reduction):
    x = torch.randn(40, 2, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 2, (40,))
    alpha = torch.tensor([0.3, 1.2], dtype=torch.float64)
    a = margin_loss(x, t, margin=0.5, softness=1.0, alpha=alpha, reduction=reduction)
    b = focal_loss(x, t, gamma=1.0, alpha=alpha, reduction=reduction)
    torch.testing.assert_close(a, b)
    (ga,) = torch.autograd.grad(a.sum(), x)
    (gb,) = torch.autograd.grad(b.sum(), x)
    torch.testing.assert_close(ga, gb)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_soft_half_margin_is_binary_focal_gamma_one(seed, reduction):
    x = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    y = (torch.rand(40, 3) < 0.3).double()
    a = binary_margin_loss_with_logits(
        x, y, margin=0.5, softness=1.0, alpha=0.3, reduction=reduction
    )
    b = binary_focal_loss_with_logits(x, y, gamma=1.0, alpha=0.3, reduction=reduction)
    torch.testing.assert_close(a, b)
    (ga,) = torch.autograd.grad(a.sum(), x)
    (gb,) = torch.autograd.grad(b.sum(), x)
    torch.testing.assert_close(ga, gb)


@pytest.mark.parametrize("margin", [0.2, 0.6, 0.9])
def test_hard_margin_is_cross_entropy_on_unconfident_samples(seed, margin):
    x = torch.randn(80, 4, dtype=torch.float64, requires_grad=True) * 2
    x = x.detach().requires_grad_()
    t = torch.randint(0, 4, (80,))
    loss = margin_loss(x, t, margin=margin, reduction="none")
    ce = F.cross_entropy(x, t, reduction="none")
    p_t = torch.exp(-ce)
    keep = p_t <= margin
    torch.testing.assert_close(loss, torch.where(keep, ce, torch.zeros_like(ce)))
    (grad,) = torch.autograd.grad(loss.sum(), x)
    (ce_grad,) = torch.autograd.grad((ce * keep).sum(), x)
    torch.testing.assert_close(grad, ce_grad)


def test_large_softness_approaches_hard_margin(seed):
    x = torch.randn(200, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (200,))
    hard = margin_loss(x, t, margin=0.6, reduction="none")
    soft = margin_loss(x, t, margin=0.6, softness=1e4, reduction="none")
    p_t = F.softmax(x, 1).gather(1, t[:, None]).squeeze(1)
    away = (p_t - 0.6).abs() > 1e-2  # the gate is steep but continuous at p_t = m
    torch.testing.assert_close(soft[away], hard[away])


def test_soft_gate_is_between_zero_and_one(seed):
    x = torch.randn(300, 5) * 3
    t = torch.randint(0, 5, (300,))
    ce = F.cross_entropy(x, t, reduction="none")
    loss = margin_loss(x, t, margin=0.4, softness=2.0, reduction="none")
    assert bool((loss >= 0).all()) and bool((loss <= ce + 1e-6).all())


@pytest.mark.parametrize("softness", [None, 0.0, 0.5, 1.0, 4.0])
def test_gradcheck(seed, softness):
    x = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (10,))
    if softness is None:  # keep samples away from the step, where gradcheck is undefined
        p_t = F.softmax(x, 1).gather(1, t[:, None]).squeeze(1).detach()
        t = torch.where((p_t - 0.6).abs() < 1e-3, torch.full_like(t, -100), t)
    assert torch.autograd.gradcheck(
        lambda z: margin_loss(z, t, margin=0.6, softness=softness, alpha=[0.5, 1.0, 2.0]), (x,)
    )
    xb = torch.randn(12, dtype=torch.float64, requires_grad=True)
    yb = (torch.rand(12) < 0.5).double()
    assert torch.autograd.gradcheck(
        lambda z: binary_margin_loss_with_logits(
            z, yb, margin=0.3, softness=softness, pos_weight=torch.tensor(2.0)
        ),
        (xb,),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("softness", [None, 0.3, 1.0, 10.0])
def test_finite_at_extreme_logits(seed, dtype, softness):
    x = (torch.randn(128, 4, dtype=dtype) * 1e4).requires_grad_()
    t = torch.randint(0, 4, (128,))
    t[:32] = x[:32].argmax(1)
    loss = margin_loss(x, t, softness=softness)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(x.grad).all())
    xb = (torch.randn(128, dtype=dtype) * 1e4).requires_grad_()
    loss = binary_margin_loss_with_logits(xb, (xb.detach() > 0).to(dtype), softness=softness)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(xb.grad).all())


def test_bfloat16_forward_is_finite(seed):
    x = (torch.randn(64, 3) * 1e3).to(torch.bfloat16)
    t = torch.randint(0, 3, (64,))
    assert torch.isfinite(margin_loss(x, t, softness=2.0))
    xb = (torch.randn(64) * 1e3).to(torch.bfloat16)
    assert torch.isfinite(binary_margin_loss_with_logits(xb, (xb > 0).float(), softness=2.0))


def test_gate_uses_logit_of_margin(seed):
    """At p_t == m the soft gate is exactly one half, whatever the softness."""
    m = 0.7
    logit = math.log(m / (1 - m))
    x = torch.tensor([[logit, 0.0]], dtype=torch.float64)
    t = torch.tensor([0])
    ce = F.cross_entropy(x, t)
    for softness in (0.5, 3.0, 50.0):
        torch.testing.assert_close(margin_loss(x, t, margin=m, softness=softness), ce / 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("softness", [0.0, 1e-300, 1e-30])
def test_vanishing_softness_is_finite_at_certain_samples(dtype, softness):
    # p_t rounds to exactly 1, so logit(p_t) is +inf; a softness that is 0 in the logits' dtype
    # used to give 0 * inf = NaN. The gate must tend to sigmoid(0) = 1/2 instead.
    x = torch.tensor([[-2178.8, 568.4], [1.0, 0.0]], dtype=dtype, requires_grad=True)
    t = torch.tensor([1, 1])
    loss = margin_loss(x, t, margin=0.5, softness=softness, reduction="none")
    ce = F.cross_entropy(x, t, reduction="none")
    torch.testing.assert_close(loss, 0.5 * ce, rtol=1e-4, atol=1e-6)
    loss.sum().backward()
    assert bool(torch.isfinite(x.grad).all())
    xb = torch.tensor([1e4, -1e4, 0.5], dtype=dtype, requires_grad=True)
    yb = torch.tensor([1.0, 0.0, 1.0], dtype=dtype)
    lb = binary_margin_loss_with_logits(xb, yb, margin=0.5, softness=softness, reduction="none")
    assert bool(torch.isfinite(lb).all())
    lb.sum().backward()
    assert bool(torch.isfinite(xb.grad).all())
