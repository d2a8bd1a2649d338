"""Input forms (float, ids, dict): skfocal._inputs's helpers, then FocalClassifier end to end."""

import pickle
import re

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler, TomekLinks
from sklearn.model_selection import GridSearchCV, cross_val_score
from skorch.helper import SliceDict
from torch import nn

from skfocal import FocalClassifier
from skfocal._inputs import (
    DICT,
    FLOAT,
    IDS,
    InputSpec,
    check_dict,
    check_forward,
    check_predict_form,
    check_sampled,
    check_sampler_inputs,
    check_signature,
    forward,
    input_spec,
    is_integer_input,
    logits_of,
    n_features,
    n_rows,
    output_like,
    take,
    to_device,
)
from skfocal._net import predict_logits
from skfocal._sampling import SamplerPlan
from skfocal._targets import MULTICLASS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(max_epochs=4, lr=0.02, batch_size=32, random_state=0)
VOCAB = 40


# -- modules --------------------------------------------------------------------------------------
class Bag(nn.Module):
    """Bag of embeddings of ``input_ids`` (masked by ``attention_mask``) -> logits."""

    def __init__(self, n_outputs, vocab=VOCAB, dim=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, n_outputs)

    def forward(self, input_ids, attention_mask=None):
        assert input_ids.dtype == torch.int64
        h = self.emb(input_ids)
        if attention_mask is not None:
            h = h * attention_mask.unsqueeze(-1).to(h.dtype)
        return self.out(h.mean(dim=1))


class MappingBag(Bag):
    """Returns ``{"logits": ...}`` like a Hugging Face model."""

    def forward(self, input_ids, attention_mask=None):
        return {"logits": super().forward(input_ids, attention_mask)}


class IdRecorder(nn.Module):
    """Asserts int64 ids and records the largest id seen (exact, as a Python int)."""

    def __init__(self, n_outputs):
        super().__init__()
        self.emb = nn.Embedding(97, 4)
        self.out = nn.Linear(4, n_outputs)
        self.max_id = -1

    def forward(self, X):
        assert X.dtype == torch.int64, X.dtype
        self.max_id = max(self.max_id, int(X.max()))
        return self.out(self.emb(X % 97).mean(dim=1))


class Features(nn.Module):
    """A float module whose forward takes ``x`` (positionally or by keyword), with dropout."""

    def __init__(self, n_outputs, n_in=5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Dropout(0.3))
        self.out = nn.Linear(8, n_outputs)

    def forward(self, x):
        return self.out(self.net(x))


class Kwargs(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.out = nn.Linear(1, n_outputs)

    def forward(self, **kwargs):
        return self.out(kwargs["input_ids"].float().mean(dim=1, keepdim=True))


def _text_ids(seed, n=160, length=10, weights=(0.6, 0.25, 0.15)):
    """Token ids whose class shows in a class-specific word block (ids 1..39, 0 = padding)."""
    y = seed.choice(len(weights), size=n, p=weights)
    noise = seed.integers(10, VOCAB, size=(n, length))
    topical = 1 + 3 * y[:, None] + seed.integers(0, 3, size=(n, length))
    ids = np.where(seed.random((n, length)) < 0.4, topical, noise)
    ids[:, -2:] = np.where(seed.random((n, 2)) < 0.5, 0, ids[:, -2:])  # some padding
    return ids.astype(np.int64), (ids > 0).astype(np.int64), y


# -- the helpers -------------------------------------------------------------------------------
def test_input_spec_decides_the_form():
    ints, floats = np.zeros((3, 2), dtype=np.int32), np.zeros((3, 2))
    assert input_spec(ints, None).form == FLOAT  # the default MLP casts integers
    assert input_spec(ints, Bag, 16).form == IDS and input_spec(ints, Bag, 16).batch_rows == 16
    assert input_spec(floats, Bag).form == FLOAT
    assert input_spec(torch.zeros(3, 2, dtype=torch.long), Bag).form == IDS
    assert input_spec(torch.zeros(3, 2, dtype=torch.bool), Bag).form == FLOAT
    spec = input_spec(SliceDict(a=ints, b=floats), None, 8)
    assert (spec.form, spec.keys, spec.batch_rows) == (DICT, ("a", "b"), 8)
    assert not spec.tabular and not spec.cast_integers
    assert InputSpec(IDS).validate_dtype is np.int64
    assert InputSpec(FLOAT).validate_dtype == [np.float32, np.float64]
    assert InputSpec(FLOAT).predict_options() == {"cast_integers": True}
    assert spec.predict_options() == {"cast_integers": False, "batch_rows": 8}


def test_is_integer_input():
    pd = pytest.importorskip("pandas")
    assert is_integer_input(np.arange(4, dtype=np.uint8).reshape(2, 2))
    assert is_integer_input([[1, 2], [3, 4]])
    assert not is_integer_input([[1.0, 2], [3, 4]])
    assert not is_integer_input(np.zeros((2, 2), dtype=bool))
    assert is_integer_input(pd.DataFrame({"a": [1, 2], "b": [3, 4]}))
    assert not is_integer_input(pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]}))
    assert not is_integer_input([[1], [2, 3]])  # ragged: validate_data reports it


