"""Weight helpers shared by the target kinds (skfocal/_weights.py)."""

import inspect

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from skfocal._weights import (
    balanced_class_weight,
    check_nonnegative,
    label_dict_to_vector,
    label_positive_mass,
)

# compute_class_weight takes sample_weight from scikit-learn 1.7 on
_SKLEARN_WEIGHTED = "sample_weight" in inspect.signature(compute_class_weight).parameters


def test_label_dict_to_vector_uses_default_and_rejects_unknown_labels():
    classes = np.array(["a", "b", "c"])
    np.testing.assert_allclose(label_dict_to_vector({"b": 3}, classes, "w", 1.0), [1, 3, 1])
    with pytest.raises(ValueError, match=r"w has keys that are not class labels of y: \['z'\]"):
        label_dict_to_vector({"z": 1.0}, classes, "w", 1.0)


@pytest.mark.parametrize("bad", [[1.0, -1.0], [np.nan, 1.0], [np.inf, 1.0]])
def test_check_nonnegative(bad):
    with pytest.raises(ValueError, match=r"alpha must hold finite, non-negative weights"):
        check_nonnegative(np.array(bad), "alpha", bad)


def test_label_positive_mass(seed):
    Y = np.array([[1, 0], [0, 0], [1, 1]])
    pos, total = label_positive_mass(Y, None)
    assert pos.tolist() == [2, 1] and total == 3
    sw = seed.uniform(size=3)
    pos, total = label_positive_mass(Y, sw)
    np.testing.assert_allclose(pos, [sw[0] + sw[2], sw[2]])


def _labels(rng, n_classes, n_samples):
    y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n_samples - n_classes)])
    return rng.permutation(y)


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_balanced_class_weight_matches_sklearn_unweighted(seed, n_classes):
    y = _labels(seed, n_classes, 200)
    expected = compute_class_weight("balanced", classes=np.arange(n_classes), y=y)
    np.testing.assert_array_equal(balanced_class_weight(y, n_classes), expected)


@pytest.mark.skipif(not _SKLEARN_WEIGHTED, reason="compute_class_weight has no sample_weight")
@pytest.mark.parametrize("n_classes", [2, 3, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_balanced_class_weight_matches_sklearn_weighted(seed, n_classes, dtype):
    y = _labels(seed, n_classes, 200)
    sw = (seed.uniform(0.1, 5.0, size=len(y)) * (3 if dtype == np.int64 else 1)).astype(dtype)
    expected = compute_class_weight("balanced", classes=np.arange(n_classes), y=y, sample_weight=sw)
    np.testing.assert_array_equal(balanced_class_weight(y, n_classes, sw), expected)
    np.testing.assert_array_equal(balanced_class_weight(y, n_classes, list(sw)), expected)


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_balanced_class_weight_integer_weights_repeat_rows(seed, n_classes):
    """On every scikit-learn: an integer weight k counts as k copies of the row."""
    y = _labels(seed, n_classes, 120)
    sw = seed.integers(1, 5, size=len(y))
    repeated = compute_class_weight("balanced", classes=np.arange(n_classes), y=np.repeat(y, sw))
    np.testing.assert_array_equal(balanced_class_weight(y, n_classes, sw), repeated)
    # each class carries an equal share of the total weight
    per_class = np.bincount(y, weights=sw * balanced_class_weight(y, n_classes, sw)[y])
    np.testing.assert_allclose(per_class, np.full(n_classes, sw.sum() / n_classes))
