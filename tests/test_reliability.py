"""Bad input and degenerate training: a clear error before training, or a correct result.

One test per item of the reliability issue: each failed (or returned NaN silently) before.
"""

import warnings

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE
from sklearn.datasets import make_classification
from torch import nn

from skfocal import FocalClassifier, NonFiniteTrainingError
from skfocal._plan import check_hyperparameters, make_plan

FAST = dict(max_epochs=3, batch_size=64, hidden_layer_sizes=(8,), random_state=0)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def data():
    X, y = make_classification(n_samples=200, n_features=5, weights=[0.8], random_state=0)
    return X.astype(np.float32), y


# -- 1. class weights that switch classes off ------------------------------------------------
@pytest.mark.parametrize("class_weight", [{0: 0, 1: 0}, {1: 0}])
def test_class_weight_that_leaves_one_class_raises(data, class_weight):
    X, y = data
    with pytest.raises(
        ValueError, match=r"at least 2 classes with non-zero total class_weight=.*is not trained on"
    ):
        FocalClassifier(class_weight=class_weight, **FAST).fit(X, y)


def test_sample_weight_that_leaves_one_class_raises(data):
    X, y = data
    with pytest.raises(ValueError, match=r"non-zero total sample_weight, got only class \[0\]"):
        FocalClassifier(**FAST).fit(X, y, sample_weight=(y == 0).astype(float))


# -- 2. divergence ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"lr": 1e6},
        {"lr": 1e12, "hidden_layer_sizes": (256,)},
        {"lr": 1e6, "optimizer": torch.optim.SGD, "weight_decay": 0.0},
    ],
)
def test_divergence_stops_with_an_error(data, params):
    X, y = data
    with pytest.raises(
        NonFiniteTrainingError,
        match=r"Training stopped: the training loss became (nan|inf) at epoch \d+, batch \d+ "
        r"\(lr=.*\)\. The optimisation diverged: lower lr",
    ):
        FocalClassifier(**{**FAST, "max_epochs": 20, **params}).fit(X, y)


def test_non_finite_training_error_is_a_floating_point_error():
    """The documented contract: ``except FloatingPointError`` catches it."""
    assert issubclass(NonFiniteTrainingError, FloatingPointError)


# -- 3. values that overflow the training dtype ----------------------------------------------
@pytest.mark.parametrize("scale", [1e300, 1e39])
def test_x_overflowing_float32_raises_at_fit(data, scale):
    X, y = data
    X64 = X.astype(np.float64) * scale
    with pytest.raises(ValueError, match=r"overflow to infinity in dtype='float32' .* in fit"):
        FocalClassifier(**FAST).fit(X64, y)
    with pytest.raises(ValueError, match=r"overflow to infinity in dtype='float32'"):
        FocalClassifier(**FAST).fit(torch.from_numpy(X64), y)
    if scale < 1e300:  # fits in float64: dtype="float64" is the remedy the message gives
        FocalClassifier(dtype="float64", **FAST).fit(X64, y)


def test_one_overflowing_row_at_predict_time_raises(data):
    X, y = data
    clf = FocalClassifier(**FAST).fit(X, y)
    bad = X.astype(np.float64)[:3].copy()
    bad[1, 0] = 1e300
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(ValueError, match=rf"overflow to infinity .* in {method}"):
            getattr(clf, method)(bad)


