"""The lean batch means equal the modules' per-sample losses averaged, value and gradient."""

import pytest
import torch

from skfocal.losses import BinaryFocalLoss, FocalLoss, MarginLoss
from skfocal.losses._focal import SigmoidFocalMean, SoftmaxFocalMean
from skfocal.losses._lean import batch_losses, mean_loss

GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.5]
WEIGHTS = pytest.mark.parametrize(
    "weights",
    [{}, {"alpha": 0.25}, {"pos_weight": 3.0}, {"alpha": 0.7, "pos_weight": torch.tensor(2.0)}],
    ids=str,
)


def _value_and_grad(fn, x, y):
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
    twin = mean_loss(criterion)
    assert twin is not None
    ref_loss, ref_grad = _value_and_grad(lambda a, b: criterion(a, b).mean(), x, y)
    loss, grad = _value_and_grad(twin, x, y)
    tol = 1e-12 if x.dtype == torch.float64 else 1e-6
    torch.testing.assert_close(loss, ref_loss, rtol=tol, atol=tol)
    torch.testing.assert_close(grad, ref_grad, rtol=tol, atol=tol)
    with torch.no_grad():
        torch.testing.assert_close(twin(x, y), ref_loss, rtol=tol, atol=tol)


@pytest.mark.parametrize("gamma", GAMMAS)
@WEIGHTS
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
    per_sample = mean_loss(criterion)
    ref_loss, ref_grad = _value_and_grad(lambda a, b: criterion(a, b).mean(dim=1).mean(), x, y)
    loss, grad = _value_and_grad(per_sample, x, y)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(256, 8), (13, 2), (5, 100)])
def test_softmax_mean_equals_module(seed, gamma, dtype, shape):
    x = torch.from_numpy(seed.normal(scale=4.0, size=shape)).to(dtype)
    y = torch.from_numpy(seed.integers(0, shape[1], size=shape[0]))
    _assert_twin(FocalLoss(gamma=gamma, reduction="none"), x, y)


def test_no_twin_where_the_mean_is_not_the_plain_mean():
    assert mean_loss(FocalLoss(alpha=[0.2, 0.8], reduction="none")) is None  # divides by sum(w)
    assert mean_loss(MarginLoss(reduction="none")) is None
    assert mean_loss(BinaryFocalLoss(reduction="mean")) is None


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


@pytest.mark.parametrize("gamma", GAMMAS)
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
    ref_loss, ref_grad = _value_and_grad(twin, x, y)
    out = _fused(twin, x.requires_grad_(True), y)
    if gamma == 0.0 and kind == "softmax":  # torch's cross-entropy: no closed form here
        assert out is None
        return
    loss, grad = out
    assert not grad.requires_grad
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("gamma", GAMMAS)
@WEIGHTS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [3.0, 60.0, 1e4])
def test_sigmoid_value_and_grad_equals_the_modules_autograd(seed, gamma, weights, dtype, scale):
    """The signed-logit form against the module (stacked form, autograd), saturated logits
    included: finite, and equal to float rounding."""
    x = torch.from_numpy(seed.normal(scale=scale, size=256)).to(dtype)
    y = torch.from_numpy(seed.uniform(size=256) < 0.3).to(dtype)
    module = BinaryFocalLoss(gamma=gamma, reduction="mean", **weights)
    ref_loss, ref_grad = _value_and_grad(module, x, y)
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
    ref_loss, ref_grad = _value_and_grad(BinaryFocalLoss(gamma=gamma, **weights), x, y)
    loss, grad = _fused(SigmoidFocalMean(gamma, **weights), x, y)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_value_and_grad_declines_what_torch_or_the_module_computes():
    assert SigmoidFocalMean(0.0).value_and_grad(torch.zeros(3), torch.ones(3)) is None  # BCE
    assert SigmoidFocalMean(2.0).value_and_grad(torch.zeros(3), torch.ones(3).double()) is None
    assert SoftmaxFocalMean(2.0).value_and_grad(torch.zeros(3, 2, 2), torch.zeros(3, 2)) is None


@pytest.mark.parametrize("kind", ["sigmoid", "softmax"])
def test_batch_losses_sum_each_batch_of_an_epoch_at_once(seed, kind):
    """An epoch's batches (the last one shorter) summed at once equal each batch's loss."""
    sizes = [64, 64, 64, 17]
    if kind == "softmax":
        twin = SoftmaxFocalMean(2.0)
        batches = [
            (torch.randn(n, 5, dtype=torch.float64), torch.randint(0, 5, (n,))) for n in sizes
        ]
    else:
        twin = SigmoidFocalMean(2.0, alpha=0.3)
        batches = [
            (torch.randn(n, dtype=torch.float64), (torch.rand(n) < 0.3).double()) for n in sizes
        ]
    losses = [twin.value_and_grad(x, y)[0] for x, y in batches]
    assert all(type(loss) is tuple for loss in losses)
    expected = torch.stack([twin(x, y) for x, y in batches])
    torch.testing.assert_close(batch_losses(losses), expected, rtol=1e-12, atol=0.0)


def test_batch_losses_keep_tensors_mixed_entries_and_non_finite_values():
    plain = [torch.tensor(0.5), torch.tensor(1.5)]
    torch.testing.assert_close(batch_losses(plain), torch.tensor([0.5, 1.5]))
    pair = (torch.tensor([1.0, 2.0]), torch.tensor([3.0, float("nan")]))
    values = batch_losses([torch.tensor(0.25), pair, (torch.ones(1), torch.full((1,), 2.0))])
    assert values.dtype == torch.float64
    assert values[0] == 0.25 and torch.isnan(values[1]) and values[2] == 2.0
    inf = batch_losses(
        [(torch.tensor([float("inf")]), torch.ones(1)), (torch.ones(2), torch.ones(2))]
    )
    assert inf[0] == float("inf") and inf[1] == 2.0
