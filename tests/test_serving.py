"""Results a search trained beforehand, served to the fits scikit-learn's loop runs."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from skfocal import FocalClassifier, _serving
from skfocal._auto import samples_for_auto

BASE = {"hidden_layer_sizes": (4,), "max_epochs": 2, "random_state": 0}


@pytest.fixture
def data(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(1000, 4))
    y = (X[:, 0] > 0.5).astype(int)
    return X, y


@pytest.fixture
def token():
    token = object()
    yield token
    _serving.withdraw(token)
    assert _serving._OFFERED == {}


def test_an_offer_serves_only_equal_data(data, token):
    """A key hashes a sample of X's rows; an offer is taken only by X equal bit for bit
    (a row the sample skips, or -0.0 for 0.0, makes other data: nothing served)."""
    X, y = data
    est = FocalClassifier(**BASE)
    served = _serving.Served(state={})
    assert _serving.offer(token, est, _serving.data_key(X, y, None), served)
    other = X.copy()
    other[1, 0] += 1.0  # row 1: not among the rows hashed (every 15th)
    assert _serving.data_key(other, y, None).digest == _serving.data_key(X, y, None).digest
    assert _serving.take_served(est, other, y, None) is None
    signed = X.copy()
    signed[1, 0] = 0.0
    zero = signed.copy()
    zero[1, 0] = -0.0
    assert not _serving.data_key(signed, y, None).matches(_serving.data_key(zero, y, None))
    assert _serving.take_served(clone(est), X.copy(), y, None) is served and served.taken
    assert _serving.take_served(est, X, y, None) is None  # taken once


@pytest.mark.parametrize(
    "change",
    ["params", "y", "sample_weight", "auto_samples", "dtype"],
)
def test_a_different_fit_is_not_served(data, token, change):
    X, y = data
    est = FocalClassifier(**BASE)
    sw = np.ones(len(y))
    assert _serving.offer(token, est, _serving.data_key(X, y, sw), _serving.Served(state={}))
    other_est, other_X, other_y, other_sw = clone(est), X, y, sw
    if change == "params":
        other_est.set_params(gamma=1.0)
    elif change == "y":
        other_y = y.copy()
        other_y[3] = 1 - other_y[3]
    elif change == "sample_weight":
        other_sw = sw.copy()
        other_sw[3] = 2.0
    elif change == "dtype":
        other_X = X.astype(np.float32)
    if change == "auto_samples":  # the count that resolves "auto" is part of the key
        with samples_for_auto(50_000):
            assert _serving.take_served(other_est, other_X, other_y, other_sw) is None
    else:
        assert _serving.take_served(other_est, other_X, other_y, other_sw) is None
    assert _serving.take_served(est, X, y, sw) is not None  # the offered fit itself


def test_array_parameters_are_part_of_the_key(data, token):
    X, y = data
    est = FocalClassifier(**BASE, alpha=np.array([0.25, 0.75]))
    assert _serving.offer(token, est, _serving.data_key(X, y, None), _serving.Served(state={}))
    other = clone(est).set_params(alpha=np.array([0.25, 0.7500001]))
    assert _serving.take_served(other, X, y, None) is None
    assert _serving.take_served(clone(est), X, y, None) is not None


def test_dataframe_columns_are_part_of_the_key(data):
    X, y = data
    frame = pd.DataFrame(X, columns=list("abcd"))
    renamed = frame.rename(columns={"a": "z"})
    assert _serving.data_key(frame, y, None).digest != _serving.data_key(renamed, y, None).digest
    assert _serving.data_key(frame, y, None).matches(_serving.data_key(X, y, None))


@pytest.mark.parametrize(
    "X",
    [
        np.array([["a", "b"], ["c", "d"]]),  # not numeric
        [[0.0, 1.0], [1.0, 0.0]],  # not an array
        {"ids": np.zeros((2, 3))},  # a dict input
    ],
)
def test_data_without_a_key_is_never_served(X):
    assert _serving.data_key(X, np.array([0, 1]), None) is None
    assert not _serving.offer(object(), FocalClassifier(), None, _serving.Served(state={}))


def test_withdraw_drops_only_its_own_offers(data):
    X, y = data
    mine, theirs = object(), object()
    est = FocalClassifier(**BASE)
    key = _serving.data_key(X, y, None)
    _serving.offer(mine, est, key, _serving.Served(state={}))
    _serving.offer(theirs, clone(est).set_params(gamma=1.0), key, _serving.Served(state={}))
    try:
        _serving.withdraw(mine)
        assert _serving.take_served(est, X, y, None) is None
        assert _serving.take_served(clone(est).set_params(gamma=1.0), X, y, None) is not None
    finally:
        _serving.withdraw(theirs)
    assert _serving._OFFERED == {}


def test_served_applies_state_warnings_and_errors():
    est = FocalClassifier()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("planned", UserWarning, stacklevel=1)
    served = _serving.Served(state={"classes_": np.array([0, 1])}, caught=caught)
    with pytest.warns(UserWarning, match="planned"):
        assert served.apply(est) is est
    np.testing.assert_array_equal(est.classes_, [0, 1])
    failed = _serving.Served(error=FloatingPointError("diverged"))
    with pytest.raises(FloatingPointError, match="diverged"):
        failed.apply(FocalClassifier())


def test_fitted_state_leaves_out_the_parameters(data):
    X, y = data
    est = FocalClassifier(**BASE).fit(X, y)
    state = _serving.fitted_state(est)
    assert "classes_" in state
    assert not set(state) & set(est.get_params(deep=False))
