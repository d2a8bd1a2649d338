r"""The members of TunedDecisionClassifierCV: training them, and their out-of-fold responses.

:func:`fit_members` is the only place the meta-estimator trains: one clone of the estimator per
split and the refit member. When the estimator is a :class:`~skfocal.FocalClassifier` (or a
Pipeline ending in one) whose configuration stacks, the fold members and the refit member are
planned exactly as their single fits (:func:`~skfocal._plan.make_plan`) and trained together
as one run of the stacked engine (:class:`~skfocal._engines.StackedEngine`); otherwise they
are fitted as scikit-learn fits them (clone, ``fit`` through joblib). Nothing after it trains.
:func:`fold` turns a member's responses on its held-out rows into the
:class:`~skfocal._decision_metrics.Fold` the decision search reads, and :func:`response` is the
one definition of "the response" shared by the search and ``predict``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.parallel import Parallel, delayed

from . import _inputs
from ._auto import auto_samples, samples_for_auto
from ._decision_metrics import Fold

MULTILABEL = "multilabel-indicator"


def fit_members(estimator, X, y, splits, fit_params, *, refit=True, n_jobs=None):
    """Train one clone of ``estimator`` per split and, with ``refit``, one on every row.

    This is the only function of the meta-estimator that trains; everything after it reads
    the members' predictions on their held-out rows. A faster route (the members trained
    together, e.g. as one stacked run) can replace it with the same contract. Every member
    resolves a ``FocalClassifier``'s ``"auto"`` defaults from the same count: the rows of
    ``X``, or an enclosing search's (:func:`~skfocal._auto.samples_for_auto`).

    Parameters
    ----------
    estimator : estimator instance
        The template (cloned for every member).
    X, y : the full data
    splits : list of (train, test) index arrays
    fit_params : dict
        Parameters for ``fit``; those with one value per sample are sliced to the rows.
    refit : bool
    n_jobs : int or None

    Returns
    -------
    fold_members : list
        One fitted clone per split, trained on its ``train`` rows.
    refit_member : estimator or None
        A fitted clone trained on every row (None unless ``refit``).
    """
    rows = [train for train, _ in splits] + ([None] if refit else [])
    n_samples = n_rows(X)
    # "auto" (early_stopping, max_epochs) resolved once, from the data given to the outer fit
    # (or from an enclosing search's), so that fold members and the refit member agree
    auto = auto_samples() or n_samples
    stacked = _fit_stacked(estimator, X, y, rows, fit_params, n_samples, auto)
    if stacked is not None:
        return stacked[: len(splits)], (stacked[-1] if refit else None)
    members = Parallel(n_jobs=n_jobs)(
        delayed(_fit_one)(clone(estimator), X, y, r, fit_params, n_samples, auto) for r in rows
    )
    return members[: len(splits)], (members[-1] if refit else None)


def _fit_stacked(estimator, X, y, rows, fit_params, n_samples, auto):
    """The members fitted as one stacked run, or None when they do not stack.

    Each member is planned on its rows as its single fit plans itself (a Pipeline's
    preprocessing fitted on those rows first, in place, as ``Pipeline.fit`` fits it); the
    plans are trained by one :class:`~skfocal._engines.StackedEngine` on one shared matrix --
    the validated ``X`` with each member's rows named, or the members' transformed blocks one
    after the other -- and each becomes a fitted classifier through
    :func:`~skfocal._classifier.fitted_classifier` (a member whose training went non-finite
    raises its error, as its single fit would).
    """
    from ._classifier import FocalClassifier, fitted_classifier
    from ._engines import StackedEngine, group_key, why_not_stacked
    from ._plan import make_plan

    pipeline = type(estimator) is Pipeline
    final = estimator.steps[-1][1] if pipeline else estimator
    if type(final) is not FocalClassifier or set(fit_params) - {"sample_weight"}:
        return None
    if pipeline and (estimator.memory is not None or fit_params):
        return None
    if is_dict(X) or isinstance(X, torch.Tensor) or issparse(X):
        return None
    members, plans, blocks = [], [], []
    for member_rows in rows:
        member = clone(estimator)
        X_m, y_m = (X, y) if member_rows is None else (take(X, member_rows), take(y, member_rows))
        sw = fit_params.get("sample_weight")
        if sw is not None and member_rows is not None:
            sw = take_param(sw, member_rows, n_samples)
        classifier = member.steps[-1][1] if pipeline else member
        if pipeline:  # the preprocessing, fitted on the member's rows as Pipeline.fit fits it
            X_m = member[:-1].fit_transform(X_m, y_m)
            if not isinstance(X_m, np.ndarray):
                return None
        plan, X_valid = make_plan(classifier, X_m, y_m, sw, auto_samples=auto)
        if why_not_stacked(plan) is not None:
            return None
        members.append((member, classifier, X_m))
        plans.append(plan)
        blocks.append(X_valid)
    if len({(group_key(plan), plan.device) for plan in plans}) != 1:
        return None
    if pipeline:
        shared = np.concatenate(blocks)
        starts = np.cumsum([0] + [len(b) for b in blocks])
        member_rows = [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    else:
        refit = [i for i, r in enumerate(rows) if r is None]
        shared = blocks[refit[0]] if refit else _validated(X)
        member_rows = rows
    fitted = StackedEngine(plans[0].device, plans[0].dtype).fit(plans, shared, rows=member_rows)
    out = []
    for (member, classifier, X_m), plan, result in zip(members, plans, fitted, strict=True):
        fitted_classifier(classifier, plan, result, X_m)
        out.append(member)
    return out


def _validated(X):
    """``X`` as a fit validates it (a float array), for members that name their rows in it."""
    array = np.asarray(X)
    return array if array.dtype in (np.float32, np.float64) else array.astype(np.float32)


def _fit_one(estimator, X, y, rows, fit_params, n_samples, auto):
    """Fit one member on ``rows`` (in a joblib worker: "auto" resolved from ``auto`` samples)."""
    if rows is not None:
        X, y = take(X, rows), take(y, rows)
        fit_params = {k: take_param(v, rows, n_samples) for k, v in fit_params.items()}
    with samples_for_auto(auto):
        return estimator.fit(X, y, **fit_params)


# -- out-of-fold responses ------------------------------------------------------------------------
def fold(member, X, y, rows, plan):
    """The :class:`Fold` of one member: its responses on ``rows`` and the truth there."""
    n_samples = plan.y.shape[0]
    X_val = take(X, rows)
    method, kind = plan.response_method, plan.kind
    values, raw = response(member, X_val, method, plan.classes, kind, plan.pos_label)
    score_params = plan.routed["scorer"]["score"] or {}
    params = {k: take_param(v, rows, n_samples) for k, v in score_params.items()}
    weights = params.get("sample_weight")
    y_val = plan.y[rows]
    return Fold(
        y=y_val if kind == MULTILABEL else np.searchsorted(plan.classes, y_val),
        response=values,
        weights=None if weights is None else np.asarray(to_numpy(weights), dtype=np.float64),
        X=X_val,
        y_raw=take(y, rows),
        score_params=params,
        proba=raw if method == "predict_proba" else None,
        decision=raw if method == "decision_function" else None,
    )


def response(estimator, X, method, classes, kind, pos_label=None):
    """``(response, raw)``: the decision's input from ``estimator``'s ``method`` on ``X``.

    ``kind`` "binary": the score of ``pos_label`` (n,) -- its probability, or the decision
    function (negated when ``pos_label`` is ``classes_[0]``, as scikit-learn does);
    "multiclass": (n, K) log probabilities or decision scores in the order of ``classes``
    (a class the estimator does not know scores ``-inf``, or log of the smallest float);
    "cost": (n, K) probabilities in that order; "multilabel-indicator": (n, L) per-label
    probabilities or scores. ``raw`` is the method's own output.
    """
    raw = getattr(estimator, method)(X)
    if kind == MULTILABEL:
        if isinstance(raw, list):  # one (n, 2) array per label (forests, MultiOutput...)
            return np.column_stack([to_numpy(r)[:, -1] for r in raw]).astype(np.float64), raw
        return np.asarray(to_numpy(raw), dtype=np.float64), raw
    values = np.asarray(to_numpy(raw), dtype=np.float64)
    own = np.asarray(estimator.classes_)
    proba = method == "predict_proba"
    if kind == "binary":
        if proba:
            return values[:, np.flatnonzero(own == pos_label)[0]], raw
        values = values.ravel() if values.ndim == 2 and values.shape[1] == 1 else values
        return (-values if pos_label == own[0] else values), raw
    if kind == "multiclass" and proba:
        values = np.log(np.maximum(values, np.finfo(np.float64).tiny))
    if own.shape == classes.shape and np.array_equal(own, classes):
        return values, raw
    fill = 0.0 if kind == "cost" else np.log(np.finfo(np.float64).tiny) if proba else -np.inf
    aligned = np.full((values.shape[0], len(classes)), fill)
    aligned[:, np.searchsorted(classes, own)] = values
    return aligned, raw


def is_dict(X):
    """A dict input (a tokenizer's encoding, skorch's SliceDict), not a sparse DOK matrix."""
    return isinstance(X, Mapping) and not issparse(X)


def n_rows(X):
    if is_dict(X):
        return int(len(next(iter(X.values()))))
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def take(X, rows):
    if is_dict(X):
        return {key: take(value, rows) for key, value in X.items()}
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(rows, device=X.device)]
    return _safe_indexing(X, rows)


def take_param(value, rows, n_samples):
    """A fit or score parameter on ``rows``: sliced when it has one value per sample."""
    if isinstance(value, (str, bytes)) or np.isscalar(value) or value is None:
        return value
    try:
        if n_rows(value) == n_samples:
            return take(value, rows)
    except (TypeError, AttributeError, StopIteration):
        pass
    return value


def to_numpy(a):
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    if _inputs.is_foreign_array(a):
        return _inputs.foreign_to_numpy(a)
    return np.asarray(a)


def splittable(X, n_samples):
    """What the splitter sees as ``X``: the data, or a placeholder for dict inputs."""
    return np.zeros((n_samples, 1)) if is_dict(X) else X
