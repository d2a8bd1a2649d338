"""StackedLoss: every member's per-sample loss and gradient equal skfocal.losses' own."""

import pytest
import torch
import torch.nn.functional as F

from skfocal._engines._stacked import MemberLoss, StackedLoss

N_CLASSES = 3


def _alpha(task, m):
    if task == "multiclass":
        return [[0.2, 0.5, 0.3], [1.0, 2.0, 3.0], None, [0.5, 0.5, 1.0]][m % 4]
    if task == "multilabel":
        return [None, 0.25, [0.1, 0.5, 0.9], 0.75][m % 4]
    return [None, 0.25, 0.75, 0.5][m % 4]


def _pos_weight(task, m):
    if task == "binary":
        return [None, 3.0][m % 2]
    if task == "multilabel":
        return [None, [1.0, 2.0, 4.0]][m % 2]
    return None


CONFIGS = {
    "shared gamma, unweighted": lambda task: [MemberLoss(gamma=1.5) for _ in range(3)],
    "shared hard margin, unweighted": lambda task: [MemberLoss("margin") for _ in range(3)],
    "shared gamma": lambda task: [
        MemberLoss(gamma=2.0, alpha=_alpha(task, m), pos_weight=_pos_weight(task, m))
        for m in range(4)
    ],
    "cross-entropy": lambda task: [
        MemberLoss("cross_entropy", alpha=_alpha(task, m), pos_weight=_pos_weight(task, m))
        for m in range(4)
    ],
    "per-member gamma": lambda task: [
        MemberLoss(gamma=g, alpha=_alpha(task, m), pos_weight=_pos_weight(task, m))
        for m, g in enumerate([0.0, 0.5, 2.0, 3.3])
    ],
    "shared soft margin": lambda task: [
        MemberLoss("margin", margin=0.7, softness=2.0, alpha=_alpha(task, m)) for m in range(3)
    ],
    "per-member hard margin": lambda task: [
        MemberLoss("margin", margin=mg, alpha=_alpha(task, m))
        for m, mg in enumerate([0.3, 0.6, 0.9])
    ],
    "mixed kinds": lambda task: [
        MemberLoss("cross_entropy"),
        MemberLoss("margin", margin=0.7),
        MemberLoss(gamma=1.5, alpha=_alpha(task, 1), pos_weight=_pos_weight(task, 1)),
        MemberLoss("margin", margin=0.55, softness=2.0, alpha=_alpha(task, 2)),
        MemberLoss("margin", margin=0.6, softness=0.5, pos_weight=_pos_weight(task, 1)),
        MemberLoss("margin", margin=0.3),
        MemberLoss(gamma=0.25),
    ],
}


def _data(task, n_members, batch=9, scale=3.0, dtype=torch.float64, generator=None):
    if task == "binary":
        x = torch.randn(n_members, batch, dtype=dtype, generator=generator) * scale
        t = torch.randint(0, 2, (n_members, batch), generator=generator).to(dtype)
    elif task == "multiclass":
        x = torch.randn(n_members, batch, N_CLASSES, dtype=dtype, generator=generator) * scale
        t = torch.randint(0, N_CLASSES, (n_members, batch), generator=generator)
    else:
        x = torch.randn(n_members, batch, N_CLASSES, dtype=dtype, generator=generator) * scale
        t = torch.randint(0, 2, (n_members, batch, N_CLASSES), generator=generator).to(dtype)
    return x.requires_grad_(True), t


def _n_outputs(task):
    return 1 if task == "binary" else N_CLASSES


