r"""Weight helpers shared by the target kinds (:mod:`skfocal._targets`).

How the knobs combine (the objective is :math:`\sum_i s_i \ell_i / \sum_i s_i`):

* ``class_weight`` and ``sample_weight`` multiply into one per-sample weight
  :math:`s_i = \mathrm{sample\_weight}_i \cdot \mathrm{class\_weight}_{y_i}`;
* ``alpha`` is the loss' own class factor :math:`\alpha_t` inside :math:`\ell_i`;
* ``sampler`` changes how often each row is drawn, not its weight.

What each of them means for a binary, multiclass or multilabel target is the target kind's
business; this module only holds the pieces the kinds share.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator


def label_dict_to_vector(mapping, classes, name, default):
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


def check_nonnegative(vector, name, given):
    """``vector`` if it holds finite, non-negative weights; else a ValueError naming ``name``."""
    if not np.all(np.isfinite(vector)) or np.any(vector < 0):
        raise ValueError(f"{name} must hold finite, non-negative weights, got {given!r}.")
    return vector


def balanced_class_weight(y_enc, n_classes, sample_weight=None):
    r"""scikit-learn's ``"balanced"`` class weights, with ``sample_weight`` on every version.

    .. math::

        w_c = \frac{\sum_i s_i}{C \sum_{i : y_i = c} s_i},

    :math:`s_i` the sample weights (all 1 when None) and :math:`C` = ``n_classes``: the
    per-sample weights :math:`s_i w_{y_i}` sum to :math:`\sum_i s_i`, each class carrying an
    equal share. This is what ``compute_class_weight("balanced", classes=..., y=...,
    sample_weight=...)`` returns from scikit-learn 1.7 on (the same operations, so bit for
    bit); scikit-learn 1.6's has no ``sample_weight``.

    Parameters
    ----------
    y_enc : ndarray of int of shape (n_samples,)
        Encoded labels in ``range(n_classes)``, every class present.
    n_classes : int
        Number of classes.
    sample_weight : array-like of shape (n_samples,), default=None
        Per-sample weights.

    Returns
    -------
    ndarray of float64 of shape (n_classes,)

    Examples
    --------
    >>> import numpy as np
    >>> balanced_class_weight(np.array([0, 0, 0, 1]), 2)
    array([0.66666667, 2.        ])
    >>> balanced_class_weight(np.array([0, 0, 0, 1]), 2, sample_weight=[1, 1, 1, 3])
    array([1., 1.])
    """
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    counts = np.bincount(y_enc, weights=sample_weight, minlength=n_classes).astype(np.float64)
    return counts.sum() / (n_classes * counts)


def label_positive_mass(y_ind, sample_weight):
    """Weighted count of positives per label and the total weight, for an indicator matrix."""
    sw = np.ones(len(y_ind)) if sample_weight is None else np.asarray(sample_weight)
    return (sw[:, None] * y_ind).sum(axis=0), sw.sum()


class ClassBalanced(BaseEstimator):
    r"""``class_weight=ClassBalanced(beta)``: class-balanced weights (Cui et al., 2019).

    Class :math:`c` with :math:`n_c` (sample-weighted) training samples is weighted by the
    inverse of its *effective number* of samples,

    .. math::

        w_c \propto \frac{1 - \beta}{1 - \beta^{n_c}},

    normalised like scikit-learn's ``"balanced"`` weights, so that the per-sample weights
    average 1 over the training data: :math:`\sum_c n_c w_c = \sum_c n_c`. ``beta=0`` gives
    all ones; :math:`\beta \to 1` approaches ``"balanced"`` (inverse frequency). Usable with
    every loss; ``beta`` is searchable as ``class_weight__beta``.

    Parameters
    ----------
    beta : float, default=0.999
        :math:`\beta \in [0, 1)`; the paper uses 0.9 to 0.9999, larger for larger data.

    Examples
    --------
    >>> import numpy as np
    >>> from skfocal import ClassBalanced
    >>> ClassBalanced(beta=0.99).weights(np.array([900.0, 100.0])).round(3)
    array([0.945, 1.491])
    """

    def __init__(self, beta=0.999):
        self.beta = beta

    def weights(self, class_counts):
        """Per-class weights for the given (sample-weighted) class counts."""
        beta = self.beta
        if not (isinstance(beta, numbers.Real) and not isinstance(beta, bool) and 0 <= beta < 1):
            raise ValueError(f"ClassBalanced: beta must be a float in [0, 1), got {beta!r}.")
        from .losses import class_balanced_weights

        counts = torch.as_tensor(np.asarray(class_counts, dtype=np.float64))
        return class_balanced_weights(counts, beta).numpy()
