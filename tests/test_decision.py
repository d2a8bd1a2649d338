"""TunedDecisionClassifierCV: scikit-learn's threshold where it has one, and the rest."""

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from scipy.special import softmax
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, fbeta_score, get_scorer, make_scorer, recall_score
from sklearn.model_selection import (
    GroupKFold,
    StratifiedKFold,
    TunedThresholdClassifierCV,
)
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils._param_validation import InvalidParameterError

from skfocal import (
    FocalClassifier,
    TunedDecisionClassifierCV,
    _decision,
    _decision_members,
    _decision_metrics,
)
from skfocal.datasets import load_imbalanced

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(max_epochs=6, batch_size=128, hidden_layer_sizes=(8,), random_state=0)
CV = StratifiedKFold(5, shuffle=True, random_state=0)


@pytest.fixture(scope="module")
def yeast4():
    X, y = load_imbalanced("yeast4")
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def multiclass():
    X, y = make_classification(
        n_samples=900,
        n_classes=3,
        n_informative=4,
        weights=[0.75, 0.2, 0.05],
        random_state=0,
    )
    return X, y


def _f1_callable(estimator, X, y):
    return f1_score(y, estimator.predict(X))


# -- binary: scikit-learn's threshold --------------------------------------------------------------
SCORINGS = {
    "f1": "f1",
    "balanced_accuracy": "balanced_accuracy",
    "f1_macro": "f1_macro",
    "fbeta2": make_scorer(fbeta_score, beta=2),
}


@pytest.fixture(scope="module")
def sklearn_tuned(yeast4):
    X, y = yeast4
    return {
        name: TunedThresholdClassifierCV(LogisticRegression(), scoring=scoring, cv=CV).fit(X, y)
        for name, scoring in SCORINGS.items()
    }


@pytest.mark.parametrize(
    "name, vectorised",
    [(name, True) for name in SCORINGS] + [("f1", False), ("fbeta2", False)],
)
def test_binary_threshold_equals_scikit_learn(monkeypatch, yeast4, sklearn_tuned, name, vectorised):
    monkeypatch.setattr(_decision_metrics, "VECTORISED", vectorised)
    X, y = yeast4
    ours = TunedDecisionClassifierCV(LogisticRegression(), scoring=SCORINGS[name], cv=CV)
    ours.fit(X, y)
    theirs = sklearn_tuned[name]
    assert ours.decision_rule_ == "threshold"
    assert ours.best_threshold_ == theirs.best_threshold_
    assert ours.best_score_ == theirs.best_score_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_binary_threshold_of_a_plain_callable(yeast4):
    # TunedThresholdClassifierCV needs a scikit-learn scorer object; a plain callable takes
    # the generic path here and gives the threshold of the scorer of the same metric
    X, y = yeast4
    plain = TunedDecisionClassifierCV(LogisticRegression(), scoring=_f1_callable, cv=CV)
    scorer = TunedDecisionClassifierCV(LogisticRegression(), scoring="f1", cv=CV)
    assert plain.fit(X, y).best_threshold_ == scorer.fit(X, y).best_threshold_
    assert plain.best_score_ == scorer.best_score_


