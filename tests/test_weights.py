"""alpha and class_weight resolution: sklearn's formulas, label keys and clear errors."""

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from skfocal._weights import (
    multilabel_pos_weight,
    per_sample_weights,
    resolve_alpha,
    resolve_class_weight,
    warn_double_weighting,
)

CLASSES = np.array(["a", "b", "c"])
Y3 = np.array([0, 0, 0, 0, 1, 1, 2, 0, 1, 0])
Y2 = np.array([0, 0, 0, 1, 0, 1, 0, 0])


def test_balanced_class_weight_matches_sklearn(seed):
    sw = seed.uniform(0.5, 2.0, size=len(Y3))
    for weights in (None, sw):
        got = resolve_class_weight("balanced", Y3, CLASSES, weights, "multiclass")
        expected = compute_class_weight(
            "balanced", classes=np.arange(3), y=Y3, sample_weight=weights
        )
        np.testing.assert_allclose(got, expected)


def test_class_weight_dict_keyed_by_label():
    got = resolve_class_weight({"b": 3.0}, Y3, CLASSES, None, "multiclass")
    np.testing.assert_allclose(got, [1.0, 3.0, 1.0])
    with pytest.raises(
        ValueError,
        match=r"class_weight has keys that are not class labels of "
        r"y: \['z'\]; the classes are \['a', 'b', 'c'\]",
    ):
        resolve_class_weight({"z": 1.0}, Y3, CLASSES, None, "multiclass")
    with pytest.raises(ValueError, match=r"class_weight must hold finite, non-negative"):
        resolve_class_weight({"a": -1.0}, Y3, CLASSES, None, "multiclass")


def test_per_sample_weights_compose():
    cw = np.array([1.0, 2.0, 4.0])
    sw = np.arange(1, len(Y3) + 1, dtype=float)
    np.testing.assert_allclose(per_sample_weights(Y3, sw, cw), sw * cw[Y3])
    assert per_sample_weights(Y3, None, None) is None


@pytest.mark.parametrize(
    "alpha, expected",
    [(0.25, 0.25), ("balanced", 6 / 8), ([1.0, 3.0], 0.75), ({1: 3.0}, 0.75), (None, None)],
)
def test_binary_alpha(alpha, expected):
    got = resolve_alpha(alpha, Y2, np.array([0, 1]), None, "binary")
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_multiclass_alpha():
    balanced = resolve_alpha("balanced", Y3, CLASSES, None, "multiclass")
    np.testing.assert_allclose(
        balanced, compute_class_weight("balanced", classes=np.arange(3), y=Y3)
    )
    np.testing.assert_allclose((balanced[Y3]).mean(), 1.0)  # mean 1 over the samples
    np.testing.assert_allclose(
        resolve_alpha({"c": 5.0}, Y3, CLASSES, None, "multiclass"), [1.0, 1.0, 5.0]
    )
    with pytest.raises(
        ValueError,
        match=r"alpha must have one entry per class: expected "
        r"length 3 \(classes \['a', 'b', 'c'\]\), got \[1, 2\]",
    ):
        resolve_alpha([1, 2], Y3, CLASSES, None, "multiclass")
    with pytest.raises(
        ValueError,
        match=r"alpha=0.5 is a float, which is the two-class "
        r"shorthand; with 3 classes",
    ):
        resolve_alpha(0.5, Y3, CLASSES, None, "multiclass")
    with pytest.raises(ValueError, match=r"alpha must hold finite, non-negative weights"):
        resolve_alpha([1.0, -1.0, 1.0], Y3, CLASSES, None, "multiclass")


def test_multilabel_alpha_and_pos_weight():
    Y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    labels = np.arange(2)
    np.testing.assert_allclose(
        resolve_alpha("balanced", Y, labels, None, "multilabel"), [0.5, 0.75]
    )
    np.testing.assert_allclose(multilabel_pos_weight("balanced", Y, None), [1.0, 3.0])
    assert multilabel_pos_weight(None, Y, None) is None
    with pytest.raises(ValueError, match=r"every entry must lie in \[0, 1\]"):
        resolve_alpha([0.5, 2.0], Y, labels, None, "multilabel")
    with pytest.raises(
        ValueError,
        match=r"alpha for a multilabel target must be None, a "
        r"float, 'balanced' or an array-like",
    ):
        resolve_alpha({0: 1.0}, Y, labels, None, "multilabel")
    with pytest.raises(
        ValueError,
        match=r"class_weight for a multilabel target must be None "
        r"or 'balanced', got \{0: 1.0\}",
    ):
        resolve_class_weight({0: 1.0}, Y, labels, None, "multilabel")


def test_double_weighting_warning():
    with pytest.warns(
        UserWarning,
        match=r"sampler='sqrt' already rebalances .* with "
        r"alpha='balanced' and class_weight='balanced'",
    ):
        warn_double_weighting("sqrt", "balanced", "balanced")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_double_weighting(None, "balanced", "balanced")
        warn_double_weighting("oversample", 0.25, None)
