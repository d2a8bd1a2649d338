"""The stacked forms' machinery (skfocal/losses/_stacked.py, and the focal loss's own sigmoid
form): a kernel evaluated with hyperparameters as per-member columns. StackedLoss, which
groups members and calls them, is tested in tests/engines/stacked/test_losses.py."""

import torch

from skfocal.losses import binary_focal_loss_with_logits, focal_loss
from skfocal.losses._focal import _stacked_sigmoid as stacked_sigmoid_focal
from skfocal.losses._fused import run
from skfocal.losses._kernels import bind_focal
from skfocal.losses._stacked import _StackedSoftmaxLoss, stacked_sigmoid


def test_stacked_forms_of_one_member_equal_the_functions(seed):
    """The stacked forms' per-element losses (a kernel with hyperparameters as columns: here
    one member) equal the functions', with a gradient gradcheck confirms."""
    x = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (9,))
    w = torch.rand(9, dtype=torch.float64)
    kernel = bind_focal(2.0)
    per_element = _StackedSoftmaxLoss.apply(x, t, w, kernel)
    torch.testing.assert_close(per_element, focal_loss(x, t, reduction="none") * w)
    assert torch.autograd.gradcheck(lambda z: _StackedSoftmaxLoss.apply(z, t, w, kernel), (x,))
    xb = torch.randn(9, dtype=torch.float64, requires_grad=True)
    yb = (torch.rand(9) < 0.5).double()
    expected = binary_focal_loss_with_logits(xb, yb, alpha=0.25, reduction="none")
    torch.testing.assert_close(run(stacked_sigmoid_focal, xb, yb, 2.0, 0.25, 0.75), expected)
    torch.testing.assert_close(run(stacked_sigmoid, xb, yb, 0.25, 0.75, kernel), expected)
    assert torch.autograd.gradcheck(
        lambda z: run(stacked_sigmoid, z, yb, 0.25, 0.75, kernel), (xb,)
    )
    assert torch.autograd.gradcheck(
        lambda z: run(stacked_sigmoid_focal, z, yb, 2.0, None, None), (xb,)
    )
