"""Invariants of the LDAM losses (skfocal/losses/_ldam.py)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skfocal.losses import LDAMLoss, binary_ldam_loss_with_logits, ldam_loss, ldam_margins

REDUCTIONS = ["mean", "sum", "none"]


def _value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


class _ReferenceLDAMLoss(torch.nn.Module):
    """kaidic/LDAM-DRW losses.py LDAMLoss, verbatim except device (CPU) and dtype (float64)."""

    def __init__(self, cls_num_list, max_m=0.5, weight=None, s=30):
        super().__init__()
        m_list = 1.0 / np.sqrt(np.sqrt(cls_num_list))
        m_list = m_list * (max_m / np.max(m_list))
        m_list = torch.tensor(m_list, dtype=torch.float64)
        self.m_list = m_list
        assert s > 0
        self.s = s
        self.weight = weight

    def forward(self, x, target):
        index = torch.zeros_like(x, dtype=torch.uint8)
        index.scatter_(1, target.data.view(-1, 1), 1)
        index_float = index.type(torch.float64)
        batch_m = torch.matmul(self.m_list[None, :], index_float.transpose(0, 1))
        batch_m = batch_m.view((-1, 1))
        x_m = x - batch_m
        output = torch.where(index.bool(), x_m, x)
        return F.cross_entropy(self.s * output, target, weight=self.weight)


COUNTS = [500, 120, 30, 7]


@pytest.mark.parametrize("s", [1.0, 30.0])
@pytest.mark.parametrize("max_m", [0.5, 1.5])
@pytest.mark.parametrize("with_weight", [False, True])
def test_equals_reference_in_value_and_gradient(seed, s, max_m, with_weight):
    x = torch.randn(64, 4, dtype=torch.float64) * 0.5
    t = torch.randint(0, 4, (64,))
    weight = torch.rand(4, dtype=torch.float64) + 0.2 if with_weight else None
    reference = _ReferenceLDAMLoss(COUNTS, max_m=max_m, weight=weight, s=s)
    ours = _value_and_grad(
        lambda z: ldam_loss(z, t, margins=ldam_margins(COUNTS, max_m), scale=s, alpha=weight),
        x,
    )
    ref = _value_and_grad(lambda z: reference(z, t), x)
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours[1], ref[1], rtol=1e-12, atol=1e-12)


def test_margins_equal_reference_m_list():
    m_list = 1.0 / np.sqrt(np.sqrt(COUNTS))
    m_list = m_list * (0.5 / np.max(m_list))
    np.testing.assert_allclose(ldam_margins(COUNTS).numpy(), m_list, rtol=1e-15)
    assert ldam_margins(COUNTS).dtype == torch.float64
    assert float(ldam_margins(COUNTS, 0.7).max()) == pytest.approx(0.7)
    assert torch.equal(ldam_margins(COUNTS, 0.0), torch.zeros(4, dtype=torch.float64))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_alpha", [False, True])
@pytest.mark.parametrize("shape", [(37, 4), (5, 3, 6), (4, 6, 3, 2)])
def test_neutral_setting_equals_cross_entropy(seed, reduction, with_alpha, shape):
    x = torch.randn(*shape, dtype=torch.float64) * 3
    t = torch.randint(0, shape[1], (shape[0],) + shape[2:])
    t.view(-1)[::7] = -100
    alpha = torch.rand(shape[1], dtype=torch.float64) + 0.1 if with_alpha else None
    zeros = torch.zeros(shape[1])
    ours = _value_and_grad(
        lambda z: ldam_loss(z, t, margins=zeros, scale=1.0, alpha=alpha, reduction=reduction), x
    )
    ref = _value_and_grad(lambda z: F.cross_entropy(z, t, weight=alpha, reduction=reduction), x)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("shape", [(20, 3), (4, 3, 5)])
def test_is_cross_entropy_of_shifted_scaled_logits(seed, shape):
    """Also for spatial inputs: the margin of the true class is subtracted, then scaled."""
    x = torch.randn(*shape, dtype=torch.float64)
    t = torch.randint(0, 3, (shape[0],) + shape[2:])
    margins = torch.tensor([0.1, 0.4, 0.9], dtype=torch.float64)
    onehot = F.one_hot(t, 3).movedim(-1, 1).to(x.dtype)
    view = (1, 3) + (1,) * (len(shape) - 2)
    expected = F.cross_entropy(7.0 * (x - onehot * margins.view(view)), t, reduction="none")
    torch.testing.assert_close(
        ldam_loss(x, t, margins=margins, scale=7.0, reduction="none"), expected
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ignore_index_and_mean_divides_by_alpha_t(seed, reduction):
    x = torch.randn(30, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (30,))
    t[::4] = 2
    alpha = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    margins = [0.3, 0.2, 0.1]
    kwargs = {"margins": margins, "scale": 5.0, "alpha": alpha, "ignore_index": 2}
    loss = _value_and_grad(lambda z: ldam_loss(z, t, reduction=reduction, **kwargs), x)
    per = ldam_loss(x, t, reduction="none", **kwargs)
    keep = t != 2
    assert bool((per[~keep] == 0).all())
    if reduction == "mean":
        torch.testing.assert_close(loss[0], per.sum() / alpha[t[keep]].sum())
    elif reduction == "sum":
        torch.testing.assert_close(loss[0], per.sum())
    assert bool((loss[1][~keep] == 0).all())


def test_unbatched_input(seed):
    x = torch.randn(4, dtype=torch.float64)
    t = torch.tensor(2)
    margins = [0.1, 0.2, 0.3, 0.4]
    for reduction in REDUCTIONS:
        ours = ldam_loss(x, t, margins=margins, scale=3.0, reduction=reduction)
        batched = ldam_loss(x[None], t[None], margins=margins, scale=3.0, reduction=reduction)
        assert ours.shape == F.cross_entropy(x, t, reduction=reduction).shape
        torch.testing.assert_close(ours, batched.reshape(ours.shape))


def test_margins_make_the_true_class_harder(seed):
    x = torch.randn(50, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (50,))
    plain = ldam_loss(x, t, margins=[0.0] * 3, scale=2.0, reduction="none")
    wider = ldam_loss(x, t, margins=[0.2, 0.5, 1.0], scale=2.0, reduction="none")
    assert bool((wider > plain).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e3])
@pytest.mark.parametrize("max_margin", [0.0, 0.5, 50.0])
def test_finite_at_extreme_logits_and_hyperparameters(seed, dtype, scale, max_margin):
    margins = ldam_margins([1e6, 10, 1], max_margin)
    x = (torch.randn(128, 3, dtype=dtype) * 1e4).requires_grad_()
    t = torch.randint(0, 3, (128,))
    t[:32] = x[:32].argmax(dim=1)
    loss = ldam_loss(x, t, margins=margins, scale=scale)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(x.grad).all())
    xb = (torch.randn(128, dtype=dtype) * 1e4).requires_grad_()
    yb = (xb.detach() > 0).to(dtype)
    yb[:32] = 1 - yb[:32]
    loss = binary_ldam_loss_with_logits(xb, yb, margins=margins[1:], scale=scale, alpha=0.3)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(xb.grad).all())


def test_finite_forward_in_bfloat16(seed):
    x = (torch.randn(64, 3) * 1e3).to(torch.bfloat16)
    t = torch.randint(0, 3, (64,))
    out = ldam_loss(x, t, margins=[0.1, 0.3, 0.5])
    assert out.dtype == torch.bfloat16 and torch.isfinite(out)
    out = binary_ldam_loss_with_logits(x[:, 0], (x[:, 1] > 0).to(x.dtype), margins=[0.1, 0.3])
    assert out.dtype == torch.bfloat16 and torch.isfinite(out)


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_gradcheck(seed, scale):
    x = torch.randn(10, 4, dtype=torch.float64, requires_grad=True) * 0.1
    t = torch.randint(0, 4, (10,))
    t[0] = -100
    margins = ldam_margins(COUNTS)
    alpha = torch.rand(4, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda z: ldam_loss(z, t, margins=margins, scale=scale, alpha=alpha), (x,)
    )
    xs = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    ts = torch.randint(0, 3, (2, 4))
    assert torch.autograd.gradcheck(
        lambda z: ldam_loss(z, ts, margins=[0.1, 0.2, 0.3], scale=scale, reduction="none"), (xs,)
    )
    xb = torch.randn(12, dtype=torch.float64, requires_grad=True) * 0.1
    yb = (torch.rand(12) < 0.4).double()
    assert torch.autograd.gradcheck(
        lambda z: binary_ldam_loss_with_logits(
            z, yb, margins=[0.2, 0.6], scale=scale, alpha=0.3, pos_weight=torch.tensor(2.0)
        ),
        (xb,),
    )


# ---------------------------------------------------------------- one-logit binary form


@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("alpha", [None, 0.2])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_binary_equals_two_logit_form(seed, reduction, alpha, scale):
    """The one-logit form is the softmax form on logits (0, z) (value and gradient)."""
    z = torch.randn(40, dtype=torch.float64) * 0.5
    y = torch.randint(0, 2, (40,))
    margins = ldam_margins([900, 100])
    ours = _value_and_grad(
        lambda v: binary_ldam_loss_with_logits(
            v, y.double(), margins=margins, scale=scale, alpha=alpha, reduction=reduction
        ),
        z,
    )

    def two_logit(v):
        logits = torch.stack([torch.zeros_like(v), v], dim=1)
        return ldam_loss(logits, y, margins=margins, scale=scale, alpha=alpha, reduction=reduction)

    ref = _value_and_grad(two_logit, z)
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_binary_neutral_setting_equals_bce(seed, reduction, pos_weight):
    z = torch.randn(10, 3, dtype=torch.float64) * 3
    y = (torch.rand(10, 3) < 0.3).double()
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    ours = _value_and_grad(
        lambda v: binary_ldam_loss_with_logits(
            v, y, margins=[0.0, 0.0], scale=1.0, pos_weight=pw, reduction=reduction
        ),
        z,
    )
    ref = _value_and_grad(
        lambda v: F.binary_cross_entropy_with_logits(v, y, pos_weight=pw, reduction=reduction), z
    )
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])


def test_binary_per_label_margins_and_soft_labels(seed):
    z = torch.randn(8, 3, dtype=torch.float64)
    margins = torch.tensor([[0.1, 0.2, 0.0], [0.5, 0.3, 0.4]], dtype=torch.float64)
    scale = 4.0
    ones, zeros = torch.ones_like(z), torch.zeros_like(z)
    pos = binary_ldam_loss_with_logits(z, ones, margins=margins, scale=scale, reduction="none")
    neg = binary_ldam_loss_with_logits(z, zeros, margins=margins, scale=scale, reduction="none")
    torch.testing.assert_close(pos, F.softplus(-scale * (z - margins[1])))
    torch.testing.assert_close(neg, F.softplus(scale * (z + margins[0])))
    y = torch.rand(8, 3, dtype=torch.float64)
    soft = binary_ldam_loss_with_logits(z, y, margins=margins, scale=scale, reduction="none")
    torch.testing.assert_close(soft, y * pos + (1 - y) * neg)


def _stationary(m):
    """Perron vector of a positive column-stochastic matrix: M eta = eta, sum(eta) = 1."""
    n = m.shape[0]
    a = m - torch.eye(n, dtype=m.dtype)
    a[-1] = 1.0
    b = torch.zeros(n, dtype=m.dtype)
    b[-1] = 1.0
    return torch.linalg.solve(a, b)


def test_posterior_is_perron_vector_at_the_risk_minimiser(seed):
    """The Notes' inverse link: at argmin_z sum_y eta_y L(z, y), eta = M(z) eta."""
    eta = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    margins = torch.tensor([0.2, 0.8, 1.5], dtype=torch.float64)
    scale = 2.0
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [z], max_iter=500, tolerance_grad=1e-14, tolerance_change=0.0, line_search_fn="strong_wolfe"
    )

    def risk():
        optimizer.zero_grad()
        value = sum(
            eta[y] * ldam_loss(z, torch.tensor(y), margins=margins, scale=scale) for y in range(3)
        )
        value.backward()
        return value

    optimizer.step(risk)
    with torch.no_grad():
        m = torch.stack(
            [
                torch.softmax(scale * (z - margins[y] * F.one_hot(torch.tensor(y), 3)), 0)
                for y in range(3)
            ],
            dim=1,
        )
        torch.testing.assert_close(_stationary(m), eta, rtol=1e-7, atol=1e-7)
        assert not torch.allclose(torch.softmax(scale * z, 0), eta, atol=1e-2)
    # the explicit two-class form of binary_ldam_loss_with_logits' Notes
    eta1, (d0, d1), s = 0.2, (0.3, 0.1), 3.0
    zb = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [zb],
        max_iter=500,
        tolerance_grad=1e-14,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )

    def binary_risk():
        optimizer.zero_grad()
        value = eta1 * binary_ldam_loss_with_logits(
            zb, torch.tensor(1.0, dtype=torch.float64), margins=[d0, d1], scale=s
        ) + (1 - eta1) * binary_ldam_loss_with_logits(
            zb, torch.tensor(0.0, dtype=torch.float64), margins=[d0, d1], scale=s
        )
        value.backward()
        return value

    optimizer.step(binary_risk)
    with torch.no_grad():
        up, down = torch.sigmoid(s * (zb + d0)), torch.sigmoid(-s * (zb - d1))
        torch.testing.assert_close(float(up / (up + down)), eta1, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: ldam_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins=[0.1, 0.2]),
            ValueError,
            r"one margin per class: expected length 3, got length 2",
        ),
        (
            lambda: ldam_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins=[0.1, -0.2, 0.3]
            ),
            ValueError,
            r"margins must be .*finite per-class margins >= 0, got \[0.1, -0.2, 0.3\]",
        ),
        (
            lambda: ldam_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins=[0.1, float("nan"), 0.3]
            ),
            ValueError,
            r"margins must be .* got \[0.1, nan, 0.3\]",
        ),
        (
            lambda: ldam_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins=[[0.1, 0.2, 0.3]]
            ),
            ValueError,
            r"margins must be a one-dimensional sequence .* got \(1, 3\)",
        ),
        (
            lambda: ldam_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins="abc"),
            TypeError,
            r"margins must be a one-dimensional sequence .* got 'abc'",
        ),
        (
            lambda: ldam_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins=[0] * 3, scale=0
            ),
            ValueError,
            r"scale must be a finite float > 0, got 0.0",
        ),
        (
            lambda: ldam_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins=[0] * 3, scale=float("inf")
            ),
            ValueError,
            r"scale must be a finite float > 0, got inf",
        ),
        (
            lambda: ldam_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins=[0] * 3, scale="30"
            ),
            TypeError,
            r"scale must be a real number \(a finite float > 0\), got '30'",
        ),
        (
            lambda: ldam_loss(torch.randn(4, 3), torch.tensor([0, 1, 5, 1]), margins=[0] * 3),
            ValueError,
            r"target must hold class indices in \[0, 2\].*got 5",
        ),
        (
            lambda: ldam_loss(
                torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), margins=[0] * 3, reduction="avg"
            ),
            ValueError,
            r"reduction must be one of",
        ),
        (
            lambda: ldam_margins([10, 0, 3]),
            ValueError,
            r"class_counts must be a one-dimensional sequence of positive, finite class "
            r"counts, got \[10.0, 0.0, 3.0\]",
        ),
        (lambda: ldam_margins([]), ValueError, r"class_counts must be .* got \[\]"),
        (
            lambda: ldam_margins([10, 3], max_margin=-0.5),
            ValueError,
            r"max_margin must be a finite float >= 0, got -0.5",
        ),
        (
            lambda: binary_ldam_loss_with_logits(
                torch.randn(4), torch.ones(4), margins=[0.1, 0.2, 0.3]
            ),
            ValueError,
            r"margins must be finite margins >= 0 of shape \(2,\).* got shape \(3,\)",
        ),
        (
            lambda: binary_ldam_loss_with_logits(
                torch.randn(4, 3), torch.ones(4, 3), margins=torch.zeros(2, 2)
            ),
            ValueError,
            r"margins of shape \(2, L\) need one pair per label.*expected L = 3, "
            r"got shape \(2, 2\)",
        ),
        (
            lambda: binary_ldam_loss_with_logits(
                torch.randn(4), torch.ones(4), margins=[0.1, -1.0]
            ),
            ValueError,
            r"margins must be finite margins >= 0.* got \[0.1, -1.0\]",
        ),
        (
            lambda: binary_ldam_loss_with_logits(
                torch.randn(4), torch.ones(4), margins=[0.1, 0.1], scale=-1.0
            ),
            ValueError,
            r"scale must be a finite float > 0, got -1.0",
        ),
    ],
)
def test_bad_arguments_fail_fast(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_from_class_counts_uses_ldam_margins():
    counts = [900, 90, 10]
    loss = LDAMLoss.from_class_counts(counts, max_margin=0.7, scale=4.0, alpha=[1, 1, 2])
    torch.testing.assert_close(loss.margins, ldam_margins(counts, 0.7).float())
    assert loss.scale == 4.0
