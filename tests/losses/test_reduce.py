"""Weighting, ignoring and reductions (skfocal/losses/_reduce.py).

Covers the two evaluation paths: the fused one (only the logits need a gradient) and the
differentiable one (the target, ``alpha`` or ``pos_weight`` needs a gradient too), which must
both give exact gradients.
"""

import pytest
import torch
import torch.nn.functional as F

from skfocal.losses import (
    binary_focal_loss_with_logits,
    binary_margin_loss_with_logits,
    focal_loss,
    margin_loss,
)

GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.7]
MULTICLASS = [
    ("focal gamma=2", lambda x, t, **kw: focal_loss(x, t, gamma=2.0, **kw)),
    ("focal gamma=0.5", lambda x, t, **kw: focal_loss(x, t, gamma=0.5, **kw)),
    ("focal gamma=0", lambda x, t, **kw: focal_loss(x, t, gamma=0.0, **kw)),
    ("margin hard", lambda x, t, **kw: margin_loss(x, t, **kw)),
    ("margin soft", lambda x, t, **kw: margin_loss(x, t, softness=3.0, **kw)),
]


# ------------------------------------------------------------ every target ignored (issue #5)


@pytest.mark.parametrize(("name", "loss_fn"), MULTICLASS)
@pytest.mark.parametrize("alpha", [None, [0.5, 1.0, 2.0]])
def test_all_ignored_batch_matches_cross_entropy_with_zero_gradient(seed, name, loss_fn, alpha):
    """torch returns a NaN mean and zero gradients when every target is ignored; so do we."""
    x = torch.randn(5, 3, requires_grad=True)
    t = torch.full((5,), -100)
    weight = None if alpha is None else torch.tensor(alpha)
    for reduction in ("mean", "sum", "none"):
        ref = F.cross_entropy(x, t, weight=weight, reduction=reduction)
        ours = loss_fn(x, t, alpha=alpha, reduction=reduction)
        torch.testing.assert_close(ours, ref, equal_nan=True)
        (grad,) = torch.autograd.grad(ours.sum(), x)
        assert torch.equal(grad, torch.zeros_like(x))
    assert torch.isnan(loss_fn(x, t, alpha=alpha))


@pytest.mark.parametrize(("name", "loss_fn"), MULTICLASS[:2] + MULTICLASS[3:])
def test_zero_total_weight_gives_nan_mean_but_finite_gradient(seed, name, loss_fn):
    """Targets only of classes with weight 0: the mean is 0/0 = NaN, its gradient zero.

    (``F.cross_entropy`` returns NaN gradients here; ours stay finite.)
    """
    x = torch.randn(4, 3, requires_grad=True)
    t = torch.tensor([0, 1, 0, 1])
    loss = loss_fn(x, t, alpha=[0.0, 0.0, 1.0])
    assert torch.isnan(loss)
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


# ------------------------------------------- gradients w.r.t. target, alpha, pos_weight (#6)


def _binary_textbook(x, y, gamma, alpha, pos_weight):
    """The sigmoid focal loss written out in float64, differentiable in every argument."""
    p = torch.sigmoid(x)
    a_pos = alpha * pos_weight
    return -(y * a_pos * (1 - p) ** gamma * torch.log(p)) - (1 - y) * (1 - alpha) * (
        p**gamma
    ) * torch.log(1 - p)


def _binary_args(requires):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    y = torch.rand(6, 3, generator=gen, dtype=torch.float64)
    alpha = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64)
    pos_weight = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    args = [x, y, alpha, pos_weight]
    return [a.requires_grad_(r) for a, r in zip(args, requires)]


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_gradients_of_every_argument_match_textbook_autograd(gamma, reduction):
    args = _binary_args([True, True, True, True])
    ours = binary_focal_loss_with_logits(
        args[0], args[1], gamma=gamma, alpha=args[2], pos_weight=args[3], reduction=reduction
    )
    ref = _binary_textbook(*args[:2], gamma, *args[2:])
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    torch.testing.assert_close(ours, ref)
    grads = torch.autograd.grad(ours.sum(), args)
    ref_grads = torch.autograd.grad(ref.sum(), args)
    for name, g, r in zip(["input", "target", "alpha", "pos_weight"], grads, ref_grads):
        torch.testing.assert_close(g, r, msg=f"gradient w.r.t. {name}")


