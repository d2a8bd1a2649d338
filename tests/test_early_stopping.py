"""Early stopping with ties of the score broken by the validation loss (_early_stopping.py)."""

import copy
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.callbacks import EarlyStopping as SkorchEarlyStopping
from skorch.history import History
from torch import nn

from skfocal import FocalClassifier
from skfocal._early_stopping import EarlyStopping, improves

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INF = np.inf


@pytest.mark.parametrize(
    ("score", "loss", "best_score", "best_loss", "lower", "expected"),
    [
        (0.5, 1.0, -INF, INF, False, True),  # the first epoch
        (0.5, 1.0, INF, INF, True, True),
        (0.9, 0.3, 0.8, 0.1, False, True),  # a better score, whatever the loss
        (1.0, 0.02, 1.0, 0.05, False, True),  # a tie with a lower loss
        (1.0, 0.05, 1.0, 0.05, False, False),  # a tie with the same loss
        (1.0, 0.0499999, 1.0, 0.05, False, False),  # lower by less than the threshold
        (0.99, 0.01, 1.0, 0.05, False, False),  # a worse score, even with a lower loss
        (0.80001, 0.5, 0.8, 0.1, False, False),  # better by less than the threshold, higher loss
        (0.80001, 0.05, 0.8, 0.1, False, True),  # ... counts as a tie: the loss decides
        (-0.5, 0.1, -0.5, 0.2, False, True),  # a negative score (neg_log_loss): tie, lower loss
        (-0.50001, 0.1, -0.5, 0.2, False, False),  # worse, though within 1e-4 relative
        (0.3, 0.3, 0.4, 0.4, True, True),  # lower is better (the loss monitor)
        (0.4, 0.4, 0.4, 0.4, True, False),
        (np.nan, 0.1, 0.5, 0.2, False, False),  # an undefined score never improves
        (0.6, np.nan, 0.5, 0.2, False, True),  # a better score does, whatever the loss
    ],
)
def test_improves(score, loss, best_score, best_loss, lower, expected):
    assert improves(score, loss, best_score, best_loss, lower_is_better=lower) is expected


def test_improves_is_elementwise_over_members(seed):
    score = seed.choice([0.5, 0.9, 1.0], size=50)
    best_score = seed.choice([0.5, 0.9, 1.0, -INF], size=50)
    loss, best_loss = seed.uniform(size=50), seed.uniform(size=50)
    out = improves(score, loss, best_score, best_loss, lower_is_better=False)
    assert out.dtype == bool and out.shape == (50,)
    expected = [
        improves(s, v, bs, bv, lower_is_better=False)
        for s, v, bs, bv in zip(score, loss, best_score, best_loss, strict=True)
    ]
    assert out.tolist() == expected


def _net(verbose=0):
    torch.manual_seed(0)
    return SimpleNamespace(history=History(), module_=nn.Linear(2, 1), verbose=verbose)


def _run(callback, net, rows):
    """Feed epochs of ``{key: value}`` to ``callback``; the number of epochs trained."""
    callback.on_train_begin(net)
    for epoch, row in enumerate(rows, start=1):
        net.history.new_epoch()
        net.history.record("epoch", epoch)
        for key, value in row.items():
            net.history.record(key, value)
        with torch.no_grad():
            net.module_.weight.fill_(epoch)  # each epoch's weights are its number
        try:
            callback.on_epoch_end(net)
        except KeyboardInterrupt:
            break
    callback.on_train_end(net)
    return len(net.history)


def test_on_the_validation_loss_it_is_skorchs_rule(seed):
    for trial in range(20):
        losses = np.cumsum(seed.normal(scale=0.05, size=40)) + 2.0
        losses[seed.uniform(size=40) < 0.2] = losses[0]  # some exact repeats
        rows = [{"valid_loss": float(v)} for v in losses]
        ours, theirs = EarlyStopping(patience=4), SkorchEarlyStopping(patience=4, load_best=True)
        ours_net, theirs_net = _net(), _net()
        assert _run(ours, ours_net, rows) == _run(theirs, theirs_net, rows), trial
        assert ours.best_epoch_ == theirs.best_epoch_
        assert torch.equal(ours_net.module_.weight, theirs_net.module_.weight)


