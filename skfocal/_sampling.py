r"""Minibatch samplers of :class:`~skfocal.FocalClassifier`, drawn on the training device.

``sampler`` only decides *which rows* make up the minibatches of an epoch; it never copies a
row of ``X`` (except for an imbalanced-learn sampler that synthesises new rows, such as SMOTE,
whose output is used as the training data). Every epoch has as many draws as there are
training rows, whatever the sampler, so ``max_epochs`` and ``n_iter_no_change`` keep their
meaning.

* ``None``: a seeded random permutation of the training rows every epoch.
* ``"oversample"``: every draw picks a class uniformly, then a row of that class uniformly
  (class-balanced minibatches in expectation).
* ``"sqrt"``: as ``"oversample"`` but class :math:`c` is picked with probability
  :math:`\propto \sqrt{n_c}` (square-root balancing: half-way, on a log scale, between the
  natural frequencies and full balance).
* an imbalanced-learn sampler (anything with ``fit_resample``): it is cloned, seeded and
  fitted on the training part; if it exposes ``sample_indices_`` the epochs cycle through
  random permutations of those indices, otherwise its resampled data is trained on.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import clone

SAMPLER_POWERS = {"oversample": 0.0, "sqrt": 0.5}


def needs_only_labels(sampler):
    """Whether ``sampler`` picks its rows from ``y`` alone (so X need not be handed over).

    imbalanced-learn's ``RandomOverSampler`` (without ``shrinkage``, which would add noise
    scaled by X) and ``RandomUnderSampler`` choose rows from the labels only, but return a
    resampled copy of X. Fitting them on a one-column placeholder gives the same
    ``sample_indices_`` without that copy (2.5x the peak memory of a fit on 1M x 50 rows).
    """
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    if type(sampler) is RandomUnderSampler:
        return True
    return type(sampler) is RandomOverSampler and sampler.shrinkage is None


def fit_imblearn_sampler(sampler, X, y, seed):
    """Clone, seed and fit an imbalanced-learn sampler on the training part.

    Returns ``(indices, X_res, y_res)``: ``indices`` (an int64 ndarray into the rows given)
    when the fitted sampler exposes ``sample_indices_`` -- then ``X_res`` and ``y_res`` are
    None and no resampled copy is kept -- otherwise ``indices`` is None.
    """
    sampler = clone(sampler)
    params = sampler.get_params() if hasattr(sampler, "get_params") else {}
    if "random_state" in params and params["random_state"] is None:
        sampler.set_params(random_state=seed)
    X_res, y_res = sampler.fit_resample(X, y)
    indices = getattr(sampler, "sample_indices_", None)
    if indices is not None:
        return np.asarray(indices, dtype=np.int64), None, None
    return None, X_res, y_res


class EpochSampler:
    """Draws the training-row positions of one epoch, on the device of its generator.

    Parameters
    ----------
    n_rows : int
        Number of training rows; every epoch has this many draws.
    generator : torch.Generator
        Seeded generator on the training device.
    y : LongTensor of shape (n_rows,), default=None
        Encoded classes of the training rows (needed for class-balanced sampling).
    n_classes : int, default=None
        Number of classes.
    power : float, default=None
        Class :math:`c` is drawn with probability :math:`\\propto n_c^{power}`; None shuffles.
    pool : LongTensor, default=None
        Positions to cycle through in random order (imbalanced-learn ``sample_indices_``).
    """

    def __init__(self, n_rows, generator, *, y=None, n_classes=None, power=None, pool=None):
        self.n_rows = n_rows
        self.generator = generator
        self.device = generator.device
        self.power = power
        self.pool = pool
        if power is not None:
            counts = torch.bincount(y, minlength=n_classes)
            self.counts = counts
            self.starts = torch.cumsum(counts, 0) - counts
            self.order = torch.argsort(y, stable=True)
            present = counts > 0
            rates = torch.where(
                present,
                counts.double().pow(power),
                torch.zeros((), dtype=torch.float64, device=counts.device),
            )
            self.class_prob = rates / rates.sum()

    def class_frequencies(self, y_rows, n_classes):
        """Expected share of each class among the draws (``y_rows``: classes of the rows)."""
        if self.power is not None:
            return self.class_prob.cpu().numpy()
        rows = y_rows if self.pool is None else y_rows[self.pool.cpu().numpy()]
        return np.bincount(rows, minlength=n_classes) / max(len(rows), 1)

    def __call__(self):
        g = self.generator
        if self.power is not None:
            # in place, freeing each temporary once used: the draw is n_rows long, and its
            # buffers count towards the peak memory of a fit on a large X
            cls = torch.multinomial(self.class_prob, self.n_rows, replacement=True, generator=g)
            count = self.counts[cls]
            u = torch.rand(self.n_rows, generator=g, device=self.device, dtype=torch.float64)
            offset = u.mul_(count).long()
            del u
            torch.minimum(offset, count.sub_(1), out=offset)
            del count
            rows = self.starts[cls]
            del cls
            rows.add_(offset)
            del offset
            return self.order[rows]
        if self.pool is None:
            return torch.randperm(self.n_rows, generator=g, device=self.device)
        n_pool = len(self.pool)
        reps = -(-self.n_rows // n_pool)
        perms = [
            self.pool[torch.randperm(n_pool, generator=g, device=self.device)] for _ in range(reps)
        ]
        return torch.cat(perms)[: self.n_rows]
