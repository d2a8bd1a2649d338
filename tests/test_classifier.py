"""FocalClassifier end to end: hyperparameters, inputs, outputs, errors and sklearn integration."""

import io
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from imblearn.metrics import geometric_mean_score
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from scipy.special import softmax
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.metrics import average_precision_score, get_scorer, make_scorer
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    TunedThresholdClassifierCV,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, label_binarize
from sklearn.utils._param_validation import InvalidParameterError

from skfocal import FocalClassifier
from skfocal._inputs import device_runs
from skfocal._targets import BINARY

FAST = dict(max_epochs=8, lr=0.02, batch_size=64, hidden_layer_sizes=(16,), random_state=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def binary_data():
    X, y = make_classification(
        n_samples=240, n_features=6, n_informative=4, weights=[0.85], random_state=0
    )
    return X.astype(np.float32), y


@pytest.fixture
def multiclass_data():
    X, y = make_classification(
        n_samples=300,
        n_features=6,
        n_informative=4,
        n_classes=3,
        weights=[0.7, 0.2],
        random_state=0,
    )
    return X.astype(np.float32), y


# -- hyperparameters ---------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["focal", "cross_entropy", "margin"])
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_every_loss_trains_and_outputs_probabilities(loss, task, binary_data, multiclass_data):
    X, y = binary_data if task == "binary" else multiclass_data
    clf = FocalClassifier(loss=loss, softness=2.0 if loss == "margin" else None, **FAST)
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(np.unique(y)))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert clf.score(X, y) > 0.75
    history = clf.net_.history[:, "train_loss"]
    assert history[-1] < history[0]


@pytest.mark.parametrize("deep", [True, False])
def test_get_params_is_scikit_learns(deep):
    """The names read once per class give what BaseEstimator.get_params gives, nested
    parameters of a sampler included."""
    from imblearn.under_sampling import RandomUnderSampler
    from sklearn.base import BaseEstimator

    clf = FocalClassifier(gamma=1.0, sampler=RandomUnderSampler(random_state=3))
    assert clf.get_params(deep=deep) == BaseEstimator.get_params(clf, deep=deep)
    assert clf.set_params(sampler__random_state=5).sampler.random_state == 5


def test_decision_function_is_one_logit_for_binary(binary_data):
    X, y = binary_data
    clf = FocalClassifier(**FAST).fit(X, y)
    z = clf.decision_function(X)
    assert z.shape == (len(X),)
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(z > 0).astype(int)])


def _module_outputs(clf, X):
    """The trained module's outputs on ``X``, computed by hand (eval mode, no gradients)."""
    module = clf.net_.module_.eval()
    with torch.no_grad():
        out = module(torch.as_tensor(np.asarray(X), dtype=torch.float32))
    return out[:, 0].numpy() if out.shape[1] == 1 and clf.classes_.size == 2 else out.numpy()


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_predict_logits_are_the_networks_outputs(task, as_tensor, binary_data, multiclass_data):
    if task == "multilabel":
        X, y = make_multilabel_classification(n_samples=200, n_classes=3, random_state=0)
        X = X.astype(np.float32)
    else:
        X, y = binary_data if task == "binary" else multiclass_data
    clf = FocalClassifier(gamma=2.0, alpha="balanced", **FAST).fit(X, y)
    X_in = torch.from_numpy(X) if as_tensor else X
    logits = clf.predict_logits(X_in)
    assert isinstance(logits, torch.Tensor if as_tensor else np.ndarray)
    logits = np.asarray(logits)
    n_out = {"binary": None, "multiclass": 3, "multilabel": 3}[task]
    assert logits.shape == ((len(X),) if n_out is None else (len(X), n_out))
    np.testing.assert_allclose(logits, _module_outputs(clf, X), rtol=1e-5, atol=1e-6)
    # decision_function is not the network's output under focal loss and emphasis ...
    assert np.abs(np.asarray(clf.decision_function(X_in)) - logits).max() > 0.1


