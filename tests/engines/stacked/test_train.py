"""train_stacked: every member ends where its own plain single-fit loop ends."""

import math

import pytest
import torch

from skfocal._engines._stacked import (
    MemberBatches,
    MemberLoss,
    StackedAdam,
    StackedAdamW,
    StackedLoss,
    StackedMLP,
    train_stacked,
)
from skfocal._module import MLP

from ._reference import make_members, make_sampler, member_params, reference_fit

N_ROWS, N_FEATURES, N_CLASSES, BATCH, EPOCHS = 61, 5, 3, 8, 4


def _problem(task, generator):
    X = torch.randn(N_ROWS, N_FEATURES, dtype=torch.float64, generator=generator)
    if task == "binary":
        y = (torch.rand(N_ROWS, generator=generator) < 0.3).double()
    elif task == "multiclass":
        y = torch.randint(0, N_CLASSES, (N_ROWS,), generator=generator)
    else:
        y = (torch.rand(N_ROWS, N_CLASSES, generator=generator) < 0.4).double()
    return X, y


def _members_setup(task):
    """Six members: own folds (one much smaller), seeds, losses, lrs and weight decays."""
    rows = torch.arange(N_ROWS)
    folds = [rows[rows % 3 != m % 3] for m in range(6)]
    folds[4] = folds[4][:17]  # fewer batches per epoch than the others, a short last batch
    if task == "multiclass":
        alphas = [None, [0.2, 0.5, 0.3], [1.0, 2.0, 3.0], None, [0.5, 0.5, 1.0], None]
    else:
        alphas = [None, 0.25, 0.75, None, 0.5, 0.1]
    pos_weight = [1.0, 2.0, 3.0] if task == "multilabel" else None
    specs = [
        MemberLoss(gamma=0.0, alpha=alphas[0]),
        MemberLoss(gamma=0.5, alpha=alphas[1], pos_weight=pos_weight),
        MemberLoss(gamma=2.0, alpha=alphas[2]),
        MemberLoss("margin", margin=0.6),
        MemberLoss(gamma=3.0, alpha=alphas[4]),
        MemberLoss("margin", margin=0.7, softness=2.0, alpha=alphas[5]),
    ]
    lrs = [1e-2, 3e-3, 2e-2, 5e-3, 1e-2, 4e-3]
    wds = [0.0, 1e-2, 1e-1, 0.0, 1e-2, 1e-3]
    seeds = [11 * m + 1 for m in range(6)]
    return folds, specs, lrs, wds, seeds


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("weighting", ["none", "per-member", "shared+scale"])
@pytest.mark.parametrize("optimizer", ["AdamW", "Adam"])
def test_members_equal_independent_reference_fits(task, weighting, optimizer, seed):
    generator = torch.Generator().manual_seed(0)
    X, y = _problem(task, generator)
    folds, specs, lrs, wds, seeds = _members_setup(task)
    n_outputs = 1 if task == "binary" else N_CLASSES
    members = make_members(6, N_FEATURES, n_outputs, (8,))
    w = torch.rand(N_ROWS, dtype=torch.float64, generator=generator) + 0.5
    per_member = torch.stack([w / w[f].mean() for f in folds])
    torch_opt, stacked_opt = {
        "AdamW": (torch.optim.AdamW, StackedAdamW),
        "Adam": (torch.optim.Adam, StackedAdam),
    }[optimizer]
    references = [
        reference_fit(
            members[m],
            X,
            y,
            folds[m],
            make_sampler(len(folds[m]), seeds[m]),
            specs[m],
            task,
            lr=lrs[m],
            weight_decay=wds[m],
            batch_size=BATCH,
            max_epochs=EPOCHS,
            weights=None if weighting == "none" else per_member[m],
            optimizer=torch_opt,
        )
        for m in range(6)
    ]
    model = StackedMLP(members)
    opt = stacked_opt(model.flat_params, model.flat_grads, lr=lrs, weight_decay=wds)
    loss = StackedLoss(task, specs, n_outputs, dtype=torch.float64)
    samplers = [make_sampler(len(f), s) for f, s in zip(folds, seeds, strict=True)]
    batches = MemberBatches(samplers, folds, BATCH, dtype=torch.float64)
    kwargs = {}
    if weighting == "per-member":
        kwargs["weights"] = per_member
    elif weighting == "shared+scale":
        kwargs["weights"] = w
        kwargs["weight_scale"] = torch.stack([1 / w[f].mean() for f in folds])
    history = train_stacked(model, opt, loss, batches, X, y, max_epochs=EPOCHS, **kwargs)
    assert history.shape == (EPOCHS, 6)
    for m, (mlp, ref_history) in enumerate(references):
        torch.testing.assert_close(model.flat_params[m], member_params(mlp), rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(
            history[:, m], torch.tensor(ref_history, dtype=torch.float64), rtol=1e-6, atol=1e-8
        )
        extracted = model.member(m)
        for name, tensor in mlp.state_dict().items():
            torch.testing.assert_close(extracted.state_dict()[name], tensor, rtol=1e-6, atol=1e-8)


def test_failed_member_is_frozen_and_others_unaffected(seed):
    generator = torch.Generator().manual_seed(0)
    X, y = _problem("binary", generator)
    folds, specs, lrs, wds, seeds = _members_setup("binary")
    members = make_members(6, N_FEATURES, 1, (8,))
    weights = torch.ones(6, N_ROWS, dtype=torch.float64)
    weights[2, folds[2][5]] = math.nan  # member 2's loss is NaN from its first epoch
    model = StackedMLP(members)
    opt = StackedAdamW(model.flat_params, model.flat_grads, lr=lrs, weight_decay=wds)
    loss = StackedLoss("binary", specs, 1, dtype=torch.float64)
    samplers = [make_sampler(len(f), s) for f, s in zip(folds, seeds, strict=True)]
    batches = MemberBatches(samplers, folds, BATCH, dtype=torch.float64)
    history = train_stacked(model, opt, loss, batches, X, y, max_epochs=3, weights=weights)
    assert opt.frozen.tolist() == [False, False, True, False, False, False]
    assert torch.isnan(history[:, 2]).all() and torch.isfinite(history[:, [0, 1, 3, 4, 5]]).all()
    assert opt.steps[2] == len(batches)  # stepped through epoch 0 only
    for m in (0, 1, 3, 4, 5):
        mlp, _ = reference_fit(
            members[m],
            X,
            y,
            folds[m],
            make_sampler(len(folds[m]), seeds[m]),
            specs[m],
            "binary",
            lr=lrs[m],
            weight_decay=wds[m],
            batch_size=BATCH,
            max_epochs=3,
        )
        torch.testing.assert_close(model.flat_params[m], member_params(mlp), rtol=1e-6, atol=1e-8)


def test_on_epoch_end_snapshots_each_members_best_epoch(seed):
    """Per-member early stopping: snapshot members whose loss improved, restore at the end."""
    generator = torch.Generator().manual_seed(0)
    X, y = _problem("multiclass", generator)
    folds, specs, lrs, wds, seeds = _members_setup("multiclass")
    members = make_members(6, N_FEATURES, N_CLASSES, (8,))
    model = StackedMLP(members)
    opt = StackedAdamW(model.flat_params, model.flat_grads, lr=lrs, weight_decay=wds)
    loss = StackedLoss("multiclass", specs, N_CLASSES, dtype=torch.float64)
    samplers = [make_sampler(len(f), s) for f, s in zip(folds, seeds, strict=True)]
    batches = MemberBatches(samplers, folds, BATCH, dtype=torch.float64)
    best = model.snapshot()
    best_epoch = [-1] * 6
    stop_after = [1, 3, 0, 2, 3, 1]  # the epoch at which each member "stops"
    calls = []

    def on_epoch_end(epoch, losses):
        calls.append((epoch, losses.shape))
        keep = [m for m in range(6) if epoch <= stop_after[m]]
        model.snapshot(keep, out=best)
        for m in keep:
            best_epoch[m] = epoch
        opt.freeze([m for m in range(6) if epoch >= stop_after[m]])

    train_stacked(model, opt, loss, batches, X, y, max_epochs=4, on_epoch_end=on_epoch_end)
    assert calls == [(e, (6,)) for e in range(4)]
    model.restore(best)
    for m in range(6):
        mlp, _ = reference_fit(
            members[m],
            X,
            y,
            folds[m],
            make_sampler(len(folds[m]), seeds[m]),
            specs[m],
            "multiclass",
            lr=lrs[m],
            weight_decay=wds[m],
            batch_size=BATCH,
            max_epochs=best_epoch[m] + 1,
        )
        torch.testing.assert_close(model.flat_params[m], member_params(mlp), rtol=1e-6, atol=1e-8)


def test_trains_with_dropout_and_float32(seed):
    X = torch.randn(40, 3)
    y = (torch.rand(40) < 0.3).float()
    members = [MLP(3, 1, (16,), dropout=p) for p in (0.0, 0.2, 0.5)]
    model = StackedMLP(members, dropout_seeds=[0, 1, 2])
    opt = StackedAdamW(model.flat_params, model.flat_grads, lr=1e-2)
    loss = StackedLoss("binary", [MemberLoss(gamma=g) for g in (0.0, 1.0, 2.0)], 1)
    samplers = [make_sampler(30, s) for s in range(3)]
    folds = [torch.arange(0, 30), torch.arange(5, 35), torch.arange(10, 40)]
    history = train_stacked(model, opt, loss, MemberBatches(samplers, folds, 8), X, y, max_epochs=5)
    assert torch.isfinite(history).all()
    assert (history[-1] < history[0]).all()
    assert [len(model.member(m).layers) for m in range(3)] == [3, 4, 4]


def test_errors():
    model = StackedMLP([MLP(3, 1, (4,)) for _ in range(2)])
    opt = StackedAdamW(model.flat_params, model.flat_grads)
    loss = StackedLoss("binary", [MemberLoss()] * 2, 1)
    batches = MemberBatches([make_sampler(5, 0), make_sampler(5, 1)], [None, None], 2)
    X, y = torch.zeros(5, 3), torch.zeros(5)
    with pytest.raises(ValueError, match="max_epochs must be an int >= 0, got -1"):
        train_stacked(model, opt, loss, batches, X, y, max_epochs=-1)
    other = StackedAdamW(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="optimizer has 3 members but the model has 2"):
        train_stacked(model, other, loss, batches, X, y, max_epochs=1)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 3\), got \(5, 2\)"):
        train_stacked(model, opt, loss, batches, X[:, :2], y, max_epochs=1)
    with pytest.raises(ValueError, match="X and y must have as many rows, got 5 and 4"):
        train_stacked(model, opt, loss, batches, X, y[:4], max_epochs=1)
    with pytest.raises(ValueError, match=r"weights must have shape \(N,\) or \(M, N\) with N=5"):
        train_stacked(model, opt, loss, batches, X, y, max_epochs=1, weights=torch.ones(4))
    with pytest.raises(ValueError, match="weights must have 2 rows, got 3"):
        train_stacked(model, opt, loss, batches, X, y, max_epochs=1, weights=torch.ones(3, 5))


def test_on_epoch_end_takes_several_listeners_and_any_stops(seed):
    X = torch.randn(40, 3)
    y = (torch.rand(40) < 0.3).float()
    model = StackedMLP([MLP(3, 1, (4,)) for _ in range(2)])
    opt = StackedAdamW(model.flat_params, model.flat_grads, lr=[1e-2, 1e-2])
    loss = StackedLoss("binary", [MemberLoss(gamma=2.0), MemberLoss(gamma=0.0)], 1)
    folds = [torch.arange(0, 30), torch.arange(10, 40)]
    batches = MemberBatches([make_sampler(30, s) for s in (1, 2)], folds, 8)
    calls = []

    def watcher(epoch, losses):
        calls.append(("watch", epoch))

    def stopper(epoch, losses):
        calls.append(("stop", epoch))
        return epoch == 1

    history = train_stacked(
        model, opt, loss, batches, X, y, max_epochs=5, on_epoch_end=[stopper, watcher]
    )
    assert history.shape == (2, 2)  # stopped after the second epoch
    assert calls == [("stop", 0), ("watch", 0), ("stop", 1), ("watch", 1)]  # both, in order
