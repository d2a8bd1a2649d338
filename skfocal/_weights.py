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

import numpy as np


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


def label_positive_mass(y_ind, sample_weight):
    """Weighted count of positives per label and the total weight, for an indicator matrix."""
    sw = np.ones(len(y_ind)) if sample_weight is None else np.asarray(sample_weight)
    return (sw[:, None] * y_ind).sum(axis=0), sw.sum()
