"""The one autograd node of the fused losses (skfocal/losses/_fused.py): the contract of the
stored gradient (scaled by the incoming one, copied when the graph is retained, no second
derivative), fresh per-element outputs, half precision."""

import pytest
import torch

from skfocal.losses import binary_focal_loss_with_logits, focal_loss


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_backward_twice_with_retained_graph_accumulates_correctly(seed, reduction):
    """The stored gradient is handed out as is for a unit scale; autograd must copy it."""
    x = torch.randn(16, 4, requires_grad=True)
    t = torch.randint(0, 4, (16,))
    loss = focal_loss(x, t, reduction=reduction)
    loss.backward(retain_graph=True)
    once = x.grad.clone()
    loss.backward(retain_graph=True)
    loss.backward()
    torch.testing.assert_close(x.grad, 3 * once)
    xb = torch.randn(16, requires_grad=True)
    lb = binary_focal_loss_with_logits(xb, (xb.detach() > 0).float(), reduction=reduction)
    lb.backward(retain_graph=True)
    once = xb.grad.clone()
    lb.backward()
    torch.testing.assert_close(xb.grad, 2 * once)


def test_gradient_scales_with_incoming_gradient(seed):
    x = torch.randn(10, 3, requires_grad=True)
    t = torch.randint(0, 3, (10,))
    (g1,) = torch.autograd.grad(focal_loss(x, t), x)
    (g3,) = torch.autograd.grad(3.0 * focal_loss(x, t), x)
    torch.testing.assert_close(g3, 3 * g1)
    w = torch.rand(10)
    (gw,) = torch.autograd.grad((focal_loss(x, t, reduction="none") * w).sum(), x)
    # each row's gradient, from a call on that row alone, scaled by its weight
    rows = [torch.autograd.grad(focal_loss(x[i : i + 1], t[i : i + 1]), x)[0][i] for i in range(10)]
    torch.testing.assert_close(gw, torch.stack(rows) * w[:, None])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gradient_is_in_input_dtype(seed, dtype):
    x = torch.randn(32, 5).to(dtype).requires_grad_()
    t = torch.randint(0, 5, (32,))
    focal_loss(x, t).backward()
    assert x.grad.dtype == dtype and bool(torch.isfinite(x.grad).all())
    xb = torch.randn(32).to(dtype).requires_grad_()
    binary_focal_loss_with_logits(xb, (xb.detach() > 0).to(dtype), alpha=0.25).backward()
    assert xb.grad.dtype == dtype and bool(torch.isfinite(xb.grad).all())
    ref = torch.randn(32).to(dtype)  # half-precision result close to the float32 one
    y = (ref > 0).to(dtype)
    torch.testing.assert_close(
        binary_focal_loss_with_logits(ref, y).float(),
        binary_focal_loss_with_logits(ref.float(), y.float()),
        rtol=1e-2,
        atol=1e-3,
    )


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
def test_per_element_losses_can_be_modified_in_place(seed, gamma):
    """reduction="none" returns fresh tensors, not views made inside the autograd Function."""
    x = torch.randn(8, 3, requires_grad=True)
    t = torch.randint(0, 3, (8,))
    w = torch.rand(8)
    loss = focal_loss(x, t, gamma=gamma, alpha=[0.2, 0.3, 0.5], reduction="none")
    assert loss._base is None
    loss.mul_(w).sum().backward()
    (expected,) = torch.autograd.grad(
        (focal_loss(x, t, gamma=gamma, alpha=[0.2, 0.3, 0.5], reduction="none") * w).sum(), x
    )
    torch.testing.assert_close(x.grad, expected)
    xb = torch.randn(8, 3, requires_grad=True)
    yb = (torch.rand(8, 3) < 0.5).float()
    loss = binary_focal_loss_with_logits(xb, yb, gamma=gamma, alpha=0.25, reduction="none")
    assert loss._base is None
    loss.mul_(2.0).sum().backward()
    (expected,) = torch.autograd.grad(
        binary_focal_loss_with_logits(xb, yb, gamma=gamma, alpha=0.25, reduction="sum") * 2, xb
    )
    torch.testing.assert_close(xb.grad, expected)


def test_double_backward_raises_instead_of_a_silently_wrong_second_derivative(seed):
    x = torch.randn(6, 3, requires_grad=True)
    t = torch.randint(0, 3, (6,))
    (grad,) = torch.autograd.grad(focal_loss(x, t), x, create_graph=True)
    (plain,) = torch.autograd.grad(focal_loss(x, t), x)
    torch.testing.assert_close(grad, plain)
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad.sum().backward()
    scale = torch.tensor(2.0, requires_grad=True)  # an incoming gradient that requires grad
    (grad,) = torch.autograd.grad(focal_loss(x, t) * scale, x, create_graph=True)
    torch.testing.assert_close(grad, 2 * plain)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()
