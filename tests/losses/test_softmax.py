"""The fused softmax losses (skfocal/losses/_softmax.py): precision of the gradient."""

import pytest
import torch
import torch.nn.functional as F

from skfocal.losses import focal_loss

DTYPES = [torch.float32, torch.float64]
# relative error allowed against the float64 reference: a few ulp of the dtype
RTOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.7])
def test_softmax_gradient_is_exact_at_confident_samples(dtype, gamma):
    """The target column of softmax - onehot is p - 1 = expm1(log p): no 1 - p cancellation.

    The reference starts from ``log_softmax`` in the input's dtype (whose own rounding near
    p = 1 is torch's) and evaluates the gradient exactly from there, in float64.
    """
    x = torch.tensor([[12.0, 0.0, -3.0], [4.0, 0.0, 1.0], [-5.0, 2.0, 0.0]], dtype=dtype)
    t = torch.tensor([0, 0, 0])
    xg = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(focal_loss(xg, t, gamma=gamma, reduction="sum"), xg)
    logp = F.log_softmax(x, 1).double()
    ell = logp[:, 0]
    q = -torch.expm1(ell)
    d = q**gamma - gamma * q ** (gamma - 1) * ell.exp() * ell  # -d loss / d ell
    onehot = F.one_hot(t, 3).double()
    ref = d[:, None] * (logp.exp() - onehot)
    ref[:, 0] = d * torch.expm1(ell)
    torch.testing.assert_close(grad.double(), ref, rtol=RTOL[dtype] * 4, atol=0)
