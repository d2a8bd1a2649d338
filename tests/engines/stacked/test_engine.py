"""StackedEngine: plans trained as one stacked model equal their single fits (float64).

The three capabilities the engine seam is shaped for, tested even where no public feature
uses them yet: per-member validation and early stopping, outputs on rows the caller names,
and a member trained on all rows (a refit in the same run).
"""

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedKFold

from skfocal import FocalClassifier
from skfocal._classifier import fitted_classifier
from skfocal._engines import SkorchEngine
from skfocal._engines._net import predict_logits
from skfocal._engines._stacked import (
    StackedEngine,
    group_key,
    run_cost,
    split_members,
    why_not_stacked,
)
from skfocal._plan import make_plan

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = dict(hidden_layer_sizes=(8,), batch_size=16, max_epochs=6, dtype="float64")


def _data(task, n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if task == "binary":
        y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.7).astype(int)
    else:
        y = np.digitize(X[:, 0] + 0.5 * rng.normal(size=n), [-0.5, 0.6])
    return X, y


def _plan(X, y, **params):
    return make_plan(FocalClassifier(**{**BASE, **params}), X, y)[0]


def _single(X, y, **params):
    plan, X_valid = make_plan(FocalClassifier(**{**BASE, **params}), X, y)
    (fitted,) = SkorchEngine(plan.device, plan.dtype).fit([plan], X_valid)
    return plan, fitted


def _logits(fitted, X):
    net = fitted.net
    return predict_logits(
        net.module_, X, kind=net.kind, device=torch.device("cpu"), dtype=torch.float64
    )


def _members(task):
    """Candidates x folds: own seeds, losses, weights, learning rates, one early stopper."""
    X, y = _data(task)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    candidates = [
        dict(random_state=0),
        dict(random_state=1, gamma=0.5, alpha="balanced", lr=0.01),
        dict(random_state=2, loss="cross_entropy", class_weight="balanced", weight_decay=0.0),
        dict(random_state=3, loss="margin", sampler="oversample"),
    ]
    members = [(params, train) for params in candidates for train, _ in folds]
    return X, y, members


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_members_equal_their_single_fits(task):
    X, y, members = _members(task)
    plans = [_plan(X[train], y[train], **params) for params, train in members]
    assert all(why_not_stacked(plan) is None for plan in plans)
    assert len({group_key(plan) for plan in plans}) == 1
    fitted = StackedEngine("cpu", torch.float64).fit(plans, X, rows=[t for _, t in members])
    for (params, train), result in zip(members, fitted, strict=True):
        _, single = _single(X[train], y[train], **params)
        np.testing.assert_allclose(_logits(result, X), _logits(single, X), rtol=0, atol=1e-12)
        assert len(result.net.history) == len(single.net.history) == BASE["max_epochs"]
        np.testing.assert_allclose(
            result.net.history[:, "train_loss"], single.net.history[:, "train_loss"], atol=1e-12
        )
        assert (
            result.net.history[:, "train_batch_count"] == single.net.history[:, "train_batch_count"]
        )


@pytest.mark.parametrize("scoring", [None, "average_precision", "balanced_accuracy"])
def test_members_validate_and_stop_on_their_own(scoring):
    """Per-member validation parts, patience and best epochs: those of each single fit."""
    X, y = _data("binary", n=200, seed=3)
    stopping = dict(early_stopping=True, scoring=scoring, max_epochs=40, lr=0.05)
    candidates = [
        dict(stopping, random_state=0, n_iter_no_change=2),
        dict(stopping, random_state=1, n_iter_no_change=4, validation_fraction=0.2),
        dict(stopping, random_state=2, n_iter_no_change=3, gamma=0.0),
        dict(random_state=3, max_epochs=40),  # no early stopping: trains every epoch
    ]
    plans = [_plan(X, y, **params) for params in candidates]
    fitted = StackedEngine("cpu", torch.float64).fit(plans, X)
    epochs = []
    for params, plan, result in zip(candidates, plans, fitted, strict=True):
        _, single = _single(X, y, **params)
        history, reference = result.net.history, single.net.history
        assert len(history) == len(reference)
        epochs.append(len(history))
        monitor = "valid_loss" if scoring is None else f"valid_{scoring}"
        if plan.valid_idx is not None:
            np.testing.assert_allclose(history[:, monitor], reference[:, monitor], atol=1e-10)
            assert history[:, monitor + "_best"] == reference[:, monitor + "_best"]
        np.testing.assert_allclose(_logits(result, X), _logits(single, X), rtol=0, atol=1e-10)
    assert epochs[-1] == 40 and min(epochs[:3]) < 40  # stopped members, and one that did not


