"""Arrays and devices (skfocal/_inputs/_arrays.py): devices, tensor checks."""

import warnings

import numpy as np
import pytest
import torch

from skfocal._inputs import check_fits_dtype, check_tensor_X, device_runs, resolve_device


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
