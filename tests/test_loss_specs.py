"""Loss specs: the registry behind FocalClassifier(loss=...) builds the right criteria."""

import pytest
import torch

from skfocal._loss_specs import LOSSES, loss_spec
from skfocal._targets import BINARY, MULTICLASS, MULTILABEL
from skfocal.losses import BinaryFocalLoss, BinaryMarginLoss, FocalLoss, MarginLoss

HYPER = {"gamma": 2.0, "margin": 0.7, "softness": 1.5}


@pytest.mark.parametrize(
    "name, kind, cls",
    [
        ("focal", MULTICLASS, FocalLoss),
        ("focal", BINARY, BinaryFocalLoss),
        ("cross_entropy", MULTILABEL, BinaryFocalLoss),
        ("margin", MULTICLASS, MarginLoss),
        ("margin", BINARY, BinaryMarginLoss),
    ],
)
def test_specs_build_per_sample_criteria(name, kind, cls):
    spec = loss_spec(name)
    criterion = spec.criterion(kind, {k: HYPER[k] for k in spec.params}, None, None)
    assert isinstance(criterion, cls) and criterion.reduction == "none"


def test_hyperparameters_read_from_the_estimator():
    from skfocal import FocalClassifier

    clf = FocalClassifier(gamma=0.5, margin=0.8)
    assert LOSSES["focal"].hyperparameters(clf) == {"gamma": 0.5}
    assert LOSSES["margin"].hyperparameters(clf) == {"margin": 0.8, "softness": None}
    assert LOSSES["cross_entropy"].hyperparameters(clf) == {}


def test_cross_entropy_is_focal_at_gamma_zero_with_alpha_and_pos_weight():
    ce = LOSSES["cross_entropy"].criterion(BINARY, {}, 0.25, None)
    assert ce.gamma == 0.0 and ce.alpha == 0.25
    ml = LOSSES["focal"].criterion(MULTILABEL, {"gamma": 1.0}, None, [1.0, 3.0])
    torch.testing.assert_close(ml.pos_weight, torch.tensor([1.0, 3.0]))
    mc = LOSSES["focal"].criterion(MULTICLASS, {"gamma": 1.0}, [1.0, 2.0, 3.0], None)
    torch.testing.assert_close(mc.alpha, torch.tensor([1.0, 2.0, 3.0]))


# -- the losses of the "more imbalance losses" issue, through the estimator ----------------
import numpy as np  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skfocal import (  # noqa: E402
    LDAM,
    Asymmetric,
    ClassBalanced,
    FocalClassifier,
    LogitAdjusted,
    Poly1,
)

FAST = dict(max_epochs=6, batch_size=64, hidden_layer_sizes=(8,), random_state=0)


def _binary():
    X, y = make_classification(n_samples=300, n_features=5, weights=[0.85], random_state=0)
    return X.astype(np.float32), y


def _multiclass():
    X, y = make_classification(
        n_samples=300, n_features=5, n_informative=3, n_classes=3, weights=[0.6, 0.3],
        random_state=0,
    )  # fmt: skip
    return X.astype(np.float32), y


def _multilabel():
    X, y = make_multilabel_classification(n_samples=200, n_features=5, n_classes=3, random_state=0)
    return X.astype(np.float32), y


@pytest.mark.parametrize(
    "loss, data",
    [
        ("ldam", _binary),
        ("ldam", _multiclass),
        ("logit_adjusted", _binary),
        ("logit_adjusted", _multiclass),
        ("poly", _binary),
        ("poly", _multiclass),
        ("poly", _multilabel),
        ("asymmetric", _binary),
        ("asymmetric", _multilabel),
        (LDAM(drw_epoch=3), _multiclass),
        (LDAM(cosine=False, scale=1.0), _binary),
    ],
)
def test_new_losses_train_through_the_estimator_in_a_pipeline(loss, data):
    X, y = data()
    pipe = make_pipeline(StandardScaler(), FocalClassifier(loss=loss, **FAST)).fit(X, y)
    proba = pipe.predict_proba(X)
    assert np.isfinite(proba).all()
    if y.ndim == 1:
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        assert np.array_equal(pipe.predict(X), pipe.classes_[proba.argmax(axis=1)])
    history = pipe[-1].net_.history[:, "train_loss"]
    assert history[-1] < history[0]


