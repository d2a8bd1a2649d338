"""Decision rules searched on out-of-fold responses, checked where the optimum is known."""

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.metrics import balanced_accuracy_score, f1_score, get_scorer

from skfocal import _decision_metrics
from skfocal._decision_metrics import Fold, Objective, metric_of, scorer_parts
from skfocal._decision_rules import (
    ClassOffsets,
    ExpectedCost,
    LabelThresholds,
    candidate_values,
    check_cost_matrix,
    plateau_middle,
)


def _objective(name, classes, multilabel=False):
    scorer = get_scorer(name)
    return Objective(scorer, metric_of(scorer_parts(scorer)), classes, multilabel)


def _folds(y, response, n_folds=5):
    rows = np.array_split(np.arange(len(y)), n_folds)
    return [
        Fold(y=y[r], response=response[r], weights=None, X=np.zeros((len(r), 1)), y_raw=y[r])
        for r in rows
    ]


def _gaussian_classes(rng, n, priors, means=(-2.0, 0.0, 2.0)):
    """1-D classes with unit variance: labels and the exact log posterior."""
    priors, means = np.asarray(priors), np.asarray(means)
    y = rng.choice(len(priors), size=n, p=priors)
    x = rng.normal(means[y], 1.0)
    log_joint = np.log(priors) - 0.5 * (x[:, None] - means) ** 2
    return y, log_joint - logsumexp(log_joint, axis=1, keepdims=True)


# -- plateau and candidates ------------------------------------------------------------------------
def test_plateau_middle_takes_the_middle_of_the_near_optimal_run():
    candidates = np.arange(10.0)
    scores = np.array([0.1, 0.2, 0.5, 0.799, 0.8, 0.8, 0.798, 0.4, 0.3, 0.2])
    # within 1 % of the range (0.007) of the best: candidates 3..6
    assert plateau_middle(candidates, scores, current=0.0) == 4.5
    assert plateau_middle(candidates, scores, current=0.0, tol=0.0) == 4.5  # the tied maxima
    single = np.array([0.1, 0.2, 0.9, 0.2])
    assert plateau_middle(np.arange(4.0), single, current=0.0) == 2.0


def test_plateau_middle_keeps_the_run_of_the_maximum_and_the_current_value_when_flat():
    scores = np.array([0.8, 0.1, 0.1, 0.81, 0.81, 0.1])  # two near-optimal runs
    assert plateau_middle(np.arange(6.0), scores, current=-1.0) == 3.5
    assert plateau_middle(np.arange(6.0), np.full(6, 0.3), current=-1.0) == -1.0


def test_candidates_are_midpoints_between_quantiles(seed):
    switches = seed.normal(size=500)
    candidates = candidate_values(switches, 50)
    assert np.all(np.diff(candidates) > 0)
    assert not np.isin(candidates, switches).any()  # no sample sits on a candidate
    assert switches.min() < candidates[0] and candidates[-1] < switches.max()
    np.testing.assert_array_equal(candidate_values(switches, [0.3, -1.0, 0.3]), [-1.0, 0.3])
    assert candidate_values(np.array([np.inf, -np.inf]), 10).size == 0


# -- multiclass offsets ----------------------------------------------------------------------------
def test_offsets_find_the_bayes_decision_of_balanced_accuracy(seed):
    # balanced accuracy's Bayes decision is argmax_k eta_k / pi_k: offsets -log(pi), centred
    priors = [0.75, 0.2, 0.05]
    y, log_post = _gaussian_classes(seed, 20_000, priors)
    rule = ClassOffsets(100).search(
        _objective("balanced_accuracy", np.arange(3)), _folds(y, log_post)
    )
    y_new, log_new = _gaussian_classes(seed, 200_000, priors)
    bayes = balanced_accuracy_score(y_new, np.argmax(log_new - np.log(priors), axis=1))
    tuned = balanced_accuracy_score(y_new, rule.labels(log_new))
    argmax = balanced_accuracy_score(y_new, np.argmax(log_new, axis=1))
    assert tuned > bayes - 0.005 and argmax < bayes - 0.05
    expected = -np.log(priors) + np.log(priors).mean()
    np.testing.assert_allclose(rule.values, expected, atol=0.35)
    assert abs(rule.values.sum()) < 1e-12  # centred


