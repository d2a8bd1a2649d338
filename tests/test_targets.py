"""Target kinds: alpha / class_weight / pos_weight resolution, priors, outputs, decoding."""

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from skfocal._targets import BINARY, MULTICLASS, MULTILABEL, kind_by_name, target_kind
from skfocal._weights import balanced_class_weight

CLASSES = np.array(["a", "b", "c"])
Y3 = np.array([0, 0, 0, 0, 1, 1, 2, 0, 1, 0])
Y2 = np.array([0, 0, 0, 1, 0, 1, 0, 0])


def test_balanced_class_weight_is_the_shared_helper(seed):
    # the helper is checked against scikit-learn in tests/test_weights.py
    sw = seed.uniform(0.5, 2.0, size=len(Y3))
    for weights in (None, sw):
        got = MULTICLASS.class_weight("balanced", Y3, CLASSES, weights)
        np.testing.assert_array_equal(got, balanced_class_weight(Y3, 3, weights))
        got = MULTICLASS.alpha("balanced", Y3, CLASSES, weights)
        np.testing.assert_array_equal(got, balanced_class_weight(Y3, 3, weights))


def test_class_weight_dict_keyed_by_label():
    got = MULTICLASS.class_weight({"b": 3.0}, Y3, CLASSES, None)
    np.testing.assert_allclose(got, [1.0, 3.0, 1.0])
    with pytest.raises(
        ValueError,
        match=r"class_weight has keys that are not class labels of "
        r"y: \['z'\]; the classes are \['a', 'b', 'c'\]",
    ):
        MULTICLASS.class_weight({"z": 1.0}, Y3, CLASSES, None)
    with pytest.raises(ValueError, match=r"class_weight must hold finite, non-negative"):
        MULTICLASS.class_weight({"a": -1.0}, Y3, CLASSES, None)


def test_per_sample_weights_compose():
    cw = np.array([1.0, 2.0, 4.0])
    sw = np.arange(1, len(Y3) + 1, dtype=float)
    np.testing.assert_allclose(MULTICLASS.sample_weights(Y3, sw, cw), sw * cw[Y3])
    assert MULTICLASS.sample_weights(Y3, None, None) is None


@pytest.mark.parametrize(
    "alpha, expected",
    [(0.25, 0.25), ("balanced", 6 / 8), ([1.0, 3.0], 0.75), ({1: 3.0}, 0.75), (None, None)],
)
def test_binary_alpha(alpha, expected):
    got = BINARY.alpha(alpha, Y2, np.array([0, 1]), None)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_multiclass_alpha():
    balanced = MULTICLASS.alpha("balanced", Y3, CLASSES, None)
    np.testing.assert_allclose(
        balanced, compute_class_weight("balanced", classes=np.arange(3), y=Y3)
    )
    np.testing.assert_allclose((balanced[Y3]).mean(), 1.0)  # mean 1 over the samples
    np.testing.assert_allclose(MULTICLASS.alpha({"c": 5.0}, Y3, CLASSES, None), [1.0, 1.0, 5.0])
    with pytest.raises(
        ValueError,
        match=r"alpha must have one entry per class: expected "
        r"length 3 \(classes \['a', 'b', 'c'\]\), got \[1, 2\]",
    ):
        MULTICLASS.alpha([1, 2], Y3, CLASSES, None)
    with pytest.raises(
        ValueError,
        match=r"alpha=0.5 is a float, which is the two-class "
        r"shorthand; with 3 classes",
    ):
        MULTICLASS.alpha(0.5, Y3, CLASSES, None)
    with pytest.raises(ValueError, match=r"alpha must hold finite, non-negative weights"):
        MULTICLASS.alpha([1.0, -1.0, 1.0], Y3, CLASSES, None)


def test_multilabel_alpha_and_pos_weight():
    Y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    labels = np.arange(2)
    np.testing.assert_allclose(MULTILABEL.alpha("balanced", Y, labels, None), [0.5, 0.75])
    np.testing.assert_allclose(MULTILABEL.pos_weight("balanced", Y, None), [1.0, 3.0])
    assert MULTILABEL.pos_weight(None, Y, None) is None
    with pytest.raises(ValueError, match=r"every entry must lie in \[0, 1\]"):
        MULTILABEL.alpha([0.5, 2.0], Y, labels, None)
    with pytest.raises(
        ValueError,
        match=r"alpha for a multilabel target must be None, a "
        r"float, 'balanced' or an array-like",
    ):
        MULTILABEL.alpha({0: 1.0}, Y, labels, None)
    with pytest.raises(
        ValueError,
        match=r"class_weight for a multilabel target must be None "
        r"or 'balanced', got \{0: 1.0\}",
    ):
        MULTILABEL.class_weight({0: 1.0}, Y, labels, None)


