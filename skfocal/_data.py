"""Input handling of :class:`~skfocal.FocalClassifier`: devices, tensors, splits, outputs.

Training data is converted and moved to the training device once (:func:`as_device_tensor`);
torch tensors that already have the device and dtype are used in place.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from ._net import FitData
from ._sampling import SAMPLER_POWERS, EpochSampler, fit_imblearn_sampler, needs_only_labels
from ._weights import label_positive_mass


def resolve_device(device, X, accelerator):
    """The training device: ``accelerator.device``, ``"auto"`` resolved, availability checked."""
    if accelerator is not None:
        return torch.device(accelerator.device)
    if isinstance(device, str) and device == "auto":
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


def check_two_classes(classes, y_enc, sample_weight, task):
    """Raise before training when fewer than two classes carry weight."""
    if task == "multilabel":
        return
    if len(classes) < 2:
        raise ValueError(
            "FocalClassifier needs samples of at least 2 classes in y, got 1 class: "
            f"{classes.tolist()!r}."
        )
    if sample_weight is not None:
        mass = np.bincount(y_enc, weights=sample_weight, minlength=len(classes))
        if np.count_nonzero(mass > 0) < 2:
            raise ValueError(
                "FocalClassifier needs at least 2 classes with non-zero total sample_weight, "
                f"got only class {classes[mass > 0].tolist()!r}."
            )


def split_indices(n, y_enc, task, early_stopping, fraction, seed):
    """Sorted training and validation row indices (stratified when possible), or Nones."""
    if not early_stopping:
        return None, None
    if n < 2:
        raise ValueError(
            f"early_stopping=True holds out a validation set and needs at least 2 samples, got {n}."
        )
    rows = np.arange(n)
    stratify = None
    if task != "multilabel" and np.bincount(y_enc).min() >= 2:
        stratify = y_enc
    try:
        train, valid = train_test_split(
            rows, test_size=fraction, stratify=stratify, random_state=seed
        )
    except ValueError:  # too few rows per class for a stratified split of this size
        train, valid = train_test_split(rows, test_size=fraction, random_state=seed)
    return np.sort(train), np.sort(valid)


def as_device_tensor(X, device, dtype):
    """``X`` as a tensor on ``device`` with ``dtype``: at most one copy, none if it matches."""
    if not isinstance(X, torch.Tensor):
        with warnings.catch_warnings():  # read-only inputs (memmaps) are never written to
            warnings.filterwarnings("ignore", message=".*not writable.*")
            X = torch.from_numpy(X)
    return X.to(device=device, dtype=dtype)


class Prepared:
    """What ``fit`` needs from :func:`prepare_training`."""

    def __init__(self, fit_data, prior, n_train, n_valid):
        self.fit_data, self.prior = fit_data, prior
        self.n_train, self.n_valid = n_train, n_valid


def _resample_with_copy(
    X, y_enc, has_sample_weight, train_idx, valid_idx, classes, X_res, y_res, class_weight
):
    """Training data replaced by an imbalanced-learn sampler's output (e.g. SMOTE)."""
    if has_sample_weight:
        raise ValueError(
            "sample_weight cannot be combined with a sampler that synthesises rows (it has no "
            "sample_indices_), because the new rows have no weight."
        )
    y_res_enc = np.searchsorted(classes, np.asarray(y_res))
    valid = np.zeros(0, dtype=np.int64) if valid_idx is None else valid_idx
    X_valid = X[torch.as_tensor(valid)] if isinstance(X, torch.Tensor) else X[valid]
    if isinstance(X, torch.Tensor):
        X_all = torch.cat([torch.as_tensor(X_res, dtype=X.dtype).to(X.device), X_valid])
    else:
        X_all = np.concatenate([np.asarray(X_res, dtype=X.dtype), X_valid])
    y_all = np.concatenate([y_res_enc, y_enc[valid]])
    w_all = None if class_weight is None else class_weight[y_all]
    n_res = len(y_res_enc)
    new_valid = None if valid_idx is None else np.arange(n_res, n_res + len(valid))
    return X_all, y_all, w_all, np.arange(n_res), new_valid