@pytest.mark.parametrize(
    "options",
    [
        dict(response_method="decision_function", thresholds=30),
        dict(thresholds=np.linspace(0.02, 0.9, 17)),
        dict(cv=0.3, random_state=0),
        dict(cv=0.3, random_state=0, refit=False),
    ],
    ids=["decision_function", "threshold_array", "float_cv", "float_cv_no_refit"],
)
def test_binary_options_equal_scikit_learn(yeast4, options):
    X, y = yeast4
    options = {"cv": CV, "scoring": "f1", **options}
    ours = TunedDecisionClassifierCV(LogisticRegression(), store_cv_results=True, **options)
    theirs = TunedThresholdClassifierCV(LogisticRegression(), store_cv_results=True, **options)
    ours.fit(X, y), theirs.fit(X, y)
    assert ours.best_threshold_ == theirs.best_threshold_
    np.testing.assert_array_equal(ours.cv_results_["scores"], theirs.cv_results_["scores"])
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_binary_string_labels_and_pos_label(yeast4):
    X, y = yeast4
    labels = np.array(["rare", "usual"])[1 - y]  # the positive class is classes_[0]
    scoring = make_scorer(recall_score, pos_label="rare")
    ours = TunedDecisionClassifierCV(LogisticRegression(), scoring=scoring, cv=CV).fit(X, labels)
    theirs = TunedThresholdClassifierCV(LogisticRegression(), scoring=scoring, cv=CV)
    theirs.fit(X, labels)
    assert ours.pos_label_ == "rare" and ours.classes_[0] == "rare"
    assert ours.best_threshold_ == theirs.best_threshold_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_binary_focal_classifier_equals_scikit_learn(monkeypatch, yeast4):
    """Clone-and-fit members: scikit-learn's threshold exactly. Stacked members (the default
    route for a FocalClassifier) compute the same fits up to float32 rounding (about 1e-7
    relative), and so the same threshold to that precision."""
    X, y = yeast4
    clf, cv = FocalClassifier(**FAST), StratifiedKFold(3, shuffle=True, random_state=0)
    theirs = TunedThresholdClassifierCV(clf, scoring="f1", cv=cv).fit(X, y)
    stacked = TunedDecisionClassifierCV(clf, scoring="f1", cv=cv).fit(X, y)
    assert stacked.best_threshold_ == pytest.approx(theirs.best_threshold_, rel=1e-5)
    np.testing.assert_array_equal(stacked.predict(X), theirs.predict(X))
    monkeypatch.setattr(_decision_members, "_fit_stacked", lambda *args, **kwargs: None)
    ours = TunedDecisionClassifierCV(clf, scoring="f1", cv=cv).fit(X, y)
    assert ours.best_threshold_ == theirs.best_threshold_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_prefit_and_frozen_estimators_equal_scikit_learn(yeast4):
    X, y = yeast4
    fitted = LogisticRegression().fit(X[:800], y[:800])
    ours = TunedDecisionClassifierCV(fitted, scoring="f1", cv="prefit", refit=False)
    theirs = TunedThresholdClassifierCV(fitted, scoring="f1", cv="prefit", refit=False)
    ours.fit(X[800:], y[800:]), theirs.fit(X[800:], y[800:])
    assert ours.estimator_ is fitted
    assert ours.best_threshold_ == theirs.best_threshold_
    frozen = FrozenEstimator(fitted)
    ours = TunedDecisionClassifierCV(frozen, scoring="f1", cv=3).fit(X[800:], y[800:])
    theirs = TunedThresholdClassifierCV(frozen, scoring="f1", cv=3).fit(X[800:], y[800:])
    assert ours.best_threshold_ == theirs.best_threshold_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


# -- multiclass and multilabel ---------------------------------------------------------------------
def test_multiclass_offsets_raise_the_cross_validated_score(multiclass):
    X, y = multiclass
    tuned = TunedDecisionClassifierCV(LogisticRegression(), scoring="f1_macro", cv=CV)
    tuned.fit(X, y)
    assert tuned.decision_rule_ == "offsets" and tuned.class_offsets_.shape == (3,)
    oof = np.zeros((len(y), 3))
    for train, test in CV.split(X, y):
        oof[test] = LogisticRegression().fit(X[train], y[train]).predict_log_proba(X[test])
    argmax = np.mean([f1_score(y[t], oof[t].argmax(1), average="macro") for _, t in CV.split(X, y)])
    assert tuned.best_score_ > argmax + 0.02
    log_proba = np.log(tuned.predict_proba(X))
    np.testing.assert_array_equal(tuned.predict(X), np.argmax(log_proba + tuned.class_offsets_, 1))
    assert not hasattr(tuned, "best_threshold_")


def test_multilabel_thresholds_one_per_label(monkeypatch, seed):
    X, Y = make_multilabel_classification(n_samples=200, n_classes=3, random_state=0)
    estimator = MultiOutputClassifier(LogisticRegression())  # predict_proba: a list
    fast = TunedDecisionClassifierCV(estimator, scoring="f1_macro", thresholds=10, cv=3)
    fast.fit(X, Y)
    assert fast.decision_rule_ == "label_thresholds" and fast.best_threshold_.shape == (3,)
    proba = np.column_stack([p[:, 1] for p in fast.predict_proba(X)])
    np.testing.assert_array_equal(fast.predict(X), (proba >= fast.best_threshold_).astype(int))
    monkeypatch.setattr(_decision_metrics, "VECTORISED", False)
    slow = clone(fast).fit(X, Y)
    np.testing.assert_array_equal(fast.best_threshold_, slow.best_threshold_)