def test_predict_logits_equal_decision_function_for_plain_cross_entropy(binary_data):
    # ... and is exactly it where the inverse link is the identity and nothing is shifted
    X, y = binary_data
    clf = FocalClassifier(loss="cross_entropy", **FAST).fit(X, y)
    np.testing.assert_allclose(clf.predict_logits(X), clf.decision_function(X), rtol=1e-6)


def test_ranking_scorers_agree_on_decision_function_and_predict_proba(multiclass_data):
    # the "average_precision" scorer string asks for decision_function first (tuning.rst)
    X, y = multiclass_data
    clf = FocalClassifier(gamma=2.0, **FAST).fit(X, y)
    by_string = get_scorer("average_precision")(clf, X, y)
    by_proba = make_scorer(average_precision_score, response_method="predict_proba")(clf, X, y)
    assert by_string == pytest.approx(by_proba, abs=1e-12)
    raw = softmax(clf.predict_logits(X), axis=1)  # the network's own softmax ranks otherwise
    assert average_precision_score(label_binarize(y, classes=clf.classes_), raw) != by_proba


def _predict_logits_counting_rows(clf, X):
    """``predict_logits(X)`` and the number of rows of every forward call of the module."""
    calls = []
    hook = clf.net_.module_.register_forward_hook(lambda m, args, out: calls.append(len(out)))
    try:
        return clf.predict_logits(X), calls
    finally:
        hook.remove()


def test_predict_logits_stream_in_batches_like_predict(binary_data):
    X, y = binary_data
    clf = FocalClassifier(**FAST).fit(X, y)
    big = np.resize(X, (65_536 + 5, X.shape[1]))  # one row block more than a batch
    logits, calls = _predict_logits_counting_rows(clf, big)
    assert calls == [65_536, 5]
    np.testing.assert_allclose(logits[-5:], _module_outputs(clf, big[-5:]), rtol=1e-5)


