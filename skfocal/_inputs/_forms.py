"""Input forms of :class:`~skfocal.FocalClassifier`: float features, integer ids, dicts.

What reaches the network depends on ``X`` and on whether a ``module`` was given:

* ``float`` form -- a 2-D float array, DataFrame or tensor, or any 2-D numeric ``X`` with
  the default MLP (``module=None``; integers are cast, as scikit-learn's checks expect): one
  tensor in ``dtype``;
* ``ids`` form -- a 2-D integer array, DataFrame or tensor with a user ``module``: one
  ``int64`` tensor (token ids stay exact, no float round-trip);
* ``dict`` form -- a dict of equal-length arrays or tensors (a Hugging Face
  ``BatchEncoding``, skorch's ``SliceDict``) with a user ``module``: the values as keyword
  arguments, integer values as ``int64``, float values in ``dtype``, booleans unchanged.

The form is decided once per fit (:func:`input_spec`) and kept as the fitted estimator's
:class:`InputSpec`; ``predict`` accepts only inputs of the same form. Everything else in the
fit path asks this module how to count rows (:func:`n_rows`), take rows (:func:`take`),
move a batch to the device (:func:`to_device`) and call the module (:func:`forward`, which
also accepts a mapping or Hugging Face ``ModelOutput`` with a ``logits`` entry).

A module's fit to its input is checked before training, for every form, by one function
(:func:`check_forward`): for a dict ``X`` its ``forward`` signature must accept the keys
(unless it takes ``**kwargs``), then a dry forward of the first two rows, in eval mode without
gradients and with torch's RNG state restored, must return logits of shape
``(n, n_outputs)`` (``(n,)`` accepted for a binary target).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping

import numpy as np
import torch

FLOAT, IDS, DICT = "float", "ids", "dict"

#: rows in a dry forward of a module before training
DRY_ROWS = 2


class InputSpec:
    """How ``X`` reaches the module (see the module docstring); picklable, kept after fit.

    Parameters
    ----------
    form : {"float", "ids", "dict"}
        The input form.
    keys : tuple of str or None
        The keys of a dict ``X`` (in the order of the fit), else None.
    batch_rows : int or None
        Rows per prediction and validation batch for non-tabular inputs (the training
        ``batch_size``: a transformer does not fit 65,536 sequences in memory); None keeps
        the defaults of tabular data.
    """

    def __init__(self, form, keys=None, batch_rows=None):
        self.form = form
        self.keys = keys
        self.batch_rows = batch_rows

    def __repr__(self):
        keys = "" if self.keys is None else f", keys={list(self.keys)}"
        return f"InputSpec({self.form!r}{keys})"

    @property
    def tabular(self):
        """Whether ``X`` is a 2-D float feature matrix (the default MLP's input)."""
        return self.form == FLOAT

    @property
    def cast_integers(self):
        """Whether integer tensors are cast to the floating ``dtype`` (the ``float`` form)."""
        return self.form == FLOAT

    @property
    def validate_dtype(self):
        """The ``dtype`` argument of ``validate_data`` for an array ``X`` of this form."""
        return np.int64 if self.form == IDS else [np.float32, np.float64]

    def predict_options(self):
        """Keyword arguments of :func:`~skfocal._engines._net.predict_logits` for this form."""
        options = {"cast_integers": self.cast_integers}
        if self.batch_rows is not None:
            options["batch_rows"] = self.batch_rows
        return options


def is_dict(X):
    """Whether ``X`` is a dict input (a mapping, but not a scipy.sparse DOK matrix)."""
    if not isinstance(X, Mapping):
        return False
    from scipy.sparse import issparse

    return not issparse(X)


def input_spec(X, module, batch_size=None):
    """The :class:`InputSpec` of ``X`` (raw or validated) for ``module`` (None: default MLP)."""
    if is_dict(X):
        return InputSpec(DICT, keys=tuple(X.keys()), batch_rows=batch_size)
    if module is not None and is_integer_input(X):
        return InputSpec(IDS, batch_rows=batch_size)
    return InputSpec(FLOAT)


def is_integer_input(X):
    """Whether ``X`` (array-like, DataFrame or tensor) holds integers (booleans excluded)."""
    if isinstance(X, torch.Tensor):
        return not (X.is_floating_point() or X.is_complex() or X.dtype == torch.bool)
    if hasattr(X, "columns") and hasattr(X, "dtypes"):  # a DataFrame: every column
        from pandas.api.types import is_bool_dtype, is_integer_dtype

        dtypes = list(X.dtypes)
        return bool(dtypes) and all(is_integer_dtype(d) and not is_bool_dtype(d) for d in dtypes)
    dtype = getattr(X, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(X).dtype
        except (ValueError, TypeError):  # ragged or odd input: validate_data says what is wrong
            return False
    try:
        return np.dtype(dtype).kind in "iu"
    except TypeError:
        return False


def check_dict(X, where, keys=None):
    """Validate a dict ``X``; returns a plain dict of ndarrays and tensors (no copy of tensors).

    Values may be ndarrays, tensors or anything ``np.asarray`` makes a numeric array of
    (lists of equal-length lists, pandas objects). Each must have at least one dimension,
    a real or boolean dtype and finite floats; all must have the same number of rows
    (at least 1). Integer arrays become ``int64``. With ``keys`` (at predict time) ``X`` must
    have exactly those keys.
    """
    if not is_dict(X):
        raise ValueError(
            f"FocalClassifier was fitted on a dict X with keys {list(keys)}; {where} got "
            f"{type(X).__name__}."
        )
    if len(X.keys()) == 0:
        raise ValueError(f"X is an empty dict in {where}; it needs at least one array.")
    bad = [k for k in X.keys() if not isinstance(k, str)]
    if bad:
        raise ValueError(
            "The keys of a dict X must be strings (they become keyword arguments of the "
            f"module), got {bad!r}."
        )
    if keys is not None and set(X.keys()) != set(keys):
        raise ValueError(
            f"X has keys {sorted(X.keys())} in {where}, but FocalClassifier was fitted with "
            f"keys {sorted(keys)}."
        )
    out = {}
    for key in X.keys():
        out[key] = _check_value(key, X[key])
    rows = {key: int(value.shape[0]) for key, value in out.items()}
    if len(set(rows.values())) > 1:
        counts = ", ".join(f"{k!r}: {n}" for k, n in rows.items())
        raise ValueError(
            f"All values of a dict X must have the same number of rows (samples); got {counts}."
        )
    n = next(iter(rows.values()))
    if n < 1:
        raise ValueError(
            f"Found a dict X with 0 sample(s) while a minimum of 1 is required in {where}."
        )
    return out


def _check_value(key, value):
    if isinstance(value, torch.Tensor):
        if value.dim() < 1:
            raise ValueError(f"X[{key!r}] is a 0-d tensor; every value of X needs a row axis.")
        if value.is_complex():
            raise ValueError(f"X[{key!r}] is a complex tensor; complex data is not supported.")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"X[{key!r}] contains NaN or infinity.")
        return value
    if hasattr(value, "__array_namespace__") and not isinstance(value, np.ndarray):
        from ._arrays import foreign_to_numpy

        value = foreign_to_numpy(value)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(_ragged_message(key)) from exc
    if array.dtype == object:
        raise ValueError(_ragged_message(key))
    if array.ndim < 1:
        raise ValueError(f"X[{key!r}] is a scalar; every value of X needs a row axis.")
    kind = array.dtype.kind
    if kind not in "biuf":
        raise ValueError(
            f"X[{key!r}] has dtype {array.dtype}; the values of a dict X must be numeric or "
            "boolean arrays or tensors."
        )
    if kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"X[{key!r}] contains NaN or infinity.")
    if kind in "iu":
        array = array.astype(np.int64, copy=False)
    return array