# logits of scale 3 stay where skfocal.losses is accurate to float64 rounding; at scale 30 its
# sigmoid paths lose up to ~exp(-20) relative (F.softplus switches to the identity above 20 and
# log(1 - p) = log p - x cancels), which bounds the agreement there
TOLERANCE = {3.0: {"rtol": 1e-10, "atol": 1e-12}, 30.0: {"rtol": 1e-8, "atol": 1e-10}}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("scale", list(TOLERANCE))
def test_value_and_gradient_equal_each_members_loss(task, config, scale, seed):
    specs = CONFIGS[config](task)
    x, t = _data(task, len(specs), scale=scale)
    loss = StackedLoss(task, specs, _n_outputs(task), dtype=torch.float64)
    out = loss(x, t)
    assert out.shape == (len(specs), 9)
    r = torch.randn(out.shape, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * r).sum(), x)
    for m, spec in enumerate(specs):
        xm = x[m].detach().clone().requires_grad_(True)
        ref = spec.per_sample(task, xm, t[m])
        (ref_grad,) = torch.autograd.grad((ref * r[m]).sum(), xm)
        torch.testing.assert_close(out[m], ref, **TOLERANCE[scale])
        torch.testing.assert_close(grad[m], ref_grad, **TOLERANCE[scale])


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("config", ["shared gamma", "shared gamma, unweighted"])
def test_shared_fast_path_equals_general_path(task, config, seed):
    specs = CONFIGS[config](task)
    x, t = _data(task, len(specs))
    loss = StackedLoss(task, specs, _n_outputs(task), dtype=torch.float64)
    assert loss.groups[0].shared
    fast = loss(x, t)
    (fast_grad,) = torch.autograd.grad(fast.sum(), x)
    loss.groups[0].shared = False  # force the stacked autograd function
    general = loss(x, t)
    (general_grad,) = torch.autograd.grad(general.sum(), x)
    torch.testing.assert_close(fast, general, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fast_grad, general_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_gradcheck_of_the_stacked_functions(task, seed):
    specs = CONFIGS["mixed kinds"](task)
    specs = [s for s in specs if not (s.loss == "margin" and s.softness is None)]  # a step
    x, t = _data(task, len(specs), batch=3, scale=2.0)
    loss = StackedLoss(task, specs, _n_outputs(task), dtype=torch.float64)
    assert not any(g.shared for g in loss.groups if len(g.members) > 1)
    assert torch.autograd.gradcheck(lambda inp: loss(inp, t), (x,))


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_at_extreme_logits(task, dtype, seed):
    specs = CONFIGS["mixed kinds"](task) + [MemberLoss(gamma=g) for g in (0.1, 0.9, 1.0)]
    x, t = _data(task, len(specs), scale=1e4, dtype=dtype)
    out = StackedLoss(task, specs, _n_outputs(task), dtype=dtype)(x, t)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_gamma_zero_is_cross_entropy(task, seed):
    specs = [MemberLoss(gamma=0.5), MemberLoss(gamma=0.0)]  # general path, gamma=0 member
    x, t = _data(task, 2)
    out = StackedLoss(task, specs, _n_outputs(task), dtype=torch.float64)(x, t)
    (grad,) = torch.autograd.grad(out[1].sum(), x)
    xm = x[1].detach().clone().requires_grad_(True)
    if task == "binary":
        ref = F.binary_cross_entropy_with_logits(xm, t[1], reduction="none")
    else:
        ref = F.cross_entropy(xm, t[1], reduction="none")
    (ref_grad,) = torch.autograd.grad(ref.sum(), xm)
    torch.testing.assert_close(out[1], ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad[1], ref_grad, rtol=1e-12, atol=1e-14)
    assert not grad[0].any()


@pytest.mark.parametrize("task", ["binary", "multilabel"])
@pytest.mark.parametrize("config", ["shared gamma", "per-member gamma", "mixed kinds"])
def test_soft_labels_of_sigmoid_losses(task, config, seed):
    specs = CONFIGS[config](task)
    x, t = _data(task, len(specs))
    t = torch.rand(t.shape, dtype=torch.float64)
    out = StackedLoss(task, specs, _n_outputs(task), dtype=torch.float64)(x, t)
    (grad,) = torch.autograd.grad(out.sum(), x)
    for m, spec in enumerate(specs):
        xm = x[m].detach().clone().requires_grad_(True)
        ref = spec.per_sample(task, xm, t[m])
        (ref_grad,) = torch.autograd.grad(ref.sum(), xm)
        torch.testing.assert_close(out[m], ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad[m], ref_grad, rtol=1e-10, atol=1e-12)


def test_binary_accepts_a_trailing_logit_dimension(seed):
    specs = CONFIGS["per-member gamma"]("binary")
    x, t = _data("binary", len(specs))
    loss = StackedLoss("binary", specs, 1, dtype=torch.float64)
    torch.testing.assert_close(loss(x.unsqueeze(-1), t), loss(x, t), rtol=0, atol=0)


def test_member_loss_per_sample_reference():
    spec = MemberLoss("margin", margin=0.5, softness=1.0)
    logits, target = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    # soft margin with m = 1/2 and K = 1 is the focal loss with gamma = 1
    torch.testing.assert_close(
        spec.per_sample("multiclass", logits, target),
        MemberLoss(gamma=1.0).per_sample("multiclass", logits, target),
    )
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    per_label = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    torch.testing.assert_close(
        MemberLoss("cross_entropy").per_sample("multilabel", logits, labels), per_label.mean(1)
    )


def test_errors():
    with pytest.raises(ValueError, match=r"task must be one of \('binary', 'multiclass', "):
        StackedLoss("regression", [MemberLoss()], 1)
    with pytest.raises(ValueError, match="at least one MemberLoss, got an empty sequence"):
        StackedLoss("binary", [], 1)
    with pytest.raises(ValueError, match="n_outputs must be 1 for task='binary', got 2"):
        StackedLoss("binary", [MemberLoss()], 2)
    with pytest.raises(ValueError, match="n_outputs must be a positive int for task='multiclass'"):
        StackedLoss("multiclass", [MemberLoss()], 0)
    with pytest.raises(TypeError, match=r"members\[0\] must be a MemberLoss, got dict"):
        StackedLoss("binary", [{"gamma": 2.0}], 1)
    with pytest.raises(ValueError, match=r"members\[1\].loss must be one of .*got 'hinge'"):
        StackedLoss("binary", [MemberLoss(), MemberLoss("hinge")], 1)
    with pytest.raises(ValueError, match="gamma must be a finite float >= 0, got -1.0"):
        StackedLoss("binary", [MemberLoss(gamma=-1.0)], 1)
    with pytest.raises(ValueError, match=r"margin must be a float in the open interval \(0, 1\)"):
        StackedLoss("binary", [MemberLoss("margin", margin=1.5)], 1)
    with pytest.raises(ValueError, match="softness must be None or a finite float >= 0"):
        StackedLoss("binary", [MemberLoss("margin", softness=-2.0)], 1)
    with pytest.raises(ValueError, match=r"members\[0\].pos_weight must be None for a multiclass"):
        StackedLoss("multiclass", [MemberLoss(pos_weight=2.0)], 3)
    with pytest.raises(ValueError, match="alpha must have one weight per class: expected length 3"):
        StackedLoss("multiclass", [MemberLoss(alpha=[1.0, 2.0])], 3)
    with pytest.raises(ValueError, match=r"members\[0\].pos_weight must be a float or 3 finite"):
        StackedLoss("multilabel", [MemberLoss(pos_weight=[1.0, 2.0])], 3)
    loss = StackedLoss("multiclass", [MemberLoss()] * 2, 3)
    with pytest.raises(ValueError, match=r"input must have shape \(M, B, 3\) with M=2 members"):
        loss(torch.zeros(2, 4, 2), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target must have shape \(2, 4\) for input of shape"):
        loss(torch.zeros(2, 4, 3), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"task must be one of"):
        MemberLoss().per_sample("ranking", torch.zeros(2), torch.zeros(2))
