r"""Resolve ``alpha`` and ``class_weight`` into the numbers the loss and the minibatches use.

Everything here runs inside ``fit`` on the data given to it (so nothing leaks across CV folds),
on label-encoded targets: ``y_enc`` holds indices into ``classes`` for binary and multiclass
targets, and is the ``(n_samples, n_labels)`` 0/1 indicator matrix for multilabel targets.

How the knobs combine (the objective is :math:`\sum_i s_i \ell_i / \sum_i s_i`):

* ``class_weight`` and ``sample_weight`` multiply into one per-sample weight
  :math:`s_i = \mathrm{sample\_weight}_i \cdot \mathrm{class\_weight}_{y_i}`;
* ``alpha`` is the loss' own class factor :math:`\alpha_t` inside :math:`\ell_i`;
* ``sampler`` changes how often each row is drawn, not its weight.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

_ALPHA_ALLOWED = (
    "None, a float in [0, 1] (binary and multilabel targets), 'balanced', an array-like with "
    "one non-negative weight per class, or a dict keyed by class label"
)


def _label_dict_to_vector(mapping, classes, name, default):
    """``{label: value}`` -> a vector over ``classes``; keys must be labels of the data."""
    labels = set(classes.tolist())
    unknown = [key for key in mapping if key not in labels]
    if unknown:
        raise ValueError(
            f"{name} has keys that are not class labels of y: {unknown!r}; the classes are "
            f"{classes.tolist()!r}."
        )
    vector = np.full(len(classes), default, dtype=np.float64)
    for index, label in enumerate(classes.tolist()):
        if label in mapping:
            vector[index] = float(mapping[label])
    return vector


def _check_nonnegative(vector, name, given):
    if not np.all(np.isfinite(vector)) or np.any(vector < 0):
        raise ValueError(f"{name} must hold finite, non-negative weights, got {given!r}.")
    return vector


def resolve_class_weight(class_weight, y_enc, classes, sample_weight, task):
    """Per-class weights (length ``n_classes``) for binary/multiclass, or ``None``.

    ``"balanced"`` is scikit-learn's ``n_samples / (n_classes * np.bincount(y))`` (its
    ``sample_weight``-weighted form when ``sample_weight`` is given). For a multilabel target
    ``class_weight`` must be ``None`` or ``"balanced"``; see :func:`multilabel_pos_weight`.
    """
    if class_weight is None:
        return None
    if task == "multilabel":
        if class_weight == "balanced":
            return None  # handled as a per-label pos_weight
        raise ValueError(
            "class_weight for a multilabel target must be None or 'balanced', "
            f"got {class_weight!r}."
        )
    if isinstance(class_weight, dict):
        vector = _label_dict_to_vector(class_weight, classes, "class_weight", 1.0)
        return _check_nonnegative(vector, "class_weight", class_weight)
    return compute_class_weight(
        "balanced", classes=np.arange(len(classes)), y=y_enc, sample_weight=sample_weight
    )


def label_positive_mass(y_ind, sample_weight):
    """Weighted count of positives per label and the total weight, for an indicator matrix."""
    sw = np.ones(len(y_ind)) if sample_weight is None else np.asarray(sample_weight)
    return (sw[:, None] * y_ind).sum(axis=0), sw.sum()


def multilabel_pos_weight(class_weight, y_enc, sample_weight):
    """``pos_weight`` per label for ``class_weight="balanced"``: weighted ``n_neg / n_pos``.

    This is the ratio of scikit-learn's balanced weights of the two values of each label, in
    the convention of :class:`torch.nn.BCEWithLogitsLoss`. Labels without positives get 1.
    """
    if class_weight != "balanced":
        return None
    pos, total = label_positive_mass(y_enc, sample_weight)
    return np.where(pos > 0, (total - pos) / np.where(pos > 0, pos, 1.0), 1.0)


def resolve_alpha(alpha, y_enc, classes, sample_weight, task):
    r"""The ``alpha`` to hand to the loss.

    Returns ``None``, a float in [0, 1] (binary: the weight of the positive class
    ``classes[1]``, the negatives get ``1 - alpha``), a float ndarray of one weight per class
    (multiclass) or one positive weight in [0, 1] per label (multilabel).

    * binary: a float is used as is; ``"balanced"`` is the negative-class frequency
      :math:`n_0 / n`, so that both classes carry the same total weight; a length-2 array or a
      dict ``{label: weight}`` giving :math:`(a_0, a_1)` becomes :math:`a_1 / (a_0 + a_1)` (the
      same weighting up to a constant factor).
    * multiclass: ``"balanced"`` is :math:`n / (C\,n_c)` (scikit-learn's formula, whose mean
      over the samples is 1); an array-like or dict gives one weight per class (labels missing
      from a dict get 1). A float is an error.
    * multilabel: a float is the positive weight of every label; ``"balanced"`` gives each
      label its negative frequency :math:`n_{0,l} / n`; an array-like gives one value in [0, 1]
      per label.
    """
    if alpha is None:
        return None
    n_classes = len(classes)
    sw = np.ones(len(y_enc)) if sample_weight is None else np.asarray(sample_weight)
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        if task == "multiclass":
            raise ValueError(
                f"alpha={alpha!r} is a float, which is the two-class shorthand; with "
                f"{n_classes} classes pass 'balanced', an array-like of {n_classes} weights or "
                "a dict keyed by class label."
            )
        return float(alpha)
    if isinstance(alpha, str):  # "balanced": the constraint table allows no other string
        if task == "multilabel":
            pos, total = label_positive_mass(y_enc, sw)
            return 1.0 - pos / total
        weights = compute_class_weight(
            "balanced", classes=np.arange(n_classes), y=y_enc, sample_weight=sw
        )
        if task == "binary":
            return float(weights[1] / (weights[0] + weights[1]))
        return weights
    if isinstance(alpha, dict):
        if task == "multilabel":
            raise ValueError(
                "alpha for a multilabel target must be None, a float, 'balanced' or an "
                f"array-like with one value per label, got a dict {alpha!r}."
            )
        vector = _label_dict_to_vector(alpha, classes, "alpha", 1.0)
    else:
        try:
            vector = np.asarray(alpha, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"alpha must be {_ALPHA_ALLOWED}, got {alpha!r}.") from exc
        what = "label" if task == "multilabel" else "class"
        if vector.ndim != 1 or len(vector) != n_classes:
            raise ValueError(
                f"alpha must have one entry per {what}: expected length {n_classes} "
                f"({what}es {classes.tolist()!r}), got {alpha!r}."
            )
    _check_nonnegative(vector, "alpha", alpha)
    if task == "binary":
        total = vector.sum()
        if total <= 0:
            raise ValueError(f"alpha must not be all zeros, got {alpha!r}.")
        return float(vector[1] / total)
    if task == "multilabel" and np.any(vector > 1):
        raise ValueError(
            "alpha for a multilabel target weights positives by alpha and negatives by "
            f"1 - alpha, so every entry must lie in [0, 1], got {alpha!r}."
        )
    return vector


def per_sample_weights(y_enc, sample_weight, class_weight_vector):
    """``sample_weight * class_weight[y]``, or ``None`` when every weight would be 1."""
    if sample_weight is None and class_weight_vector is None:
        return None
    weights = np.ones(len(y_enc)) if sample_weight is None else np.asarray(sample_weight, float)
    if class_weight_vector is not None:
        weights = weights * class_weight_vector[y_enc]
    return weights


def warn_double_weighting(sampler, alpha, class_weight):
    """Warn when a balancing sampler is combined with balanced weights (balancing twice)."""
    if sampler is None:
        return
    balanced = [
        name
        for name, value in (("alpha", alpha), ("class_weight", class_weight))
        if isinstance(value, str) and value == "balanced"
    ]
    if balanced:
        settings = " and ".join(f"{name}='balanced'" for name in balanced)
        warnings.warn(
            f"sampler={sampler!r} already rebalances the classes in every minibatch; combined "
            f"with {settings} the minority classes are up-weighted twice. Use one of the two "
            "unless that is what you want.",
            UserWarning,
            stacklevel=3,
        )
