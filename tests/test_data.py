"""Input handling helpers of FocalClassifier (skfocal/_data.py)."""

import numpy as np
import pytest
import torch

from skfocal._data import (
    as_device_tensor,
    check_tensor_X,
    check_two_classes,
    labels_from_logits,
    prepare_training,
    resolve_device,
    split_indices,
)


def test_resolve_device_auto_and_errors():
    assert resolve_device("cpu", np.zeros((2, 2)), None) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto", np.zeros((2, 2)), None).type == expected
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda', 'auto' .* got 'gpu0'"):
        resolve_device("gpu0", None, None)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda' is not available on this machine"):
            resolve_device("cuda", None, None)


@pytest.mark.parametrize(
    "X, match",
    [
        (torch.zeros(3), r"Expected a 2D tensor X .* got shape \(3,\)"),
        (torch.zeros(0, 2), r"Found array with 0 sample\(s\)"),
        (torch.tensor([[0.0, float("nan")]]), r"Input X contains NaN or infinity"),
        (torch.zeros(2, 2, dtype=torch.complex64), r"Complex data not supported"),
    ],
)
def test_check_tensor_X_errors(X, match):
    with pytest.raises(ValueError, match=match):
        check_tensor_X(X, "fit")


def test_check_two_classes():
    check_two_classes(np.array([0, 1]), np.array([0, 1, 1]), None, "binary")
    with pytest.raises(ValueError, match=r"at least 2 classes in y, got 1 class: \['a'\]"):
        check_two_classes(np.array(["a"]), np.array([0, 0]), None, "multiclass")
    with pytest.raises(ValueError, match=r"non-zero total sample_weight, got only class \[1\]"):
        check_two_classes(np.array([0, 1]), np.array([0, 1, 1]), np.array([0.0, 1, 1]), "binary")


@pytest.mark.parametrize("seed_value", [0, 1])
def test_split_indices_is_stratified_disjoint_and_seeded(seed_value):
    y = np.array([0] * 90 + [1] * 10)
    assert split_indices(100, y, "binary", False, 0.2, seed_value) == (None, None)
    train, valid = split_indices(100, y, "binary", True, 0.2, seed_value)
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == 100
    assert np.bincount(y[valid]).tolist() == [18, 2]  # stratified
    again = split_indices(100, y, "binary", True, 0.2, seed_value)
    np.testing.assert_array_equal(valid, again[1])
    with pytest.raises(ValueError, match=r"early_stopping=True .* needs at least 2 samples"):
        split_indices(1, y[:1], "binary", True, 0.2, seed_value)


def test_as_device_tensor_copies_at_most_once(seed):
    X = seed.normal(size=(5, 3)).astype(np.float32)
    t = as_device_tensor(X, torch.device("cpu"), torch.float32)
    assert t.data_ptr() == X.ctypes.data  # shares the ndarray's memory
    assert as_device_tensor(t, torch.device("cpu"), torch.float32) is t
    assert as_device_tensor(X, torch.device("cpu"), torch.float64).dtype == torch.float64


@pytest.mark.parametrize("as_tensor", [False, True])
def test_labels_from_logits(as_tensor):
    z2 = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    zb = np.array([-1.0, 2.0])
    if as_tensor:
        z2, zb = torch.as_tensor(z2), torch.as_tensor(zb)
    out = labels_from_logits(z2, np.array([10, 20, 30]), "multiclass", None)
    assert list(np.asarray(out)) == [20, 10]
    out = labels_from_logits(zb, np.array(["neg", "pos"]), "binary", None)
    assert list(out) == ["neg", "pos"]
    assert np.asarray(labels_from_logits(z2, np.arange(3), "multilabel", None)).tolist() == [
        [1, 1, 0],
        [1, 0, 0],
    ]


def test_prepare_training_oversample_keeps_x_in_place(seed):
    X = torch.as_tensor(seed.normal(size=(50, 2)), dtype=torch.float32)
    y = np.array([0] * 45 + [1] * 5)
    prepared = prepare_training(
        X, y, y, None, None, None, np.array([0, 1]), "binary", "oversample", 0,
        torch.device("cpu"), torch.float32,
    )  # fmt: skip
    data = prepared.fit_data
    assert data.X is X  # no copy of X, the sampler only draws indices
    draws = data.sampler()
    assert (
        len(draws) == 50 and abs(float((torch.as_tensor(y)[draws] == 1).float().mean()) - 0.5) < 0.3
    )
    np.testing.assert_allclose(prepared.prior, [0.5, 0.5])