def test_offsets_raise_macro_f1_and_paths_agree(monkeypatch, seed):
    y, log_post = _gaussian_classes(seed, 800, [0.8, 0.15, 0.05])
    folds = _folds(y, log_post)
    fast = ClassOffsets(15).search(_objective("f1_macro", np.arange(3)), folds)
    argmax = np.mean([f1_score(f.y, f.response.argmax(axis=1), average="macro") for f in folds])
    assert fast.score > argmax + 0.01
    monkeypatch.setattr(_decision_metrics, "VECTORISED", False)
    slow = ClassOffsets(15).search(_objective("f1_macro", np.arange(3)), folds)
    np.testing.assert_array_equal(fast.values, slow.values)
    assert fast.score == slow.score
    history = fast.cv_results
    assert set(history) == {"coordinate", "candidates", "scores", "chosen"}
    assert 0 not in history["coordinate"]  # the most frequent class is the reference


def test_offsets_with_given_candidate_values(seed):
    y, log_post = _gaussian_classes(seed, 3000, [0.7, 0.2, 0.1])
    grid = np.linspace(-3, 3, 13)
    rule = ClassOffsets(grid).search(
        _objective("balanced_accuracy", np.arange(3)), _folds(y, log_post)
    )
    chosen = rule.cv_results["chosen"]
    # each chosen value is a candidate or the middle of two (before centring)
    assert np.all(np.isin(np.round(chosen * 4) / 4, np.linspace(-3, 3, 25)))


# -- multilabel thresholds -------------------------------------------------------------------------
def test_label_thresholds_reach_half_the_best_f1(monkeypatch, seed):
    # with calibrated probabilities the F1-optimal threshold is half the optimal F1
    # (Lipton, Elkan and Naryanaswamy, 2014)
    n = 40_000
    proba = seed.beta(0.5, [2.0, 4.0], size=(n, 2))
    y = (seed.random((n, 2)) < proba).astype(int)
    folds = _folds(y, proba)
    rule = LabelThresholds(200, 0.5).search(_objective("f1_macro", np.arange(2), True), folds)
    for k in range(2):
        best = max(f1_score(y[:, k], proba[:, k] >= t) for t in np.linspace(0.01, 0.99, 99))
        assert abs(rule.values[k] - best / 2) < 0.03
    small = _folds(y[:600], proba[:600])
    fast = LabelThresholds(20, 0.5).search(_objective("f1_micro", np.arange(2), True), small)
    monkeypatch.setattr(_decision_metrics, "VECTORISED", False)
    slow = LabelThresholds(20, 0.5).search(_objective("f1_micro", np.arange(2), True), small)
    np.testing.assert_array_equal(fast.values, slow.values)
    np.testing.assert_array_equal(rule.labels(proba[:3]), (proba[:3] >= rule.values).astype(int))


# -- cost matrices ---------------------------------------------------------------------------------
def test_expected_cost_is_the_argmin_of_expected_costs(seed):
    cost = np.array([[0.0, 1.0, 4.0], [3.0, 0.0, 1.0], [10.0, 2.0, 0.0]])
    proba = seed.dirichlet(np.ones(3), size=200)
    rule = ExpectedCost(cost)
    brute = np.array([np.argmin([p @ cost[:, j] for j in range(3)]) for p in proba])
    np.testing.assert_array_equal(rule.labels(proba), brute)
    assert rule.threshold() is None  # defined for binary targets only


def test_expected_cost_threshold_of_a_binary_matrix():
    rule = ExpectedCost(np.array([[0.0, 1.0], [9.0, 0.0]]))
    assert rule.threshold() == pytest.approx(0.1)
    p1 = np.array([0.05, 0.099, 0.101, 0.5])
    proba = np.column_stack([1 - p1, p1])
    np.testing.assert_array_equal(rule.labels(proba), [0, 0, 1, 1])


@pytest.mark.parametrize(
    "cost, target, match",
    [
        (
            [[0, 1], [1, 0]],
            "multiclass",
            r"shape \(n_classes, n_classes\) = \(3, 3\).*got shape \(2, 2\)",
        ),
        ([[0, 1, np.nan], [1, 0, 1], [1, 1, 0]], "multiclass", "must be finite"),
        ([[1, 1, 1], [2, 2, 2], [0, 0, 0]], "multiclass", "no decision to take"),
        ([[5, -1, 0], [0, 3, 1], [0, 0, 2]], "multiclass", "reads as a gain matrix"),
        ([[0, 1, 1], [1, 0, 1], [1, 1, 0]], "multilabel-indicator", "binary or multiclass target"),
        ([["a", 1, 1], [1, 0, 1], [1, 1, 0]], "multiclass", "must be numeric"),
    ],
)
def test_check_cost_matrix_errors(cost, target, match):
    with pytest.raises(ValueError, match=match):
        check_cost_matrix(cost, np.array([0, 1, 2]), target)


def test_check_cost_matrix_allows_benefits():
    # negative entries are benefits: a row's constant changes no decision
    matrix = check_cost_matrix([[-2, 1], [3, -1]], np.array(["a", "b"]), "binary")
    assert matrix.dtype == np.float64
