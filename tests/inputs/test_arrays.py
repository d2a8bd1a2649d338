"""Arrays and devices (skfocal/_inputs/_arrays.py): devices, tensor checks."""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch

from skfocal import FocalClassifier
from skfocal._inputs import (
    check_fits_dtype,
    check_same_namespace,
    check_tensor_X,
    device_runs,
    resolve_device,
)


def test_resolve_device_auto_and_errors():
    assert resolve_device("cpu", np.zeros((2, 2)), None) == torch.device("cpu")
    expected = "cuda" if device_runs("cuda") else "cpu"
    assert resolve_device("auto", np.zeros((2, 2)), None).type == expected
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda', 'auto' .* got 'gpu0'"):
        resolve_device("gpu0", None, None)
    if not device_runs("cuda"):
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


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_check_fits_dtype_of_narrower_arrays_warns_nothing(dtype):
    # numpy 2 casts the Python float of the comparison to the array's dtype: comparing
    # np.finfo(float32).max with float64's largest value warned "overflow encountered in cast"
    X = np.ones((3, 2), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_fits_dtype(X, torch.float64, "fit") is X


def _strict(device_name=None):
    xp = pytest.importorskip("array_api_strict")
    device = xp.Device(device_name) if device_name else None
    return xp.asarray(np.zeros(2, dtype=np.float32), device=device)


@pytest.mark.parametrize(
    "fitted, X",
    [
        (np.zeros(0), np.zeros((2, 2))),
        (np.zeros(0), pd.DataFrame({"a": [1.0, 2.0]})),
        (np.zeros(0), [[1.0, 2.0]]),
        (torch.zeros(0), torch.zeros(2, 2)),
        ("strict", "strict"),
    ],
)
def test_check_same_namespace_accepts_the_training_namespace(fitted, X):
    fitted, X = (_strict() if isinstance(a, str) else a for a in (fitted, X))
    with sklearn.config_context(array_api_dispatch=True):
        check_same_namespace(X, fitted, FocalClassifier(), "predict")


@pytest.mark.parametrize(
    "fitted, X, said",
    [
        (torch.zeros(0), np.zeros((2, 2)), r"fit had torch on device cpu, predict got NumPy"),
        (np.zeros(0), torch.zeros(2, 2), r"fit had NumPy .*, predict got torch on device cpu"),
        ("strict", torch.zeros(2, 2), r"fit had array_api_strict on device .*, predict got torch"),
        ("strict", "strict1", r"fit had array_api_strict on device .*, predict got array_api_s"),
    ],
)
def test_check_same_namespace_refuses_another_namespace_or_device(fitted, X, said):
    strict = {"strict": lambda: _strict(), "strict1": lambda: _strict("device1")}
    fitted, X = (strict[a]() if isinstance(a, str) else a for a in (fitted, X))
    check_same_namespace(X, fitted, FocalClassifier(), "predict")  # no dispatch: allowed
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(
            ValueError,
            match=r"Inputs passed to FocalClassifier.predict\(\) must use the same namespace and "
            r"the same device as those passed to fit\(\) when array_api_dispatch is on: " + said,
        ):
            check_same_namespace(X, fitted, FocalClassifier(), "predict")
