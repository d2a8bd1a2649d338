"""Arrays and devices: the training device, tensor and dtype checks, foreign arrays.

The training device (asked of the device itself, :func:`device_runs`), torch tensors kept on
their device, targets brought to the host, and arrays of other array-API namespaces brought
to the host (:func:`foreign_to_numpy`) and results sent back to them (:func:`like_input`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from sklearn import get_config

_DEVICE_RUNS = {}


def device_runs(device):
    """Whether a tiny operation runs on ``device`` (cached per device).

    Asked of the device itself, not of the build: a CUDA build of torch on a machine without
    a GPU (or with a driver too old for it) has ``torch.backends.cuda.is_built()`` true, and
    anything beyond ``torch.cuda.is_available()`` can still fail there.
    """
    dev = torch.device(device)
    if dev.type == "cpu":
        return True
    if dev not in _DEVICE_RUNS:
        try:
            if dev.type == "cuda" and not torch.cuda.is_available():
                raise RuntimeError("CUDA is not available")
            value = (torch.ones(1, device=dev) + 1).cpu()
            _DEVICE_RUNS[dev] = bool(value.item() == 2.0)
        except (RuntimeError, AssertionError, TypeError, ValueError):
            _DEVICE_RUNS[dev] = False
    return _DEVICE_RUNS[dev]


def resolve_device(device, X, accelerator):
    """The training device: ``accelerator.device``, ``"auto"`` resolved, availability checked."""
    if accelerator is not None:
        return torch.device(accelerator.device)
    if isinstance(device, str) and device == "auto":
        if isinstance(X, Mapping):  # a dict X: the device of its first tensor value
            X = next((v for v in X.values() if isinstance(v, torch.Tensor)), None)
        if isinstance(X, torch.Tensor) and X.device.type != "cpu":
            return X.device
        return torch.device("cuda" if device_runs("cuda") else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'auto' or a torch device string, got {device!r}."
        ) from exc
    if dev.type == "meta":
        raise ValueError(
            "device='meta' holds shapes but no data, so nothing can be trained on it; use "
            "device='cpu', 'cuda' or 'auto'."
        )
    if not device_runs(dev):
        raise ValueError(
            f"device={device!r} is not available on this machine (torch {torch.__version__}, "
            f"CUDA available: {torch.cuda.is_available()}); use device='cpu' or 'auto'."
        )
    return dev


def check_tensor_X(X, where):
    """Validate a torch tensor ``X`` without moving it: 2-D, real, non-empty, finite."""
    if X.dim() != 2:
        raise ValueError(
            f"Expected a 2D tensor X of shape (n_samples, n_features), got shape {tuple(X.shape)}."
        )
    if X.is_complex():
        raise ValueError("Complex data not supported; X is a complex tensor.")
    if X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
            f"minimum of 1 is required in {where}."
        )
    if X.is_floating_point() and not bool(torch.isfinite(X).all()):
        raise ValueError("Input X contains NaN or infinity.")
    return X


def check_fits_dtype(X, dtype, where):
    """Raise when finite values of ``X`` would overflow to infinity in the training ``dtype``.

    ``X * 1e300`` passes scikit-learn's finite check as float64 and becomes ``inf`` when
    cast to float32, and then every probability NaN. One pass over ``X`` (on its device for a
    tensor), only when ``X`` is wider than ``dtype``.
    """
    limit = torch.finfo(dtype).max
    if isinstance(X, torch.Tensor):
        if not X.is_floating_point() or torch.finfo(X.dtype).max <= limit:
            return X
        largest = float(X.abs().max()) if X.numel() else 0.0
    else:
        if X.dtype.kind != "f" or float(np.finfo(X.dtype).max) <= limit:
            return X
        largest = float(np.abs(X).max()) if X.size else 0.0
    if largest > limit:
        name = str(dtype).removeprefix("torch.")
        raise ValueError(
            f"X has values up to {largest:.3g} in absolute value, which overflow to infinity in "
            f"dtype={name!r} (largest finite value {limit:.3g}) in {where}; scale the features "
            "(e.g. with sklearn.preprocessing.StandardScaler) or use dtype='float64'."
        )
    return X


def check_label_types(y):
    """Raise when ``y`` mixes label types (e.g. strings and integers) before sklearn's checks.

    Such a target otherwise fails with a comparison error or a misleading message about a
    regression target.
    """
    if getattr(y, "dtype", None) is None or y.dtype != object or y.ndim != 1:
        return
    kinds = {("str" if isinstance(v, str) else "number" if isinstance(v, (int, float, np.number))
              else type(v).__name__) for v in y}  # fmt: skip
    if len(kinds) > 1:
        raise ValueError(
            f"y mixes label types ({', '.join(sorted(kinds))}); class labels must all be "
            "strings or all be numbers, e.g. y.astype(str)."
        )


def y_to_numpy(y):
    """Targets as an ndarray (tensors are copied to the host; they are one column)."""
    if isinstance(y, torch.Tensor):
        return y.detach().cpu().numpy()
    if hasattr(y, "toarray"):
        return y.toarray()
    return np.asarray(y)


def is_foreign_array(a):
    """Whether ``a`` is an array-API array that is neither an ndarray nor a torch tensor.

    Such arrays (``array_api_strict``, CuPy, ...) are brought to the host as ndarrays with
    :func:`foreign_to_numpy`, and results go back to their namespace and device with
    :func:`like_input`.
    """
    return (
        a is not None
        and not isinstance(a, (np.ndarray, torch.Tensor))
        and hasattr(a, "__array_namespace__")
    )


def foreign_to_numpy(a):
    """An array-API array as an ndarray on the host (through DLPack where it can)."""
    try:
        return np.from_dlpack(a)
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return np.asarray(a)


def like_input(array, X):
    """``array`` in the namespace and on the device of ``X``.

    A torch tensor gives a tensor on ``X``'s device, another array-API array an array of its
    namespace on its device; NumPy and pandas inputs give ``array`` unchanged. Non-numeric
    arrays (string labels) stay NumPy arrays.
    """
    if array is None:
        return array
    if isinstance(X, torch.Tensor):
        return torch.as_tensor(np.asarray(array), device=X.device)
    if is_foreign_array(X):
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            return array
        return X.__array_namespace__().asarray(array, device=X.device)
    return array


def namespace_and_device(a):
    """``(namespace name, device)`` of an input: ``("torch", device)`` for a tensor, the
    namespace's name and the device for another array-API array, ``("numpy", None)`` for
    anything else (ndarrays, pandas, lists, sparse matrices, dicts)."""
    if isinstance(a, torch.Tensor):
        return "torch", a.device
    if is_foreign_array(a):
        return a.__array_namespace__().__name__, a.device
    return "numpy", None


def check_same_namespace(X, fitted, estimator, method):
    """Under ``array_api_dispatch``, raise unless ``X`` has the namespace and device of ``fitted``.

    ``fitted`` is an array made at fit time in the namespace and on the device of the training
    ``X`` (:func:`like_input`). scikit-learn's estimators make this check from 1.9 on; this
    one asks the arrays themselves (``torch.Tensor``, ``__array_namespace__``), so it holds on
    every scikit-learn. Without dispatch, mixing is allowed.
    """
    if not get_config()["array_api_dispatch"]:
        return
    fit_ns, fit_device = namespace_and_device(fitted)
    ns, device = namespace_and_device(X)
    if (ns, device) == (fit_ns, fit_device):
        return

    def said(ns, device):
        return "NumPy or another array-like" if device is None else f"{ns} on device {device}"

    raise ValueError(
        f"Inputs passed to {type(estimator).__name__}.{method}() must use the same namespace "
        "and the same device as those passed to fit() when array_api_dispatch is on: fit had "
        f"{said(fit_ns, fit_device)}, {method} got {said(ns, device)}. Convert X to the "
        "training namespace and device, or refit."
    )


def import_accelerate():
    """Import the optional ``accelerate`` package or raise an ImportError saying how to get it."""
    try:
        import accelerate  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "accelerator= needs the optional 'accelerate' package: "
            "pip install 'skfocal[accelerate]'."
        ) from exc