def test_a_saturated_score_keeps_training_while_the_loss_falls():
    scores = [0.1, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    losses = [0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.25, 0.3, 0.35, 0.4]
    rows = [{"valid_ap": s, "valid_loss": v} for s, v in zip(scores, losses, strict=True)]
    stopper = EarlyStopping("valid_ap", patience=3, lower_is_better=False)
    net = _net()
    assert _run(stopper, net, rows) == 9  # epochs 7, 8, 9 without improvement
    assert stopper.best_epoch_ == 6 and stopper.best_loss_ == 0.2
    assert net.module_.weight[0, 0].item() == 6  # epoch 6's weights were restored
    skorch = SkorchEarlyStopping("valid_ap", patience=3, lower_is_better=False, load_best=True)
    assert _run(skorch, _net(), rows) == 6 and skorch.best_epoch_ == 3  # what it replaces


def test_messages_go_to_the_sink_when_verbose():
    rows = [{"valid_loss": v} for v in (1.0, 0.5, 0.6, 0.7)]
    lines = []
    _run(EarlyStopping(patience=2, sink=lines.append), _net(verbose=1), rows)
    assert lines == [
        "Stopping since valid_loss (ties broken by valid_loss) has not improved in the last 2 "
        "epochs.",
        "Restoring best model from epoch 2.",
    ]
    silent = []
    _run(EarlyStopping(patience=2, sink=silent.append), _net(verbose=0), rows)
    assert silent == lines  # a sink other than print gets them whatever the verbosity


def test_pickled_without_the_best_weights():
    stopper = EarlyStopping(patience=2)
    _run(stopper, _net(), [{"valid_loss": v} for v in (1.0, 0.5)])
    assert stopper.best_model_weights_ is not None
    assert pickle.loads(pickle.dumps(stopper)).best_model_weights_ is None
    assert copy.deepcopy(stopper).best_epoch_ == 2


# -- the estimator: the reliability issue's case -----------------------------------------------
def _four_positives(n):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.zeros(n, dtype=int)
    y[[3, n // 4, 3 * n // 5, 9 * n // 10]] = 1
    X[y == 1] += 2.0
    return X, y


@pytest.mark.parametrize("scoring", ["average_precision", "roc_auc"])
@pytest.mark.parametrize("n", [1000, 50])
def test_one_validation_positive_no_longer_stops_at_the_first_perfect_score(scoring, n):
    """4 positives, one of them in the validation part: the score saturates at 1.0 within a
    few epochs. skorch's rule then stopped ``n_iter_no_change`` epochs later and restored the
    first perfect epoch (1,000 rows: epoch 4 of 14). The validation loss goes on falling, and
    now training goes on with it."""
    X, y = _four_positives(n)
    clf = FocalClassifier(early_stopping=True, scoring=scoring, max_epochs=60, random_state=0)
    with pytest.warns(UserWarning, match=r"has only 1 row of class 1 in the validation part"):
        clf.fit(X, y)
    h = clf.net_.history
    score, loss = np.array(h[:, f"valid_{scoring}"]), np.array(h[:, "valid_loss"])
    best = dict(clf.net_.callbacks_)["early_stopping"].best_epoch_
    first_top = int(np.argmax(score == score.max())) + 1
    assert best > first_top > 1
    assert clf.n_iter_ > 11
    tied = score == score[best - 1]
    assert loss[best - 1] == loss[tied].min()  # the lowest loss among the top-scored epochs
    assert score[best - 1] == score.max()
    assert loss[best - 1] < loss[first_top - 1]  # trained on while the loss improved
    assert clf.n_iter_ in (best + clf.n_iter_no_change, clf.max_epochs)


def test_the_kept_weights_are_the_best_epochs(seed):
    X, y = _four_positives(1000)
    states = []

    class Snapshot(Callback):
        def on_epoch_end(self, net, **kwargs):
            states.append({k: v.clone() for k, v in net.module_.state_dict().items()})

    clf = FocalClassifier(
        early_stopping=True,
        scoring="average_precision",
        max_epochs=40,
        random_state=0,
        callbacks=[("snapshot", Snapshot())],
    )
    with pytest.warns(UserWarning, match=r"only 1 row of class 1"):
        clf.fit(X, y)
    best = dict(clf.net_.callbacks_)["early_stopping"].best_epoch_
    assert best < clf.n_iter_  # something to restore
    kept = clf.net_.module_.state_dict()
    assert all(torch.equal(kept[k], states[best - 1][k]) for k in kept)


# -- the warning: a ranking score on a handful of rows of a class --------------------------------
def _counts_data(n_pos_valid, n=400):
    """Binary rows whose stratified 10 % validation part holds ``n_pos_valid`` positives."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = np.zeros(n, dtype=int)
    y[: 10 * n_pos_valid] = 1
    return X, y


FAST = dict(max_epochs=2, hidden_layer_sizes=(4,), random_state=0)


@pytest.mark.parametrize("n_pos_valid", [2, 4])
@pytest.mark.parametrize("scoring", ["average_precision", "roc_auc"])
def test_ranking_scorer_on_few_rows_of_a_class_warns(n_pos_valid, scoring):
    X, y = _counts_data(n_pos_valid)
    with pytest.warns(
        UserWarning,
        match=rf"early_stopping=True with scoring='{scoring}' has only {n_pos_valid} rows of "
        r"class 1 in the validation part \(validation_fraction=0.1\): a ranking score on "
        r"fewer than 5 rows of a class is too coarse to choose an epoch reliably .* Use "
        r"early_stopping=False with a fixed max_epochs, or a larger validation_fraction\.",
    ):
        FocalClassifier(early_stopping=True, scoring=scoring, **FAST).fit(X, y)


@pytest.mark.parametrize(
    ("n_pos_valid", "params"),
    [
        (5, {"scoring": "average_precision"}),  # enough rows
        (1, {"scoring": "balanced_accuracy"}),  # not a ranking score
        (1, {"scoring": None}),  # the validation loss
        (2, {"scoring": "average_precision", "validation_fraction": 0.3}),  # 6 rows held out
    ],
)
def test_no_warning_otherwise(n_pos_valid, params, recwarn):
    X, y = _counts_data(n_pos_valid)
    FocalClassifier(early_stopping=True, **{**FAST, **params}).fit(X, y)
    assert not [w for w in recwarn if "too coarse" in str(w.message)]


def test_multilabel_counts_each_labels_positives_and_negatives():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    y = (rng.uniform(size=(300, 2)) < 0.5).astype(int)
    y[:, 1] = 0
    y[:20, 1] = 1  # label 1: about 2 positives in the validation part
    with pytest.warns(UserWarning, match=r"has only \d rows? of label 1's positives"):
        FocalClassifier(early_stopping=True, scoring="average_precision", **FAST).fit(X, y)


def test_string_labels_are_named_as_given():
    X, y = _counts_data(1)
    labels = np.array(["ham", "spam"])[y]
    with pytest.warns(UserWarning, match=r"has only 1 row of class 'spam'"):
        FocalClassifier(early_stopping=True, scoring="roc_auc", **FAST).fit(X, labels)
