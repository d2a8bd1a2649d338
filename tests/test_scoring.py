"""Scorer adapters (skfocal/_scoring.py): scikit-learn scorers on precomputed outputs."""

import numpy as np
import pytest
from sklearn.metrics import get_scorer

from skfocal._scoring import FrozenPredictions, check_scorer
from skfocal._targets import BINARY, MULTICLASS


def test_frozen_predictions_feed_sklearn_scorers():
    logits = np.array([2.0, -1.0, 0.5, -3.0])
    y = np.array([1, 0, 0, 0])
    frozen = FrozenPredictions(logits, np.array([0, 1]), BINARY)
    X = np.zeros((4, 1))
    assert get_scorer("average_precision")(frozen, X, y) == 1.0
    assert get_scorer("accuracy")(frozen, X, y) == 0.75
    np.testing.assert_allclose(frozen.predict_proba(X)[:, 1], 1 / (1 + np.exp(-logits)))


@pytest.mark.parametrize(
    "name, kind, classes, ok",
    [
        ("average_precision", BINARY, np.array([0, 1]), True),
        ("balanced_accuracy", MULTICLASS, np.array(["a", "b", "c"]), True),
        ("roc_auc", MULTICLASS, np.array(["a", "b", "c"]), False),
        ("r2", MULTICLASS, np.array(["a", "b", "c"]), False),
    ],
)
def test_check_scorer_tries_the_scorer_before_training(name, kind, classes, ok):
    y_valid = np.resize(classes, 9)
    scorer = get_scorer(name)
    if ok:
        check_scorer(scorer, name, kind, classes, y_valid)
    else:
        with pytest.raises(ValueError, match=f"scoring={name!r} cannot score the early-stopping"):
            check_scorer(scorer, name, kind, classes, y_valid)
