"""The focal losses (skfocal/losses/_focal.py): invariants of the functions and their lean batch
means (the modules, links and stacked form are tested with the others of their kind in
test_criterion.py, test_links.py and tests/engines/stacked/test_losses.py)."""

import pytest
import torch
import torch.nn.functional as F

from skfocal.losses import (
    BinaryFocalLoss,
    FocalLoss,
    MarginLoss,
    binary_focal_loss_with_logits,
    focal_loss,
)
from skfocal.losses._focal import SigmoidFocalMean, SoftmaxFocalMean
from skfocal.losses._lean import batch_losses

REDUCTIONS = ["mean", "sum", "none"]
GAMMAS = [0.0, 0.25, 0.5, 1.0, 2.0, 3.7]


def _value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _reference_focal(x, t, gamma, alpha=None):
    """Textbook softmax focal loss per sample (only valid away from saturation)."""
    logp = F.log_softmax(x, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)
    loss = -((1 - logp.exp()) ** gamma) * logp
    return loss if alpha is None else loss * alpha[t]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_alpha", [False, True])
@pytest.mark.parametrize("shape", [(37, 4), (5, 3, 6), (4, 6, 3, 2)])
def test_gamma_zero_equals_cross_entropy(seed, reduction, with_alpha, shape):
    x = torch.randn(*shape, dtype=torch.float64) * 3
    target_shape = (shape[0],) + shape[2:]
    t = torch.randint(0, shape[1], target_shape)
    t.view(-1)[::7] = -100
    alpha = torch.rand(shape[1], dtype=torch.float64) + 0.1 if with_alpha else None
    ours = _value_and_grad(
        lambda z: focal_loss(z, t, gamma=0.0, alpha=alpha, reduction=reduction), x
    )
    ref = _value_and_grad(lambda z: F.cross_entropy(z, t, weight=alpha, reduction=reduction), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_custom_ignore_index_equals_cross_entropy(seed, reduction):
    x = torch.randn(20, 5, dtype=torch.float64)
    t = torch.randint(0, 5, (20,))
    ours = _value_and_grad(
        lambda z: focal_loss(z, t, gamma=0.0, ignore_index=2, reduction=reduction), x
    )
    ref = _value_and_grad(lambda z: F.cross_entropy(z, t, ignore_index=2, reduction=reduction), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


def test_unbatched_input_like_cross_entropy(seed):
    x = torch.randn(5, dtype=torch.float64)
    t = torch.tensor(3)
    for reduction in REDUCTIONS:
        ours = focal_loss(x, t, gamma=0.0, reduction=reduction)
        ref = F.cross_entropy(x, t, reduction=reduction)
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_matches_textbook_formula_away_from_saturation(seed, gamma):
    x = torch.randn(64, 5, dtype=torch.float64)
    t = torch.randint(0, 5, (64,))
    alpha = torch.rand(5, dtype=torch.float64)
    ours = _value_and_grad(lambda z: focal_loss(z, t, gamma=gamma, alpha=alpha, reduction="sum"), x)
    ref = _value_and_grad(lambda z: _reference_focal(z, t, gamma, alpha).sum(), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


def test_mean_divides_by_sum_of_alpha_t(seed):
    x = torch.randn(30, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (30,))
    alpha = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    mean = focal_loss(x, t, gamma=2.0, alpha=alpha)
    total = focal_loss(x, t, gamma=2.0, alpha=alpha, reduction="sum")
    torch.testing.assert_close(mean, total / alpha[t].sum())


def test_p_t_is_unweighted_softmax_probability(seed):
    """Class weights scale the loss; they never change p_t (the exp(-weighted CE) bug)."""
    x = torch.randn(30, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (30,))
    alpha = torch.tensor([0.1, 5.0, 2.0], dtype=torch.float64)
    weighted = focal_loss(x, t, gamma=2.0, alpha=alpha, reduction="none")
    plain = focal_loss(x, t, gamma=2.0, reduction="none")
    torch.testing.assert_close(weighted, plain * alpha[t])


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.9, 1.0])
def test_scalar_alpha_is_two_class_shorthand(seed, alpha):
    x = torch.randn(40, 2, dtype=torch.float64)
    t = torch.randint(0, 2, (40,))
    vector = torch.tensor([1 - alpha, alpha], dtype=torch.float64)
    for reduction in ("sum", "none"):
        torch.testing.assert_close(
            focal_loss(x, t, alpha=alpha, reduction=reduction),
            focal_loss(x, t, alpha=vector, reduction=reduction),
        )


@pytest.mark.parametrize("gamma", GAMMAS)
def test_focal_never_exceeds_cross_entropy(seed, gamma):
    x = torch.randn(200, 6) * 4
    t = torch.randint(0, 6, (200,))
    fl = focal_loss(x, t, gamma=gamma, reduction="none")
    ce = F.cross_entropy(x, t, reduction="none")
    assert bool((fl <= ce + 1e-6).all())
    assert bool((fl >= 0).all())


@pytest.mark.parametrize("gamma", GAMMAS)
def test_gradcheck_multiclass(seed, gamma):
    x = torch.randn(12, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (12,))
    t[0] = -100
    alpha = torch.rand(4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: focal_loss(z, t, gamma=gamma, alpha=alpha), (x,))


@pytest.mark.parametrize("gamma", GAMMAS)
def test_gradcheck_spatial(seed, gamma):
    x = torch.randn(2, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (2, 4, 2))
    assert torch.autograd.gradcheck(lambda z: focal_loss(z, t, gamma=gamma, reduction="none"), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_finite_loss_and_gradient_at_extreme_logits(seed, dtype, gamma, scale):
    x = (torch.randn(256, 5, dtype=dtype) * scale).requires_grad_()
    t = torch.randint(0, 5, (256,))
    t[:64] = x[:64].argmax(dim=1)  # confidently right samples: where the textbook grad is NaN
    loss = focal_loss(x, t, gamma=gamma)
    loss.backward()
    assert torch.isfinite(loss)
    assert bool(torch.isfinite(x.grad).all())
    xb = (torch.randn(256, dtype=dtype) * scale).requires_grad_()
    yb = (xb.detach() > 0).to(dtype)
    yb[:32] = 1 - yb[:32]
    loss = binary_focal_loss_with_logits(xb, yb, gamma=gamma, alpha=0.25)
    loss.backward()
    assert torch.isfinite(loss)
    assert bool(torch.isfinite(xb.grad).all())


def test_textbook_formula_is_nan_where_ours_is_finite():
    """Document the bug the closed-form backward fixes: gamma < 1 at a confident sample."""
    x = torch.tensor([[20.0, 0.0]], requires_grad=True)
    t = torch.tensor([0])
    _reference_focal(x, t, 0.5).sum().backward()
    assert torch.isnan(x.grad).any()
    x.grad = None
    focal_loss(x, t, gamma=0.5).backward()
    assert bool(torch.isfinite(x.grad).all())


@pytest.mark.parametrize("gamma", GAMMAS)
def test_finite_forward_in_bfloat16(seed, gamma):
    x = (torch.randn(64, 7) * 1e3).to(torch.bfloat16)
    t = torch.randint(0, 7, (64,))
    out = focal_loss(x, t, gamma=gamma)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out)
    xb = (torch.randn(64) * 1e3).to(torch.bfloat16)
    out = binary_focal_loss_with_logits(xb, (xb > 0).to(torch.bfloat16), gamma=gamma)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out)