def _ragged_message(key):
    return (
        f"X[{key!r}] is ragged (its rows have different lengths) or not numeric; every value "
        "of a dict X must be one rectangular array. Pad the sequences to one length, e.g. "
        "tokenizer(texts, padding=True, return_tensors='np')."
    )


def check_predict_form(spec, X, where):
    """Raise when ``X`` at predict time has another form than the fitted one."""
    if spec.form == DICT:
        return  # check_dict says what is wrong
    if is_dict(X):
        raise ValueError(
            f"FocalClassifier was fitted on a 2-D array X; {where} got a dict (keys "
            f"{list(X.keys())})."
        )
    if spec.form == IDS and not is_integer_input(X):
        dtype = getattr(X, "dtype", None)
        raise ValueError(
            "FocalClassifier was fitted on integer X (ids, passed to the module as int64); "
            f"{where} got X of dtype {dtype}. Pass integer ids."
        )


def forget_features(estimator):
    """Remove ``n_features_in_`` / ``feature_names_in_`` of an earlier fit (a dict X has none)."""
    for name in ("n_features_in_", "feature_names_in_"):
        if hasattr(estimator, name):
            delattr(estimator, name)


def n_rows(X):
    """Number of samples of ``X`` (array, tensor or dict of them)."""
    if isinstance(X, Mapping):
        return int(next(iter(X.values())).shape[0])
    return int(X.shape[0])


