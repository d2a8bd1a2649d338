"""The lean (autograd-free) stacked step: what autograd's step computes, on windows of members."""

import pytest
import torch

from skfocal._engines._stacked import (
    MemberBatches,
    MemberLoss,
    StackedAdamW,
    StackedLoss,
    StackedMLP,
    train_stacked,
)
from skfocal._engines._stacked._lean import lean_applies, window
from skfocal._module import MLP

from ._reference import make_members, make_sampler

N_ROWS, N_FEATURES, BATCH, EPOCHS = 67, 5, 8, 5


def _stack(specs, hidden=(8,), dropout=0.0, n_outputs=1, task="binary"):
    members = [MLP(N_FEATURES, n_outputs, hidden, dropout=dropout) for _ in specs]
    seeds = list(range(len(specs))) if dropout else None
    model = StackedMLP(members, dropout_seeds=seeds)
    return model, StackedLoss(task, specs, n_outputs, dtype=torch.float32)


@pytest.mark.parametrize(
    "case, expected",
    [
        ({}, True),
        ({"hidden": (8, 4)}, False),
        ({"dropout": 0.2}, False),
        ({"task": "multiclass", "n_outputs": 3}, True),
        ({"task": "multilabel", "n_outputs": 3}, False),
        ({"specs": [MemberLoss(gamma=2.0), MemberLoss("margin")]}, False),
    ],
)
def test_lean_applies_to_one_hidden_layer_one_loss_group_binary_or_multiclass(case, expected, seed):
    case = dict(case)
    specs = case.pop("specs", [MemberLoss(gamma=g) for g in (0.0, 2.0)])
    model, loss = _stack(specs, **case)
    assert lean_applies(model, loss) is expected


@pytest.mark.parametrize(
    "members, expected",
    [
        ([True, True, True], (0, 3)),
        ([False, True, False], (1, 2)),
        ([False, True, False, True, False], (1, 4)),
        ([False, False], None),
    ],
)
def test_window_covers_the_true_entries(members, expected):
    assert window(members) == expected


def _problem():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(N_ROWS, N_FEATURES, dtype=torch.float64, generator=generator)
    y = (torch.rand(N_ROWS, generator=generator) < 0.3).double()
    w = torch.rand(N_ROWS, dtype=torch.float64, generator=generator) + 0.5
    rows = torch.arange(N_ROWS)
    folds = [rows[rows % 5 != m] for m in range(5)]
    folds[0] = folds[0][:21]  # fewer batches than the others: windows without member 0
    folds.append(rows)  # a "refit" member with more batches: its last steps train alone
    return X, y, w, folds


def _specs(loss, hyper, n):
    """One loss group: shared hyperparameters, or each member its own (and its alpha)."""
    alphas = [None, 0.25, 0.75, None, 0.5, 0.1]
    if loss == "focal":
        if hyper == "shared":
            return [MemberLoss(gamma=2.0, alpha=0.25)] * n
        return [MemberLoss(gamma=0.5 * m, alpha=alphas[m]) for m in range(n)]
    softness = 2.0 if loss == "soft margin" else None
    if hyper == "shared":
        return [MemberLoss("margin", margin=0.6, softness=softness)] * n
    return [
        MemberLoss("margin", margin=0.5 + 0.05 * m, softness=softness, alpha=alphas[m])
        for m in range(n)
    ]


def _train(lean, weighting, hyper, stop_at, loss_name="focal"):
    X, y, w, folds = _problem()
    n = len(folds)
    specs = _specs(loss_name, hyper, n)
    if hyper == "shared":
        lr, wd = 1e-2, 1e-2
    else:
        lr, wd = [1e-2 * (1 + m % 3) for m in range(n)], [0.0, 1e-2, 1e-1, 0.0, 1e-2, 1e-3]
    model = StackedMLP(make_members(n, N_FEATURES, 1, (8,)))
    opt = StackedAdamW(model.flat_params, model.flat_grads, lr=lr, weight_decay=wd)
    loss = StackedLoss("binary", specs, 1, dtype=torch.float64)
    samplers = [make_sampler(len(f), 3 * m + 1) for m, f in enumerate(folds)]
    batches = MemberBatches(samplers, folds, BATCH, dtype=torch.float64)
    kwargs = {}
    if weighting == "per-member":
        kwargs["weights"] = torch.stack([w / w[f].mean() for f in folds])
    elif weighting == "shared+scale":
        kwargs["weights"] = w
        kwargs["weight_scale"] = torch.stack([1 / w[f].mean() for f in folds])

    def freeze(epoch, losses):  # members stop at their epoch: at the ends and in the middle
        opt.freeze([m for m in range(n) if epoch >= stop_at[m]])

    history = train_stacked(
        model, opt, loss, batches, X, y, max_epochs=EPOCHS, on_epoch_end=freeze, lean=lean, **kwargs
    )
    return model.flat_params.detach().clone(), history, opt.steps