def test_bfloat16_close_to_float32(seed):
    x = torch.randn(64, 7)
    t = torch.randint(0, 7, (64,))
    full = focal_loss(x, t)
    half = focal_loss(x.to(torch.bfloat16), t)
    torch.testing.assert_close(half.float(), full, rtol=2e-2, atol=2e-2)


# ---------------------------------------------------------------- binary / multilabel


def _reference_binary(x, y, gamma, alpha=None, pos_weight=None):
    """torchvision's sigmoid_focal_loss formula, extended by pos_weight (textbook, unstable)."""
    p = torch.sigmoid(x)
    pw = 1.0 if pos_weight is None else pos_weight
    ce = -(pw * y * torch.log(p) + (1 - y) * torch.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, 3.0, "per-label"])
def test_binary_gamma_zero_equals_bce(seed, reduction, pos_weight):
    x = torch.randn(50, 4, dtype=torch.float64) * 3
    y = (torch.rand(50, 4) < 0.3).double()
    if pos_weight == "per-label":
        pos_weight = torch.tensor([1.0, 2.0, 9.0, 0.5], dtype=torch.float64)
    elif pos_weight is not None:
        pos_weight = torch.tensor(pos_weight, dtype=torch.float64)
    ours = _value_and_grad(
        lambda z: binary_focal_loss_with_logits(
            z, y, gamma=0.0, pos_weight=pos_weight, reduction=reduction
        ),
        x,
    )
    ref = _value_and_grad(
        lambda z: F.binary_cross_entropy_with_logits(
            z, y, pos_weight=pos_weight, reduction=reduction
        ),
        x,
    )
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [None, 0.25, [0.1, 0.5, 0.8]])
def test_binary_matches_torchvision_formula(seed, gamma, alpha):
    x = torch.randn(40, 3, dtype=torch.float64) * 2
    y = (torch.rand(40, 3) < 0.4).double()
    pos_weight = torch.tensor([1.0, 4.0, 2.0], dtype=torch.float64)
    alpha_t = None if alpha is None else torch.as_tensor(alpha, dtype=torch.float64)
    ours = _value_and_grad(
        lambda z: binary_focal_loss_with_logits(
            z, y, gamma=gamma, alpha=alpha, pos_weight=pos_weight, reduction="none"
        ),
        x,
    )
    ref = _value_and_grad(lambda z: _reference_binary(z, y, gamma, alpha_t, pos_weight), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


def test_binary_scalar_alpha_weights_positives(seed):
    x = torch.randn(100, dtype=torch.float64)
    y = (torch.rand(100) < 0.5).double()
    plain = binary_focal_loss_with_logits(x, y, reduction="none")
    weighted = binary_focal_loss_with_logits(x, y, alpha=0.25, reduction="none")
    pos = y == 1
    torch.testing.assert_close(weighted[pos], 0.25 * plain[pos])
    torch.testing.assert_close(weighted[~pos], 0.75 * plain[~pos])


@pytest.mark.parametrize("gamma", GAMMAS)
def test_binary_gradcheck(seed, gamma):
    x = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(10, 3, dtype=torch.float64)  # soft labels: the formula is linear in y
    assert torch.autograd.gradcheck(
        lambda z: binary_focal_loss_with_logits(
            z, y, gamma=gamma, alpha=[0.2, 0.5, 0.7], pos_weight=torch.tensor([1.0, 2.0, 3.0])
        ),
        (x,),
    )


@pytest.mark.parametrize("gamma", GAMMAS)
def test_binary_focal_never_exceeds_bce(seed, gamma):
    x = torch.randn(500) * 5
    y = (torch.rand(500) < 0.2).float()
    fl = binary_focal_loss_with_logits(x, y, gamma=gamma, reduction="none")
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert bool((fl <= bce + 1e-6).all())


def test_integer_and_bool_targets_are_accepted(seed):
    x = torch.randn(20)
    y = torch.rand(20) < 0.5
    expected = binary_focal_loss_with_logits(x, y.float())
    torch.testing.assert_close(binary_focal_loss_with_logits(x, y), expected)
    torch.testing.assert_close(binary_focal_loss_with_logits(x, y.long()), expected)


def test_no_grad_forward_matches_grad_forward(seed):
    x = torch.randn(30, 4)
    t = torch.randint(0, 4, (30,))
    with torch.no_grad():
        a = focal_loss(x, t, gamma=0.5, reduction="none")
        b = binary_focal_loss_with_logits(x, (x > 0).float(), gamma=0.5, reduction="none")
    torch.testing.assert_close(a, focal_loss(x.requires_grad_(), t, gamma=0.5, reduction="none"))
    torch.testing.assert_close(
        b, binary_focal_loss_with_logits(x, (x > 0).float(), gamma=0.5, reduction="none")
    )


@pytest.mark.gpu
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_cuda_matches_cpu(seed, gamma):
    x = torch.randn(64, 5, dtype=torch.float64)
    t = torch.randint(0, 5, (64,))
    alpha = torch.rand(5, dtype=torch.float64)
    cpu = _value_and_grad(lambda z: focal_loss(z, t, gamma=gamma, alpha=alpha), x)
    gpu = _value_and_grad(
        lambda z: focal_loss(z, t.cuda(), gamma=gamma, alpha=alpha.cuda()), x.cuda()
    )
    torch.testing.assert_close(gpu[0].cpu(), cpu[0])
    torch.testing.assert_close(gpu[1].cpu(), cpu[1])
    xb = torch.randn(64, dtype=torch.float64)
    yb = (xb > 0).double()
    cpu = _value_and_grad(lambda z: binary_focal_loss_with_logits(z, yb, gamma=gamma), xb)
    gpu = _value_and_grad(
        lambda z: binary_focal_loss_with_logits(z, yb.cuda(), gamma=gamma), xb.cuda()
    )
    torch.testing.assert_close(gpu[1].cpu(), cpu[1])


# -- the lean batch means (SoftmaxFocalMean, SigmoidFocalMean): a criterion's _lean_mean() equals
# its per-sample losses averaged, in value and gradient ---------------------------------------

LEAN_GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.5]
LEAN_WEIGHTS = pytest.mark.parametrize(
    "weights",
    [{}, {"alpha": 0.25}, {"pos_weight": 3.0}, {"alpha": 0.7, "pos_weight": torch.tensor(2.0)}],
    ids=str,
)


