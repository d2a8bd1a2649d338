"""Input handling of :class:`~skfocal.FocalClassifier`: devices, tensors, foreign arrays.

Validation of what ``fit`` and ``predict`` receive, before a plan is made: the training
device, torch tensors kept on their device, targets brought to the host, and arrays of other
array-API namespaces brought to the host and results sent back to them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


def resolve_device(device, X, accelerator):
    """The training device: ``accelerator.device``, ``"auto"`` resolved, availability checked."""
    if accelerator is not None:
        return torch.device(accelerator.device)
    if isinstance(device, str) and device == "auto":
        if isinstance(X, Mapping):  # a dict X: the device of its first tensor value
            X = next((v for v in X.values() if isinstance(v, torch.Tensor)), None)
        if isinstance(X, torch.Tensor) and X.device.type != "cpu":
            return X.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'auto' or a torch device string, got {device!r}."
        ) from exc
    available = True
    if dev.type == "cuda":
        available = torch.cuda.is_available() and (
            dev.index is None or dev.index < torch.cuda.device_count()
        )
    elif dev.type != "cpu":
        try:
            torch.empty(0, device=dev)
        except (RuntimeError, AssertionError):
            available = False
    if not available:
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


def import_accelerate():
    """Import the optional ``accelerate`` package or raise an ImportError saying how to get it."""
    try:
        import accelerate  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "accelerator= needs the optional 'accelerate' package: "
            "pip install 'skfocal[accelerate]'."
        ) from exc
