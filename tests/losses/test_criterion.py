"""The nn.Module criteria (their base: skfocal/losses/_criterion.py).

Every module equals its function in value and gradient; hyperparameters are validated once and
kept as buffers; the cached weights follow changed buffers, dtypes, devices and batch sizes;
the modules pickle, print their hyperparameters and work as skorch criteria.
"""

import pickle

import numpy as np
import pytest
import torch

from skfocal.losses import (
    BinaryAsymmetricLoss,
    BinaryFocalLoss,
    BinaryLDAMLoss,
    BinaryLogitAdjustedLoss,
    BinaryMarginLoss,
    BinaryPoly1Loss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    MarginLoss,
    Poly1Loss,
    binary_asymmetric_loss_with_logits,
    binary_focal_loss_with_logits,
    binary_ldam_loss_with_logits,
    binary_logit_adjusted_loss_with_logits,
    binary_margin_loss_with_logits,
    binary_poly1_loss_with_logits,
    focal_loss,
    ldam_loss,
    ldam_margins,
    logit_adjusted_loss,
    margin_loss,
    poly1_loss,
)

MULTICLASS = [
    (FocalLoss, focal_loss, {"gamma": 0.5, "alpha": [0.2, 0.3, 0.5]}),
    (FocalLoss, focal_loss, {"gamma": 2.0, "reduction": "sum", "ignore_index": 1}),
    (MarginLoss, margin_loss, {"margin": 0.4, "softness": 2.0, "alpha": [1.0, 2.0, 3.0]}),
    (MarginLoss, margin_loss, {"margin": 0.7, "reduction": "none"}),
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
    (BinaryFocalLoss, binary_focal_loss_with_logits, {"gamma": 1.5, "alpha": 0.25}),
    (
        BinaryFocalLoss,
        binary_focal_loss_with_logits,
        {"pos_weight": [1.0, 5.0, 2.0], "reduction": "none"},
    ),
    (BinaryMarginLoss, binary_margin_loss_with_logits, {"margin": 0.3, "softness": 1.0}),
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


def _grad(loss, x):
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25, [0.3, 1.7]])
def test_module_lean_path_equals_function_in_value_and_gradient(seed, reduction, gamma, alpha):
    """The modules skip the per-call hyperparameter checks, nothing else."""
    x = torch.randn(32, 2, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 2, (32,))
    t[3] = -100
    kw = dict(gamma=gamma, alpha=alpha, reduction=reduction)
    mod, fn = FocalLoss(**kw)(x, t), focal_loss(x, t, **kw)
    torch.testing.assert_close(mod, fn)
    torch.testing.assert_close(_grad(mod, x), _grad(fn, x))
    y = (torch.rand(32, 2) < 0.3).double()
    pos_weight = torch.tensor([2.0, 0.5], dtype=torch.float64)
    kw["alpha"] = None if alpha is None else (0.25 if alpha == 0.25 else [0.3, 0.7])
    mod = BinaryFocalLoss(pos_weight=pos_weight, **kw)(x, y)
    fn = binary_focal_loss_with_logits(x, y, pos_weight=pos_weight, **kw)
    torch.testing.assert_close(mod, fn)
    torch.testing.assert_close(_grad(mod, x), _grad(fn, x))


@pytest.mark.parametrize("alpha", [None, 0.25, [0.25, 0.75]])
def test_estimator_usage_reduction_none_times_weights(seed, alpha):
    """FocalClassifier's use: reduction="none", times per-sample weights, mean."""
    x = torch.randn(64, requires_grad=True)
    y = (torch.rand(64) < 0.2).float()
    w = torch.rand(64)
    crit = BinaryFocalLoss(alpha=0.25 if alpha else None, pos_weight=torch.tensor([3.0]),
                           reduction="none")  # fmt: skip
    ours = (crit(x, y) * w).mean()
    ref = (
        binary_focal_loss_with_logits(
            x, y, alpha=0.25 if alpha else None, pos_weight=torch.tensor([3.0]), reduction="none"
        )
        * w
    ).mean()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(_grad(ours, x), _grad(ref, x))
    xm = torch.randn(64, 2, requires_grad=True)
    t = torch.randint(0, 2, (64,))
    ours = (FocalLoss(alpha=alpha, reduction="none")(xm, t) * w).mean()
    ref = (focal_loss(xm, t, alpha=alpha, reduction="none") * w).mean()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(_grad(ours, xm), _grad(ref, xm))