def _mean_value_and_grad(fn, x, y):
    x = x.detach().clone().requires_grad_(True)
    loss = fn(x, y)
    loss.backward()
    return loss.detach(), x.grad


def _fused(twin, x, y):
    """``twin.value_and_grad`` with its loss as a tensor of the input's dtype (the loop sums
    the factor pairs once per epoch: :func:`batch_losses`)."""
    out = twin.value_and_grad(x, y)
    if out is None:
        return None
    loss, grad = out
    for t in loss if type(loss) is tuple else (loss,):
        assert not t.requires_grad
    return batch_losses([loss])[0].to(x.dtype), grad


def _assert_twin(criterion, x, y):
    twin = criterion._lean_mean()
    assert twin is not None
    ref_loss, ref_grad = _mean_value_and_grad(lambda a, b: criterion(a, b).mean(), x, y)
    loss, grad = _mean_value_and_grad(twin, x, y)
    tol = 1e-12 if x.dtype == torch.float64 else 1e-6
    torch.testing.assert_close(loss, ref_loss, rtol=tol, atol=tol)
    torch.testing.assert_close(grad, ref_grad, rtol=tol, atol=tol)
    with torch.no_grad():
        torch.testing.assert_close(twin(x, y), ref_loss, rtol=tol, atol=tol)


