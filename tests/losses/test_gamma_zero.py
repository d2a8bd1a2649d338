"""``gamma=0`` on every path of the focal losses: what it equals, and how exactly.

Paths: the functions, the modules, the estimator's lean batch means (``losses/_lean.py``) and
the stacked loss of the batched search (``_stacked/_losses.py``), in float32 against a float64
reference, over logits in [-30, 30].

* Where no class factor is given (binary: no ``alpha``; ``pos_weight`` allowed) and for every
  softmax loss (``alpha`` is ``F.cross_entropy``'s ``weight``), each path calls torch's own
  cross-entropy: the result is torch's bit for bit, with torch's float32 accuracy (an absolute
  error of a few ``eps * |x|``, e.g. 0 for the loss 9.4e-14 at x = -30, y = 0).
* A binary ``alpha`` is skfocal's own form of the ``alpha``-weighted binary cross-entropy: every
  element of loss and gradient is within 1e-6 relative of the float64 value, where torch's
  float32 ``binary_cross_entropy_with_logits(weight=...)`` loses small values to cancellation.
"""

import pytest
import torch
import torch.nn.functional as F

from skfocal._engines._stacked import MemberLoss, StackedLoss
from skfocal.losses import BinaryFocalLoss, FocalLoss, binary_focal_loss_with_logits, focal_loss
from skfocal.losses._focal import SigmoidFocalMean, SoftmaxFocalMean
from skfocal.losses._lean import batch_losses

EPS = torch.finfo(torch.float32).eps
OWN_RTOL = 1e-6  # skfocal's own form: a few float32 ulps of every element


def _value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _binary_data():
    x = torch.linspace(-30.0, 30.0, 601)
    x = torch.cat([x, x])
    y = torch.cat([torch.zeros(601), torch.ones(601)])
    return x, y


def _binary_reference(x, y, alpha, pos_weight, reduction):
    """Float64 per-element loss ``w+ y softplus(-x) + w- (1 - y) softplus(x)`` and gradient."""
    x, y = x.double(), y.double()
    w_pos = (1.0 if alpha is None else alpha) * (1.0 if pos_weight is None else pos_weight)
    w_neg = 1.0 if alpha is None else 1.0 - alpha
    loss = w_pos * y * F.softplus(-x) + w_neg * (1 - y) * F.softplus(x)
    grad = w_neg * (1 - y) * torch.sigmoid(x) - w_pos * y * torch.sigmoid(-x)
    if reduction == "mean":
        return loss.mean(), grad / x.numel()
    return loss, grad


def _lean_mean(x, y, alpha, pos_weight):
    return SigmoidFocalMean(0.0, alpha, pos_weight)(x, y)


def _lean_value_and_grad(x, y, alpha, pos_weight):
    out = SigmoidFocalMean(0.0, alpha, pos_weight).value_and_grad(x, y)
    assert out is not None  # with a class factor the lean loop uses the closed form
    loss, grad = out
    return batch_losses([loss])[0], grad


def _stacked(x, y, alpha, pos_weight, mixed=False):
    members = [MemberLoss(gamma=0.0, alpha=alpha, pos_weight=pos_weight)]
    if mixed:  # a group with another gamma: the per-member-gamma kernel, not the function
        members.append(MemberLoss(gamma=2.0))
    stacked = torch.stack([x] * len(members))
    return StackedLoss("binary", members, 1)(stacked, torch.stack([y] * len(members)))[0]


BINARY_PATHS = {
    "function": (
        "none",
        lambda x, y, a, w: binary_focal_loss_with_logits(
            x, y, gamma=0.0, alpha=a, pos_weight=w, reduction="none"
        ),
    ),
    "function mean": (
        "mean",
        lambda x, y, a, w: binary_focal_loss_with_logits(x, y, gamma=0.0, alpha=a, pos_weight=w),
    ),
    "module": (
        "none",
        lambda x, y, a, w: BinaryFocalLoss(gamma=0.0, alpha=a, pos_weight=w, reduction="none")(
            x, y
        ),
    ),
    "module mean": (
        "mean",
        lambda x, y, a, w: BinaryFocalLoss(gamma=0.0, alpha=a, pos_weight=w)(x, y),
    ),
    "lean mean": ("mean", _lean_mean),
    "stacked": ("none", _stacked),
}


