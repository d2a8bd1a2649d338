r"""Scoring candidate decisions on out-of-fold responses, for :class:`TunedDecisionClassifierCV`.

A decision search asks one question many times: *what would the scorer give if the model
predicted these labels?* -- for every candidate threshold or offset and every fold. Two ways
answer it:

* **vectorised**, for the metrics of the confusion counts that scikit-learn ships
  (``accuracy``, ``balanced_accuracy``, ``f1``/F-beta, ``precision``, ``recall``, ``jaccard``
  with ``average`` in binary / macro / micro / weighted): the per-class counts
  :math:`tp_k = \sum_i w_i [y_i = k, \hat y_i = k]`, :math:`\hat n_k = \sum_i w_i [\hat y_i = k]`
  and :math:`n_k = \sum_i w_i [y_i = k]` of every candidate come from one ``bincount``, and the
  metric is formed from them with scikit-learn's own formulas (F-beta as
  :math:`(1 + \beta^2)\,tp / (\beta^2 n_k + \hat n_k)`, the averages over the labels present in
  the truth or the prediction), so that unweighted scores are equal bit for bit;
* **generic**, for every other scorer: the scorer is called as scikit-learn calls it,
  ``scorer(estimator, X_val, y_val, **score_params)``, on a stand-in estimator whose
  ``predict`` returns the candidate's labels (:class:`_Decided`).

Which metric a scorer object computes is read from the attributes scikit-learn's scorers keep
(``_score_func``, ``_kwargs``, ``_sign``, ``_response_method``): :func:`scorer_parts` is the one
place that does so, and anything it does not recognise takes the generic path, which gives the
same numbers at the cost of one scorer call per candidate and fold. ``VECTORISED = False``
sends every scorer down the generic path (the tests run both ways).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from inspect import signature

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    fbeta_score,
    jaccard_score,
    precision_score,
    recall_score,
)

#: Switch: False scores every candidate through the scorer itself (the generic path).
VECTORISED = True

# scorer names whose value does not depend on the decision (they read predict_proba or
# decision_function): tuning a decision for them is meaningless
RANKING_SCORERS = frozenset(
    {
        "average_precision",
        "d2_brier_score",
        "d2_log_loss_score",
        "neg_brier_score",
        "neg_log_loss",
        "roc_auc",
        "roc_auc_ovo",
        "roc_auc_ovo_weighted",
        "roc_auc_ovr",
        "roc_auc_ovr_weighted",
        "top_k_accuracy",
    }
)

_FAMILIES = {
    accuracy_score: "accuracy",
    balanced_accuracy_score: "balanced_accuracy",
    f1_score: "fbeta",
    fbeta_score: "fbeta",
    precision_score: "precision",
    recall_score: "recall",
    jaccard_score: "jaccard",
}
_AVERAGES = ("binary", "macro", "micro", "weighted")


def scorer_parts(scorer):
    """``(score_func, kwargs, sign, response_method)`` of a scikit-learn scorer, or None.

    The only reader of the private attributes of scikit-learn's ``_Scorer`` (present from
    1.4 to 1.9); a scorer without them (a plain callable, a future scikit-learn) gives None
    and is scored through the generic path.
    """
    try:
        parts = (scorer._score_func, dict(scorer._kwargs), scorer._sign, scorer._response_method)
    except (AttributeError, TypeError):
        return None
    return parts if callable(parts[0]) else None


def accepts_sample_weight(scorer):
    """Whether ``scorer`` can take ``sample_weight``: its metric's signature (a scikit-learn
    scorer), else its own call's."""
    parts = scorer_parts(scorer)
    try:
        return "sample_weight" in signature(parts[0] if parts else scorer).parameters
    except (TypeError, ValueError):
        return False


def pos_label_of(parts):
    """The positive label a scorer scores (scikit-learn's rule), or None: ``classes_[1]``."""
    if parts is None:
        return None
    score_func, kwargs = parts[0], parts[1]
    if "pos_label" in kwargs:
        return kwargs["pos_label"]
    try:
        parameter = signature(score_func).parameters.get("pos_label")
    except (TypeError, ValueError):
        return None
    return None if parameter is None else parameter.default


@dataclass(frozen=True)
class Metric:
    """A confusion-count metric the vectorised path computes (see the module docstring)."""

    family: str  # accuracy, balanced_accuracy, fbeta, precision, recall, jaccard
    average: str | None = None  # binary, macro, micro, weighted (None: accuracy, BA)
    pos_label: object = 1
    beta: float = 1.0
    zero_division: float = 0.0
    sign: float = 1.0

    @property
    def binary_only(self):
        return self.average == "binary"