def test_predict_logits_of_dict_inputs_in_batch_size_rows(seed):
    class Bag(torch.nn.Module):
        def __init__(self, n_outputs):
            super().__init__()
            self.emb, self.out = torch.nn.Embedding(20, 4), torch.nn.Linear(4, n_outputs)

        def forward(self, input_ids, attention_mask):
            h = self.emb(input_ids) * attention_mask.unsqueeze(-1).to(torch.float32)
            return self.out(h.mean(dim=1))

    ids = seed.integers(0, 20, size=(50, 6))
    mask = (seed.random((50, 6)) < 0.8).astype(np.int64)
    y = seed.integers(0, 3, size=50)
    X = {"input_ids": ids, "attention_mask": mask}
    clf = FocalClassifier(module=Bag, **dict(FAST, batch_size=16)).fit(X, y)
    logits, calls = _predict_logits_counting_rows(clf, X)
    assert calls == [16, 16, 16, 2]
    with torch.no_grad():
        ref = clf.net_.module_.eval()(torch.as_tensor(ids), torch.as_tensor(mask))
    assert logits.shape == (50, 3)
    np.testing.assert_allclose(logits, ref.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("labels", [["no", "yes"], [-3, 7], [1.0, 2.0]])
def test_any_label_type_round_trips(labels, binary_data):
    X, y = binary_data
    y_labels = np.asarray(labels)[y]
    clf = FocalClassifier(**FAST).fit(X, y_labels)
    np.testing.assert_array_equal(clf.classes_, np.sort(np.asarray(labels)))
    assert set(np.unique(clf.predict(X))) <= set(labels)


def test_bias_init_prior_sets_log_odds(binary_data):
    X, y = binary_data
    clf = FocalClassifier(bias_init="prior", max_epochs=1, lr=1e-12, random_state=0).fit(X, y)
    bias = clf.net_.module_.layers[-1].bias.item()
    pi = y.mean()
    assert bias == pytest.approx(-np.log((1 - pi) / pi), rel=1e-5)
    zero = FocalClassifier(bias_init="zero", max_epochs=1, lr=1e-12, random_state=0).fit(X, y)
    assert zero.net_.module_.layers[-1].bias.item() == pytest.approx(0.0, abs=1e-9)


def test_bias_init_prior_reflects_sampler_and_class_weight(binary_data):
    X, y = binary_data
    for params in ({"sampler": "oversample"}, {"class_weight": "balanced"}):
        clf = FocalClassifier(max_epochs=1, lr=1e-12, random_state=0, **params).fit(X, y)
        # the loss sees balanced classes: the constant model predicts 1/2
        assert clf.net_.module_.layers[-1].bias.item() == pytest.approx(0.0, abs=1e-6)


def test_warmup_epochs_switch_the_loss(binary_data):
    X, y = binary_data
    params = dict(FAST, max_epochs=3)
    warm = FocalClassifier(warmup_epochs=2, **params).fit(X, y)
    cross = FocalClassifier(loss="cross_entropy", **params).fit(X, y)
    focal = FocalClassifier(**params).fit(X, y)
    # the first two epochs are cross-entropy epochs, identical to a cross-entropy fit
    np.testing.assert_allclose(
        warm.net_.history[:2, "train_loss"], cross.net_.history[:2, "train_loss"], rtol=1e-6
    )
    assert warm.net_.history[2, "train_loss"] != pytest.approx(
        cross.net_.history[2, "train_loss"], rel=1e-3
    )
    assert focal.net_.history[0, "train_loss"] < cross.net_.history[0, "train_loss"]


def test_class_weight_and_alpha_resolved_attributes(multiclass_data):
    X, y = multiclass_data
    clf = FocalClassifier(class_weight="balanced", alpha={0: 1.0, 2: 3.0}, **FAST).fit(X, y)
    counts = np.bincount(y)
    np.testing.assert_allclose(clf.class_weight_, len(y) / (3 * counts))
    np.testing.assert_allclose(clf.alpha_, [1.0, 1.0, 3.0])


def test_sample_weight_none_equals_ones(binary_data):
    X, y = binary_data
    a = FocalClassifier(**FAST).fit(X, y).predict_proba(X)
    b = FocalClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y))).predict_proba(X)
    np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("sampler", [None, "oversample", "sqrt", RandomOverSampler(), SMOTE()])
def test_samplers_train(sampler, binary_data):
    X, y = binary_data
    clf = FocalClassifier(sampler=sampler, **FAST).fit(X, y)
    assert clf.score(X, y) > 0.7
    assert clf.n_iter_ == FAST["max_epochs"]


def test_balancing_sampler_with_balanced_weights_warns(binary_data):
    X, y = binary_data
    with pytest.warns(UserWarning, match="up-weighted twice"):
        FocalClassifier(sampler="oversample", class_weight="balanced", **FAST).fit(X, y)


def test_oversampling_raises_minority_recall(binary_data):
    X, y = binary_data
    params = dict(FAST, max_epochs=4, lr=0.005)
    plain = FocalClassifier(**params).fit(X, y)
    over = FocalClassifier(sampler="oversample", **params).fit(X, y)
    assert over.predict(X).mean() > plain.predict(X).mean()


# -- early stopping, scoring, verbose ----------------------------------------------------------
def test_early_stopping_on_average_precision_restores_best(binary_data):
    X, y = binary_data
    clf = FocalClassifier(
        early_stopping=True,
        scoring="average_precision",
        n_iter_no_change=2,
        max_epochs=60,
        lr=0.05,
        batch_size=32,
        hidden_layer_sizes=(32,),
        random_state=0,
    )
    with pytest.warns(UserWarning, match=r"has only 4 rows of class 1 in the validation part"):
        clf.fit(X, y)
    scores = np.array(clf.net_.history[:, "valid_average_precision"])
    losses = np.array(clf.net_.history[:, "valid_loss"])
    best = dict(clf.net_.callbacks_)["early_stopping"].best_epoch_
    assert clf.n_iter_ == best + 2 < 60  # stopped two epochs after the best one
    # the best: the top score, and among the epochs that have it the lowest validation loss
    # (AP is 1.0 from the first epoch here: skorch's rule kept epoch 1)
    assert scores[best - 1] == scores.max()
    assert losses[best - 1] == losses[scores == scores.max()].min()


