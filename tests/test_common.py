"""scikit-learn's estimator checks on every public estimator.

No check is expected to fail on scikit-learn >= 1.9. On 1.6-1.8 one is, for a reason that
lies in the check (see :func:`_expected_failed_checks`).

sklearn refuses ``array_api_dispatch=True`` unless ``SCIPY_ARRAY_API=1`` is set before scipy is
imported; ``tests/conftest.py`` sets it, so the array-API checks run in-process. The end-to-end
array-API test that goes through scipy-backed metrics runs in a subprocess with the variable
set before any import (see ``tests/test_classifier.py``).
"""

import pytest
import sklearn
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfocal import FocalClassifier
from skfocal._data import device_runs

SKLEARN_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2])

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _checked_instances():
    # Full-batch training in float64: the checks on easy data need sensible accuracy, and
    # the sample-weight check compares weighted and repeated fits to 1e-7. Every string
    # class_prior is checked (array priors depend on the classes: tests/test_posterior.py).
    return [
        FocalClassifier(
            max_epochs=40,
            lr=0.05,
            batch_size=512,
            hidden_layer_sizes=(16,),
            dtype="float64",
            random_state=0,
            class_prior=class_prior,
        )
        for class_prior in ("training", "data", "balanced")
    ]


def _expected_failed_checks(estimator):
    """The checks expected to fail with the installed scikit-learn, each with its reason."""
    if SKLEARN_VERSION >= (1, 9):
        return {}
    return {
        "check_array_api_input": (
            "scikit-learn < 1.9 wants every fitted ndarray attribute, classes_ included, in "
            "the input's namespace; classes_ holds the labels (strings too) and stays NumPy, "
            "which scikit-learn 1.9 allows (the other attributes and outputs follow the "
            "input: tests/test_classifier.py)"
        )
    }


def _device_of(check):
    """The device an array-API check runs on (None for the other checks)."""
    keywords = getattr(check, "keywords", None) or {}
    if keywords.get("array_namespace") != "torch":
        return None
    return keywords.get("device_name", keywords.get("device"))  # scikit-learn >= 1.7 / older


@parametrize_with_checks(_checked_instances(), expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    device = _device_of(check)
    # scikit-learn skips a torch device that torch was not *built* for; a CUDA build on a
    # machine without a usable GPU must skip too (asked of the device: a tiny operation)
    if device is not None and not device_runs(device):
        pytest.skip(f"torch device {device!r} cannot run here")
    check(estimator)


@pytest.mark.parametrize("estimator", _checked_instances())
def test_defaults_are_default_constructible(estimator):
    clone = type(estimator)()
    assert clone.get_params()["loss"] == "focal"
    assert clone.get_params()["bias_init"] == "prior"