def _torch_binary(x, y, pos_weight, reduction):
    pos_weight = None if pos_weight is None else torch.tensor(pos_weight)
    return F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight, reduction=reduction)


def _tensor(value):
    return None if value is None else torch.tensor(value)


DELEGATED = [(path, None) for path in sorted(BINARY_PATHS)] + [
    (path, 3.0) for path in sorted(BINARY_PATHS) if path != "stacked"
]


@pytest.mark.parametrize(("path", "pos_weight"), DELEGATED)
def test_binary_without_alpha_is_torch_bit_for_bit(path, pos_weight):
    """Without a class factor every path is torch's; the functions, modules and the lean mean
    pass ``pos_weight`` to torch as well (the stacked loss weighs it itself, below)."""
    x, y = _binary_data()
    reduction, fn = BINARY_PATHS[path]
    ours = _value_and_grad(lambda z: fn(z, y, None, _tensor(pos_weight)), x)
    theirs = _value_and_grad(lambda z: _torch_binary(z, y, pos_weight, reduction), x)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    # torch's float32 accuracy: an absolute error of a few eps * |x|
    ref = _binary_reference(x, y, None, pos_weight, reduction)
    scale = 1 if reduction == "none" else 1 / x.numel()
    atol = 2 * EPS * (1 + x.abs().max().item()) * (pos_weight or 1.0)
    torch.testing.assert_close(ours[0].double(), ref[0], rtol=0, atol=atol)
    torch.testing.assert_close(ours[1].double(), ref[1], rtol=0, atol=atol * scale)


OWN_FORM = [
    (path, alpha, pos_weight)
    for path in sorted(BINARY_PATHS) + ["lean value_and_grad", "stacked mixed"]
    for alpha, pos_weight in [(0.25, None), (0.75, 3.0)]
] + [("stacked", None, 3.0), ("stacked mixed", None, 3.0), ("stacked mixed", None, None)]


@pytest.mark.parametrize(("path", "alpha", "pos_weight"), OWN_FORM)
def test_binary_with_alpha_is_within_a_few_ulps_of_float64(path, alpha, pos_weight):
    """skfocal's own form (a binary ``alpha``; in the stacked loss also a ``pos_weight`` alone,
    or a gamma-0 member grouped with other gammas)."""
    x, y = _binary_data()
    if path == "lean value_and_grad":
        reduction = "mean"
        ours = _lean_value_and_grad(x, y, alpha, _tensor(pos_weight))
    else:
        reduction, fn = BINARY_PATHS.get(path, ("none", None))
        if path == "stacked mixed":
            fn = lambda z, t, a, w: _stacked(z, t, a, w, mixed=True)  # noqa: E731
        ours = _value_and_grad(lambda z: fn(z, y, alpha, _tensor(pos_weight)), x)
    ref = _binary_reference(x, y, alpha, pos_weight, reduction)
    assert ours[0].dtype == torch.float32 or path == "lean value_and_grad"
    torch.testing.assert_close(ours[0].double(), ref[0], rtol=OWN_RTOL, atol=0)
    torch.testing.assert_close(ours[1].double(), ref[1], rtol=OWN_RTOL, atol=0)


def test_torch_weighted_bce_is_not_that_exact():
    """Why the binary ``alpha`` path is not delegated: torch's weighted BCE cancels."""
    x, y = _binary_data()
    weight = 0.25 * y + 0.75 * (1 - y)
    theirs = _value_and_grad(
        lambda z: F.binary_cross_entropy_with_logits(z, y, weight=weight, reduction="none"), x
    )
    ref = _binary_reference(x, y, 0.25, None, "none")
    rel = ((theirs[0].double() - ref[0]).abs() / ref[0]).max()
    assert rel > 0.5  # e.g. 0 for the loss 7e-14 at x = -30, y = 0