def test_cached_weights_follow_changed_buffers_dtype_and_device(seed):
    x = torch.randn(10, 2)
    y = (torch.rand(10, 2) < 0.5).float()
    crit = BinaryFocalLoss(alpha=[0.2, 0.6], pos_weight=[1.0, 4.0])
    before = crit(x, y)
    crit.pos_weight.mul_(2.0)  # in place: the buffer's version changes
    expected = binary_focal_loss_with_logits(
        x, y, alpha=[0.2, 0.6], pos_weight=torch.tensor([2.0, 8.0])
    )
    torch.testing.assert_close(crit(x, y), expected)
    assert not torch.allclose(before, expected)
    crit.pos_weight = torch.tensor([1.0, 1.0])  # a new tensor
    torch.testing.assert_close(crit(x, y), binary_focal_loss_with_logits(x, y, alpha=[0.2, 0.6]))
    crit.alpha = torch.tensor([0.5, 0.5])  # a new alpha
    torch.testing.assert_close(crit(x, y), binary_focal_loss_with_logits(x, y, alpha=0.5))
    out = crit(x.double(), y.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), crit(x, y))
    multi = FocalLoss(alpha=[0.5, 2.0])
    t = torch.randint(0, 2, (10,))
    multi(x, t)
    multi.alpha.fill_(1.0)
    torch.testing.assert_close(multi(x, t), focal_loss(x, t))
    state = pickle.loads(pickle.dumps(crit)).__dict__
    assert "_weights_cache" not in state


def test_hyperparameters_set_after_construction_are_used(seed):
    x = torch.randn(10, 3)
    t = torch.randint(0, 3, (10,))
    crit = FocalLoss(gamma=2.0)
    crit(x, t)
    crit.gamma = 0.0
    torch.testing.assert_close(crit(x, t), torch.nn.functional.cross_entropy(x, t))


def test_alpha_and_pos_weight_are_buffers():
    loss = BinaryFocalLoss(alpha=[0.2, 0.4], pos_weight=[3.0, 1.0])
    assert set(dict(loss.named_buffers())) == {"alpha", "pos_weight"}
    state = loss.state_dict()
    torch.testing.assert_close(state["alpha"], torch.tensor([0.2, 0.4]))
    assert FocalLoss(alpha=0.25).alpha == 0.25
    assert dict(FocalLoss().named_buffers()) == {}


