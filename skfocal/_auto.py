r"""Defaults that scale with the data: ``early_stopping="auto"`` and ``max_epochs="auto"``.

``early_stopping="auto"`` is scikit-learn's rule for
:class:`~sklearn.ensemble.HistGradientBoostingClassifier`: early stopping is on when the fit
has more than :data:`EARLY_STOPPING_ABOVE` samples. ``max_epochs="auto"`` is the epoch budget
that goes with it: :data:`MAX_EPOCHS` without early stopping (the fixed budget small data
train for), :data:`MAX_EPOCHS_STOPPING` with it (a cap, so that patience, not the budget, ends
a large fit). Both are resolved once per fit, in :func:`skfocal._plan.make_plan`, to a bool
and an int (:func:`resolve`); everything after the plan reads the resolved values.

Which sample count decides: the rows given to ``fit``, unless a caller that fits several
members on parts of one data set -- :class:`~skfocal.BatchedGridSearchCV` and
:class:`~skfocal.TunedDecisionClassifierCV`, whose fold members and refit would otherwise fall
on both sides of the threshold (training folds of 0.8 n and a refit on n) -- sets the count of
its outer data for every fit it runs (an enclosing one's count wins)
(:func:`samples_for_auto`, a context variable: it reaches the clones scikit-learn's loop fits,
in this thread).
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

EARLY_STOPPING_ABOVE = 10_000
"""``early_stopping="auto"`` is on above this many samples (HistGradientBoosting's rule)."""

MAX_EPOCHS = 50
"""``max_epochs="auto"`` without early stopping: the fixed budget."""

MAX_EPOCHS_STOPPING = 200
"""``max_epochs="auto"`` with early stopping: a cap that patience reaches first
(``benchmarks/bench_defaults.py`` prints the epochs each fit trained)."""

_SAMPLES = contextvars.ContextVar("skfocal_samples_for_auto", default=None)


@contextmanager
def samples_for_auto(n_samples):
    """Resolve ``"auto"`` from ``n_samples`` in every fit planned inside the block.

    Parameters
    ----------
    n_samples : int
        The sample count of the outer data (a search's ``X``).

    Examples
    --------
    >>> from skfocal._auto import auto_samples, samples_for_auto
    >>> with samples_for_auto(50_000):
    ...     auto_samples()
    50000
    >>> auto_samples() is None
    True
    """
    token = _SAMPLES.set(int(n_samples))
    try:
        yield
    finally:
        _SAMPLES.reset(token)


def auto_samples():
    """The sample count set by the enclosing :func:`samples_for_auto`, or None."""
    return _SAMPLES.get()


def resolve(estimator, n_samples):
    r"""``{"early_stopping": bool, "max_epochs": int}`` of ``estimator`` for ``n_samples``.

    .. math::

        \mathrm{early\_stopping} = [\,n > 10{,}000\,], \qquad
        \mathrm{max\_epochs} = \begin{cases} 200 & \text{early stopping on} \\
        50 & \text{off} \end{cases}

    for the values ``"auto"``; given values are kept (a ``max_epochs="auto"`` follows the
    early stopping in force, given or resolved).

    Parameters
    ----------
    estimator : FocalClassifier
    n_samples : int
        The count that decides ``"auto"``: :func:`auto_samples` when a caller set one, else
        the rows given to ``fit``.

    Examples
    --------
    >>> from skfocal import FocalClassifier
    >>> from skfocal._auto import resolve
    >>> resolve(FocalClassifier(), 10_000), resolve(FocalClassifier(), 10_001)
    ({'early_stopping': False, 'max_epochs': 50}, {'early_stopping': True, 'max_epochs': 200})
    >>> resolve(FocalClassifier(early_stopping=True, max_epochs=30), 100)
    {'early_stopping': True, 'max_epochs': 30}
    """
    early_stopping = estimator.early_stopping
    if _is_auto(early_stopping):
        early_stopping = n_samples > EARLY_STOPPING_ABOVE
    max_epochs = estimator.max_epochs
    if _is_auto(max_epochs):
        max_epochs = MAX_EPOCHS_STOPPING if early_stopping else MAX_EPOCHS
    return {"early_stopping": bool(early_stopping), "max_epochs": int(max_epochs)}


def _is_auto(value):
    return isinstance(value, str) and value == "auto"