def test_check_dict_returns_plain_dict_with_int64_ids(seed):
    ids = seed.integers(0, 9, size=(4, 3)).astype(np.int32)
    mask = torch.ones(4, 3, dtype=torch.long)
    out = check_dict(SliceDict(input_ids=ids, mask=mask), "fit")
    assert type(out) is dict and list(out) == ["input_ids", "mask"]
    assert out["input_ids"].dtype == np.int64 and out["mask"] is mask
    assert check_dict({"v": [[1.0, 2.0], [3.0, 4.0]]}, "fit")["v"].dtype == np.float64
    out = check_dict({"b": ids, "a": ids}, "predict", keys=("a", "b"))
    assert list(out) == ["b", "a"]


@pytest.mark.parametrize(
    ("X", "match"),
    [
        ({}, "X is an empty dict in fit"),
        ({1: np.zeros((2, 2))}, re.escape("keys of a dict X must be strings") + ".*got \\[1\\]"),
        ({"a": [[1, 2], [3]]}, re.escape("X['a'] is ragged") + ".*padding=True"),
        ({"a": np.array([[1], [2, 3]], dtype=object)}, re.escape("X['a'] is ragged")),
        ({"a": np.zeros((3, 2)), "b": np.zeros((2, 2))}, "same number of rows.*'a': 3, 'b': 2"),
        ({"a": np.float32(1.0)}, re.escape("X['a'] is a scalar")),
        ({"a": torch.tensor(1.0)}, re.escape("X['a'] is a 0-d tensor")),
        ({"a": np.array([["x"], ["y"]])}, re.escape("X['a'] has dtype <U1")),
        ({"a": np.array([[np.nan]])}, re.escape("X['a'] contains NaN or infinity")),
        ({"a": torch.tensor([[np.inf]])}, re.escape("X['a'] contains NaN or infinity")),
        ({"a": torch.zeros(2, 2, dtype=torch.complex64)}, re.escape("X['a'] is a complex")),
        ({"a": np.zeros((0, 2))}, "dict X with 0 sample"),
    ],
)
def test_check_dict_errors(X, match):
    with pytest.raises(ValueError, match=match):
        check_dict(X, "fit")


def test_check_dict_at_predict_time():
    with pytest.raises(ValueError, match=r"X has keys \['a'\] in predict.*fitted with keys"):
        check_dict({"a": np.zeros((2, 2))}, "predict", keys=("a", "b"))
    with pytest.raises(ValueError, match="fitted on a dict X with keys.*predict got ndarray"):
        check_dict(np.zeros((2, 2)), "predict", keys=("a",))