@pytest.mark.parametrize(
    "loss, grid",
    [
        (LogitAdjusted(), {"loss__tau": [0.0, 1.0]}),
        (LDAM(), {"loss__max_margin": [0.2, 0.5], "loss__scale": [10.0, 30.0]}),
        (Poly1(), {"loss__epsilon": [-1.0, 2.0], "gamma": [0.0, 2.0]}),
        (Asymmetric(), {"loss__gamma_neg": [2.0, 4.0], "loss__clip": [0.0, 0.05]}),
    ],
)
def test_grid_search_over_a_loss_and_its_hyperparameters(loss, grid):
    X, y = _binary()
    search = GridSearchCV(FocalClassifier(loss=loss, **FAST), grid, cv=2).fit(X, y)
    assert set(search.best_params_) == set(grid)
    assert search.best_estimator_.loss is not loss  # cloned, never mutated
    assert loss.get_params() == clone(loss).get_params()


def test_grid_search_over_loss_names_objects_and_class_weights():
    X, y = _binary()
    grid = {"loss": ["focal", "ldam", Poly1(epsilon=2.0)], "class_weight": [None, ClassBalanced()]}
    search = GridSearchCV(FocalClassifier(**FAST), grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 6


def test_class_balanced_weights_as_class_weight():
    X, y = _binary()
    clf = FocalClassifier(class_weight=ClassBalanced(beta=0.99), **FAST).fit(X, y)
    counts = np.bincount(y)
    expected = (1 - 0.99) / (1 - 0.99**counts)
    expected = expected * counts.sum() / (counts * expected).sum()
    np.testing.assert_allclose(clf.class_weight_, expected)
    np.testing.assert_allclose(ClassBalanced(beta=0.0).weights(counts), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"ClassBalanced: beta must be a float in \[0, 1\)"):
        FocalClassifier(class_weight=ClassBalanced(beta=1.0), **FAST).fit(X, y)


def test_ldam_binds_margins_from_training_counts_and_defers_reweighting():
    X, y = _multiclass()
    clf = FocalClassifier(loss=LDAM(drw_epoch=4, max_margin=0.4), **FAST).fit(X, y)
    counts = np.bincount(y)
    margins = counts**-0.25
    np.testing.assert_allclose(clf.net_.criterion_.margins.numpy(), 0.4 * margins / margins.max())
    assert clf.net_.phase_ == 1  # re-weighted from epoch 4 on
    phase_alpha = clf.net_.phase1_criterion_.alpha.numpy()
    np.testing.assert_allclose(phase_alpha.argmax(), counts.argmin())  # rarest class up-weighted
    with pytest.raises(ValueError, match=r"two schedules; use one of them"):
        FocalClassifier(loss=LDAM(drw_epoch=3), warmup_epochs=2, **FAST).fit(X, y)


def test_logit_adjusted_link_is_exact():
    """softmax(z + tau log pi) is the training posterior: class_prior='balanced' at tau=1
    gives softmax(z) itself."""
    X, y = _multiclass()
    clf = FocalClassifier(loss="logit_adjusted", class_prior="balanced", **FAST).fit(X, y)
    with torch.no_grad():
        z = clf.net_.module_(torch.as_tensor(X))
    np.testing.assert_allclose(clf.predict_proba(X), torch.softmax(z, 1).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "loss, data, match",
    [
        ("asymmetric", _multiclass, r"loss='asymmetric' is a sigmoid loss .* multiclass target"),
        ("ldam", _multilabel, r"loss='ldam' needs a binary or multiclass target"),
        (Poly1(epsilon=-2.0), _binary, r"epsilon must be a finite float >= -1, got -2.0"),
        (LDAM(scale=0.0), _binary, r"scale must be a finite float > 0, got 0.0"),
        (Asymmetric(clip=1.0), _binary, r"clip must be a float in \[0, 1\), got 1.0"),
        (LDAM(scale="a"), _binary, r"scale must be a real number \(a finite float > 0\), got 'a'"),
        (LDAM(drw_beta=1.0), _binary, r"drw_beta must be a float in \[0, 1\), got 1.0"),
        (LDAM(drw_epoch=0), _binary, r"drw_epoch must be None or an int >= 1, got 0"),
    ],
)
def test_loss_hyperparameters_are_checked_before_training(loss, data, match):
    X, y = data()
    est = FocalClassifier(loss=loss, **FAST)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "net_")


def test_loss_spec_accepts_objects():
    obj = LDAM(max_margin=0.3)
    assert loss_spec(obj) is obj and loss_spec("ldam").max_margin == 0.5


def test_deferred_reweighting_is_undone_by_the_data_prior():
    X, y = _multiclass()
    clf = FocalClassifier(loss=LDAM(drw_epoch=3), class_prior="data", **FAST).fit(X, y)
    np.testing.assert_allclose(clf.class_prior_, np.bincount(y) / len(y))
    np.testing.assert_allclose(
        clf.posterior_.emphasis, clf.net_.phase1_criterion_.alpha.numpy(), rtol=1e-6
    )