def test_scoring_without_early_stopping_warns_before_training(binary_data):
    X, y = binary_data
    built = []

    def module(n_features, n_outputs):
        built.append(n_outputs)
        return torch.nn.Linear(n_features, n_outputs)

    clf = FocalClassifier(module=module, scoring="average_precision", **FAST)
    match = r"scoring='average_precision' has no effect with early_stopping=False.*Set early_st"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(UserWarning, match=match):
            clf.fit(X, y)
    assert built == []  # raised before the network was even built
    with pytest.warns(UserWarning, match=match):
        clf.fit(X, y)
    assert built == [1]


@pytest.mark.parametrize(
    "params", [{"scoring": None}, {"scoring": "average_precision", "early_stopping": True}]
)
def test_scoring_with_early_stopping_or_none_does_not_warn(params, binary_data):
    X, y = binary_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FocalClassifier(**params, **dict(FAST, max_epochs=2)).fit(X, y)
    assert not [w for w in caught if "has no effect with early_stopping=False" in str(w.message)]


def test_validation_split_sizes_reach_skorch_history(binary_data):
    # stratification and the rows the sampler sees are unit-tested in tests/test_plan.py
    X, y = binary_data
    clf = FocalClassifier(
        early_stopping=True, validation_fraction=0.25, sampler="oversample", **FAST
    ).fit(X, y)
    data = clf.net_.history  # the split sizes are recorded per epoch by skorch
    n_valid = round(0.25 * len(y))
    assert sum(data[0, "batches", :, "valid_batch_size"]) == n_valid
    assert sum(data[0, "batches", :, "train_batch_size"]) == len(y) - n_valid


def test_verbose_prints_epoch_table_with_metric(binary_data, capsys):
    X, y = binary_data
    FocalClassifier(early_stopping=True, scoring="roc_auc", verbose=1, **FAST).fit(X, y)
    out = capsys.readouterr().out
    assert "valid_roc_auc" in out and "train_loss" in out
    FocalClassifier(**FAST).fit(X, y)
    assert capsys.readouterr().out == ""


def test_verbose_two_shows_progress_bar(binary_data, capsys):
    X, y = binary_data
    FocalClassifier(verbose=2, **dict(FAST, max_epochs=1)).fit(X, y)
    captured = capsys.readouterr()
    assert "it/s" in captured.err or "%" in captured.err


def test_user_callbacks_are_copied_and_run(binary_data):
    from skorch.callbacks import EpochScoring

    X, y = binary_data
    cb = EpochScoring(lambda net, X, y: 1.0, name="constant", on_train=True)
    clf = FocalClassifier(callbacks=[cb], **FAST).fit(X, y)
    assert clf.net_.history[-1, "constant"] == 1.0
    assert not hasattr(cb, "best_score_")  # the user's instance is left untouched


# -- reproducibility and persistence ------------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"dropout": 0.3, "sampler": "oversample"}])
def test_random_state_is_bit_for_bit_reproducible(params, binary_data):
    X, y = binary_data
    a = FocalClassifier(early_stopping=True, **params, **FAST).fit(X, y)
    b = FocalClassifier(early_stopping=True, **params, **FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = FocalClassifier(early_stopping=True, **params, **dict(FAST, random_state=1)).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_fit_leaves_global_torch_rng_untouched(binary_data):
    X, y = binary_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    FocalClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_pickle_and_joblib_round_trips(binary_data):
    X, y = binary_data
    clf = FocalClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X), expected)


