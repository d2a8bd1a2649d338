"""The LDAM, logit-adjusted, poly-1 and asymmetric criteria delegate to their functions."""

import pickle

import numpy as np
import pytest
import torch

from skfocal.losses import (
    BinaryAsymmetricLoss,
    BinaryLDAMLoss,
    BinaryLogitAdjustedLoss,
    BinaryPoly1Loss,
    LDAMLoss,
    LogitAdjustedLoss,
    Poly1Loss,
    binary_asymmetric_loss_with_logits,
    binary_ldam_loss_with_logits,
    binary_logit_adjusted_loss_with_logits,
    binary_poly1_loss_with_logits,
    ldam_loss,
    ldam_margins,
    logit_adjusted_loss,
    poly1_loss,
)

MULTICLASS = [
    (LDAMLoss, ldam_loss, {"margins": [0.1, 0.3, 0.5]}),
    (
        LDAMLoss,
        ldam_loss,
        {"margins": [0.5, 0.2, 0.1], "scale": 5.0, "alpha": [1.0, 2.0, 0.5], "ignore_index": 1},
    ),
    (LogitAdjustedLoss, logit_adjusted_loss, {"prior": [700, 200, 100]}),
    (
        LogitAdjustedLoss,
        logit_adjusted_loss,
        {"prior": [0.5, 0.3, 0.2], "tau": 2.0, "reduction": "none"},
    ),
    (Poly1Loss, poly1_loss, {"epsilon": 2.0}),
    (Poly1Loss, poly1_loss, {"epsilon": -1.0, "gamma": 2.0, "alpha": [0.2, 0.3, 0.5]}),
]
BINARY = [
    (BinaryLDAMLoss, binary_ldam_loss_with_logits, {"margins": [0.1, 0.4], "scale": 3.0}),
    (
        BinaryLDAMLoss,
        binary_ldam_loss_with_logits,
        {"margins": [[0.1, 0.2, 0.0], [0.4, 0.1, 0.3]], "pos_weight": [1.0, 2.0, 3.0]},
    ),
    (BinaryLogitAdjustedLoss, binary_logit_adjusted_loss_with_logits, {"prior": 0.1}),
    (
        BinaryLogitAdjustedLoss,
        binary_logit_adjusted_loss_with_logits,
        {"prior": [0.1, 0.5, 0.8], "tau": 0.5, "alpha": 0.3, "reduction": "sum"},
    ),
    (BinaryPoly1Loss, binary_poly1_loss_with_logits, {"epsilon": 1.0, "gamma": 1.0}),
    (BinaryAsymmetricLoss, binary_asymmetric_loss_with_logits, {}),
    (
        BinaryAsymmetricLoss,
        binary_asymmetric_loss_with_logits,
        {"gamma_pos": 0.0, "gamma_neg": 2.0, "clip": 0.1, "alpha": [0.2, 0.4, 0.6]},
    ),
]


def _as_fn_kwargs(kwargs):
    out = dict(kwargs)
    if "pos_weight" in out:
        out["pos_weight"] = torch.tensor(out["pos_weight"])
    return out


@pytest.mark.parametrize(("cls", "fn", "kwargs"), MULTICLASS)
def test_module_equals_function_multiclass(seed, cls, fn, kwargs):
    x = torch.randn(16, 3, requires_grad=True)
    t = torch.randint(0, 3, (16,))
    ours = cls(**kwargs)(x, t)
    ref = fn(x, t, **_as_fn_kwargs(kwargs))
    torch.testing.assert_close(ours, ref)
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g_ours, g_ref)


@pytest.mark.parametrize(("cls", "fn", "kwargs"), BINARY)
def test_module_equals_function_binary(seed, cls, fn, kwargs):
    x = torch.randn(16, 3, requires_grad=True)
    y = (torch.rand(16, 3) < 0.3).float()
    ours = cls(**kwargs)(x, y)
    ref = fn(x, y, **_as_fn_kwargs(kwargs))
    torch.testing.assert_close(ours, ref)
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g_ours, g_ref)


def test_tensor_hyperparameters_are_buffers():
    loss = LDAMLoss(margins=[0.1, 0.2], alpha=[1.0, 3.0])
    assert set(dict(loss.named_buffers())) == {"margins", "alpha"}
    torch.testing.assert_close(loss.state_dict()["margins"], torch.tensor([0.1, 0.2]))
    assert set(dict(LogitAdjustedLoss(prior=[3, 1]).named_buffers())) == {"prior"}
    binary = BinaryLogitAdjustedLoss(prior=0.2, pos_weight=2.0)
    assert binary.prior == 0.2 and set(dict(binary.named_buffers())) == {"pos_weight"}
    assert set(dict(BinaryLogitAdjustedLoss(prior=[0.2, 0.3]).named_buffers())) == {"prior"}
    assert dict(Poly1Loss().named_buffers()) == {}
    assert dict(BinaryAsymmetricLoss().named_buffers()) == {}


def test_from_class_counts_uses_ldam_margins():
    counts = [900, 90, 10]
    loss = LDAMLoss.from_class_counts(counts, max_margin=0.7, scale=4.0, alpha=[1, 1, 2])
    torch.testing.assert_close(loss.margins, ldam_margins(counts, 0.7).float())
    assert loss.scale == 4.0