@pytest.mark.parametrize("weighting", ["none", "per-member", "shared+scale"])
@pytest.mark.parametrize("hyper", ["shared", "per-member"])
@pytest.mark.parametrize(
    "stop_at", [[9] * 6, [1, 9, 2, 9, 9, 9], [9, 9, 1, 0, 9, 3], [0, 0, 1, 2, 2, 9]]
)
def test_lean_step_equals_autograd_step(weighting, hyper, stop_at, seed):
    """Members equal to 1e-12 in float64; a member frozen for a whole epoch repeats its loss."""
    params, history, steps = _train(True, weighting, hyper, stop_at)
    ref_params, ref_history, ref_steps = _train(False, weighting, hyper, stop_at)
    torch.testing.assert_close(params, ref_params, rtol=1e-12, atol=1e-12)
    assert steps.tolist() == ref_steps.tolist()
    for m, stop in enumerate(stop_at):
        trained = min(stop + 1, EPOCHS)  # epochs in which member m trained
        torch.testing.assert_close(
            history[:trained, m], ref_history[:trained, m], rtol=1e-12, atol=1e-12
        )
        assert torch.isfinite(history[:, m]).all()


@pytest.mark.parametrize("loss_name", ["hard margin", "soft margin"])
@pytest.mark.parametrize("hyper", ["shared", "per-member"])
def test_lean_step_equals_autograd_step_for_the_margin_loss(loss_name, hyper, seed):
    stop_at = [9, 9, 1, 0, 9, 3]
    params, history, _ = _train(True, "per-member", hyper, stop_at, loss_name)
    ref_params, ref_history, _ = _train(False, "per-member", hyper, stop_at, loss_name)
    torch.testing.assert_close(params, ref_params, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(history[:2], ref_history[:2], rtol=1e-12, atol=1e-12)


def _train_multiclass(lean, weighting, hyper, stop_at, loss_name):
    X, _, w, folds = _problem()
    y = torch.randint(0, 3, (N_ROWS,), generator=torch.Generator().manual_seed(1))
    n = len(folds)
    alphas = [None, [0.2, 0.5, 0.3], [1.0, 2.0, 3.0], None, [0.5, 0.5, 1.0], None]
    if loss_name == "focal":
        specs = [MemberLoss(gamma=0.5 * m, alpha=alphas[m]) for m in range(n)]
        if hyper == "shared":
            specs = [MemberLoss(gamma=2.0, alpha=[0.2, 0.5, 0.3])] * n
    else:
        specs = [MemberLoss("margin", margin=0.5 + 0.05 * m, softness=2.0) for m in range(n)]
        if hyper == "shared":
            specs = [MemberLoss("margin", margin=0.6)] * n
    model = StackedMLP(make_members(n, N_FEATURES, 3, (8,)))
    opt = StackedAdamW(model.flat_params, model.flat_grads, lr=1e-2, weight_decay=1e-2)
    loss = StackedLoss("multiclass", specs, 3, dtype=torch.float64)
    samplers = [make_sampler(len(f), 3 * m + 1) for m, f in enumerate(folds)]
    batches = MemberBatches(samplers, folds, BATCH, dtype=torch.float64)
    weights = torch.stack([w / w[f].mean() for f in folds]) if weighting else None

    def freeze(epoch, losses):
        opt.freeze([m for m in range(n) if epoch >= stop_at[m]])

    history = train_stacked(
        model,
        opt,
        loss,
        batches,
        X,
        y,
        max_epochs=EPOCHS,
        weights=weights,
        on_epoch_end=freeze,
        lean=lean,
    )
    return model.flat_params.detach().clone(), history


@pytest.mark.parametrize("loss_name", ["focal", "margin"])
@pytest.mark.parametrize("hyper", ["shared", "per-member"])
@pytest.mark.parametrize("weighting", [False, True])
def test_lean_step_equals_autograd_step_for_multiclass_members(loss_name, hyper, weighting, seed):
    stop_at = [9, 9, 1, 0, 9, 3]
    params, history = _train_multiclass(True, weighting, hyper, stop_at, loss_name)
    ref_params, ref_history = _train_multiclass(False, weighting, hyper, stop_at, loss_name)
    torch.testing.assert_close(params, ref_params, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(history[:2], ref_history[:2], rtol=1e-12, atol=1e-12)