def test_check_predict_form():
    check_predict_form(InputSpec(IDS), np.zeros((2, 2), dtype=np.int16), "predict")
    with pytest.raises(ValueError, match="fitted on a 2-D array X; predict got a dict"):
        check_predict_form(InputSpec(FLOAT), {"a": np.zeros((2, 2))}, "predict")
    with pytest.raises(ValueError, match="fitted on integer X .* got X of dtype float64"):
        check_predict_form(InputSpec(IDS), np.zeros((2, 2)), "predict_proba")


def test_rows_take_and_features(seed):
    X = {"a": torch.arange(10).reshape(5, 2), "b": np.arange(5)}
    assert n_rows(X) == 5 and n_features(X) is None and n_features(np.zeros((5, 3))) == 3
    part = take(X, slice(1, 3))
    assert part["a"].tolist() == [[2, 3], [4, 5]] and part["b"].tolist() == [1, 2]
    rows = take({"a": X["a"]}, torch.tensor([4, 0]))
    assert rows["a"].tolist() == [[8, 9], [0, 1]]
    assert take(np.arange(5), np.array([3]))[0] == 3


def test_to_device_dtype_rules():
    ints = np.array([[2**40 + 1]], dtype=np.int64)
    cpu = torch.device("cpu")
    assert to_device(ints, cpu, torch.float32, cast_integers=False).item() == 2**40 + 1
    assert to_device(ints, cpu, torch.float64, cast_integers=True).dtype == torch.float64
    out = to_device(
        {"i": ints.astype(np.int32), "f": np.zeros((1, 2)), "m": np.ones((1, 1), dtype=bool)},
        cpu,
        torch.float32,
        cast_integers=True,  # ignored inside a dict
    )
    assert (out["i"].dtype, out["f"].dtype, out["m"].dtype) == (
        torch.int64,
        torch.float32,
        torch.bool,
    )
    t = torch.zeros(2, 2)
    assert to_device(t, cpu, torch.float32, cast_integers=True) is t  # nothing to copy


def test_logits_of_and_forward():
    z = torch.zeros(2, 3)

    class Output:  # an object with a logits attribute (e.g. a dataclass output)
        logits = z

    assert logits_of(z) is z and logits_of({"logits": z, "loss": None}) is z
    assert logits_of(Output()) is z
    with pytest.raises(TypeError, match="mapping .* with a 'logits' entry; it returned tuple"):
        logits_of((z,))
    module = MappingBag(3)
    ids = torch.zeros(2, 4, dtype=torch.long)
    assert forward(module, {"input_ids": ids}).shape == (2, 3)


def test_output_like():
    assert output_like({"a": torch.zeros(2)}, torch.float32) == (
        True,
        torch.device("cpu"),
        torch.float32,
    )
    assert output_like({"a": torch.zeros(2), "b": np.zeros(2)}, torch.float32)[0] is False
    assert output_like(np.zeros(2, dtype=np.int64), torch.float32)[2] == np.float64
    assert output_like(torch.zeros(2, dtype=torch.float64), torch.float32)[2] == torch.float64


def test_sampler_checks_for_dict_and_ids():
    dict_spec, ids_spec = InputSpec(DICT, keys=("a",)), InputSpec(IDS)
    for sampler in (None, "oversample", RandomOverSampler(), RandomUnderSampler()):
        check_sampler_inputs(sampler, dict_spec)
    check_sampler_inputs(TomekLinks(), ids_spec)  # reuses rows: allowed on ids
    with pytest.raises(ValueError, match=r"sampler=SMOTE\(\) needs the feature rows of X"):
        check_sampler_inputs(SMOTE(), dict_spec)
    with pytest.raises(ValueError, match="needs the feature rows of X, which a dict X"):
        check_sampler_inputs(RandomOverSampler(shrinkage=1.0), dict_spec)
    with pytest.raises(ValueError, match="adds noise to the feature values.*integer ids"):
        check_sampler_inputs(RandomOverSampler(shrinkage=1.0), ids_spec)
    check_sampler_inputs(SMOTE(), InputSpec(FLOAT))
    synthesised = SamplerPlan(0, X_res=np.zeros((2, 2)), y_res=np.zeros(2))
    check_sampled(synthesised, SMOTE(), InputSpec(FLOAT))
    with pytest.raises(ValueError, match=r"sampler=SMOTE\(\) synthesises new feature rows"):
        check_sampled(synthesised, SMOTE(), ids_spec)