@pytest.mark.parametrize(
    "loss",
    [
        FocalLoss(gamma=1.0, alpha=np.array([0.5, 1.0, 2.0])),
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
    assert repr(FocalLoss(gamma=1.0, alpha=0.3)) == (
        "FocalLoss(gamma=1.0, alpha=0.3, reduction='mean', ignore_index=-100)"
    )
    assert "softness=2.0" in repr(MarginLoss(softness=2.0))
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
    assert FocalLoss(alpha=[0.3, 0.7])(x, t).dtype == torch.float64
    assert LDAMLoss(margins=[0.2, 0.4])(x, t).dtype == torch.float64
    assert LogitAdjustedLoss(prior=[0.3, 0.7])(x, t).dtype == torch.float64
    y = (torch.rand(8, 2) < 0.5).double()
    assert BinaryLDAMLoss(margins=[[0.1, 0.2], [0.3, 0.4]])(x, y).dtype == torch.float64


@pytest.mark.parametrize(
    "module, criterion, kwargs",
    [
        ("linear", FocalLoss, {"gamma": 2.0, "alpha": [0.2, 0.8]}),
        ("cosine", LDAMLoss, {"margins": "from counts", "scale": 30.0}),
    ],
)
def test_usable_as_skorch_criterion(seed, module, criterion, kwargs):
    """A drop-in criterion: skorch builds it from criterion__* parameters."""
    from skorch import NeuralNetClassifier

    from skfocal._module import MLP

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0.8).astype(np.int64)
    if kwargs.get("margins") == "from counts":
        kwargs = {**kwargs, "margins": ldam_margins(np.bincount(y))}
    if module == "linear":
        module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    else:
        module = MLP(4, 2, hidden_layer_sizes=(8,), output_layer="cosine")
    net = NeuralNetClassifier(
        module,
        criterion=criterion,
        **{f"criterion__{name}": value for name, value in kwargs.items()},
        max_epochs=3,
        train_split=None,
        verbose=0,
        predict_nonlinearity=torch.nn.Softmax(dim=-1),
    )
    net.fit(X, y)
    assert type(net.criterion_) is criterion
    name = "gamma" if criterion is FocalLoss else "scale"
    assert getattr(net.criterion_, name) == kwargs[name]
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    losses = net.history[:, "train_loss"]
    assert all(np.isfinite(losses))


@pytest.mark.gpu
def test_modules_move_to_cuda(seed):
    loss = FocalLoss(alpha=[0.3, 0.7]).cuda()
    x = torch.randn(8, 2, device="cuda")
    t = torch.randint(0, 2, (8,), device="cuda")
    assert loss.alpha.device.type == "cuda"
    torch.testing.assert_close(loss(x, t).cpu(), FocalLoss(alpha=[0.3, 0.7])(x.cpu(), t.cpu()))
    loss = LDAMLoss(margins=[0.1, 0.5], alpha=[0.3, 0.7]).cuda()
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


def _sigmoid_pair(z):
    p = torch.sigmoid(z)
    return torch.stack([1 - p, p], dim=1)


class _Logits(torch.nn.Module):
    def __init__(self, n_out):
        super().__init__()
        self.n_out = n_out
        self.lin = torch.nn.Linear(4, n_out)

    def forward(self, X):
        out = self.lin(X)
        return out.squeeze(1) if self.n_out == 1 else out


def test_readme_skorch_nets_give_probabilities_with_their_nonlinearity(seed):
    """The README's skorch snippets: without predict_nonlinearity skorch returns logits for a
    custom criterion; with the one the README shows, probabilities (and predict works)."""
    import numpy as np
    from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier

    X = torch.randn(60, 4).numpy()
    y3 = np.arange(60) % 3
    y2 = (np.arange(60) % 2).astype(np.float32)
    common = dict(max_epochs=2, train_split=None, verbose=0)
    raw = NeuralNetClassifier(_Logits, module__n_out=3, criterion=FocalLoss, **common)
    assert not np.allclose(raw.fit(X, y3).predict_proba(X).sum(axis=1), 1.0)  # the trap
    net = NeuralNetClassifier(
        _Logits,
        module__n_out=3,
        criterion=FocalLoss,
        criterion__gamma=2.0,
        predict_nonlinearity=torch.nn.Softmax(dim=-1),
        **common,
    ).fit(X, y3)
    np.testing.assert_allclose(net.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)
    binary = NeuralNetBinaryClassifier(
        _Logits,
        module__n_out=1,
        criterion=BinaryFocalLoss,
        criterion__gamma=2.0,
        predict_nonlinearity=_sigmoid_pair,
        **common,
    ).fit(X, y2)
    proba = binary.predict_proba(X)
    assert proba.shape == (60, 2) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(binary.predict(X), (proba[:, 1] > 0.5).astype(int))


def test_binary_module_accepts_integer_and_boolean_targets(seed):
    x = torch.randn(20, 2)
    y = torch.rand(20, 2) < 0.5
    expected = binary_focal_loss_with_logits(x, y.float(), alpha=0.25)
    for target in (y, y.long(), y.float()):
        torch.testing.assert_close(BinaryFocalLoss(alpha=0.25)(x, target), expected)
        torch.testing.assert_close(
            BinaryMarginLoss()(x, target), binary_margin_loss_with_logits(x, y.float())
        )


@pytest.mark.parametrize("alpha", [None, 0.25, [0.3, 0.6]])
def test_mean_follows_the_batch_size(seed, alpha):
    """The cached constants hold the mean's 1 / n: a last, smaller batch must not reuse them."""
    crit = BinaryFocalLoss(alpha=alpha, pos_weight=torch.tensor([2.0, 1.0]))
    for n in (10, 7, 10, 3):
        x = torch.randn(n, 2, requires_grad=True)
        y = (torch.rand(n, 2) < 0.4).float()
        ours = crit(x, y)
        ref = binary_focal_loss_with_logits(x, y, alpha=alpha, pos_weight=torch.tensor([2.0, 1.0]))
        torch.testing.assert_close(ours, ref)
        torch.testing.assert_close(_grad(ours, x), _grad(ref, x))


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
