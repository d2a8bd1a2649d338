"""The fused sigmoid losses (skfocal/losses/_sigmoid.py).

Precision at the points where the textbook forms cancel, on each evaluation (signed, stacked,
blocked), and the blocked evaluation of large inputs equal to the whole one.
"""

import pytest
import torch

from skfocal.losses import _focal as focal_module
from skfocal.losses import binary_focal_loss_with_logits, binary_margin_loss_with_logits

DTYPES = [torch.float32, torch.float64]


@pytest.fixture(params=["signed", "stacked", "blocked"])
def sigmoid_path(request, monkeypatch):
    """Run a test on each evaluation of the sigmoid losses: hard labels take the signed form;
    the stacked one (any label in [0, 1]) is forced by not reporting them hard; blocks of one
    element per thread force the blocked one."""
    if request.param == "stacked":
        check = focal_module.check_binary_target_values
        monkeypatch.setattr(
            focal_module, "check_binary_target_values", lambda *a: check(*a) and False
        )
    if request.param == "blocked":
        monkeypatch.setattr("skfocal.losses._sigmoid._BLOCK", 1)
    return request.param


# relative error allowed against the float64 reference: a few ulp of the dtype
RTOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def _exact_binary(x, y, gamma, alpha):
    """Loss and gradient in float64 from forms without cancellation.

    ``-log p = log1p(exp(-|x|)) + max(-x, 0)`` and ``-log(1 - p) = log1p(exp(-|x|)) +
    max(x, 0)``; ``p`` and ``1 - p`` as sigmoids of ``x`` and ``-x``; positive and negative
    parts summed only where the label is soft.
    """
    x = x.double()
    y = y.double()
    common = torch.log1p(torch.exp(-x.abs()))
    s_pos, s_neg = common + (-x).clamp_min(0), common + x.clamp_min(0)
    p, q = torch.sigmoid(x), torch.sigmoid(-x)
    a_pos, a_neg = alpha, 1 - alpha
    loss_pos, loss_neg = a_pos * q**gamma * s_pos, a_neg * p**gamma * s_neg
    grad_pos = -a_pos * q**gamma * (q + gamma * p * s_pos)
    grad_neg = a_neg * p**gamma * (p + gamma * q * s_neg)
    loss = torch.where(y == 1, loss_pos, torch.where(y == 0, loss_neg, y * loss_pos))
    loss = torch.where((y > 0) & (y < 1), y * loss_pos + (1 - y) * loss_neg, loss)
    grad = torch.where(y == 1, grad_pos, torch.where(y == 0, grad_neg, y * grad_pos))
    grad = torch.where((y > 0) & (y < 1), y * grad_pos + (1 - y) * grad_neg, grad)
    return loss, grad


def _binary(x, y, gamma, alpha):
    x = x.detach().clone().requires_grad_()
    loss = binary_focal_loss_with_logits(x, y, gamma=gamma, alpha=alpha, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


@pytest.mark.parametrize("dtype", DTYPES)
def test_negative_term_is_exact_for_very_negative_logits(sigmoid_path, dtype):
    """-log(1 - p) at x = -15: softplus(-x) + x cancels to 0; the exact value is 2.29e-7."""
    x = torch.tensor([-15.0, -30.0, -80.0], dtype=dtype)
    y = torch.zeros(3, dtype=dtype)
    loss, grad = _binary(x, y, 0.0, 0.25)
    ref_loss, ref_grad = _exact_binary(x, y, 0.0, 0.25)
    assert float(loss[0]) == pytest.approx(2.2942670528529035e-07, rel=RTOL[dtype])
    torch.testing.assert_close(loss.double(), ref_loss, rtol=RTOL[dtype], atol=0)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_positive_gradient_is_exact_for_very_positive_logits(sigmoid_path, dtype):
    """d/dx at x = 16, y = 1: grad_neg - y (grad_neg + grad_pos) cancelled to 0; it is -2.8e-8."""
    x = torch.tensor([16.0, 30.0, 60.0], dtype=dtype)
    y = torch.ones(3, dtype=dtype)
    loss, grad = _binary(x, y, 0.0, 0.25)
    ref_loss, ref_grad = _exact_binary(x, y, 0.0, 0.25)
    assert float(grad[0]) == pytest.approx(-2.813379051377375e-08, rel=RTOL[dtype])
    torch.testing.assert_close(grad.double(), ref_grad, rtol=RTOL[dtype], atol=0)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.7])
@pytest.mark.parametrize("alpha", [0.25, 0.9])
def test_binary_relative_error_over_the_logit_range(sigmoid_path, dtype, gamma, alpha):
    x = torch.linspace(-40, 40, 161, dtype=dtype)
    x = torch.cat([x, x])
    y = torch.cat([torch.zeros(161, dtype=dtype), torch.ones(161, dtype=dtype)])
    loss, grad = _binary(x, y, gamma, alpha)
    ref_loss, ref_grad = _exact_binary(x, y, gamma, alpha)
    tiny = torch.finfo(dtype).tiny  # results below the normal range lose relative precision
    keep = (ref_loss.abs() > tiny * 1e3) & (ref_grad.abs() > tiny * 1e3)
    rtol = RTOL[dtype] * (1 + 8 * gamma)  # pow adds a few ulp per unit of gamma
    torch.testing.assert_close(loss.double()[keep], ref_loss[keep], rtol=rtol, atol=0)
    torch.testing.assert_close(grad.double()[keep], ref_grad[keep], rtol=rtol, atol=0)


@pytest.mark.parametrize("labels", ["hard", "soft"])
@pytest.mark.parametrize("block", [7, 80])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 0.7])
@pytest.mark.parametrize(
    "weights",
    [
        {},
        {"alpha": 0.25},
        {"alpha": [0.1, 0.5, 0.9]},
        {"pos_weight": "full"},
        {"alpha": 0.3, "pos_weight": "row"},
    ],
)
def test_large_input_evaluations_equal_the_stacked_one(
    seed, monkeypatch, labels, block, reduction, gamma, weights
):
    """Beyond _BLOCK elements per thread the sigmoid loss is evaluated block by block (80: in
    one block, 7: in blocks of about 7 elements): hard labels in the signed form, soft ones
    side by side; the results must not change."""
    x = torch.randn(40, 3, dtype=torch.float64)
    y = torch.rand(40, 3, dtype=torch.float64).round()
    if labels == "soft":
        y[::5] = 0.3
    kw = dict(weights, gamma=gamma, reduction=reduction)
    if weights.get("pos_weight") == "full":
        kw["pos_weight"] = torch.rand(40, 3, dtype=torch.float64) + 0.5
    elif weights.get("pos_weight") == "row":
        kw["pos_weight"] = torch.rand(1, 3, dtype=torch.float64) + 0.5
    margin_kw = {k: v for k, v in kw.items() if k != "gamma"}

    def focal(z):
        return binary_focal_loss_with_logits(z, y, **kw)

    def margin(z):
        return binary_margin_loss_with_logits(z, y, softness=2.0, **margin_kw)

    stacked, margin_whole = _value_and_grad(focal, x), _value_and_grad(margin, x)
    per_thread = max(1, block // torch.get_num_threads())
    monkeypatch.setattr("skfocal.losses._sigmoid._BLOCK", per_thread)
    for ours, ref in (
        (_value_and_grad(focal, x), stacked),
        (_value_and_grad(margin, x), margin_whole),
    ):
        torch.testing.assert_close(ours[0], ref[0])
        torch.testing.assert_close(ours[1], ref[1])


def _value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad
