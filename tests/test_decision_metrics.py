"""Scoring candidate decisions: the vectorised counts give the scorer's own numbers."""

import numpy as np
import pytest
from sklearn.metrics import (
    f1_score,
    fbeta_score,
    get_scorer,
    jaccard_score,
    make_scorer,
    matthews_corrcoef,
    precision_score,
    recall_score,
)

from skfocal import _decision_metrics
from skfocal._decision_metrics import (
    Fold,
    Objective,
    accepts_sample_weight,
    metric_of,
    pos_label_of,
    scorer_parts,
)

SCORERS = [
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "f1_micro",
    "f1_weighted",
    "precision_macro",
    "precision_weighted",
    "recall_macro",
    "recall_micro",
    "jaccard_macro",
    "jaccard_weighted",
    make_scorer(fbeta_score, beta=2, average="macro"),
    make_scorer(fbeta_score, beta=0.5, average="weighted"),
    make_scorer(precision_score, average="macro", zero_division=1),
]
BINARY_SCORERS = [
    "f1",
    "precision",
    "recall",
    "jaccard",
    make_scorer(fbeta_score, beta=2),
    make_scorer(recall_score, pos_label=0),
]


def _candidates(rng, y, n_classes, n_candidates=9):
    """Random class-index predictions, some of which never predict a class."""
    pred = rng.integers(0, n_classes, size=(n_candidates, len(y)))
    pred[0] = y  # perfect
    pred[1] = 0  # one class only
    pred[2] = np.where(y == n_classes - 1, 0, y)  # the last class never predicted
    return pred


def _both_paths(monkeypatch, scorer, fold, classes, pred):
    scorer = get_scorer(scorer) if isinstance(scorer, str) else scorer
    metric = metric_of(scorer_parts(scorer))
    assert metric is not None
    fast = Objective(scorer, metric, classes, False).classes_scores(fold, pred)
    monkeypatch.setattr(_decision_metrics, "VECTORISED", False)
    slow = Objective(scorer, metric, classes, False).classes_scores(fold, pred)
    return fast, slow


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("scorer", SCORERS, ids=[str(s)[:60] for s in SCORERS])
def test_vectorised_scores_equal_the_scorer(monkeypatch, seed, scorer, n_classes, weighted):
    rng = seed
    y = rng.integers(0, n_classes, size=60)
    y[-1] = n_classes - 1  # every class present ...
    y[y == 1] = np.where(rng.random((y == 1).sum()) < 0.5, 1, 0)
    # scorers made without pos_label score pos_label=1, which scikit-learn checks against the
    # classes (for multiclass targets too before 1.7): integer labels that include 1
    classes = np.arange(n_classes)
    weights = rng.random(60) * 3 if weighted else None
    fold = Fold(y=y, response=None, weights=weights, X=np.zeros((60, 1)), y_raw=classes[y])
    fold.score_params = {} if weights is None else {"sample_weight": weights}
    pred = _candidates(rng, y, n_classes)
    fast, slow = _both_paths(monkeypatch, scorer, fold, classes, pred)
    if weighted:
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_array_equal(fast, slow)  # bit for bit: scikit-learn's formulas


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("scorer", BINARY_SCORERS, ids=[str(s)[:60] for s in BINARY_SCORERS])
def test_vectorised_binary_scores_equal_the_scorer(monkeypatch, seed, scorer, weighted):
    y = (seed.random(50) < 0.3).astype(int)
    classes = np.array([0, 1])
    weights = seed.random(50) if weighted else None
    fold = Fold(y=y, response=None, weights=weights, X=np.zeros((50, 1)), y_raw=y)
    fold.score_params = {} if weights is None else {"sample_weight": weights}
    pred = _candidates(seed, y, 2)
    fast, slow = _both_paths(monkeypatch, scorer, fold, classes, pred)
    if weighted:
        np.testing.assert_allclose(fast, slow, rtol=1e-12)
    else:
        np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize(
    "scorer",
    ["f1_macro", "f1_micro", "f1_weighted", "jaccard_macro", "precision_micro", "recall_weighted"],
)
def test_vectorised_multilabel_scores_equal_the_scorer(monkeypatch, seed, scorer):
    n, n_labels = 40, 3
    y = (seed.random((n, n_labels)) < 0.3).astype(int)
    rest = (seed.random((n, n_labels)) < 0.4).astype(int)
    pred_k = seed.random((6, n)) < 0.5
    pred_k[0] = False  # label 1 never predicted
    fold = Fold(y=y, response=None, weights=None, X=np.zeros((n, 1)), y_raw=y, score_params={})
    scorer = get_scorer(scorer)
    metric = metric_of(scorer_parts(scorer))
    classes = np.arange(n_labels)
    fast = Objective(scorer, metric, classes, True).labels_scores(fold, pred_k, 1, rest)
    monkeypatch.setattr(_decision_metrics, "VECTORISED", False)
    slow = Objective(scorer, metric, classes, True).labels_scores(fold, pred_k, 1, rest)
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


def _custom(y_true, y_pred):
    return f1_score(y_true, y_pred, average="macro")


@pytest.mark.parametrize(
    "scorer",
    [
        make_scorer(f1_score, average="macro", labels=[0, 1]),  # labels: not a count metric
        make_scorer(f1_score, average="macro", zero_division=np.nan),
        make_scorer(f1_score, average="samples"),
        make_scorer(matthews_corrcoef),
        make_scorer(_custom),
        make_scorer(jaccard_score, average="macro", response_method="predict_proba"),
        get_scorer("roc_auc"),
        lambda estimator, X, y: 0.0,
    ],
    ids=["labels", "zero_division_nan", "samples", "mcc", "custom", "proba", "roc_auc", "lambda"],
)
def test_unrecognised_scorers_take_the_generic_path(scorer):
    assert metric_of(scorer_parts(scorer)) is None


def test_scorer_parts_and_pos_label():
    assert scorer_parts(lambda estimator, X, y: 0.0) is None
    assert pos_label_of(scorer_parts(get_scorer("f1"))) == 1  # f1_score's default
    assert pos_label_of(scorer_parts(get_scorer("f1_macro"))) is None
    assert pos_label_of(scorer_parts(get_scorer("balanced_accuracy"))) is None
    assert pos_label_of(scorer_parts(make_scorer(f1_score, pos_label="b"))) == "b"
    assert metric_of(scorer_parts(get_scorer("f1"))).binary_only


def test_accepts_sample_weight():
    assert accepts_sample_weight(get_scorer("f1"))
    assert not accepts_sample_weight(make_scorer(_custom))  # its metric takes no weights
    assert not accepts_sample_weight(lambda estimator, X, y: 0.0)
    assert accepts_sample_weight(lambda estimator, X, y, sample_weight=None: 0.0)
