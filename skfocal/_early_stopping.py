r"""Early stopping that a saturated or coarse validation score cannot fool.

skorch's ``EarlyStopping`` counts an epoch as an improvement only when the monitored score
beats the best one by a relative threshold. A ranking score on a validation part with one or
two rows of a class is coarse: with one positive, average precision is :math:`1/r` for the
positive's rank :math:`r` and reaches 1.0 as soon as that row is ranked first, often in the
first epochs, while the network is still far from trained. The score then never improves,
patience runs out after ``n_iter_no_change`` epochs and an early network is restored.

Here an epoch improves when its score is better, or when it is equal and the validation loss
is lower (:func:`improves`): ties of the score are broken by the loss, patience resets on
either, and the best epoch -- the one whose weights are restored -- is the last that improved,
so it is chosen by the same order. With ``scoring=None`` the score *is* the validation loss and
the rule is skorch's.

:func:`improves` is a pure function of the epoch's and the best epoch's values that works
elementwise on arrays, so that the members of a stacked model can each stop by the same rule.
"""

from __future__ import annotations

import warnings
from copy import deepcopy

import numpy as np
from skorch.callbacks import Callback

THRESHOLD = 1e-4
"""Relative change below which a score (or a validation loss) counts as equal (skorch's)."""

RANKING_SCORERS = frozenset(
    {
        "average_precision",
        "roc_auc",
        "roc_auc_ovr",
        "roc_auc_ovo",
        "roc_auc_ovr_weighted",
        "roc_auc_ovo_weighted",
    }
)
"""Scorer names whose score is a ranking of the validation rows of each class."""

MIN_RANKING_ROWS = 5
"""Fewest validation rows of a class (a label's positives or negatives) for which a ranking
score chooses epochs without a warning (``benchmarks/bench_early_stopping.py``)."""


def _beyond(value, best, threshold):
    """``value > best`` by more than ``threshold * |best|`` (any finite value beats -inf)."""
    best = np.asarray(best, dtype=np.float64)
    margin = threshold * np.abs(np.where(np.isfinite(best), best, 0.0))
    return np.asarray(value, dtype=np.float64) > best + margin


def improves(score, loss, best_score, best_loss, *, lower_is_better, threshold=THRESHOLD):
    r"""Whether an epoch of validation ``score`` and ``loss`` improves on the best epoch so far.

    With the score oriented so that higher is better (:math:`s`, best :math:`s^*`; validation
    losses :math:`l`, :math:`l^*`), an epoch improves when

    .. math::

        s > s^* + \tau |s^*| \quad \text{or} \quad
        \left(s \ge s^* \text{ and } l < l^* - \tau |l^*|\right),

    i.e. when its score is better, or equal (better by less than the threshold :math:`\tau`,
    never worse) with a lower validation loss. Before the first epoch the best values are
    :math:`s^* = -\infty` (``+inf`` when lower is better) and :math:`l^* = +\infty`, so the
    first epoch with a finite score improves. A NaN score or loss never improves.

    Parameters
    ----------
    score, loss : float or ndarray
        The epoch's monitored score and validation loss (one entry per member of a stacked
        model: the rule is applied elementwise).
    best_score, best_loss : float or ndarray
        Those of the best epoch so far.
    lower_is_better : bool
        Orientation of ``score`` (True for a loss).
    threshold : float, default=1e-4
        Relative change of the score or of the loss that counts as a change (skorch's
        ``EarlyStopping`` default).

    Returns
    -------
    improved : bool or ndarray of bool

    Examples
    --------
    >>> from skfocal._early_stopping import improves
    >>> improves(1.0, 0.02, 1.0, 0.05, lower_is_better=False)  # a tie, lower loss
    True
    >>> improves(1.0, 0.05, 1.0, 0.05, lower_is_better=False)  # a tie, same loss
    False
    >>> improves(0.9, 0.01, 1.0, 0.05, lower_is_better=False)  # a worse score
    False
    >>> improves([0.5, 0.7], [0.3, 0.3], [0.6, 0.6], [0.4, 0.4], lower_is_better=True)
    array([ True, False])
    """
    sign = -1.0 if lower_is_better else 1.0
    s = sign * np.asarray(score, dtype=np.float64)
    s_best = sign * np.asarray(best_score, dtype=np.float64)
    better = _beyond(s, s_best, threshold)
    lower_loss = _beyond(-np.asarray(loss, dtype=np.float64), -np.asarray(best_loss), threshold)
    improved = better | ((s >= s_best) & lower_loss)
    return bool(improved) if improved.ndim == 0 else improved