def test_module_instance_refits_independently(binary_data):
    X, y = binary_data
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    before = [p.detach().clone() for p in net.parameters()]
    clf = FocalClassifier(module=net, **FAST).fit(X, y)
    for p, q in zip(net.parameters(), before):
        assert torch.equal(p, q)
    clone(clf).fit(X, y)


# -- inputs and outputs -------------------------------------------------------------------------
def test_pandas_feature_names(binary_data):
    X, y = binary_data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = FocalClassifier(**FAST).fit(frame, pd.Series(y))
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


def test_torch_tensors_in_and_out(binary_data):
    X, y = binary_data
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    clf = FocalClassifier(**FAST).fit(Xt, yt)
    ref = FocalClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(Xt)
    assert isinstance(proba, torch.Tensor) and proba.dtype == torch.float32
    np.testing.assert_array_equal(proba.numpy(), ref.predict_proba(X))
    pred = clf.predict(Xt)
    assert isinstance(pred, torch.Tensor) and pred.dtype == torch.int64
    assert isinstance(clf.decision_function(Xt), torch.Tensor)
    assert isinstance(clf.predict(X), np.ndarray)


def test_other_array_api_namespace_in_and_out(binary_data):
    xp = pytest.importorskip("array_api_strict")
    X, y = binary_data
    device = xp.Device("device1")
    Xs, ys = xp.asarray(X, device=device), xp.asarray(y, device=device)
    clf = FocalClassifier(class_weight="balanced", **FAST).fit(Xs, ys)
    ref = FocalClassifier(class_weight="balanced", **FAST).fit(X, y)
    proba = clf.predict_proba(Xs)
    assert type(proba) is type(Xs) and proba.device == device
    np.testing.assert_array_equal(np.from_dlpack(proba), ref.predict_proba(X))
    pred = clf.predict(Xs)
    assert type(pred) is type(Xs) and pred.device == device
    assert type(clf.class_weight_) is type(Xs)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match=r"FocalClassifier.predict\(\)"):
            clf.predict(X)  # fitted on array_api_strict, predicting on NumPy
    with pytest.raises(ValueError, match=r"must use the same namespace"):
        with sklearn.config_context(array_api_dispatch=True):
            clf.decision_function(X)


def test_float32_tensor_on_training_device_is_used_in_place(binary_data):
    X, y = binary_data
    Xt = torch.from_numpy(X)
    clf = FocalClassifier(**dict(FAST, max_epochs=1)).fit(Xt, y)
    assert clf.net_.history[-1, "train_loss"] > 0
    # FitData holds the very same storage (no copy of X)
    from skfocal._engines._skorch import as_device_tensor

    assert as_device_tensor(Xt, torch.device("cpu"), torch.float32).data_ptr() == Xt.data_ptr()
    assert (
        as_device_tensor(X, torch.device("cpu"), torch.float32).data_ptr()
        == (X.__array_interface__["data"][0])
    )


def test_multilabel(seed):
    X, Y = make_multilabel_classification(n_samples=200, n_classes=4, random_state=0)
    X = X.astype(np.float32)
    clf = FocalClassifier(alpha=0.5, class_weight="balanced", **FAST).fit(X, Y)
    np.testing.assert_array_equal(clf.classes_, np.arange(4))
    assert clf.predict_proba(X).shape == (200, 4)
    pred = clf.predict(X)
    assert pred.shape == Y.shape and pred.dtype.kind == "i"
    assert (pred == Y).mean() > 0.7
    assert clf.class_weight_.shape == (4,)  # per-label pos_weight
    FocalClassifier(alpha=[0.2, 0.4, 0.6, 0.8], loss="margin", **FAST).fit(X, Y)


