"""Fitted classifiers served to the clones a scikit-learn search fits.

:class:`~skfocal.BatchedGridSearchCV` lets scikit-learn's own search loop fit and score every
candidate x fold, as ``GridSearchCV`` does, but trains the members beforehand -- stackable
ones together, as one stacked model -- and *offers* each result here, keyed by what decides
a fit: the estimator's parameters and the content of the data it is fitted on. When the
loop's clone calls :meth:`FocalClassifier.fit` with those parameters on that data, the fit
takes the offered result (:func:`take_served`) instead of training again: the same fitted
attributes, the warnings the planning raised, or the error the training ended with.

A fit is decided by its parameters, its data (seeds come from ``random_state``) and the sample
count that resolves ``"auto"`` (:func:`skfocal._auto.samples_for_auto`: a search's outer
count, set around its whole ``fit``), so a result trained for equal parameters on equal data
under the same count is the result of that fit. Keys hash a sample of the data's rows and
an offer keeps the data to compare whole (numeric arrays and DataFrames; anything else is
never served), results are taken once, and a search withdraws what it offered when it ends.
"""

from __future__ import annotations

import hashlib
import threading
import warnings

import numpy as np
from sklearn.base import BaseEstimator

from ._auto import auto_samples

_LOCK = threading.Lock()
_OFFERED = {}  # key -> (token, Served, DataKey)


class Served:
    """What a fit of the offered key gives: fitted attributes, or the error it ended with.

    Parameters
    ----------
    state : dict or None
        The fitted attributes (an estimator's ``__dict__`` minus its parameters).
    error : Exception or None
        Raised by the fit instead (a member whose training went non-finite).
    caught : list of warnings.WarningMessage
        Warnings raised while the member was planned, re-issued by the fit.
    fit_time : float
        Seconds the member's share of its training took.
    """

    def __init__(self, state=None, error=None, caught=(), fit_time=0.0):
        self.state = state
        self.error = error
        self.caught = list(caught)
        self.fit_time = fit_time
        self.taken = False  # set when a fit takes it

    def apply(self, estimator):
        """Give ``estimator`` the fitted state (or raise the error); returns it."""
        for w in self.caught:
            warnings.warn(w.message, w.category, stacklevel=3)
        if self.error is not None:
            raise self.error
        vars(estimator).update(self.state)
        return estimator


def fitted_state(estimator):
    """The fitted attributes of ``estimator``: everything in its ``__dict__`` but parameters."""
    params = set(param_names(estimator))
    return {k: v for k, v in vars(estimator).items() if k not in params}


_PARAM_NAMES = {}  # estimator class -> its parameters' names, sorted


def param_names(estimator):
    """The names of ``estimator``'s parameters, read once per class (scikit-learn's
    ``get_params`` inspects ``__init__``'s signature on every call)."""
    names = _PARAM_NAMES.get(type(estimator))
    if names is None:
        names = _PARAM_NAMES[type(estimator)] = sorted(
            BaseEstimator.get_params(estimator, deep=False)
        )
    return names


def _params_key(estimator):
    """What identifies ``estimator``'s parameters (as scikit-learn's convention has them,
    its attributes of their names): a key."""
    items = []
    with np.printoptions(threshold=np.inf):  # entered once: it costs more than a repr
        for name in param_names(estimator):
            value = getattr(estimator, name)
            if isinstance(value, np.ndarray):
                value = (value.dtype.str, value.shape, value.tobytes())
            else:
                value = repr(value)
            items.append((name, value))
    return type(estimator), tuple(items)


#: rows of ``X`` a key hashes at most: the offer keeps ``X`` and compares it whole
SAMPLED_ROWS = 64


def _array_bytes(a, digest):
    a = np.ascontiguousarray(a)
    digest.update(f"{a.dtype.str}{a.shape}".encode())
    digest.update(memoryview(a).cast("B"))


class DataKey:
    """What identifies the data of a fit: a digest, and ``X`` to compare whole.

    ``digest`` hashes ``X``'s dtype, shape and at most :data:`SAMPLED_ROWS` of its rows
    (evenly spaced; a DataFrame: its columns' names and dtypes too) and the whole of ``y``
    and ``sample_weight``. Two keys match when their digests are equal and their ``X`` are
    equal bit for bit (:meth:`matches`): comparing ``X`` costs a tenth of hashing it, and a
    search offers and takes one fit per candidate x fold.
    """

    def __init__(self, digest, X):
        self.digest, self.X = digest, X

    def matches(self, other):
        a, b = self.X, other.X
        if a is b:
            return True
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        bits = f"u{a.dtype.itemsize}"  # bitwise: -0.0 and 0.0 differ, NaN equals itself
        return bool(np.array_equal(a.view(bits), b.view(bits)))


def data_key(X, y, sample_weight):
    """The :class:`DataKey` of ``X``, ``y`` and ``sample_weight``, or None.

    Numeric ndarrays and DataFrames (their columns' names and values) have one; any other
    ``X`` gives None: such fits are never served.
    """
    digest = hashlib.blake2b(digest_size=20)
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        digest.update(repr(list(X.columns)).encode())
        digest.update(repr([str(d) for d in X.dtypes]).encode())
        X = X.to_numpy()
    if not isinstance(X, np.ndarray) or X.dtype.kind not in "biuf" or X.ndim == 0:
        return None
    digest.update(f"{X.dtype.str}{X.shape}".encode())
    _array_bytes(X[:: max(1, len(X) // SAMPLED_ROWS)], digest)
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if y.dtype.kind in "biufUS":
        _array_bytes(y, digest)
    else:  # objects (e.g. strings in an object array): their reprs, in order
        digest.update(repr(y.tolist()).encode())
    if sample_weight is not None:
        digest.update(b"w")
        _array_bytes(np.asarray(sample_weight, dtype=np.float64), digest)
    return DataKey(digest.digest(), X)


def offer(token, estimator, data, served):
    """Offer ``served`` for a fit of ``estimator``'s parameters on the data of
    :class:`DataKey` ``data``, under the current :func:`~skfocal._auto.auto_samples`;
    False (nothing offered) when the data have no key."""
    if data is None:
        return False
    with _LOCK:
        _OFFERED[(_params_key(estimator), data.digest, auto_samples())] = (token, served, data)
    return True


def take_served(estimator, X, y, sample_weight):
    """The :class:`Served` offered for this fit (taken: it serves once), or None."""
    if not _OFFERED:  # no search running: the cost of a fit that is not served
        return None
    data = data_key(X, y, sample_weight)
    if data is None:
        return None
    key = (_params_key(estimator), data.digest, auto_samples())
    with _LOCK:
        entry = _OFFERED.get(key)
        if entry is None or not entry[2].matches(data):
            return None
        del _OFFERED[key]
    entry[1].taken = True
    return entry[1]


def withdraw(token):
    """Drop every result ``token`` offered that no fit took."""
    with _LOCK:
        for key in [k for k, (t, *_) in _OFFERED.items() if t is token]:
            del _OFFERED[key]