def test_binary_kind_has_no_pos_weight_and_one_logit():
    assert BINARY.pos_weight("balanced", Y2, None) is None
    assert BINARY.n_outputs(2) == 1 and MULTICLASS.n_outputs(3) == 3
    assert MULTILABEL.sample_weights(Y3, None, np.ones(3)) is None  # pos_weight instead


def test_multilabel_alpha_length_message_names_labels():
    Y = np.array([[1, 0], [0, 1]])
    with pytest.raises(
        ValueError,
        match=r"alpha must have one entry per label: expected length 2 \(labels \[0, 1\]\)",
    ):
        MULTILABEL.alpha([0.5, 0.5, 0.5], Y, np.arange(2), None)


def test_check_classes():
    BINARY.check_classes(np.array([0, 1]), np.array([0, 1, 1]), None)
    with pytest.raises(ValueError, match=r"at least 2 classes in y, got 1 class: \['a'\]"):
        MULTICLASS.check_classes(np.array(["a"]), np.array([0, 0]), None)
    with pytest.raises(ValueError, match=r"non-zero total sample_weight, got only class \[1\]"):
        BINARY.check_classes(np.array([0, 1]), np.array([0, 1, 1]), np.array([0.0, 1, 1]))
    MULTILABEL.check_classes(np.arange(2), np.zeros((3, 2), dtype=int), None)


@pytest.mark.parametrize(
    "y, kind",
    [
        (np.array(["a", "b", "a"]), BINARY),
        (np.array([0, 1, 2, 1]), MULTICLASS),
        (np.array([[0, 1], [1, 1], [0, 0]]), MULTILABEL),
    ],
)
def test_target_kind_and_encoding(y, kind):
    found, y_out = target_kind(y)
    assert found is kind
    classes, y_enc = kind.encode(y_out)
    if kind is MULTILABEL:
        assert classes.tolist() == [0, 1] and y_enc.dtype == np.int64
    else:
        assert classes[y_enc].tolist() == list(y)


def test_target_kind_rejects_continuous():
    with pytest.raises(ValueError, match=r"got a 'continuous' target"):
        target_kind(np.array([0.5, 1.5, 2.25]))


@pytest.mark.parametrize(
    "prior, kind",
    [([0.9, 0.1], BINARY), ([0.7, 0.2, 0.1], MULTICLASS), ([0.3, 0.05], MULTILABEL)],
)
def test_prior_bias_reproduces_the_prior(prior, kind):
    bias = kind.prior_logits(prior)
    if kind is BINARY:
        np.testing.assert_allclose(torch.sigmoid(bias).numpy(), [prior[1]])
        np.testing.assert_allclose(bias.numpy(), [-np.log(0.9 / 0.1)])
    elif kind is MULTICLASS:
        np.testing.assert_allclose(torch.softmax(bias, 0).numpy(), prior)
    else:
        np.testing.assert_allclose(torch.sigmoid(bias).numpy(), prior)


def test_class_prior_multiplies_draw_rates_and_mean_weights():
    y = np.array([0, 0, 0, 1])
    draws = np.array([0.5, 0.5])  # a balanced sampler
    np.testing.assert_allclose(BINARY.class_prior(draws, y, None, 2), [0.5, 0.5])
    w = np.array([1.0, 1.0, 1.0, 3.0])
    np.testing.assert_allclose(BINARY.class_prior(draws, y, w, 2), [0.25, 0.75])
    Y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    np.testing.assert_allclose(MULTILABEL.class_prior(None, Y, None, 2), [0.5, 0.25])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_labels_from_logits(as_tensor):
    z2 = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    zb = np.array([-1.0, 2.0])
    if as_tensor:
        z2, zb = torch.as_tensor(z2), torch.as_tensor(zb)
    out = MULTICLASS.labels(z2, np.array([10, 20, 30]))
    assert list(np.asarray(out)) == [20, 10]
    assert isinstance(out, torch.Tensor) == as_tensor  # numeric labels stay on the device
    assert list(BINARY.labels(zb, np.array(["neg", "pos"]))) == ["neg", "pos"]
    assert np.asarray(MULTILABEL.labels(z2, np.arange(3))).tolist() == [[1, 1, 0], [1, 0, 0]]


def test_outputs_and_squeeze():
    z = torch.tensor([[0.0], [2.0]])
    assert BINARY.squeeze(z).shape == (2,) and MULTICLASS.squeeze(z).shape == (2, 1)
    torch.testing.assert_close(BINARY.proba(torch.tensor([0.0])), torch.tensor([[0.5, 0.5]]))
    torch.testing.assert_close(MULTILABEL.per_sample(torch.ones(3, 2)), torch.ones(3))


def test_kinds_are_singletons_through_pickle_and_deepcopy():
    import copy
    import pickle

    for kind in (BINARY, MULTICLASS, MULTILABEL):
        assert pickle.loads(pickle.dumps(kind)) is kind
        assert copy.deepcopy(kind) is kind
        assert kind_by_name(kind.name) is kind