def prepare_training(
    X,
    y_labels,
    y_enc,
    weights,
    train_idx,
    valid_idx,
    classes,
    task,
    sampler,
    seed,
    device,
    dtype,
    class_weight=None,
    has_sample_weight=False,
):
    """Move the fit data to ``device`` once and build the epoch sampler and the class prior."""
    pool = None
    if sampler is not None and not isinstance(sampler, str):
        # imbalanced-learn works on host arrays; without a validation split the rows are a
        # view of X (slice(None)), so that no copy of X is made just to resample
        rows = slice(None) if train_idx is None else train_idx
        y_rows = y_labels[rows]
        if needs_only_labels(sampler):
            X_rows = np.zeros((len(y_rows), 1), dtype=np.float32)
        else:
            X_rows = X[rows]
        if isinstance(X_rows, torch.Tensor):
            X_rows = X_rows.detach().cpu().numpy()
        indices, X_res, y_res = fit_imblearn_sampler(sampler, X_rows, y_rows, seed)
        if indices is not None:
            pool = indices
        else:
            X, y_enc, weights, train_idx, valid_idx = _resample_with_copy(
                X,
                y_enc,
                has_sample_weight,
                train_idx,
                valid_idx,
                classes,
                X_res,
                y_res,
                class_weight,
            )
    device = torch.device(device)
    Xt = as_device_tensor(X, device, dtype)
    n_rows = len(y_enc)
    train_rows = slice(None) if train_idx is None else train_idx
    n_train = n_rows if train_idx is None else len(train_idx)
    n_valid = 0 if valid_idx is None else len(valid_idx)

    if task == "multiclass":
        yt = torch.as_tensor(y_enc, dtype=torch.long)
    else:
        yt = torch.as_tensor(y_enc, dtype=dtype)
    yt = yt.to(device)
    wt = None
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        mean = weights[train_rows].mean()
        wt = torch.as_tensor(weights / (mean if mean > 0 else 1.0), dtype=dtype).to(device)

    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    y_train = None if task == "multilabel" else y_enc[train_rows]
    power = SAMPLER_POWERS.get(sampler) if isinstance(sampler, str) else None
    epoch_sampler = EpochSampler(
        n_train,
        generator,
        y=None if power is None else torch.as_tensor(y_train, device=device),
        n_classes=len(classes),
        power=power,
        pool=None if pool is None else torch.as_tensor(pool, device=device),
    )
    as_idx = None if train_idx is None else torch.as_tensor(train_idx, device=device)
    valid_t = None if valid_idx is None else torch.as_tensor(valid_idx, device=device)
    fit_data = FitData(Xt, yt, wt, as_idx, valid_t, epoch_sampler)

    w_train = None if weights is None else weights[train_rows]
    if task == "multilabel":
        prior = _multilabel_prior(y_enc[train_rows], w_train)
    else:
        prior = _class_prior(epoch_sampler, y_train, w_train, len(classes))
    return Prepared(fit_data, prior, n_train, n_valid)


def _class_prior(sampler, y_train, w_train, n_classes):
    freq = sampler.class_frequencies(y_train, n_classes)
    counts = np.bincount(y_train, minlength=n_classes)
    if w_train is None:
        mean_w = np.ones(n_classes)
    else:
        mean_w = np.bincount(y_train, weights=w_train, minlength=n_classes) / np.maximum(counts, 1)
    prior = freq * mean_w
    return prior / prior.sum()


def _multilabel_prior(y_train, w_train):
    pos, total = label_positive_mass(y_train, w_train)
    return pos / max(total, 1e-12)


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


def fork_rng(device):
    """Fork torch's global RNG (CPU and the training CUDA device) around a fit."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.random.fork_rng(devices=[index])
    if device.type == "cpu":
        return torch.random.fork_rng(devices=[])
    return contextlib.nullcontext()


def import_accelerate():
    """Import the optional ``accelerate`` package or raise an ImportError saying how to get it."""
    try:
        import accelerate  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "accelerator= needs the optional 'accelerate' package: "
            "pip install 'skfocal[accelerate]'."
        ) from exc


def labels_from_logits(z, classes, task, X):
    """Map logits to labels, keeping tensors on their device when the labels are numeric."""
    if isinstance(z, torch.Tensor):
        if task == "multilabel":
            return (z > 0).to(torch.int64)
        idx = (z > 0).long() if task == "binary" else z.argmax(dim=1)
        if classes.dtype.kind in "iufb":
            return torch.as_tensor(classes, device=z.device)[idx]
        return classes[idx.cpu().numpy()]
    if task == "multilabel":
        return (z > 0).astype(np.int64)
    idx = (z > 0).astype(np.intp) if task == "binary" else z.argmax(axis=1)
    return classes[idx]