@pytest.mark.parametrize("gamma", LEAN_GAMMAS)
@LEAN_WEIGHTS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [256, 37, 1])
def test_sigmoid_mean_equals_module(seed, gamma, weights, dtype, n):
    x = torch.from_numpy(seed.normal(scale=4.0, size=n)).to(dtype)
    y = torch.from_numpy(seed.uniform(size=n) < 0.2).to(dtype)
    _assert_twin(BinaryFocalLoss(gamma=gamma, reduction="none", **weights), x, y)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_sigmoid_mean_multilabel_is_the_mean_of_per_sample_means(seed, gamma):
    x = torch.from_numpy(seed.normal(size=(64, 3))).float()
    y = torch.from_numpy(seed.uniform(size=(64, 3)) < 0.3).float()
    criterion = BinaryFocalLoss(gamma=gamma, alpha=[0.2, 0.5, 0.9], reduction="none")
    per_sample = criterion._lean_mean()
    ref_loss, ref_grad = _mean_value_and_grad(lambda a, b: criterion(a, b).mean(dim=1).mean(), x, y)
    loss, grad = _mean_value_and_grad(per_sample, x, y)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("gamma", LEAN_GAMMAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(256, 8), (13, 2), (5, 100)])
def test_softmax_mean_equals_module(seed, gamma, dtype, shape):
    x = torch.from_numpy(seed.normal(scale=4.0, size=shape)).to(dtype)
    y = torch.from_numpy(seed.integers(0, shape[1], size=shape[0]))
    _assert_twin(FocalLoss(gamma=gamma, reduction="none"), x, y)


def test_no_twin_where_the_mean_is_not_the_plain_mean():
    assert FocalLoss(alpha=[0.2, 0.8], reduction="none")._lean_mean() is None  # divides by sum(w)
    assert MarginLoss(reduction="none")._lean_mean() is None
    assert BinaryFocalLoss(reduction="mean")._lean_mean() is None

    class Scaled(BinaryFocalLoss):  # a subclass may compute another loss: no twin of ours
        def forward(self, input, target):
            return 2 * super().forward(input, target)

    assert Scaled(reduction="none")._lean_mean() is None
    assert type(BinaryFocalLoss(reduction="none")._lean_mean()) is SigmoidFocalMean