def test_outputs_on_named_rows_are_the_members_logits():
    X, y, members = _members("multiclass")
    plans = [_plan(X[train], y[train], **params) for params, train in members]
    rows = [t for _, t in members]
    held_out = [np.setdiff1d(np.arange(len(X)), t) for t in rows]
    fitted = StackedEngine("cpu", torch.float64).fit(plans, X, rows=rows, predict_rows=held_out)
    for result, named in zip(fitted, held_out, strict=True):
        assert result.outputs.shape == (len(named), 3)
        np.testing.assert_allclose(result.outputs, _logits(result, X[named]), atol=1e-12)


def test_a_member_trained_on_all_rows_beside_fold_members():
    """A refit in the same run: ``rows=None`` trains on all of X, as the single fit on X."""
    X, y, members = _members("binary")
    params = members[0][0]
    plans = [_plan(X[train], y[train], **p) for p, train in members[:3]] + [_plan(X, y, **params)]
    rows = [t for _, t in members[:3]] + [None]
    fitted = StackedEngine("cpu", torch.float64).fit(plans, X, rows=rows)
    estimator = fitted_classifier(FocalClassifier(**{**BASE, **params}), plans[-1], fitted[-1], X)
    reference = FocalClassifier(**{**BASE, **params}).fit(X, y)
    np.testing.assert_allclose(estimator.predict_proba(X), reference.predict_proba(X), atol=1e-12)
    assert estimator.n_iter_ == reference.n_iter_


def test_a_diverging_member_carries_its_error_and_the_others_train():
    X, y = _data("binary")
    plans = [_plan(X, y, random_state=0), _plan(X, y, random_state=0, lr=1e300)]
    good, bad = StackedEngine("cpu", torch.float64).fit(plans, X)
    assert bad.net is None and "non-finite" in str(bad.error)
    assert good.error is None and np.isfinite(_logits(good, X)).all()
    with pytest.raises(FloatingPointError, match="non-finite"):
        fitted_classifier(FocalClassifier(), plans[1], bad, X)


def test_plans_that_do_not_stack_are_refused():
    X, y = _data("binary")
    with pytest.raises(ValueError, match="plan 1 cannot be trained stacked: .*warmup_epochs"):
        StackedEngine("cpu", torch.float64).fit([_plan(X, y), _plan(X, y, warmup_epochs=2)], X)
    with pytest.raises(ValueError, match="must share the network's shape"):
        StackedEngine("cpu", torch.float64).fit(
            [_plan(X, y), _plan(X, y, hidden_layer_sizes=(4,))], X
        )
    with pytest.raises(ValueError, match=r"rows\[0\] has 10 positions for a plan made on 120"):
        StackedEngine("cpu", torch.float64).fit([_plan(X, y)], X, rows=[np.arange(10)])


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_chunks_of_a_group_train_to_the_same_members(task):
    """Members are independent: the chunks of a group (dealt out in turn, so that each takes
    the code paths of the whole group) give the members of the whole group, bit for bit."""
    X, y, members = _members(task)
    plans = [_plan(X[train], y[train], **params) for params, train in members]
    rows = [t for _, t in members]
    whole = StackedEngine("cpu", torch.float64).fit(plans, X, rows=rows)
    parts = {}
    for chunk in split_members(len(plans), 3, "cpu"):
        fitted = StackedEngine("cpu", torch.float64).fit(
            [plans[i] for i in chunk], X, rows=[rows[i] for i in chunk]
        )
        parts.update(zip(chunk, fitted, strict=True))
    assert sorted(parts) == list(range(len(whole)))
    for m, result in enumerate(whole):
        np.testing.assert_array_equal(_logits(parts[m], X), _logits(result, X))
        assert parts[m].net.history[:, "train_loss"] == result.net.history[:, "train_loss"]


