"""Weight helpers shared by the target kinds (skfocal/_weights.py)."""

import numpy as np
import pytest

from skfocal._weights import check_nonnegative, label_dict_to_vector, label_positive_mass


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