@pytest.mark.parametrize(
    "loss",
    [
        LDAMLoss(margins=[0.1, 0.2, 0.3], alpha=np.array([0.5, 1.0, 2.0])),
        LogitAdjustedLoss(prior=[5, 3, 2], tau=1.5),
        Poly1Loss(epsilon=-0.5, gamma=2.0),
    ],
)
def test_modules_pickle_and_keep_behaviour(seed, loss):
    x = torch.randn(8, 3)
    t = torch.randint(0, 3, (8,))
    clone = pickle.loads(pickle.dumps(loss))
    torch.testing.assert_close(clone(x, t), loss(x, t))


def test_repr_names_hyperparameters():
    assert repr(Poly1Loss(epsilon=-1.0, gamma=2.0)) == (
        "Poly1Loss(epsilon=-1.0, gamma=2.0, alpha=None, reduction='mean', ignore_index=-100)"
    )
    assert repr(BinaryAsymmetricLoss(clip=0.0, alpha=0.3)) == (
        "BinaryAsymmetricLoss(gamma_pos=1.0, gamma_neg=4.0, clip=0.0, alpha=0.3, reduction='mean')"
    )
    assert "margins=[0.5, 0.25], scale=30.0" in repr(LDAMLoss(margins=[0.5, 0.25]))
    assert "prior=0.25, tau=1.0" in repr(BinaryLogitAdjustedLoss(prior=0.25))


def test_double_input_uses_buffers_in_input_dtype(seed):
    x = torch.randn(8, 2, dtype=torch.float64)
    t = torch.randint(0, 2, (8,))
    assert LDAMLoss(margins=[0.2, 0.4])(x, t).dtype == torch.float64
    assert LogitAdjustedLoss(prior=[0.3, 0.7])(x, t).dtype == torch.float64
    y = (torch.rand(8, 2) < 0.5).double()
    assert BinaryLDAMLoss(margins=[[0.1, 0.2], [0.3, 0.4]])(x, y).dtype == torch.float64


@pytest.mark.parametrize(
    ("build", "exc", "match"),
    [
        (
            lambda: LDAMLoss(margins=[0.1, -0.1]),
            ValueError,
            r"margins must be .* got \[0.1, -0.1\]",
        ),
        (lambda: LDAMLoss(margins=[0.1], scale=0), ValueError, r"scale must be a finite float > 0"),
        (lambda: LDAMLoss(margins=[0.1], reduction="avg"), ValueError, r"reduction must be one of"),
        (lambda: BinaryLDAMLoss(margins=[0.1]), ValueError, r"margins must be finite margins"),
        (lambda: LogitAdjustedLoss(prior=[1, 0]), ValueError, r"prior must be .* got \[1.0, 0.0\]"),
        (lambda: LogitAdjustedLoss(prior=[1, 1], tau=-1), ValueError, r"tau must be a finite"),
        (lambda: BinaryLogitAdjustedLoss(prior=0.0), ValueError, r"prior must be a float or a"),
        (lambda: Poly1Loss(epsilon=-2), ValueError, r"epsilon must be a finite float >= -1"),
        (lambda: BinaryPoly1Loss(gamma=-1), ValueError, r"gamma must be a finite float >= 0"),
        (lambda: BinaryAsymmetricLoss(clip=1.5), ValueError, r"clip must be a float in \[0, 1\)"),
        (lambda: BinaryAsymmetricLoss(gamma_neg=-4), ValueError, r"gamma_neg must be a finite"),
        (lambda: BinaryAsymmetricLoss(alpha=[0.5, 2.0]), ValueError, r"each entry must lie in"),
    ],
)
def test_hyperparameters_validated_at_construction(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_usable_as_skorch_criterion_with_cosine_mlp(seed):
    """A drop-in criterion: skorch builds it from criterion__* parameters."""
    from skorch import NeuralNetClassifier

    from skfocal._module import MLP

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0.8).astype(np.int64)
    net = NeuralNetClassifier(
        MLP(4, 2, hidden_layer_sizes=(8,), output_layer="cosine"),
        criterion=LDAMLoss,
        criterion__margins=ldam_margins(np.bincount(y)),
        criterion__scale=30.0,
        max_epochs=3,
        train_split=None,
        verbose=0,
        predict_nonlinearity=torch.nn.Softmax(dim=-1),
    )
    net.fit(X, y)
    assert isinstance(net.criterion_, LDAMLoss) and net.criterion_.scale == 30.0
    assert all(np.isfinite(net.history[:, "train_loss"]))


@pytest.mark.gpu
def test_modules_move_to_cuda(seed):
    loss = LDAMLoss(margins=[0.1, 0.5], alpha=[0.3, 0.7]).cuda()
    x = torch.randn(8, 2, device="cuda")
    t = torch.randint(0, 2, (8,), device="cuda")
    assert loss.margins.device.type == "cuda"
    torch.testing.assert_close(
        loss(x, t).cpu(), LDAMLoss(margins=[0.1, 0.5], alpha=[0.3, 0.7])(x.cpu(), t.cpu())
    )
    binary = BinaryAsymmetricLoss(alpha=0.3).cuda()
    xb = torch.randn(8, 3, device="cuda")
    yb = (torch.rand(8, 3, device="cuda") < 0.5).float()
    torch.testing.assert_close(
        binary(xb, yb).cpu(), BinaryAsymmetricLoss(alpha=0.3)(xb.cpu(), yb.cpu())
    )