def metric_of(parts):
    """The :class:`Metric` a scorer computes, or None (then it takes the generic path)."""
    if parts is None:
        return None
    score_func, kwargs, sign, response_method = parts
    family = _FAMILIES.get(score_func)
    if family is None or response_method != "predict":
        return None
    kwargs = dict(kwargs)
    if family == "accuracy":
        ok = kwargs.pop("normalize", True) is True
        return Metric(family, sign=sign) if ok and not kwargs else None
    if family == "balanced_accuracy":
        ok = kwargs.pop("adjusted", False) is False
        return Metric(family, sign=sign) if ok and not kwargs else None
    beta = kwargs.pop("beta", 1.0) if family == "fbeta" else 1.0
    average = kwargs.pop("average", "binary")
    pos_label = kwargs.pop("pos_label", 1)
    zero_division = kwargs.pop("zero_division", "warn")
    if kwargs or average not in _AVERAGES or not (np.isscalar(beta) and 0 < beta < np.inf):
        return None
    if isinstance(zero_division, str):
        zero_division = 0.0 if zero_division == "warn" else np.nan
    if not (zero_division == 0 or zero_division == 1):  # np.nan: the generic path
        return None
    if average != "binary":
        pos_label = None
    return Metric(family, average, pos_label, float(beta), float(zero_division), sign)


# -- the vectorised path --------------------------------------------------------------------------
def class_counts(pred, y, n_classes, weights=None):
    """Per-candidate counts ``(tp, n_pred)`` of shape (G, K) for predicted class indices.

    ``pred`` is (G, n) (each row one candidate decision), ``y`` (n,) class indices; with
    ``weights`` the counts are weighted sums (integers are returned exactly as floats).
    """
    n_candidates = pred.shape[0]
    flat = pred + n_classes * np.arange(n_candidates)[:, None]
    size = n_candidates * n_classes
    hit = pred == y
    if weights is None:
        n_pred = np.bincount(flat.ravel(), minlength=size)
        tp = np.bincount(flat[hit], minlength=size)
    else:
        tiled = np.broadcast_to(weights, pred.shape)
        n_pred = np.bincount(flat.ravel(), weights=tiled.ravel(), minlength=size)
        tp = np.bincount(flat[hit], weights=tiled[hit], minlength=size)
    shape = (n_candidates, n_classes)
    return tp.reshape(shape).astype(np.float64), n_pred.reshape(shape).astype(np.float64)


def label_counts(pred, y, weights=None):
    """Per-candidate counts ``(tp, n_pred)`` of shape (G,) of one label (``pred`` (G, n) bool)."""
    w = np.ones(y.shape[0]) if weights is None else weights
    pred = pred.astype(np.float64)
    return pred @ (w * y), pred @ w


def _divide(num, den, zero_division):
    """``num / den`` with ``zero_division`` where ``den`` is 0 (scikit-learn's _prf_divide)."""
    safe = np.where(den == 0, 1.0, den)
    return np.where(den == 0, zero_division, num / safe)


def score_counts(metric, tp, n_pred, n_true, total, *, multilabel=False, pos=None):
    """The metric of every candidate, shape (G,), from its counts (shapes (G, K) and (K,)).

    Labels enter the macro and weighted averages when they are in the truth or the
    prediction (scikit-learn's ``unique_labels``), every label for multilabel targets.
    """
    family, average = metric.family, metric.average
    if family == "accuracy":
        return metric.sign * (tp.sum(axis=1) / total)
    if family == "balanced_accuracy":
        present = n_true > 0
        return metric.sign * np.mean(tp[:, present] / n_true[present], axis=1)
    if average == "binary":
        tp, n_pred, n_true = tp[:, pos : pos + 1], n_pred[:, pos : pos + 1], n_true[pos : pos + 1]
    elif average == "micro":
        tp, n_pred = tp.sum(axis=1, keepdims=True), n_pred.sum(axis=1, keepdims=True)
        n_true = np.atleast_1d(n_true.sum())
    n_true = np.broadcast_to(n_true, tp.shape)
    zd = metric.zero_division
    if family == "precision":
        value = _divide(tp, n_pred, zd)
    elif family == "recall":
        value = _divide(tp, n_true, zd)
    elif family == "jaccard":
        value = _divide(tp, n_true + n_pred - tp, zd)
    else:
        beta2 = metric.beta**2
        value = _divide((1 + beta2) * tp, beta2 * n_true + n_pred, zd)
    if average in ("binary", "micro"):
        return metric.sign * value[:, 0]
    present = np.ones_like(value, dtype=bool) if multilabel else (n_true > 0) | (n_pred > 0)
    if average == "weighted":
        weight = np.where(present, n_true, 0.0)
        mass = weight.sum(axis=1)
        weighted = (value * weight).sum(axis=1) / np.where(mass == 0, 1.0, mass)
        plain = _masked_mean(value, present)
        return metric.sign * np.where(mass == 0, plain, weighted)
    return metric.sign * _masked_mean(value, present)