@pytest.mark.skipif(
    tuple(int(part) for part in sklearn.__version__.split(".")[:2]) < (1, 8),
    reason="scikit-learn < 1.8's average_precision_score and balanced_accuracy_score take no "
    "torch tensors under array_api_dispatch (np.argsort of a tensor, torch.dtype.kind): every "
    "score is NaN, from scikit-learn's metrics, whatever the estimator returns",
)
def test_array_api_dispatch_with_torch_inputs_in_subprocess():
    """GridSearchCV + AP/balanced accuracy on torch inputs under array-API dispatch.

    Runs in a fresh interpreter because scipy reads SCIPY_ARRAY_API at import time. (roc_auc
    is left out: sklearn 1.9.1's roc_curve fails on any torch input under dispatch, calling
    ``xp.diff(x, 2)`` with a positional ``n``.)
    """
    script = textwrap.dedent(
        """
        import numpy as np, torch, sklearn
        from sklearn.datasets import make_classification
        from sklearn.model_selection import GridSearchCV
        from skfocal import FocalClassifier
        torch.set_num_threads(1)
        X, y = make_classification(n_samples=200, n_features=5, weights=[0.8], random_state=0)
        Xt, yt = torch.asarray(X, dtype=torch.float32), torch.asarray(y)
        with sklearn.config_context(array_api_dispatch=True):
            clf = FocalClassifier(max_epochs=5, lr=0.02, random_state=0).fit(Xt, yt)
            proba = clf.predict_proba(Xt)
            assert isinstance(proba, torch.Tensor), type(proba)
            assert isinstance(clf.predict(Xt), torch.Tensor)
            search = GridSearchCV(
                FocalClassifier(max_epochs=5, lr=0.02, random_state=0),
                {"gamma": [0.0, 2.0]}, scoring=["average_precision", "balanced_accuracy"],
                refit="average_precision", cv=2,
            ).fit(Xt, yt)
            scores = np.asarray(search.cv_results_["mean_test_average_precision"], dtype=float)
            bal = np.asarray(search.cv_results_["mean_test_balanced_accuracy"], dtype=float)
            assert np.isfinite(scores).all() and np.isfinite(bal).all(), (scores, bal)
            assert scores.min() > 0.6, scores
        print("OK")
        """
    )
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")


@pytest.mark.gpu
def test_cuda_tensors_stay_on_device(binary_data):
    X, y = binary_data
    Xt = torch.from_numpy(X).cuda()
    clf = FocalClassifier(device="auto", **FAST).fit(Xt, torch.from_numpy(y).cuda())
    assert clf.device_.type == "cuda"
    assert clf.predict_proba(Xt).device.type == "cuda"
    assert clf.predict(Xt).device.type == "cuda"
    np.testing.assert_allclose(clf.predict_proba(X), clf.predict_proba(Xt).cpu().numpy())


def test_predict_streams_in_batches(binary_data, monkeypatch):
    import skfocal._engines._net as net_module

    X, y = binary_data
    clf = FocalClassifier(**FAST).fit(X, y)
    full = clf.predict_proba(X)
    monkeypatch.setattr(net_module, "PREDICT_BATCH_ROWS", 7)
    calls = []
    forward = clf.net_.module_.forward
    clf.net_.module_.forward = lambda x: calls.append(len(x)) or forward(x)
    from skfocal._engines._net import predict_logits

    out = predict_logits(
        clf.net_.module_,
        X,
        kind=BINARY,
        device="cpu",
        dtype=torch.float32,
        post=clf.posterior_.decision,
        batch_rows=7,
    )
    assert max(calls) == 7 and sum(calls) == len(X)
    np.testing.assert_allclose(1 / (1 + np.exp(-out)), full[:, 1], rtol=1e-5)