def n_features(X):
    """Width of a 2-D ``X`` (None for a dict ``X``, whose module needs no ``n_features``)."""
    return None if isinstance(X, Mapping) else int(X.shape[1])


def take(X, rows):
    """The rows ``rows`` (a slice, an index tensor or array) of ``X`` or of every value."""
    if isinstance(X, Mapping):
        return {key: take(value, rows) for key, value in X.items()}
    if isinstance(rows, slice):
        return X[rows]
    if isinstance(X, torch.Tensor):
        return X.index_select(0, rows)
    return X[rows]


def _target_dtype(t, dtype, cast_integers):
    if t.is_floating_point() or cast_integers:
        return dtype
    return torch.bool if t.dtype == torch.bool else torch.int64


def to_device(X, device, dtype, cast_integers, non_blocking=False, contiguous=False):
    """``X`` (array, tensor or dict) as tensors on ``device``, at most one copy each.

    Floats become ``dtype``; integers become ``dtype`` when ``cast_integers`` (the ``float``
    form) and ``int64`` otherwise; booleans stay booleans except in the ``float`` form.
    ``contiguous`` makes ndarray rows contiguous before wrapping them (prediction batches).
    """
    if isinstance(X, Mapping):
        return {
            key: to_device(value, device, dtype, False, non_blocking, contiguous)
            for key, value in X.items()
        }
    if not isinstance(X, torch.Tensor):
        if contiguous:
            X = np.ascontiguousarray(X)
        with warnings.catch_warnings():  # read-only inputs (memmaps) are never written to
            warnings.filterwarnings("ignore", message=".*not writable.*")
            X = torch.from_numpy(X)
    return X.to(
        device=device, dtype=_target_dtype(X, dtype, cast_integers), non_blocking=non_blocking
    )


