"""FocalClassifier end to end on each input form: dicts, integer ids, float features."""

import pickle

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from sklearn.model_selection import GridSearchCV, cross_val_score
from skorch.helper import SliceDict

from skfocal import FocalClassifier
from skfocal._inputs import FLOAT, IDS

from ._modules import Bag, Features, IdRecorder, MappingBag, _text_ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(max_epochs=4, lr=0.02, batch_size=32, random_state=0)


@pytest.mark.parametrize("as_tensors", [False, True])
@pytest.mark.parametrize("module", [Bag, MappingBag])
def test_dict_X_numpy_and_tensors(seed, as_tensors, module):
    ids, mask, y = _text_ids(seed)
    X = {"input_ids": ids, "attention_mask": mask}
    ref = FocalClassifier(module=Bag, **FAST).fit(X, y).predict_proba(X)
    if as_tensors:
        X = {k: torch.as_tensor(v) for k, v in X.items()}
    clf = FocalClassifier(module=module, **FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert isinstance(proba, torch.Tensor) is as_tensors
    proba = np.asarray(proba)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(proba, ref, rtol=1e-5)
    assert not hasattr(clf, "n_features_in_") and clf._inputs_.keys == tuple(X)
    assert np.isin(np.asarray(clf.predict(X)), clf.classes_).all()


def test_dict_X_equals_the_same_features_as_an_array(seed):
    # the dry forward before training changes nothing: {"x": X} trains exactly as X
    X, y = seed.normal(size=(120, 5)).astype(np.float32), seed.integers(0, 3, size=120)
    a = FocalClassifier(module=Features, **FAST).fit(X, y)
    b = FocalClassifier(module=Features, **FAST).fit({"x": X}, y)
    for (name, p), q in zip(a.net_.module_.named_parameters(), b.net_.module_.parameters()):
        assert torch.equal(p, q), name
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba({"x": X}), rtol=1e-6)
    assert b.n_iter_ == a.n_iter_ and not hasattr(b, "n_features_in_")


def test_refit_on_a_dict_forgets_feature_names(seed):
    pd = pytest.importorskip("pandas")
    X, y = seed.normal(size=(60, 5)).astype(np.float32), seed.integers(0, 2, size=60)
    clf = FocalClassifier(module=Features, **FAST).fit(pd.DataFrame(X, columns=list("abcde")), y)
    assert clf.n_features_in_ == 5 and hasattr(clf, "feature_names_in_")
    clf.fit({"x": X}, y)
    assert not hasattr(clf, "n_features_in_") and not hasattr(clf, "feature_names_in_")


@pytest.mark.parametrize(
    "sampler", [None, "oversample", "sqrt", RandomOverSampler(), RandomUnderSampler()]
)
def test_dict_X_with_samplers_weights_and_early_stopping(seed, sampler):
    ids, mask, y = _text_ids(seed)
    X = SliceDict(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask))
    clf = FocalClassifier(
        module=Bag,
        sampler=sampler,
        class_weight=None if sampler is not None else "balanced",
        early_stopping=True,
        n_iter_no_change=2,
        scoring="balanced_accuracy",
        **{**FAST, "max_epochs": 6},
    ).fit(X, y)
    assert "valid_balanced_accuracy" in clf.net_.history[-1]
    assert clf.net_.iterator_valid__batch_size == FAST["batch_size"]
    assert clf.predict_proba(X).shape == (len(y), 3)


@pytest.mark.parametrize("binary", [True, False])
def test_binary_targets_take_one_logit(seed, binary):
    ids, mask, y = _text_ids(seed)
    y = (y > 0).astype(int) if binary else y
    clf = FocalClassifier(module=MappingBag, **FAST).fit({"input_ids": ids}, y)
    assert clf.net_.module_.out.out_features == (1 if binary else 3)
    assert clf.decision_function({"input_ids": ids}).shape == ((len(y),) if binary else (len(y), 3))


def test_slicedict_through_grid_search_and_cross_val_score(seed):
    ids, mask, y = _text_ids(seed)
    X = SliceDict(input_ids=ids, attention_mask=mask)
    clf = FocalClassifier(module=Bag, **FAST)
    scores = cross_val_score(clf, X, y, cv=3, scoring="balanced_accuracy")
    assert scores.shape == (3,) and np.isfinite(scores).all()
    grid = GridSearchCV(clf, {"gamma": [0.0, 2.0], "alpha": [None, "balanced"]}, cv=2)
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.predict_proba(X).shape == (len(y), 3)


@pytest.mark.parametrize("big", [2**25 + 1, 2**53 + 1, 2**62 + 3])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_integer_ids_stay_exact(seed, big, as_tensor):
    ids, _, y = _text_ids(seed, n=64)
    ids[5, 3] = big  # float32 (2**25 + 1) and float64 (2**53 + 1) would round it
    X = torch.as_tensor(ids) if as_tensor else ids
    clf = FocalClassifier(module=IdRecorder, **FAST).fit(X, y)
    assert clf._inputs_.form == IDS and clf.n_features_in_ == ids.shape[1]
    assert clf.net_.module_.max_id == big
    clf.net_.module_.max_id = -1
    clf.predict(X[5:6])
    assert clf.net_.module_.max_id == big
    with pytest.raises(ValueError, match="fitted on integer X"):
        clf.predict(ids.astype(np.float64))