# -- scikit-learn and imbalanced-learn integration ----------------------------------------------
def test_grid_search_over_imbalance_knobs(binary_data):
    X, y = binary_data
    grid = {
        "gamma": [0.0, 2.0],
        "alpha": [None, "balanced"],
        "loss": ["focal", "margin"],
        "sampler": [None, "oversample"],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search = GridSearchCV(
            FocalClassifier(**dict(FAST, max_epochs=3)),
            grid,
            cv=2,
            n_jobs=2,
            scoring="average_precision",
        ).fit(X, y)
    assert len(search.cv_results_["params"]) == 16
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_pipeline_with_column_transformer(binary_data):
    X, y = binary_data
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["colour"] = np.where(y == 1, "red", "blue")
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), [f"x{i}" for i in range(X.shape[1])]),
            ("cat", OneHotEncoder(), ["colour"]),
        ]
    )
    pipe = Pipeline([("pre", pre), ("clf", FocalClassifier(**FAST))]).fit(frame, y)
    assert pipe.score(frame, y) > 0.9


@pytest.mark.parametrize("resampler", [SMOTE(random_state=0), RandomOverSampler(random_state=0)])
def test_imblearn_pipeline(resampler, binary_data):
    X, y = binary_data
    pipe = make_imb_pipeline(StandardScaler(), resampler, FocalClassifier(**FAST)).fit(X, y)
    assert geometric_mean_score(y, pipe.predict(X)) > 0.6


def test_cross_val_score_average_precision(binary_data):
    X, y = binary_data
    scores = cross_val_score(
        FocalClassifier(**FAST), X, y, cv=StratifiedKFold(3), scoring="average_precision"
    )
    assert scores.shape == (3,) and scores.min() > 0.4


def test_calibrated_and_tuned_threshold(binary_data):
    X, y = binary_data
    calibrated = CalibratedClassifierCV(FocalClassifier(**FAST), cv=2).fit(X, y)
    np.testing.assert_allclose(calibrated.predict_proba(X).sum(axis=1), 1.0)
    tuned = TunedThresholdClassifierCV(
        FocalClassifier(**FAST), scoring="balanced_accuracy", cv=2
    ).fit(X, y)
    assert 0.0 < tuned.best_threshold_ < 1.0


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, match",
    [
        ({"gamma": -1.0}, r"'gamma' parameter of FocalClassifier must be a float in the range"),
        ({"loss": "hinge"}, r"'loss' parameter .* must be a str among .*Got 'hinge'"),
        ({"sampler": "smote"}, r"'sampler' parameter .*Got 'smote'"),
        ({"alpha": 1.5}, r"'alpha' parameter .*Got 1.5"),
        ({"class_weight": "auto"}, r"'class_weight' parameter .*Got 'auto'"),
        ({"scoring": "not_a_metric"}, r"'scoring' parameter .*Got 'not_a_metric'"),
        ({"bias_init": "xavier"}, r"'bias_init' parameter .*Got 'xavier'"),
        (
            {"weight_averaging": 0.0},
            r"'weight_averaging' parameter .*None or a float in the range \(0\.0, inf\)\. Got 0\.0",
        ),
        ({"weight_averaging": "auto"}, r"'weight_averaging' parameter .*Got 'auto'"),
    ],
)
def test_invalid_hyperparameters_fail_fast(params, match, binary_data):
    X, y = binary_data
    with pytest.raises(InvalidParameterError, match=match):
        FocalClassifier(**params).fit(X, y)


class _Accelerator:  # passes the constraint (has prepare); never reached
    device = torch.device("cpu")

    def prepare(self, *args):
        raise AssertionError("training started")


def test_weight_averaging_with_an_accelerator_fails_before_training(binary_data):
    X, y = binary_data
    clf = FocalClassifier(weight_averaging=3.0, accelerator=_Accelerator())
    with pytest.raises(
        ValueError, match=r"weight_averaging=3\.0 cannot be used with an accelerator"
    ):
        clf.fit(X, y)