# -- cost matrices ---------------------------------------------------------------------------------
def _known_posterior(rng, n, weights, bias):
    """Multinomial logistic data: features and the true posterior of each sample."""
    X = rng.normal(size=(n, 4))
    proba = softmax(X @ weights + bias, axis=1)
    y = np.array([rng.choice(3, p=p) for p in proba])
    return X, y, proba


COST = np.array([[0.0, 1.0, 2.0], [8.0, 0.0, 1.0], [30.0, 6.0, 0.0]])


def _expected_cost(proba, pred):
    return float(np.mean((proba @ COST)[np.arange(len(pred)), pred]))


def test_cost_matrix_within_two_percent_of_the_bayes_decision(seed):
    weights = seed.normal(size=(4, 3)) * 1.5
    bias = np.log([0.8, 0.15, 0.05])
    X, y, _ = _known_posterior(seed, 4000, weights, bias)
    X_new, _, proba_new = _known_posterior(seed, 40_000, weights, bias)
    tuned = TunedDecisionClassifierCV(LogisticRegression(), scoring=COST, cv=CV).fit(X, y)
    bayes = _expected_cost(proba_new, np.argmin(proba_new @ COST, axis=1))
    assert tuned.decision_rule_ == "expected_cost"
    np.testing.assert_array_equal(tuned.cost_matrix_, COST)
    assert _expected_cost(proba_new, np.searchsorted(tuned.classes_, tuned.predict(X_new))) < (
        1.02 * bayes
    )
    argmax = tuned.estimator_.predict(X_new)
    assert _expected_cost(proba_new, argmax) > 1.2 * bayes  # the decision is what matters
    assert -tuned.best_score_ == pytest.approx(np.mean(COST[y, tuned.predict(X)]), rel=0.15)


def test_cost_matrix_trains_focal_classifiers_with_calibrated_probabilities(seed):
    X, y = make_classification(n_samples=300, n_classes=3, n_informative=4, random_state=0)
    clf = FocalClassifier(class_weight={0: 1.0, 1: 4.0, 2: 10.0}, **FAST)
    tuned = TunedDecisionClassifierCV(clf, scoring=COST, cv=3).fit(X, y)
    assert tuned.estimator_.class_prior == "data" and clf.class_prior == "training"
    pipe = make_pipeline(StandardScaler(), clf)
    tuned = TunedDecisionClassifierCV(pipe, scoring=COST, cv=3).fit(X, y)
    assert tuned.estimator_[-1].class_prior == "data"
    balanced = FocalClassifier(class_prior="balanced", **FAST)  # an explicit prior is kept
    tuned = TunedDecisionClassifierCV(balanced, scoring=COST, cv=3).fit(X, y)
    assert tuned.estimator_.class_prior == "balanced"
    tuned = TunedDecisionClassifierCV(clf, scoring="f1_macro", cv=3).fit(X, y)
    assert tuned.estimator_.class_prior == "training"  # only cost matrices need it


def test_binary_cost_matrix_threshold(yeast4):
    X, y = yeast4
    cost = np.array([[0.0, 1.0], [9.0, 0.0]])
    tuned = TunedDecisionClassifierCV(LogisticRegression(), scoring=cost, cv=CV).fit(X, y)
    assert tuned.best_threshold_ == pytest.approx(0.1)
    proba = tuned.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(tuned.predict(X), (proba > 0.1).astype(int))


# -- the predict methods, the fitted attributes ----------------------------------------------------
def test_probabilities_and_scores_are_the_estimators(multiclass):
    X, y = multiclass
    tuned = TunedDecisionClassifierCV(LogisticRegression(), scoring="f1_macro", cv=3).fit(X, y)
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        np.testing.assert_array_equal(
            getattr(tuned, method)(X), getattr(tuned.estimator_, method)(X)
        )
    assert not hasattr(TunedDecisionClassifierCV(SVC()), "predict_proba")
    assert tuned.n_features_in_ == X.shape[1]
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    tuned = TunedDecisionClassifierCV(LogisticRegression(), scoring="f1_macro", cv=3).fit(frame, y)
    np.testing.assert_array_equal(tuned.feature_names_in_, frame.columns)