def _masked_mean(value, mask):
    if mask.all():
        return np.mean(value, axis=1)
    return np.where(mask, value, 0.0).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)


# -- the generic path -----------------------------------------------------------------------------
class _Decided(ClassifierMixin, BaseEstimator):
    """Stand-in estimator for one scorer call: ``predict`` returns a candidate's labels.

    ``predict_proba`` and ``decision_function`` return the fold member's (untuned) responses,
    as the tuned meta-estimator would.
    """

    def predict(self, X):
        return self.labels_

    def predict_proba(self, X):
        return self.proba_

    def decision_function(self, X):
        return self.decision_


@dataclass
class Fold:
    """Out-of-fold material of one split: responses and what scoring them needs."""

    y: np.ndarray  # class indices (n,), or the 0/1 indicator (n, L) of multilabel targets
    response: np.ndarray  # (n,) binary, (n, K) scores, (n, L) per-label scores
    weights: np.ndarray | None  # the scorer's sample_weight (None: unweighted)
    X: object = None  # the rows, for the generic path
    y_raw: object = None
    score_params: dict | None = None
    proba: object = None
    decision: object = None


class Objective:
    """The scorer's value of candidate decisions on each fold (vectorised or generic).

    Parameters
    ----------
    scorer : callable
        The scorer, ``scorer(estimator, X, y, **params)``.
    metric : Metric or None
        What the scorer computes, when the vectorised path knows it.
    classes : ndarray
        Class labels (binary, multiclass) or label indices (multilabel).
    multilabel : bool
    """

    def __init__(self, scorer, metric, classes, multilabel):
        self.scorer, self.classes, self.multilabel = scorer, classes, multilabel
        self.metric = metric if VECTORISED else None
        self.pos = None
        if self.metric is not None and self.metric.average == "binary":
            self.pos = int(np.flatnonzero(classes == self.metric.pos_label)[0])

    def classes_scores(self, fold, pred):
        """Scores (G,) of candidate class-index predictions ``pred`` (G, n) on ``fold``."""
        if self.metric is not None:
            tp, n_pred = class_counts(pred, fold.y, len(self.classes), fold.weights)
            n_true = _true_counts(fold.y, len(self.classes), fold.weights)
            total = fold.y.shape[0] if fold.weights is None else fold.weights.sum()
            return score_counts(self.metric, tp, n_pred, n_true, total, pos=self.pos)
        return np.array([self._call(fold, self.classes[row]) for row in pred])

    def labels_scores(self, fold, pred_k, k, rest):
        """Scores (G,) of candidate 0/1 columns ``pred_k`` (G, n) of label ``k`` (multilabel),
        the other labels predicted as in ``rest`` (n, L)."""
        if self.metric is not None:
            w = fold.weights
            y = fold.y.astype(np.float64)
            n_true = (y if w is None else y * w[:, None]).sum(axis=0)
            fixed = rest.astype(np.float64) if w is None else rest * w[:, None]
            tp = np.broadcast_to((fixed * y).sum(axis=0), (pred_k.shape[0], y.shape[1])).copy()
            n_pred = np.broadcast_to(fixed.sum(axis=0), tp.shape).copy()
            tp[:, k], n_pred[:, k] = label_counts(pred_k, y[:, k], w)
            total = y.shape[0] if w is None else w.sum()
            return score_counts(self.metric, tp, n_pred, n_true, total, multilabel=True)
        scores = []
        for column in pred_k:
            labels = rest.copy()
            labels[:, k] = column
            scores.append(self._call(fold, labels))
        return np.array(scores)

    def _call(self, fold, labels):
        decided = _Decided()
        decided.classes_ = self.classes
        decided.labels_, decided.proba_, decided.decision_ = labels, fold.proba, fold.decision
        with warnings.catch_warnings():
            # candidates that predict no sample of a class are part of every search
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            return float(self.scorer(decided, fold.X, fold.y_raw, **(fold.score_params or {})))


def _true_counts(y, n_classes, weights):
    return np.bincount(y, weights=weights, minlength=n_classes).astype(np.float64)
