r"""Class-balanced weights from the effective number of samples (Cui et al., 2019)."""

from __future__ import annotations

import math

import torch

from ._checks import check_class_counts, check_unit


def class_balanced_weights(class_counts, beta: float = 0.999) -> torch.Tensor:
    r"""Per-class weights inversely proportional to the effective number of samples.

    .. math::

        E_c = \frac{1 - \beta^{n_c}}{1 - \beta}, \qquad
        w_c = \frac{\sum_k n_k}{\sum_k n_k / E_k} \cdot \frac{1}{E_c}

    so that the per-sample weights average 1 over the given counts,
    :math:`\sum_c n_c w_c = \sum_c n_c` (Cui et al. normalise to :math:`\sum_c w_c = C`
    instead; only the overall scale differs, which matters for the learning rate and for
    ``reduction="sum"``, not for ``"mean"`` of :func:`focal_loss`, which divides by the
    weights).

    Parameters
    ----------
    class_counts : sequence of float of length C
        Number of training samples :math:`n_c > 0` of each class (need not be integers).
    beta : float, default=0.999
        :math:`\beta \in [0, 1)`. ``beta=0`` gives all-ones weights; as
        :math:`\beta \to 1`, :math:`E_c \to n_c` and the weights approach inverse class
        frequency, :math:`w_c \to N / (C\, n_c)` (scikit-learn's ``"balanced"``).

    Returns
    -------
    weights : Tensor of shape (C,), float64
        Usable as ``alpha`` of the softmax losses (per-class weights).

    Notes
    -----
    :math:`1 - \beta^{n}` is computed as ``-expm1(n * log(beta))``, accurate for
    :math:`\beta` close to 1 and large :math:`n`. Deferred re-weighting (DRW) switches such
    weights on after a first, unweighted training stage; that schedule belongs to the
    estimator, this function only computes the weights.

    References
    ----------
    .. [1] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced Loss Based on
       Effective Number of Samples", CVPR 2019.

    Examples
    --------
    >>> from skfocal.losses import class_balanced_weights
    >>> class_balanced_weights([900, 90, 10], beta=0.99)
    tensor([0.8652, 1.4534, 9.0479], dtype=torch.float64)
    >>> class_balanced_weights([900, 90, 10], beta=0.0)
    tensor([1., 1., 1.], dtype=torch.float64)
    """
    counts = check_class_counts(class_counts)
    beta = check_unit("beta", beta)
    if beta == 0.0:
        inv_effective = torch.ones_like(counts)
    else:
        # 1 / E_c up to the common factor (1 - beta), which the normalisation removes
        inv_effective = 1.0 / -torch.expm1(counts * math.log(beta))
    return inv_effective * (counts.sum() / (counts * inv_effective).sum())