# -- softmax: every path is F.cross_entropy, alpha as its weight ---------------------------------
def _softmax_data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=gen) * 10
    x[:5] = torch.tensor([30.0, -30.0, 0.0, 15.0, -15.0])  # confident and hopeless rows
    t = torch.randint(0, 5, (400,), generator=gen)
    return x.clamp(-30, 30), t


def _softmax_reference(x, t, alpha, reduction):
    x = x.double()
    alpha = torch.ones(x.shape[1], dtype=torch.float64) if alpha is None else alpha.double()
    logp = torch.log_softmax(x, dim=1)
    w = alpha[t]
    loss = -w * logp.gather(1, t[:, None])[:, 0]
    grad = (logp.exp() - F.one_hot(t, x.shape[1])) * w[:, None]
    if reduction == "mean":
        return loss.sum() / w.sum(), grad / w.sum()
    return loss, grad


def _stacked_softmax(x, t, alpha, mixed=False):
    members = [MemberLoss(gamma=0.0, alpha=None if alpha is None else alpha.tolist())]
    if mixed:
        members.append(MemberLoss(gamma=2.0))
    k = len(members)
    return StackedLoss("multiclass", members, x.shape[1])(
        torch.stack([x] * k), torch.stack([t] * k)
    )[0]


SOFTMAX_PATHS = {
    "function": ("none", lambda x, t, a: focal_loss(x, t, gamma=0.0, alpha=a, reduction="none")),
    "function mean": ("mean", lambda x, t, a: focal_loss(x, t, gamma=0.0, alpha=a)),
    "module": ("none", lambda x, t, a: FocalLoss(gamma=0.0, alpha=a, reduction="none")(x, t)),
    "module mean": ("mean", lambda x, t, a: FocalLoss(gamma=0.0, alpha=a)(x, t)),
    "lean mean": ("mean", lambda x, t, a: SoftmaxFocalMean(0.0)(x, t)),  # no alpha: see _lean_mean
    "stacked": ("none", _stacked_softmax),
}


@pytest.mark.parametrize(
    ("path", "with_alpha"),
    [(path, False) for path in sorted(SOFTMAX_PATHS)]
    + [(path, True) for path in sorted(SOFTMAX_PATHS) if path != "lean mean"],
)
def test_softmax_is_cross_entropy_bit_for_bit(path, with_alpha):
    """(The lean softmax mean has no ``alpha``: with one the estimator calls the module.)"""
    x, t = _softmax_data()
    alpha = torch.tensor([0.5, 1.0, 2.0, 0.25, 4.0]) if with_alpha else None
    reduction, fn = SOFTMAX_PATHS[path]
    ours = _value_and_grad(lambda z: fn(z, t, alpha), x)
    theirs = _value_and_grad(lambda z: F.cross_entropy(z, t, weight=alpha, reduction=reduction), x)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    ref = _softmax_reference(x, t, alpha, reduction)
    atol = 2 * EPS * (1 + x.abs().max().item()) * (4.0 if with_alpha else 1.0)
    torch.testing.assert_close(ours[0].double(), ref[0], rtol=0, atol=atol)
    torch.testing.assert_close(ours[1].double(), ref[1], rtol=0, atol=atol)


@pytest.mark.parametrize("with_alpha", [False, True])
def test_stacked_softmax_in_a_mixed_group_is_cross_entropy_to_float32_accuracy(with_alpha):
    """A gamma-0 member grouped with other gammas runs the stacked kernel: not torch's bits,
    torch's accuracy."""
    x, t = _softmax_data()
    alpha = torch.tensor([0.5, 1.0, 2.0, 0.25, 4.0]) if with_alpha else None
    ours = _value_and_grad(lambda z: _stacked_softmax(z, t, alpha, mixed=True), x)
    ref = _softmax_reference(x, t, alpha, "none")
    atol = 2 * EPS * (1 + x.abs().max().item()) * (4.0 if with_alpha else 1.0)
    torch.testing.assert_close(ours[0].double(), ref[0], rtol=0, atol=atol)
    torch.testing.assert_close(ours[1].double(), ref[1], rtol=0, atol=atol)
