"""Hypothesis property tests over shapes, gammas, alphas and logit scales."""

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from skfocal.losses import binary_focal_loss_with_logits, focal_loss, margin_loss

gammas = st.floats(min_value=0.0, max_value=5.0)
scales = st.sampled_from([1e-3, 1.0, 10.0, 1e3, 1e4])
dtypes = st.sampled_from([torch.float32, torch.float64])


@st.composite
def multiclass_batch(draw):
    n = draw(st.integers(1, 16))
    c = draw(st.integers(2, 6))
    extra = draw(st.lists(st.integers(1, 3), max_size=2))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    dtype = draw(dtypes)
    x = torch.randn(n, c, *extra, generator=gen, dtype=dtype) * draw(scales)
    t = torch.randint(0, c, (n, *extra), generator=gen)
    alpha = draw(st.none() | st.lists(st.floats(0.0, 3.0), min_size=c, max_size=c))
    return x, t, alpha


@settings(max_examples=60, deadline=None)
@given(batch=multiclass_batch(), gamma=gammas)
def test_focal_is_finite_nonnegative_and_below_weighted_ce(batch, gamma):
    x, t, alpha = batch
    x = x.requires_grad_()
    loss = focal_loss(x, t, gamma=gamma, alpha=alpha, reduction="none")
    weight = None if alpha is None else torch.tensor(alpha, dtype=x.dtype)
    ce = F.cross_entropy(x, t, weight=weight, reduction="none")
    assert bool(torch.isfinite(loss).all())
    assert bool((loss >= 0).all())
    assert bool((loss <= ce * (1 + 1e-5) + 1e-6).all())
    loss.sum().backward()
    assert bool(torch.isfinite(x.grad).all())


@settings(max_examples=60, deadline=None)
@given(batch=multiclass_batch(), gamma=gammas)
def test_focal_decreases_with_gamma(batch, gamma):
    x, t, alpha = batch
    low = focal_loss(x, t, gamma=gamma, alpha=alpha, reduction="none")
    high = focal_loss(x, t, gamma=gamma + 0.5, alpha=alpha, reduction="none")
    assert bool((high <= low * (1 + 1e-5) + 1e-6).all())


@settings(max_examples=60, deadline=None)
@given(
    batch=multiclass_batch(),
    margin=st.floats(0.01, 0.99),
    softness=st.none() | st.floats(0.0, 20.0),
)
def test_margin_is_finite_and_below_ce(batch, margin, softness):
    x, t, alpha = batch
    x = x.requires_grad_()
    loss = margin_loss(x, t, margin=margin, softness=softness, alpha=alpha, reduction="none")
    weight = None if alpha is None else torch.tensor(alpha, dtype=x.dtype)
    ce = F.cross_entropy(x, t, weight=weight, reduction="none")
    assert bool(torch.isfinite(loss).all()) and bool((loss >= 0).all())
    assert bool((loss <= ce * (1 + 1e-5) + 1e-6).all())
    loss.sum().backward()
    assert bool(torch.isfinite(x.grad).all())


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 8), min_size=1, max_size=3),
    gamma=gammas,
    scale=scales,
    dtype=dtypes,
    alpha=st.none() | st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_binary_is_finite_and_below_bce(shape, gamma, scale, dtype, alpha, seed):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(*shape, generator=gen, dtype=dtype) * scale).requires_grad_()
    y = (torch.rand(*shape, generator=gen) < 0.3).to(dtype)
    loss = binary_focal_loss_with_logits(x, y, gamma=gamma, alpha=alpha, reduction="none")
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    weight = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    assert bool(torch.isfinite(loss).all()) and bool((loss >= 0).all())
    assert bool((loss <= bce * weight * (1 + 1e-5) + 1e-6).all())
    loss.sum().backward()
    assert bool(torch.isfinite(x.grad).all())