# -- 4. early stopping on a scorer with few minority rows ------------------------------------
@pytest.mark.parametrize("scoring", ["average_precision", "roc_auc"])
@pytest.mark.parametrize("random_state", [0, 1, 2])
def test_scored_validation_part_holds_every_class(scoring, random_state):
    """Planned host-side: with 4 positives in 1000 rows the stratified 10 % validation part
    may hold none; a scorer needs one (AP and ROC AUC are undefined without), so the plan
    moves one in."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 4)).astype(np.float32)
    y = np.zeros(1000, dtype=int)
    y[[3, 250, 600, 900]] = 1
    est = FocalClassifier(early_stopping=True, scoring=scoring, random_state=random_state)
    plan, _ = make_plan(est, X, y)
    assert set(plan.y_valid) == {0, 1} and set(plan.y_enc[plan.train_idx]) == {0, 1}
    assert len(np.intersect1d(plan.train_idx, plan.valid_idx)) == 0


def test_scored_early_stopping_with_a_single_minority_row_raises():
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    y = np.zeros(50, dtype=int)
    y[7] = 1
    with pytest.raises(ValueError, match=r"needs at least 2 samples of every class .* only 1"):
        make_plan(FocalClassifier(early_stopping=True, scoring="average_precision"), X, y)


# -- 7. scorers that cannot score the target, before training --------------------------------
def test_scorer_checked_against_the_target_before_training():
    X, y = make_classification(
        n_samples=150, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    est = FocalClassifier(early_stopping=True, scoring="roc_auc", **FAST)
    with pytest.raises(ValueError, match=r"scoring='roc_auc' cannot score .* multiclass target"):
        make_plan(est, X, y)  # the plan refuses it: no engine is reached
    labels = np.array(["a", "b"])[(y > 0).astype(int)]
    with pytest.raises(ValueError, match=r"scoring='r2' cannot score .* binary target"):
        FocalClassifier(early_stopping=True, scoring="r2", **FAST).fit(X, labels)


# -- 8. errors that name the right thing -----------------------------------------------------
class ThreeOutputs(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.out = nn.Linear(n_features, 3)

    def forward(self, X):
        return self.out(X)


class TupleOutput(ThreeOutputs):
    def forward(self, X):
        return (self.out(X)[:, :1], X)


@pytest.mark.parametrize(
    "module, match",
    [
        (ThreeOutputs, r"module returned logits of shape \(2, 3\) .* binary target .* \(2, 1\)"),
        (TupleOutput, r"module must return a tensor of logits of shape \(N, 1\) .*got a tuple"),
    ],
)
def test_module_output_is_checked_before_training(data, module, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        FocalClassifier(module=module, **FAST).fit(X, y)


def test_module_factory_with_other_argument_names_is_named(data):
    X, y = data
    with pytest.raises(
        TypeError,
        match=r"module=<function .*<lambda>.*> cannot be built: .* receives n_features=5 and "
        r"n_outputs=1 by keyword, .* its signature is \(f, o\)",
    ):
        FocalClassifier(module=lambda f, o: nn.Linear(f, o), **FAST).fit(X, y)


@pytest.mark.parametrize("callbacks", [[42], [("name", 42)]])
def test_callbacks_that_are_not_callbacks(data, callbacks):
    X, y = data
    with pytest.raises(ValueError, match=r"callbacks must be a list of skorch callbacks .* 42"):
        FocalClassifier(callbacks=callbacks, **FAST).fit(X, y)


def test_meta_device_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match=r"device='meta' holds shapes but no data"):
        FocalClassifier(device="meta", **FAST).fit(X, y)


def test_smote_with_too_few_minority_rows_names_k_neighbors():
    X = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    y = np.array([0] * 56 + [1] * 4)
    with pytest.raises(ValueError, match=r"sampler=SMOTE\(\) failed .*k_neighbors=5 .* at least 6"):
        FocalClassifier(sampler=SMOTE(), **FAST).fit(X, y)


def test_mixed_label_types(data):
    X, _ = data
    y = np.array(["a", 1] * 100, dtype=object)
    with pytest.raises(ValueError, match=r"y mixes label types \(number, str\)"):
        FocalClassifier(**FAST).fit(X, y)


# -- 9. silently odd settings ----------------------------------------------------------------
def test_multiclass_alpha_that_trains_no_class():
    X, y = make_classification(
        n_samples=150, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    for alpha in ([0, 0, 0], [0, 0, 1]):
        with pytest.raises(ValueError, match=r"alpha must give at least 2 classes a positive"):
            FocalClassifier(alpha=alpha, **FAST).fit(X, y)


def test_warmup_covering_every_epoch_warns():
    SETTINGS = {"early_stopping": False, "max_epochs": FAST["max_epochs"]}
    with pytest.warns(UserWarning, match=r"warmup_epochs=3 >= max_epochs=3: .* never used"):
        check_hyperparameters(FocalClassifier(warmup_epochs=3, **FAST), SETTINGS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_hyperparameters(
            FocalClassifier(warmup_epochs=3, loss="cross_entropy", **FAST), SETTINGS
        )