def test_check_signature():
    check_signature(Bag(2), ("input_ids", "attention_mask"))
    check_signature(Kwargs(2), ("anything",))
    with pytest.raises(ValueError, match=r"Bag.forward does not accept the key\(s\) \['ids'\]"):
        check_signature(Bag(2), ("ids",))
    with pytest.raises(ValueError, match=r"forward requires \['input_ids'\], which X does not"):
        check_signature(Bag(2), ("attention_mask",))


def test_check_forward_leaves_rng_and_modes_alone(seed):
    module = Features(3)
    module.net[2].eval()  # a submodule mode set by the user survives the check
    X = {"x": torch.as_tensor(seed.normal(size=(5, 5)), dtype=torch.float32)}
    state = torch.get_rng_state()
    check_forward(module, X, InputSpec(DICT, keys=("x",)), 3, torch.float32)
    assert torch.equal(torch.get_rng_state(), state)
    assert module.training and not module.net[2].training and module.net[0].training


@pytest.mark.parametrize(
    ("module", "X", "keys", "match"),
    [
        (Bag(4), {"input_ids": torch.zeros(3, 2, dtype=torch.long)}, ("input_ids",), "shape"),
        (Bag(2), {"input_ids": torch.full((3, 2), 99)}, ("input_ids",), "IndexError"),
        (Kwargs(2), {"input_ids": torch.zeros(3, 2, dtype=torch.long)}, ("input_ids",), None),
    ],
)
def test_check_forward_errors(module, X, keys, match):
    spec = InputSpec(DICT, keys=keys)
    if match is None:
        check_forward(module, X, spec, 2, torch.float32)
    elif match == "shape":
        with pytest.raises(ValueError, match=r"logits of shape \(2, 4\) for 2 row.*num_labels"):
            check_forward(module, X, spec, 2, torch.float32)
    else:
        with pytest.raises(ValueError, match=r"dry forward of the first 2 row\(s\).*IndexError"):
            check_forward(module, X, spec, 2, torch.float32)


def test_check_forward_hints_at_float_features_for_ids():
    spec = InputSpec(IDS)
    with pytest.raises(ValueError, match=r"int64 ids.*pass X.astype\('float32'\)"):
        check_forward(Features(2), torch.zeros(3, 5, dtype=torch.long), spec, 2, torch.float32)
    check_forward(Features(2), torch.zeros(3, 5), InputSpec(FLOAT), 2, torch.float32)  # no-op


@pytest.mark.parametrize("batch_rows", [1, 7, 1000])
def test_predict_logits_streams_dicts(seed, batch_rows):
    ids, mask, _ = _text_ids(seed, n=30)
    module = MappingBag(3)
    X = {"input_ids": ids, "attention_mask": mask}
    z = predict_logits(
        module, X, kind=MULTICLASS, device="cpu", dtype=torch.float32, batch_rows=batch_rows
    )
    with torch.no_grad():
        ref = module(torch.as_tensor(ids), torch.as_tensor(mask))["logits"]
    assert z.dtype == np.float64 and z.shape == (30, 3)
    np.testing.assert_allclose(z, ref.double().numpy(), rtol=1e-5, atol=1e-6)


# -- FocalClassifier end to end ------------------------------------------------------------------
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