def test_store_cv_results(multiclass):
    X, y = multiclass
    tuned = TunedDecisionClassifierCV(
        LogisticRegression(), scoring="f1_macro", cv=3, store_cv_results=True
    ).fit(X, y)
    results = tuned.cv_results_
    assert set(results) == {"coordinate", "candidates", "scores", "chosen"}
    assert len(results["candidates"]) == len(results["scores"]) == len(results["coordinate"])
    assert not hasattr(
        TunedDecisionClassifierCV(LogisticRegression(), cv=3).fit(X, y), "cv_results_"
    )


def test_torch_tensor_inputs(seed):
    X, y = make_classification(n_samples=200, n_classes=3, n_informative=4, random_state=0)
    X = torch.as_tensor(X, dtype=torch.float32)
    tuned = TunedDecisionClassifierCV(FocalClassifier(**FAST), scoring="f1_macro", cv=3)
    tuned.fit(X, y)
    assert tuned.predict(X).shape == (200,)


def test_all_training_goes_through_fit_members(monkeypatch, multiclass):
    X, y = multiclass
    calls = []
    original = _decision.fit_members

    def spy(estimator, X, y, splits, fit_params, **kwargs):
        calls.append((len(splits), kwargs["refit"]))
        return original(estimator, X, y, splits, fit_params, **kwargs)

    monkeypatch.setattr(_decision, "fit_members", spy)
    TunedDecisionClassifierCV(LogisticRegression(), scoring="f1_macro", cv=CV).fit(X, y)
    assert calls == [(5, True)]


# -- metadata: sample_weight and groups ------------------------------------------------------------
class Recorder(LogisticRegression):
    """Records the sample_weight each fit receives."""

    seen = []

    def fit(self, X, y, sample_weight=None):
        Recorder.seen.append(None if sample_weight is None else len(sample_weight))
        return super().fit(X, y, sample_weight=sample_weight)


def test_routing_off_passes_fit_params_as_grid_search_does(multiclass):
    X, y = multiclass
    Recorder.seen = []
    weights = np.linspace(0.5, 2, len(y))
    tuned = TunedDecisionClassifierCV(Recorder(), scoring="f1_macro", cv=3)
    tuned.fit(X, y, sample_weight=weights)
    assert sorted(Recorder.seen) == [600, 600, 600, 900]  # three folds, then the refit
    groups = np.arange(len(y)) % 4
    Recorder.seen = []
    TunedDecisionClassifierCV(Recorder(), scoring="f1_macro", cv=GroupKFold(4)).fit(
        X, y, groups=groups
    )
    assert Recorder.seen == [None] * 5  # groups reach the splitter, not the estimator