def test_other_inputs_go_to_the_module_with_its_checks(seed):
    sig, soft = SigmoidFocalMean(2.0), SoftmaxFocalMean(2.0)
    x = torch.zeros(4)
    with pytest.raises(ValueError, match="BinaryFocalLoss"):
        sig(x, torch.tensor([0.0, 1.0, 2.0, 1.0]).double())  # float64 target: the module's path
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 2\]"):
        soft(torch.zeros(4, 3), torch.tensor([0, 1, 2, 1], dtype=torch.int32) + 5)
    half = torch.zeros(4, dtype=torch.bfloat16)  # not a plain dtype: the module computes it
    torch.testing.assert_close(
        sig(half, torch.ones(4, dtype=torch.bfloat16)),
        BinaryFocalLoss(gamma=2.0)(half, torch.ones(4, dtype=torch.bfloat16)),
    )
    big = torch.from_numpy(seed.normal(size=400_000)).float()  # the blocked CPU computation
    target = (big > 1).float()
    torch.testing.assert_close(sig(big, target), BinaryFocalLoss(gamma=2.0)(big, target))


def test_to_moves_the_module_and_forgets_constants():
    sig = SigmoidFocalMean(2.0, alpha=torch.tensor([0.3]))
    sig(torch.zeros(3, 1), torch.ones(3, 1))
    assert sig._shapes
    assert sig.to(torch.float64) is sig and not sig._shapes


@pytest.mark.parametrize("gamma", LEAN_GAMMAS)
@pytest.mark.parametrize("kind", ["sigmoid", "sigmoid_multilabel", "softmax"])
def test_value_and_grad_equals_autograd_of_the_mean(seed, gamma, kind):
    """The estimator's path: loss and logit gradient in closed form, backpropagated by hand."""
    if kind == "softmax":
        x = torch.from_numpy(seed.normal(scale=3.0, size=(40, 5))).float()
        y = torch.from_numpy(seed.integers(0, 5, size=40))
        twin = SoftmaxFocalMean(gamma)
    else:
        shape = (40,) if kind == "sigmoid" else (40, 3)
        x = torch.from_numpy(seed.normal(scale=3.0, size=shape)).float()
        y = torch.from_numpy(seed.uniform(size=shape) < 0.3).float()
        twin = SigmoidFocalMean(gamma, alpha=0.3)
    ref_loss, ref_grad = _mean_value_and_grad(twin, x, y)
    out = _fused(twin, x.requires_grad_(True), y)
    if gamma == 0.0 and kind == "softmax":  # torch's cross-entropy: no closed form here
        assert out is None
        return
    loss, grad = out
    assert not grad.requires_grad
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("gamma", LEAN_GAMMAS)
@LEAN_WEIGHTS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [3.0, 60.0, 1e4])
def test_sigmoid_value_and_grad_equals_the_modules_autograd(seed, gamma, weights, dtype, scale):
    """The signed-logit form against the module (stacked form, autograd), saturated logits
    included: finite, and equal to float rounding."""
    x = torch.from_numpy(seed.normal(scale=scale, size=256)).to(dtype)
    y = torch.from_numpy(seed.uniform(size=256) < 0.3).to(dtype)
    module = BinaryFocalLoss(gamma=gamma, reduction="mean", **weights)
    ref_loss, ref_grad = _mean_value_and_grad(module, x, y)
    out = _fused(SigmoidFocalMean(gamma, **weights), x, y)
    if gamma == 0.0 and "alpha" not in weights:  # torch's BCE kernel (pos_weight included)
        assert out is None
        return
    loss, grad = out
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    # float32: both forms are within ~3e-6 of the float64 result on saturated logits
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(loss, ref_loss, rtol=tol, atol=0.0)
    torch.testing.assert_close(grad, ref_grad, rtol=tol, atol=tol * ref_grad.abs().max().item())


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_sigmoid_value_and_grad_multilabel_weights_per_label(seed, gamma):
    x = torch.from_numpy(seed.normal(scale=3.0, size=(64, 3)))
    y = torch.from_numpy(seed.uniform(size=(64, 3)) < 0.3).double()
    weights = {"alpha": [0.2, 0.5, 0.9], "pos_weight": torch.tensor([1.0, 2.0, 4.0])}
    ref_loss, ref_grad = _mean_value_and_grad(BinaryFocalLoss(gamma=gamma, **weights), x, y)
    loss, grad = _fused(SigmoidFocalMean(gamma, **weights), x, y)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_value_and_grad_declines_what_torch_or_the_module_computes():
    assert SigmoidFocalMean(0.0).value_and_grad(torch.zeros(3), torch.ones(3)) is None  # BCE
    assert SigmoidFocalMean(2.0).value_and_grad(torch.zeros(3), torch.ones(3).double()) is None
    assert SoftmaxFocalMean(2.0).value_and_grad(torch.zeros(3, 2, 2), torch.zeros(3, 2)) is None
