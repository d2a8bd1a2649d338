"""Smoke of skfocal's main paths, for the floors job of ``.ci/run``.

Run in an environment holding skfocal and its runtime dependencies only (no test tools):
eight checks, each printed with its result and time; exits 1 unless all eight pass. Each
check asserts something that would be false if the path were broken, not only that it ran.
"""

from __future__ import annotations

import sys
import time
import traceback
import warnings

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skfocal import BatchedGridSearchCV, FocalClassifier

torch.set_num_threads(1)
FAST = dict(max_epochs=15, lr=0.02, batch_size=64, hidden_layer_sizes=(16,), random_state=0)


def _data(n_classes=2, n_samples=300, seed=0):
    weights = [0.8] if n_classes == 2 else [0.6, 0.3]
    X, y = make_classification(
        n_samples=n_samples,
        n_features=6,
        n_informative=4,
        n_classes=n_classes,
        weights=weights,
        random_state=seed,
    )
    return X.astype(np.float32), y


def binary_fit():
    X, y = _data()
    clf = FocalClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(y), 2) and np.allclose(proba.sum(axis=1), 1.0)
    ap = average_precision_score(y, proba[:, 1])
    assert ap > 0.7, ap  # the prior is 0.2
    return f"training AP {ap:.3f}, {clf.n_iter_} epochs"


def multiclass_balanced_alpha_and_sampler():
    X, y = _data(n_classes=3)
    clf = FocalClassifier(alpha="balanced", sampler="oversample", **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    assert any("up-weighted twice" in str(w.message) for w in caught)  # documented warning
    counts = np.bincount(y)
    np.testing.assert_allclose(clf.alpha_, len(y) / (3 * counts))  # scikit-learn's "balanced"
    proba = clf.predict_proba(X)
    assert proba.shape == (len(y), 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(clf.predict(X))) == {0, 1, 2}
    return f"alpha_ {np.round(clf.alpha_, 3).tolist()}"


def early_stopping_on_a_scorer():
    X, y = _data(n_samples=400)
    clf = FocalClassifier(
        early_stopping=True,
        scoring="average_precision",
        n_iter_no_change=5,
        **{**FAST, "max_epochs": 200},
    ).fit(X, y)
    scores = [row["valid_average_precision"] for row in clf.net_.history]
    assert clf.n_iter_ < 200, clf.n_iter_
    assert np.all(np.isfinite(scores)) and len(scores) == clf.n_iter_
    return f"stopped after {clf.n_iter_} of 200 epochs, best validation AP {max(scores):.3f}"


def _grid_and_cv():
    return {"gamma": [0.0, 2.0], "alpha": [None, "balanced"]}, StratifiedKFold(3)


def grid_search():
    X, y = _data()
    grid, cv = _grid_and_cv()
    search = GridSearchCV(FocalClassifier(**FAST), grid, cv=cv, scoring="average_precision")
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.all(np.isfinite(scores)), scores
    return f"best {search.best_params_}, AP {search.best_score_:.3f}"


def batched_grid_search():
    X, y = _data()
    grid, cv = _grid_and_cv()
    kwargs = dict(cv=cv, scoring="average_precision")
    batched = BatchedGridSearchCV(FocalClassifier(**FAST), grid, **kwargs).fit(X, y)
    single = GridSearchCV(FocalClassifier(**FAST), grid, **kwargs).fit(X, y)
    got, expected = batched.cv_results_["mean_test_score"], single.cv_results_["mean_test_score"]
    np.testing.assert_allclose(got, expected, atol=1e-4)  # each member is its single fit
    assert batched.best_params_ == single.best_params_
    return f"4 candidates x 3 folds as GridSearchCV (max |d AP| {np.abs(got - expected).max():.1e})"


def smote_pipeline():
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import make_pipeline

    X, y = _data()
    pipe = make_pipeline(SMOTE(random_state=0), FocalClassifier(**FAST)).fit(X, y)
    clf = pipe[-1]
    assert clf.class_prior_.tolist() == [0.5, 0.5]  # trained on SMOTE's balanced classes
    pred = pipe.predict(X)
    assert pred.shape == y.shape and set(np.unique(pred)) <= {0, 1}
    return f"training class prior {clf.class_prior_.tolist()}"


def losses_forward_and_backward():
    import torch.nn.functional as F

    from skfocal.losses import binary_focal_loss_with_logits, focal_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 5, (64,), generator=g)
    for gamma in (0.0, 0.5, 2.0):
        loss = focal_loss(logits, target, gamma=gamma)
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        if gamma == 0.0:  # gamma=0 is cross-entropy, in value and gradient
            ce = F.cross_entropy(logits, target)
            torch.testing.assert_close(loss, ce)
            torch.testing.assert_close(grad, torch.autograd.grad(ce, logits)[0])
    assert torch.autograd.gradcheck(lambda z: focal_loss(z, target, gamma=0.5), (logits,))
    z = torch.randn(64, generator=g, dtype=torch.float64, requires_grad=True)
    label = torch.randint(0, 2, (64,), generator=g).double()
    assert torch.autograd.gradcheck(
        lambda z: binary_focal_loss_with_logits(z, label, gamma=2.0, alpha=0.25), (z,)
    )
    return "focal and binary focal: finite, gamma=0 == cross-entropy, gradcheck"


def balanced_class_prior():
    X, y = _data()
    data = FocalClassifier(class_prior="data", **FAST).fit(X, y)
    balanced = FocalClassifier(class_prior="balanced", **FAST).fit(X, y)
    # the same training; a balanced prior shifts the log-odds by log(n0 / n1)
    n0, n1 = np.bincount(y)
    shift = balanced.decision_function(X) - data.decision_function(X)
    np.testing.assert_allclose(shift, np.log(n0 / n1), atol=1e-4)
    proba = balanced.predict_proba(X)
    sigmoid = 1 / (1 + np.exp(-balanced.decision_function(X).astype(np.float64)))
    np.testing.assert_allclose(proba[:, 1], sigmoid, rtol=1e-6, atol=1e-7)  # float32
    positives = int(balanced.predict(X).sum()), int(data.predict(X).sum())
    return f"log-odds shifted by log(n0/n1) = {np.log(n0 / n1):.3f}; positives {positives}"


CHECKS = [
    binary_fit,
    multiclass_balanced_alpha_and_sampler,
    early_stopping_on_a_scorer,
    grid_search,
    batched_grid_search,
    smote_pipeline,
    losses_forward_and_backward,
    balanced_class_prior,
]


def main():
    passed = 0
    for index, check in enumerate(CHECKS, 1):
        start = time.perf_counter()
        try:
            said = check()
        except Exception as exc:  # report every check, then fail
            result = f"FAIL  {type(exc).__name__}: {exc}".splitlines()[0][:300]
            traceback.print_exc(limit=-3)
        else:
            passed += 1
            result = f"pass  {said}"
        took = time.perf_counter() - start
        print(f"[{index}/{len(CHECKS)}] {check.__name__:<40} {result}  ({took:.1f} s)", flush=True)
    print(f"smoke: {passed} of {len(CHECKS)} passed")
    return 0 if passed == len(CHECKS) else 1


if __name__ == "__main__":
    sys.exit(main())
