"""class_prior and the inverse links: probabilities recovered from what the network learned."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_multilabel_classification

from skfocal import FocalClassifier
from skfocal._posterior import emphasis, log_shift, prior_vector
from skfocal._targets import BINARY, MULTICLASS, MULTILABEL

FAST = dict(max_epochs=8, batch_size=64, hidden_layer_sizes=(8,), random_state=0)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_emphasis_multiplies_alpha_class_weight_and_draw_rates():
    w = emphasis(BINARY, 2, 0.25, np.array([1.0, 3.0]), None, np.array([0.5, 4.0]))
    np.testing.assert_allclose(w, [0.75 * 1 * 0.5, 0.25 * 3 * 4.0])
    w = emphasis(MULTICLASS, 3, np.array([1.0, 2.0, 3.0]), None, None, None)
    np.testing.assert_allclose(w, [1, 2, 3])
    w = emphasis(MULTILABEL, 2, 0.25, None, np.array([1.0, 3.0]), None)
    np.testing.assert_allclose(w, [[0.75, 0.75], [0.25, 0.75]])  # rows: negatives, positives


def test_log_shift_for_each_class_prior():
    w, prior, classes = np.array([1.0, 4.0]), np.array([0.8, 0.2]), np.array([0, 1])
    assert log_shift(BINARY, "training", classes, w, prior) is None
    np.testing.assert_allclose(log_shift(BINARY, "data", classes, w, prior), -np.log(w))
    balanced = log_shift(BINARY, "balanced", classes, w, prior)
    np.testing.assert_allclose(balanced, -np.log(w) - np.log(prior))
    given = log_shift(BINARY, [0.6, 0.4], classes, w, prior)
    np.testing.assert_allclose(given - balanced, np.log([0.6, 0.4]))


@pytest.mark.parametrize(
    "given, match",
    [
        ([0.5, 0.5, 0.0], r"class_prior must be one of .* 3 positive class priors"),
        ([1.0, 2.0], r"class_prior must be one of"),
        ({0: 0.5}, r"class_prior as a dict must give every class a prior; \[1, 2\] missing"),
    ],
)
def test_prior_vector_errors(given, match):
    with pytest.raises(ValueError, match=match):
        prior_vector(given, np.array([0, 1, 2]), MULTICLASS)
    np.testing.assert_allclose(
        prior_vector([1, 1, 2], np.array([0, 1, 2]), MULTICLASS), [0.25] * 2 + [0.5]
    )


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(n_samples=600, n_features=5, weights=[0.85], random_state=0)
    return X.astype(np.float32), y


@pytest.mark.parametrize(
    "class_prior", ["training", "data", "balanced", [0.3, 0.7], {0: 0.9, 1: 0.1}]
)
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"alpha": "balanced"},
        {"class_weight": "balanced", "loss": "cross_entropy"},
        {"sampler": "oversample"},
        {"loss": "margin"},
        {"loss": "margin", "softness": 1.0},
        {"warmup_epochs": 2, "early_stopping": True},
    ],
)
def test_outputs_are_consistent_under_every_class_prior(binary, class_prior, params):
    X, y = binary
    clf = FocalClassifier(class_prior=class_prior, **{**FAST, **params}).fit(X, y)
    proba, scores, labels = clf.predict_proba(X), clf.decision_function(X), clf.predict(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.array_equal(labels, clf.classes_[proba.argmax(axis=1)])
    assert np.array_equal(scores > 0, labels == 1)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-scores)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(clf.class_prior_.sum(), 1.0)
    if not isinstance(class_prior, str):
        target = np.array(
            list(class_prior.values()) if isinstance(class_prior, dict) else class_prior
        )
        np.testing.assert_allclose(clf.class_prior_, target / target.sum())


def test_focal_inverse_link_keeps_ranking_and_argmax_and_undoes_the_squeeze(binary):
    X, y = binary
    clf = FocalClassifier(**FAST).fit(X, y)
    with torch.no_grad():
        raw = clf.net_.module_(torch.as_tensor(X)).squeeze(1).numpy()
    scores = clf.decision_function(X)
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(scores, kind="stable"))
    assert np.array_equal(raw > 0, scores > 0)
    assert np.abs(scores).mean() > np.abs(raw).mean()  # focal squeezes the logits toward 0
    # skorch's own predict_proba gives the same probabilities as the estimator
    np.testing.assert_allclose(clf.net_.predict_proba(X), clf.predict_proba(X), rtol=1e-5)


def test_cross_entropy_training_prior_is_the_plain_softmax(binary):
    X, y = binary
    clf = FocalClassifier(loss="cross_entropy", **FAST).fit(X, y)
    with torch.no_grad():
        raw = clf.net_.module_(torch.as_tensor(X)).squeeze(1).numpy()
    np.testing.assert_allclose(clf.decision_function(X), raw, rtol=1e-6)


def test_balanced_prior_equals_data_prior_divided_by_class_frequency(binary):
    X, y = binary
    base = dict(FAST, alpha="balanced")
    data = FocalClassifier(class_prior="data", **base).fit(X, y).predict_proba(X)
    balanced = FocalClassifier(class_prior="balanced", **base).fit(X, y).predict_proba(X)
    pi = np.bincount(y) / len(y)
    expected = data / pi
    np.testing.assert_allclose(balanced, expected / expected.sum(axis=1, keepdims=True), rtol=1e-4)


def test_multiclass_and_multilabel_class_priors():
    X, y = make_classification(
        n_samples=400, n_features=5, n_informative=3, n_classes=3, weights=[0.7, 0.2],
        random_state=0,
    )  # fmt: skip
    for prior in ("training", "data", "balanced", [0.2, 0.3, 0.5]):
        clf = FocalClassifier(class_prior=prior, alpha="balanced", **FAST).fit(X, y)
        proba = clf.predict_proba(X)
        np.testing.assert_allclose(np.exp(clf.decision_function(X)), proba, rtol=1e-4)
        assert np.array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    Xl, yl = make_multilabel_classification(
        n_samples=300, n_features=5, n_classes=3, random_state=0
    )
    for prior in ("training", "data", "balanced", [0.2, 0.3, 0.4]):
        clf = FocalClassifier(class_prior=prior, class_weight="balanced", **FAST).fit(Xl, yl)
        assert np.array_equal(clf.predict(Xl), (clf.predict_proba(Xl) > 0.5).astype(int))
    with pytest.raises(ValueError, match=r"3 positive rates in \(0, 1\), one per label"):
        FocalClassifier(class_prior=[0.2, 0.3, 1.0], **FAST).fit(Xl, yl)


def test_zero_emphasis_cannot_be_undone(binary):
    X, y = binary
    with pytest.raises(ValueError, match=r"class_prior='data' undoes the training emphasis"):
        FocalClassifier(alpha=0.0, class_prior="data", **FAST).fit(X, y)
    FocalClassifier(alpha=0.0, class_prior="training", **FAST).fit(X, y)


def _gaussians(seed, n=6000, prior=0.2, shift=1.5):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < prior).astype(int)
    X = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, shift, 0.0)
    log_odds = np.log(prior / (1 - prior)) + shift * X.sum(axis=1) - shift**2
    return X.astype(np.float32), y, 1 / (1 + np.exp(-log_odds))


@pytest.mark.slow
@pytest.mark.parametrize(
    "emphasis_params",
    [{"alpha": "balanced"}, {"class_weight": "balanced"}, {"sampler": "oversample"}],
)
def test_data_prior_recovers_a_known_posterior_like_cross_entropy(emphasis_params):
    """Two Gaussians (the logistic model is exact): mean |error| of P(y=1|x), 3 seeds.

    Focal loss undone by its inverse link should recover the posterior about as well as
    cross-entropy trained with the same emphasis (inversion amplifies logit errors by about
    1 + gamma, hence the looser bound at gamma 5).
    """
    if "sampler" in emphasis_params:  # draws change every epoch: full-batch Adam
        train = dict(optimizer=torch.optim.Adam, lr=0.01, max_epochs=400)
    else:  # deterministic objective: LBFGS reaches the empirical minimiser
        train = dict(optimizer=torch.optim.LBFGS, lr=0.5, max_epochs=40)
    common = dict(
        hidden_layer_sizes=(), weight_decay=0.0, batch_size=10_000, class_prior="data", **train
    )
    errors = {}
    for gamma in (0.0, 1.0, 2.0, 5.0):
        errs = []
        for seed in range(3):
            X, y, _ = _gaussians(seed)
            X_test, _, eta = _gaussians(100 + seed)
            clf = FocalClassifier(gamma=gamma, random_state=seed, **common, **emphasis_params)
            proba = clf.fit(X, y).predict_proba(X_test)[:, 1]
            errs.append(np.abs(proba - eta).mean())
        errors[gamma] = np.mean(errs)
    assert errors[0.0] < 0.02  # cross-entropy with the emphasis undone is itself accurate
    for gamma, bound in ((1.0, 1.2), (2.0, 1.2), (5.0, 2.0)):
        assert errors[gamma] <= bound * errors[0.0], (gamma, errors)