def logits_of(output):
    """The logits in a module's output: a tensor, or a mapping / object with ``logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise TypeError(
        "module must return a tensor of logits or a mapping (e.g. a Hugging Face "
        f"ModelOutput) with a 'logits' entry; it returned {type(output).__name__}."
    )


def forward(module, X, **kwargs):
    """Logits of ``module`` on a batch: a dict ``X`` is passed as keyword arguments."""
    if isinstance(X, Mapping):
        return logits_of(module(**X, **kwargs))
    return logits_of(module(X, **kwargs))


def output_like(X, dtype):
    """``(is_tensor, device, out_dtype)`` of the outputs for input ``X``.

    A tensor ``X`` (or a dict whose values are all tensors) gives a tensor on its device (the
    first value's), in ``X``'s floating dtype or else in ``dtype``; anything else gives an
    ndarray in ``X``'s floating dtype or else float64.
    """
    if isinstance(X, Mapping):
        values = list(X.values())
        if all(isinstance(v, torch.Tensor) for v in values):
            return True, values[0].device, dtype
        return False, None, np.float64
    if isinstance(X, torch.Tensor):
        return True, X.device, X.dtype if X.is_floating_point() else dtype
    return False, None, X.dtype if X.dtype.kind == "f" else np.float64


# -- before training -----------------------------------------------------------------------------
def check_signature(module, keys):
    """Raise when ``module.forward`` cannot take ``keys`` as keyword arguments (no ``**kwargs``)."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):  # no signature to read: the dry forward decides
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    named = [
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    unknown = [key for key in keys if key not in named]
    if unknown:
        raise ValueError(
            f"module {type(module).__name__}.forward does not accept the key(s) {unknown} of "
            f"X as keyword arguments; it accepts {named}. Rename the keys of X or add them to "
            "forward's signature."
        )
    required = [
        name
        for name, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and name not in keys
    ]
    if required:
        raise ValueError(
            f"module {type(module).__name__}.forward requires {required}, which X does not "
            f"have (its keys: {list(keys)})."
        )


def check_forward(module, X, spec, kind, n_outputs, dtype):
    """Dry forward of the first rows of ``X`` through ``module`` before training.

    The one check of a module's fit to its input, for every input form: the module runs on
    the first ``DRY_ROWS`` rows in eval mode without gradients (its submodules' modes are
    restored afterwards) and with torch's RNG state restored, so training is the same as
    without the check. For a dict ``X`` the module's ``forward`` must first accept its keys.
    Raises, naming ``module``, when the module rejects the input, returns something other
    than logits, or returns the wrong number of them for the target ``kind``.
    """
    if spec.form == DICT:
        check_signature(module, spec.keys)
    param = next(module.parameters(), None)
    device = torch.device("cpu") if param is None else param.device
    n = min(DRY_ROWS, n_rows(X))
    batch = to_device(take(X, slice(0, n)), device, dtype, spec.cast_integers)
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            output = module(**batch) if isinstance(batch, Mapping) else module(batch)
    except Exception as exc:
        if spec.form == DICT:
            what = f"keys {list(spec.keys)}"
        else:
            what = "int64 ids" if spec.form == IDS else f"shape {tuple(batch.shape)}"
        hint = (
            " Integer X reaches a module as int64 (token ids); pass X.astype('float32') if "
            "the module expects real-valued features."
            if spec.form == IDS
            else ""
        )
        raise ValueError(
            f"module failed on a dry forward of the first {n} row(s) of X ({what}) before "
            f"training: {type(exc).__name__}: {exc}.{hint}"
        ) from exc
    finally:
        for m, training in modes:
            m.training = training
    try:
        logits = logits_of(output)
    except TypeError:
        raise ValueError(
            f"module must return a tensor of logits of shape (N, {n_outputs}) (or a mapping, "
            f"e.g. a Hugging Face ModelOutput, with a 'logits' entry), got a "
            f"{type(output).__name__}."
        ) from None
    shape = tuple(kind.squeeze(logits).shape)
    single = n_outputs == 1 and not kind.softmax
    if shape != ((n,) if single else (n, n_outputs)):
        accepted = f"({n}, {n_outputs})" + (f" or ({n},)" if single else "")
        raise ValueError(
            f"module returned logits of shape {tuple(logits.shape)} for {n} row(s); a "
            f"{kind.name} target with {n_outputs} output(s) needs {accepted}: n_outputs is 1 "
            "for a binary target (one logit) and the number of classes or labels otherwise. "
            "Build the last layer with n_outputs outputs (a module class or factory receives "
            "n_outputs; a Hugging Face model: num_labels=n_outputs)."
        )