def test_routing_on_equals_scikit_learn_with_weights(yeast4):
    X, y = yeast4
    weights = np.where(y == 1, 2.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        estimator = LogisticRegression().set_fit_request(sample_weight=True)
        scorer = get_scorer("f1").set_score_request(sample_weight=True)
        ours = TunedDecisionClassifierCV(estimator, scoring=scorer, cv=CV)
        theirs = TunedThresholdClassifierCV(estimator, scoring=scorer, cv=CV)
        ours.fit(X, y, sample_weight=weights), theirs.fit(X, y, sample_weight=weights)
        assert ours.best_threshold_ == theirs.best_threshold_
        assert ours.best_score_ == pytest.approx(theirs.best_score_, rel=1e-12)
        by_cost = TunedDecisionClassifierCV(estimator, scoring=[[0, 1], [9, 0]], cv=CV)
        by_cost.fit(X, y, sample_weight=weights)  # the cost matrix consumes sample_weight
        unweighted = clone(by_cost).set_params(estimator=LogisticRegression()).fit(X, y)
        assert by_cost.best_score_ != unweighted.best_score_
        unrequested = TunedDecisionClassifierCV(LogisticRegression(), scoring="f1", cv=CV)
        with pytest.raises(ValueError, match="sample_weight"):
            unrequested.fit(X, y, sample_weight=weights)


# -- errors before any training --------------------------------------------------------------------
class NoFit(LogisticRegression):
    """Fails the test if anything trains."""

    def fit(self, X, y, sample_weight=None):
        raise AssertionError("trained before the error")


BAD = [
    (dict(scoring="f2"), None, InvalidParameterError, r"'scoring' parameter .* Got 'f2'"),
    (dict(scoring="roc_auc"), None, ValueError, r"scoring='roc_auc' scores the estimator's"),
    (dict(scoring="f1"), "multiclass", ValueError, r"scoring='f1' scores one positive class"),
    (
        dict(scoring=make_scorer(f1_score, pos_label=7)),
        None,
        ValueError,
        r"pos_label=7, which is not one of the classes \[0, 1\]",
    ),
    (dict(scoring="balanced_accuracy"), "multilabel", ValueError, "not defined for a multilabel"),
    (dict(scoring=np.eye(3)), None, ValueError, r"= \(2, 2\) for the classes \[0, 1\]"),
    (dict(scoring=[[0, 1], [np.inf, 0]]), None, ValueError, "must be finite"),
    (dict(scoring=[[1, 0], [0, 1]]), None, ValueError, "reads as a gain matrix"),
    (dict(scoring=np.ones((3, 3)) - np.eye(3)), "multilabel", ValueError, "multilabel target"),
    (
        dict(scoring=[[0, 1], [1, 0]], response_method="decision_function"),
        None,
        ValueError,
        "cannot go with a cost matrix",
    ),
    (dict(cv="prefit"), None, ValueError, "refit=True cannot go with cv='prefit'"),
    (dict(cv="prefit", refit=False), None, NotFittedError, "must be fitted"),
    (dict(refit=False), None, ValueError, r"refit=False needs a single split .* 5 splits"),
    (dict(response_method="wrong"), None, InvalidParameterError, "'response_method' parameter"),
]


@pytest.mark.parametrize("params, target, error, match", BAD, ids=[b[3][:30] for b in BAD])
def test_errors_before_training(params, target, error, match):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.arange(60) % 2
    if target == "multiclass":
        y = np.arange(60) % 3
    elif target == "multilabel":
        y = (rng.random((60, 3)) < 0.5).astype(int)
    with pytest.raises(error, match=match):
        TunedDecisionClassifierCV(NoFit(), **params).fit(X, y)


@pytest.mark.parametrize(
    "y, kwargs, match",
    [
        (None, {}, "requires y to be passed"),
        (np.linspace(0, 1, 60), {}, "Unknown label type: 'continuous'"),
        (np.zeros(60), {}, "got only one class"),
        (np.arange(60) % 2, {"sample_weight": np.arange(60) % 2}, "sample_weight must leave"),
    ],
)
def test_target_errors_before_training(y, kwargs, match):
    X = np.random.default_rng(0).normal(size=(60, 3))
    with pytest.raises(ValueError, match=match):
        TunedDecisionClassifierCV(NoFit()).fit(X, y, **kwargs)


def test_response_method_the_estimator_lacks():
    X, y = np.zeros((20, 2)), np.arange(20) % 2
    with pytest.raises(ValueError, match=r"response_method='predict_proba' needs .* SVC has"):
        TunedDecisionClassifierCV(SVC(), response_method="predict_proba").fit(X, y)
    with pytest.raises(ValueError, match="needs the estimator to have predict_proba"):
        TunedDecisionClassifierCV(SVC(), scoring=[[0, 1], [2, 0]]).fit(X, y)


def test_members_helpers_take_rows_of_every_input_form():
    import array_api_strict

    rows = np.array([2, 0])
    X = np.arange(12.0).reshape(4, 3)
    tensor = torch.as_tensor(X)
    assert np.array_equal(_decision_members.to_numpy(tensor[rows]), X[rows])
    assert np.array_equal(_decision_members.to_numpy(array_api_strict.asarray(X)), X)
    np.testing.assert_array_equal(_decision_members.take(tensor, rows).numpy(), X[rows])
    taken = _decision_members.take({"a": X, "b": tensor}, rows)
    np.testing.assert_array_equal(taken["a"], X[rows])
    assert _decision_members.n_rows({"a": X}) == 4
    weights = np.arange(4.0)
    assert np.array_equal(_decision_members.take_param(weights, rows, 4), weights[rows])
    assert _decision_members.take_param("scalar", rows, 4) == "scalar"
    assert _decision_members.take_param(np.ones(3), rows, 4).shape == (3,)  # not per sample
