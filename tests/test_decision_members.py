"""The members of TunedDecisionClassifierCV: the stacked route equals the clone-and-fit route."""

import numpy as np
import pytest
import torch
from _trainings import count_trainings
from sklearn.datasets import make_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfocal import FocalClassifier, TunedDecisionClassifierCV, _decision
from skfocal import _decision_members as members_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(max_epochs=4, batch_size=64, hidden_layer_sizes=(8,), dtype="float64", random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=600,
        n_features=6,
        n_informative=4,
        n_classes=3,
        weights=[0.7, 0.2, 0.1],
        random_state=0,
    )
    return X, y


def _generic(monkeypatch):
    monkeypatch.setattr(members_module, "_fit_stacked", lambda *args, **kwargs: None)


@pytest.mark.parametrize(
    "estimator",
    [
        FocalClassifier(**FAST),
        FocalClassifier(**FAST, alpha="balanced", early_stopping=True, n_iter_no_change=2),
        make_pipeline(StandardScaler(), FocalClassifier(**FAST)),
    ],
    ids=["plain", "alpha-early-stopping", "pipeline"],
)
@pytest.mark.parametrize("cv, refit", [(3, True), (0.25, False)])
def test_stacked_members_equal_clone_and_fit(monkeypatch, data, estimator, cv, refit):
    X, y = data
    params = dict(scoring="f1_macro", cv=cv, refit=refit, random_state=0)
    seen = count_trainings(monkeypatch)
    stacked = TunedDecisionClassifierCV(estimator, **params).fit(X, y)
    n_members = (3 if cv == 3 else 1) + int(refit)
    assert seen == {"single": [], "stacked": [n_members]}  # one run, no single fit
    with monkeypatch.context() as m:
        _generic(m)
        reference = TunedDecisionClassifierCV(estimator, **params).fit(X, y)
    np.testing.assert_allclose(stacked.class_offsets_, reference.class_offsets_, atol=1e-12)
    assert stacked.best_score_ == pytest.approx(reference.best_score_, abs=1e-12)
    np.testing.assert_allclose(
        stacked.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(stacked.predict(X), reference.predict(X))


def test_sample_weight_reaches_every_stacked_member(monkeypatch, data):
    X, y = data
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    seen = count_trainings(monkeypatch)
    est = FocalClassifier(**FAST)
    stacked = TunedDecisionClassifierCV(est, scoring="balanced_accuracy", cv=3).fit(
        X, y, sample_weight=w
    )
    assert seen == {"single": [], "stacked": [4]}
    with monkeypatch.context() as m:
        _generic(m)
        reference = TunedDecisionClassifierCV(est, scoring="balanced_accuracy", cv=3)
        reference.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(stacked.predict_proba(X), reference.predict_proba(X), atol=1e-12)


@pytest.mark.parametrize(
    "params",
    [{"loss": "ldam"}, {"warmup_epochs": 1}, {"optimizer": torch.optim.SGD, "weight_decay": 0}],
)
def test_members_that_do_not_stack_are_fitted_one_by_one(monkeypatch, data, params):
    X, y = data
    seen = count_trainings(monkeypatch)
    TunedDecisionClassifierCV(FocalClassifier(**{**FAST, **params}), cv=3).fit(X, y)
    assert seen == {"single": [1, 1, 1, 1], "stacked": []}


# -- "auto" resolved once, from the data given to the meta-estimator ----------------------------
AUTO = dict(hidden_layer_sizes=(4,), batch_size=512, max_epochs=2, random_state=0)


def _final(estimator):
    return getattr(estimator, "steps", [[None, estimator]])[-1][1]


@pytest.mark.parametrize("route", ["stacked", "generic", "generic-two-jobs"])
@pytest.mark.parametrize("pipeline", [False, True], ids=["plain", "pipeline"])
def test_auto_resolved_from_the_outer_data(monkeypatch, route, pipeline):
    """12,000 rows in 2 folds: training parts of 6,000 rows stop early like the refit on
    12,000, on every route (a fold member fitted alone would not: 6,000 <= 10,000)."""
    X, y = make_classification(n_samples=12_000, n_features=5, weights=[0.8], random_state=0)
    estimator = FocalClassifier(**AUTO)
    if pipeline:
        estimator = make_pipeline(StandardScaler(), estimator)
    if route != "stacked":
        _generic(monkeypatch)
    seen = count_trainings(monkeypatch)
    trained = []
    fit_members = _decision.fit_members

    def record(*args, **kwargs):
        folds, refitted = fit_members(*args, **kwargs)
        trained.extend([*folds, refitted])
        return folds, refitted

    monkeypatch.setattr(_decision, "fit_members", record)
    tuned = TunedDecisionClassifierCV(
        estimator, cv=2, n_jobs=2 if route == "generic-two-jobs" else None
    ).fit(X, y)
    if route == "stacked":
        assert seen == {"single": [], "stacked": [3]}
    assert len(trained) == 3 and trained[-1] is tuned.estimator_
    assert [_final(m).early_stopping_ for m in trained] == [True, True, True]
    assert [_final(m).max_epochs_ for m in trained] == [2, 2, 2]
    # the same member fitted alone on a fold's 6,000 rows resolves "auto" to False
    alone = FocalClassifier(**AUTO).fit(X[:6000], y[:6000])
    assert not alone.early_stopping_
