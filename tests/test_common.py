"""scikit-learn's estimator checks on every public estimator, with no expected failures.

sklearn refuses ``array_api_dispatch=True`` unless ``SCIPY_ARRAY_API=1`` is set; it is set here
(before the checks run) so that the array-API checks with torch inputs run in-process. They
exercise only FocalClassifier's own tensor path, which does not call scipy; the end-to-end
array-API test that does go through scipy-backed metrics runs in a subprocess with the variable
set before any import (see ``tests/test_classifier.py``).
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from skfocal import FocalClassifier  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny networks: one intra-op thread is faster and immune to oversubscription on a
    # shared machine (two threads spinning against other processes were 15x slower here).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _checked_instances():
    # Full-batch training in float64: the checks on easy data need sensible accuracy, and
    # the sample-weight check compares weighted and repeated fits to 1e-7.
    return [
        FocalClassifier(
            max_epochs=40,
            lr=0.05,
            batch_size=512,
            hidden_layer_sizes=(16,),
            dtype="float64",
            random_state=0,
        )
    ]


@parametrize_with_checks(_checked_instances())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", _checked_instances())
def test_defaults_are_default_constructible(estimator):
    clone = type(estimator)()
    assert clone.get_params()["loss"] == "focal"
    assert clone.get_params()["bias_init"] == "prior"