@pytest.mark.parametrize(
    "params, y_kind, match",
    [
        (
            {"alpha": [1.0, 2.0]},
            "multiclass",
            r"alpha must have one entry per class: expected "
            r"length 3",
        ),
        ({"alpha": 0.25}, "multiclass", r"alpha=0.25 is a float, which is the two-class"),
        (
            {"class_weight": {5: 2.0}},
            "binary",
            r"class_weight has keys that are not class "
            r"labels of y: \[5\]",
        ),
        ({"alpha": {"z": 1.0}}, "binary", r"alpha has keys that are not class labels"),
        ({"device": "cuda:99"}, "binary", r"device='cuda:99' is not available on this machine"),
        (
            {"device": "gpu"},
            "binary",
            r"device must be 'cpu', 'cuda', 'auto' or a torch "
            r"device string, got 'gpu'",
        ),
        (
            {"hidden_layer_sizes": (0,)},
            "binary",
            r"hidden_layer_sizes must be a sequence of "
            r"positive integers, got \(0,\)",
        ),
        (
            {"optimizer": torch.optim.LBFGS},
            "binary",
            r"weight_decay=0.01 was given but "
            r"optimizer=",
        ),
    ],
)
def test_data_dependent_errors(params, y_kind, match, binary_data, multiclass_data):
    X, y = binary_data if y_kind == "binary" else multiclass_data
    with pytest.raises(ValueError, match=match):
        FocalClassifier(**params).fit(X, y)


@pytest.mark.skipif(device_runs("cuda"), reason="tests the CPU-only error")
def test_cuda_unavailable_error(binary_data):
    X, y = binary_data
    with pytest.raises(ValueError, match=r"device='cuda' is not available on this machine"):
        FocalClassifier(device="cuda").fit(X, y)


def test_input_errors(binary_data):
    X, y = binary_data
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        FocalClassifier().fit(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        FocalClassifier().fit(bad, y)
    with pytest.raises(ValueError, match=r"Input X contains NaN or infinity"):
        FocalClassifier().fit(torch.from_numpy(bad), y)
    with pytest.raises(
        ValueError,
        match=r"needs samples of at least 2 classes in y, got 1 "
        r"class: \[1\]",
    ):
        FocalClassifier().fit(X, np.ones(len(y), dtype=int))
    with pytest.raises(ValueError, match=r"at least 2 classes with non-zero total sample_weight"):
        FocalClassifier().fit(X, y, sample_weight=(y == 1).astype(float))
    with pytest.raises(
        ValueError,
        match=r"sampler='oversample' balances classes and needs a "
        r"binary or multiclass target",
    ):
        FocalClassifier(sampler="oversample").fit(X, np.stack([y, 1 - y], axis=1))
    clf = FocalClassifier(**FAST).fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"X has 5 features, but FocalClassifier is expecting "
        r"6 features",
    ):
        clf.predict(X[:, :5])
    with pytest.raises(
        ValueError,
        match=r"X has 5 features, but FocalClassifier is expecting "
        r"6 features",
    ):
        clf.predict(torch.from_numpy(X[:, :5]))


def test_smote_with_sample_weight_error(binary_data):
    X, y = binary_data
    with pytest.raises(
        ValueError,
        match=r"sample_weight cannot be combined with a sampler that "
        r"synthesises rows",
    ):
        FocalClassifier(sampler=SMOTE(), **FAST).fit(X, y, sample_weight=np.ones(len(y)))


def test_missing_accelerate_error(binary_data, monkeypatch):
    X, y = binary_data

    class FakeAccelerator:
        device = torch.device("cpu")

        def prepare(self, *args):
            return args

    monkeypatch.setitem(sys.modules, "accelerate", None)
    with pytest.raises(
        ImportError,
        match=r"accelerator= needs the optional 'accelerate' "
        r"package",
    ):
        FocalClassifier(accelerator=FakeAccelerator()).fit(X, y)


def test_accelerator_trains(binary_data):
    accelerate = pytest.importorskip("accelerate")
    X, y = binary_data
    clf = FocalClassifier(accelerator=accelerate.Accelerator(cpu=True), **FAST).fit(X, y)
    assert type(clf.net_).__name__ == "AccelerateFocalNet"
    assert clf.score(X, y) > 0.75