@pytest.mark.parametrize(
    "requires",
    [
        (False, True, False, False),  # only the target: used to raise "not enough values"
        (True, True, False, False),  # used to give target.grad None
        (False, False, True, False),  # a learnable alpha: used to get a wrong gradient
        (False, False, False, True),  # pos_weight: used to get None
    ],
)
def test_binary_gradcheck_of_each_argument_alone(requires):
    args = _binary_args(requires)

    def fn(*a):
        return binary_focal_loss_with_logits(a[0], a[1], gamma=2.0, alpha=a[2], pos_weight=a[3])

    assert torch.autograd.gradcheck(fn, tuple(args))
    assert torch.autograd.gradcheck(
        lambda *a: binary_margin_loss_with_logits(
            a[0], a[1], softness=2.0, alpha=a[2], pos_weight=a[3]
        ),
        tuple(args),
    )


def test_binary_target_gradient_is_weighted_loss_difference():
    """The loss is linear in y: its derivative is a+ L+ - a- L-, exactly."""
    x = torch.tensor([-3.0, 0.0, 2.5], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64, requires_grad=True)
    binary_focal_loss_with_logits(x, y, gamma=2.0, alpha=0.25, reduction="sum").backward()
    p = torch.sigmoid(x)
    expected = 0.25 * (1 - p) ** 2 * -torch.log(p) - 0.75 * p**2 * -torch.log1p(-p)
    torch.testing.assert_close(y.grad, expected)


def test_learnable_multiclass_alpha_gets_the_textbook_gradient(seed):
    x = torch.randn(12, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (12,))
    t[0] = -100
    alpha = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    loss = focal_loss(x, t, gamma=2.0, alpha=alpha)
    (ours,) = torch.autograd.grad(loss, alpha)
    keep = t != -100
    logp = F.log_softmax(x[keep], 1).gather(1, t[keep, None]).squeeze(1)
    a_t = alpha[t[keep]]
    ref = (a_t * -((1 - logp.exp()) ** 2) * logp).sum() / a_t.sum()
    (expected,) = torch.autograd.grad(ref, alpha)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multiclass_gradcheck_with_learnable_alpha(seed, gamma, reduction):
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (8,))
    t[1] = -100
    alpha = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda z, a: focal_loss(z, t, gamma=gamma, alpha=a, reduction=reduction), (x, alpha)
    )
    assert torch.autograd.gradcheck(
        lambda z, a: margin_loss(z, t, softness=2.0, alpha=a, reduction=reduction), (x, alpha)
    )


def test_learnable_alpha_with_every_target_ignored_has_finite_gradient():
    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    alpha = torch.ones(3, dtype=torch.float64, requires_grad=True)
    loss = focal_loss(x, torch.full((3,), -100), alpha=alpha)
    assert torch.isnan(loss)
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x)) and torch.equal(alpha.grad, torch.zeros(3))


# ------------------------------------------------------------------ fused vs differentiable


@pytest.mark.parametrize("gamma", GAMMAS)
def test_fused_and_differentiable_paths_agree(seed, gamma):
    """A target that needs a gradient switches paths; the logit gradient must not change."""
    x = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    y = (torch.rand(30, 4) < 0.4).double()
    kw = dict(gamma=gamma, alpha=[0.1, 0.4, 0.6, 0.9], pos_weight=torch.tensor(2.0).double())
    fused = binary_focal_loss_with_logits(x, y, **kw)
    (g_fused,) = torch.autograd.grad(fused, x)
    y_grad = y.clone().requires_grad_()
    slow = binary_focal_loss_with_logits(x, y_grad, **kw)
    (g_slow,) = torch.autograd.grad(slow, x)
    torch.testing.assert_close(fused, slow)
    torch.testing.assert_close(g_fused, g_slow)


def test_gradient_w_r_t_target_is_not_computed_under_no_grad(seed):
    x = torch.randn(5)
    y = torch.rand(5, requires_grad=True)
    with torch.no_grad():
        loss = binary_focal_loss_with_logits(x, y)
    assert not loss.requires_grad