def test_integer_dataframe_reaches_a_module_as_int64(seed):
    pd = pytest.importorskip("pandas")
    ids, _, y = _text_ids(seed, n=64)
    frame = pd.DataFrame(ids.astype(np.int32), columns=[f"t{i}" for i in range(ids.shape[1])])
    clf = FocalClassifier(module=IdRecorder, **FAST).fit(frame, y)
    assert clf.net_.module_.max_id == ids.max() and list(clf.feature_names_in_) == list(frame)


def test_default_mlp_still_casts_integer_X(seed):
    X = seed.integers(0, 5, size=(80, 4))
    y = (X[:, 0] > 2).astype(int)
    a = FocalClassifier(**FAST).fit(X, y)
    b = FocalClassifier(**FAST).fit(X.astype(np.float32), y)
    assert a._inputs_.form == FLOAT
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X.astype(np.float32)))


def test_pickling_dict_and_ids_models(seed):
    ids, mask, y = _text_ids(seed)
    for X, module in (({"input_ids": ids, "attention_mask": mask}, MappingBag), (ids, IdRecorder)):
        clf = FocalClassifier(module=module, **FAST).fit(X, y)
        again = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
        assert again._inputs_.form == clf._inputs_.form


def test_errors_before_training(seed):
    ids, mask, y = _text_ids(seed)
    X = {"input_ids": ids, "attention_mask": mask}
    with pytest.raises(ValueError, match=r"X is a dict \(keys .*needs module="):
        FocalClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"does not accept the key\(s\) \['extra'\]"):
        FocalClassifier(module=Bag, **FAST).fit({**X, "extra": ids}, y)
    with pytest.raises(ValueError, match="same number of rows"):
        FocalClassifier(module=Bag, **FAST).fit({**X, "attention_mask": mask[:-1]}, y)
    with pytest.raises(ValueError, match="ragged"):
        FocalClassifier(module=Bag, **FAST).fit({"input_ids": [[1, 2], [3]]}, [0, 1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples: 160 and 159"):
        FocalClassifier(module=Bag, **FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"logits of shape \(2, 5\).*num_labels=n_outputs"):
        FocalClassifier(module=lambda: Bag(5), **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"sampler=SMOTE\(\) needs the feature rows"):
        FocalClassifier(module=Bag, sampler=SMOTE(), **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"sampler=SMOTE\(k_neighbors=2\) synthesises new"):
        FocalClassifier(module=IdRecorder, sampler=SMOTE(k_neighbors=2), **FAST).fit(ids, y)
    clf = FocalClassifier(module=Bag, **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"X has keys \['input_ids'\] in predict_proba"):
        clf.predict_proba({"input_ids": ids})
    with pytest.raises(ValueError, match="fitted on a dict X with keys"):
        clf.predict(ids)
    arrays = FocalClassifier(module=IdRecorder, **FAST).fit(ids, y)
    with pytest.raises(ValueError, match="fitted on a 2-D array X; decision_function got a"):
        arrays.decision_function(X)


@pytest.mark.gpu
def test_dict_X_on_the_gpu(seed):
    ids, mask, y = _text_ids(seed)
    X = {"input_ids": torch.as_tensor(ids), "attention_mask": torch.as_tensor(mask)}
    ref = FocalClassifier(module=Bag, **FAST).fit(X, y).predict_proba(X)
    Xc = {k: v.cuda() for k, v in X.items()}
    clf = FocalClassifier(module=Bag, device="auto", sampler="oversample", **FAST)
    clf.fit(Xc, y)
    assert clf.device_.type == "cuda"
    proba = clf.predict_proba(Xc)
    assert proba.device.type == "cuda"
    assert clf.predict_proba(X).device.type == "cpu"  # host inputs give host outputs
    clf2 = FocalClassifier(module=Bag, device="cuda", **FAST).fit(X, y)
    torch.testing.assert_close(clf2.predict_proba(X), ref, atol=1e-4, rtol=1e-4)
    ids_clf = FocalClassifier(module=IdRecorder, device="cuda", **FAST).fit(ids, y)
    assert ids_clf.net_.module_.max_id == ids.max()


def test_dict_X_with_sample_weight_and_warmup(seed):
    ids, mask, y = _text_ids(seed)
    X = {"input_ids": ids, "attention_mask": mask}
    sample_weight = np.where(y == 2, 3.0, 1.0)
    clf = FocalClassifier(module=Bag, warmup_epochs=2, **FAST).fit(X, y, sample_weight)
    zero = FocalClassifier(module=Bag, warmup_epochs=2, **FAST)
    zero.fit(X, y, np.where(y == 2, 0.0, 1.0))
    assert clf.n_iter_ == FAST["max_epochs"]
    # a class with zero weight is never learned: its probability falls below the weighted fit's
    assert zero.predict_proba(X)[:, 2].mean() < clf.predict_proba(X)[:, 2].mean()