class EarlyStopping(Callback):
    """Stop when no epoch has improved for ``patience`` epochs; restore the best weights.

    skorch's ``EarlyStopping(load_best=True)`` with the rule of :func:`improves`: an epoch
    improves when its ``monitor`` score is better, or equal with a lower validation loss. The
    best epoch (``best_epoch_``, 1-based, 0 before any) is the last one that improved; at the
    end of training its module weights are loaded back when it is not the last epoch.

    Parameters
    ----------
    monitor : str, default="valid_loss"
        History key of the score.
    patience : int, default=10
        Epochs without improvement after which training stops.
    lower_is_better : bool, default=True
        Orientation of ``monitor``.
    threshold : float, default=1e-4
        Relative threshold of :func:`improves`.
    loss : str, default="valid_loss"
        History key of the validation loss that breaks ties of the score.
    sink : callable, default=print
        Where the stopping and restoring messages go (only when the net is verbose, as in
        skorch).

    Attributes
    ----------
    best_epoch_ : int
        The kept epoch.
    best_score_, best_loss_ : float
        Its score and validation loss.
    misses_ : int
        Epochs since the last improvement.
    """

    def __init__(
        self,
        monitor="valid_loss",
        patience=10,
        lower_is_better=True,
        threshold=THRESHOLD,
        loss="valid_loss",
        sink=print,
    ):
        self.monitor = monitor
        self.patience = patience
        self.lower_is_better = lower_is_better
        self.threshold = threshold
        self.loss = loss
        self.sink = sink

    def __getstate__(self):  # the best weights are the module's: not pickled twice
        state = self.__dict__.copy()
        state["best_model_weights_"] = None
        return state

    def on_train_begin(self, net, **kwargs):
        self.misses_ = 0
        self.best_epoch_ = 0
        self.best_score_ = np.inf if self.lower_is_better else -np.inf
        self.best_loss_ = np.inf
        self.best_model_weights_ = None

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        score, loss = row[self.monitor], row[self.loss]
        if improves(
            score,
            loss,
            self.best_score_,
            self.best_loss_,
            lower_is_better=self.lower_is_better,
            threshold=self.threshold,
        ):
            self.misses_ = 0
            self.best_epoch_ = row["epoch"]
            self.best_score_, self.best_loss_ = score, loss
            self.best_model_weights_ = deepcopy(net.module_.state_dict())
        else:
            self.misses_ += 1
        if self.misses_ == self.patience:
            self._sink(
                f"Stopping since {self.monitor} (ties broken by {self.loss}) has not improved "
                f"in the last {self.patience} epochs.",
                net.verbose,
            )
            raise KeyboardInterrupt

    def on_train_end(self, net, **kwargs):
        if self.best_model_weights_ is not None and self.best_epoch_ != net.history[-1, "epoch"]:
            net.module_.load_state_dict(self.best_model_weights_)
            self._sink(f"Restoring best model from epoch {self.best_epoch_}.", net.verbose)

    def _sink(self, text, verbose):
        if self.sink is not print or verbose:
            self.sink(text)


def warn_few_validation_rows(scoring, y_valid, classes, fraction):
    """Warn when a ranking scorer scores fewer than :data:`MIN_RANKING_ROWS` rows of a class.

    ``y_valid`` holds the encoded labels of the validation part (class indices, or a
    multilabel 0/1 matrix, whose labels' positives and negatives are counted). With a
    handful of rows a ranking score takes a few coarse values (one positive: average
    precision is :math:`1/r` for its rank :math:`r`) that say little about the network. The
    threshold comes from ``benchmarks/bench_early_stopping.py`` (see the docs' benchmarks
    page): with fewer than 5 validation rows of the minority class, early stopping on
    average precision or ROC AUC kept a network below 0.9 of the run's best test average
    precision in 6 to 15 runs of 20, from 5 rows on in 1 to 7.
    """
    if scoring not in RANKING_SCORERS:
        return
    y_valid = np.asarray(y_valid)
    if y_valid.ndim == 1:
        counts = np.bincount(y_valid, minlength=len(classes))
        labels = [c.item() if isinstance(c, np.generic) else c for c in classes]
        groups = [(f"class {labels[c]!r}", n) for c, n in enumerate(counts) if n > 0]
    else:  # multilabel: each label's positives and negatives
        positives = y_valid.sum(axis=0)
        groups = [(f"label {j}'s positives", n) for j, n in enumerate(positives)]
        groups += [(f"label {j}'s negatives", len(y_valid) - n) for j, n in enumerate(positives)]
    what, fewest = min(groups, key=lambda group: group[1])
    if fewest >= MIN_RANKING_ROWS:
        return
    rows = "row" if fewest == 1 else "rows"
    warnings.warn(
        f"early_stopping=True with scoring={scoring!r} has only {fewest} {rows} of {what} in "
        f"the validation part (validation_fraction={fraction}): a ranking score on fewer than "
        f"{MIN_RANKING_ROWS} rows of a class is too coarse to choose an epoch reliably (ties "
        "are broken by the validation loss, but the kept network is often an early one). Use "
        "early_stopping=False with a fixed max_epochs, or a larger validation_fraction.",
        UserWarning,
        stacklevel=6,  # fit's caller: _plan, make_plan, fit, scikit-learn's fit wrapper
    )