def test_a_chunk_unlike_its_group_rounds_differently():
    """Why chunks are dealt out in turn: a chunk of only the unweighted margin members takes
    the loss's shared form, which the group (with alpha-weighted members) does not: its
    members may then differ from the group's in the last digits (5.6e-17 seen here)."""
    X, y, members = _members("binary")
    plans = [_plan(X[train], y[train], **params) for params, train in members]
    rows = [t for _, t in members]
    whole = StackedEngine("cpu", torch.float64).fit(plans, X, rows=rows)
    margin = StackedEngine("cpu", torch.float64).fit(plans[9:], X, rows=rows[9:])
    for a, b in zip(whole[9:], margin, strict=True):
        np.testing.assert_allclose(_logits(a, X), _logits(b, X), rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    "n_members, n_chunks, device, sizes",
    [
        (45, 1, "cpu", [45]),
        (45, 2, "cpu", [23, 22]),
        (45, 16, "cpu", [8, 8, 8, 7, 7, 7]),  # one chunk per eight members, rounded up
        (12, 2, "cpu", [6, 6]),  # two workers always share
        (1, 4, "cpu", [1]),
        (45, 4, "cuda", [45]),  # a GPU step of 45 members costs what one costs
    ],
)
def test_split_members(n_members, n_chunks, device, sizes):
    chunks = split_members(n_members, n_chunks, device)
    assert [len(c) for c in chunks] == sizes
    assert sorted(i for c in chunks for i in c) == list(range(n_members))
    if len(chunks) > 1:  # dealt out in turn
        assert chunks[1][:2] == [1, 1 + len(chunks)]


def test_run_cost_grows_with_members_rows_and_network():
    X, y = _data("binary")
    small, wide = _plan(X, y), _plan(X, y, hidden_layer_sizes=(64,))
    assert run_cost([small] * 4) > run_cost([small] * 2) > 0
    assert run_cost([wide]) > run_cost([small])
    assert run_cost([_plan(X[:60], y[:60])]) < run_cost([small])


def test_progress_reports_every_epoch_of_the_run(capsys):
    from skfocal._engines._stacked._progress import EpochProgress

    X, y = _data("binary")
    plans = [_plan(X, y, random_state=0), _plan(X, y, random_state=0, lr=1e300)]
    StackedEngine("cpu", torch.float64).fit(plans, X, progress=EpochProgress("run", 2))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[run] 2 members: MLP (8,), batch 16, max_epochs 6"
    epochs = [line for line in lines if "] epoch " in line]
    assert len(epochs) == 6 and "1/2 training, 0 stopped early, 1 failed" in epochs[-1]
    assert lines[-1].startswith("[run] done in ") and "1 failed" in lines[-1]


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("hidden", [(8,), (8, 6)])  # the lean step and autograd's
def test_members_average_their_weights_as_their_single_fits(task, hidden):
    """weight_averaging per member: validated, stopped on and kept as in each single fit."""
    X, y = _data(task, n=200, seed=3)
    stopping = dict(early_stopping=True, lr=0.05, max_epochs=12)
    candidates = [
        dict(random_state=0, weight_averaging=2.0, max_epochs=12),
        dict(stopping, random_state=1, weight_averaging=0.5, n_iter_no_change=2),
        dict(stopping, random_state=2, n_iter_no_change=3),  # no average beside ones with it
        dict(stopping, random_state=3, weight_averaging=3.0, validation_fraction=0.2),
    ]
    candidates = [dict(c, hidden_layer_sizes=hidden) for c in candidates]
    plans = [_plan(X, y, **params) for params in candidates]
    assert all(why_not_stacked(plan) is None for plan in plans)
    fitted = StackedEngine("cpu", torch.float64).fit(plans, X)
    for params, plan, result in zip(candidates, plans, fitted, strict=True):
        _, single = _single(X, y, **params)
        history, reference = result.net.history, single.net.history
        assert len(history) == len(reference)
        if plan.valid_idx is not None:
            np.testing.assert_allclose(
                history[:, "valid_loss"], reference[:, "valid_loss"], rtol=0, atol=1e-12
            )
        np.testing.assert_allclose(_logits(result, X), _logits(single, X), rtol=0, atol=1e-12)
