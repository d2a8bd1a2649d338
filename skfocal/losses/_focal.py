r"""Focal loss (Lin et al., 2017) for softmax and sigmoid outputs."""

from __future__ import annotations

import torch

from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_binary_target_values,
    check_gamma,
    check_multiclass_shapes,
    check_reduction,
)
from ._reduce import sigmoid_loss, softmax_loss


def focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha=None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""Softmax focal loss from logits, shaped like :func:`torch.nn.functional.cross_entropy`.

    .. math::

        \mathrm{FL}(p_t) = -\alpha_t\,(1 - p_t)^{\gamma}\,\log p_t,
        \qquad p_t = \operatorname{softmax}(x)_{t}

    :math:`\log p_t` comes from ``log_softmax``, and the backward pass is written in closed form
    so that loss *and* gradient stay finite for every :math:`\gamma \ge 0` (including
    :math:`0 < \gamma < 1`, where the textbook formula's gradient is NaN at confident samples).

    Parameters
    ----------
    input : Tensor of shape (N, C), (N, C, d1, ...) or (C,)
        Unnormalised logits.
    target : Tensor of shape (N,), (N, d1, ...) or ()
        Integer class indices in ``[0, C)``; entries equal to ``ignore_index`` are ignored.
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`; ``gamma=0`` is (weighted) cross-entropy.
    alpha : None, float or sequence of float, default=None
        Class weights :math:`\alpha_c`. ``None`` weights every class 1. A float in [0, 1] is
        the two-class shorthand: ``alpha`` for class 1 and ``1 - alpha`` for class 0 (an
        error with more than two classes). A length-C sequence or tensor gives one
        non-negative weight per class, exactly like ``weight`` of ``F.cross_entropy``. A
        tensor that requires grad receives its exact gradient.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides the sum by :math:`\sum \alpha_t` over non-ignored targets (the
        convention of ``F.cross_entropy``), ``"sum"`` sums, ``"none"`` returns the per-element
        losses with the shape of ``target`` (0 where ignored). When that sum is zero (every
        target ignored, or only classes of weight 0) the mean is NaN, as in
        ``F.cross_entropy``, and the gradient is zero.
    ignore_index : int, default=-100
        Target value that contributes neither to the loss nor to the mean's denominator.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``target`` for ``reduction="none"``.

    See Also
    --------
    FocalLoss : The same loss as an ``nn.Module``.
    binary_focal_loss_with_logits : Sigmoid focal loss for binary and multilabel targets.

    Notes
    -----
    With ``gamma=0`` this function *is* ``F.cross_entropy(input, target, weight=alpha,
    ignore_index=ignore_index, reduction=reduction)``: the call is delegated to it, so value
    and gradient are torch's bit for bit (with torch's float32 accuracy), and plain
    cross-entropy costs nothing extra (torch's gradient is NaN, not zero, when all targets
    have class weight 0). Class weights enter only as the factor :math:`\alpha_t`;
    :math:`p_t` is always the unweighted softmax probability (computing it as
    ``exp(-weighted CE)`` is a common bug).

    The gradient is formed in the forward pass from :math:`\log p_t`, :math:`p_t` and
    :math:`p_t - 1 = \operatorname{expm1}(\log p_t)` (exact as :math:`p_t \to 1`) in a few
    fused operations, so a forward and backward cost little more than ``F.cross_entropy``'s.
    Class indices outside ``[0, C)`` raise a ``ValueError`` for CPU tensors; on an accelerator
    the check would synchronise the device and is left to torch's indexing.

    References
    ----------
    .. [1] T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollár, "Focal Loss for Dense Object
       Detection", ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import focal_loss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> target = torch.tensor([0, 2])
    >>> focal_loss(logits, target, gamma=2.0)
    tensor(0.4838)
    >>> torch.allclose(focal_loss(logits, target, gamma=0.0),
    ...                torch.nn.functional.cross_entropy(logits, target))
    True
    """
    check_reduction(reduction)
    gamma = check_gamma(gamma)
    alpha = check_alpha(alpha)
    input, target, unbatched = check_multiclass_shapes(input, target, "focal_loss")
    kernel = None if gamma == 0 else gamma  # None: F.cross_entropy
    loss = softmax_loss(input, target, alpha, reduction, ignore_index, kernel)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_focal_loss_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha=None,
    pos_weight=None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Sigmoid focal loss for binary and multilabel targets, computed from logits.

    For each element with logit :math:`x`, probability :math:`p = \sigma(x)` and label
    :math:`y \in [0, 1]`:

    .. math::

        \mathrm{FL} = -\,y\,\alpha\,w_{+}\,(1 - p)^{\gamma}\log p
                      \;-\;(1 - y)\,(1 - \alpha)\,p^{\gamma}\log(1 - p)

    where :math:`w_{+}` is ``pos_weight``. Both logarithms come from ``logsigmoid``, and the
    gradient is written in closed form (no negative powers), so it is finite for every
    :math:`\gamma \ge 0` and any logit.

    Parameters
    ----------
    input : Tensor of any shape, e.g. (N,) for binary or (N, L) for multilabel
        One logit per element.
    target : Tensor of the same shape as ``input``
        Labels in {0, 1} (soft labels in [0, 1] are accepted: the formula above is linear in
        :math:`y`). Integer and boolean targets are converted to the logits' dtype. Values
        outside [0, 1], which would make the loss negative, raise a ``ValueError`` for CPU
        tensors (on an accelerator the check would synchronise the device and is skipped).
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`.
    alpha : None, float or sequence of float, default=None
        ``None`` weights positives and negatives equally. A float in [0, 1] weights positives
        by ``alpha`` and negatives by ``1 - alpha`` (the RetinaNet/torchvision convention, where
        ``alpha=0.25`` *down*-weights positives). A length-L sequence gives one alpha per label
        (last dimension of ``input``).
    pos_weight : None, float or Tensor broadcastable to ``input``, default=None
        Extra weight of positive elements, exactly as in :class:`torch.nn.BCEWithLogitsLoss`;
        ``n_neg / n_pos`` per label is the usual choice for rare positives.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` is the plain mean over elements (as in
        ``F.binary_cross_entropy_with_logits``).

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``input`` for ``reduction="none"``.

    See Also
    --------
    BinaryFocalLoss : The same loss as an ``nn.Module``.
    focal_loss : Softmax focal loss for mutually exclusive classes.

    Notes
    -----
    With ``gamma=0`` and ``alpha=None`` this *is*
    ``F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight)``: the case is
    delegated to torch's fused function, so value and gradient are torch's bit for bit and
    plain binary cross-entropy costs nothing extra. With ``gamma=0`` and an ``alpha`` it is
    the ``alpha``-weighted binary cross-entropy (``weight=alpha * target + (1 - alpha) * (1 -
    target)`` of torch's function, mathematically) computed in the form below: each element
    of loss and gradient is within 2e-7 relative of a float64 reference at every logit,
    while torch's float32 function with that weight returns 0 for small values (the loss at
    :math:`x = -30, y = 0`, the gradient at :math:`x = 17, y = 1`).

    Otherwise both :math:`-\log p` and :math:`-\log(1 - p)` are softplus values, :math:`p`
    and :math:`1 - p` both sigmoids, and the positive and negative parts of loss and gradient
    are weighted by :math:`y` and :math:`1 - y` factors that are exactly 0 on the inactive side
    of a hard label :math:`y \in \{0, 1\}`: loss and gradient keep
    their relative precision at every logit (e.g. the loss at :math:`x = -15, y = 0`, or the
    gradient at :math:`x = 16, y = 1`, where ``softplus(-x) + x`` and
    ``g_- - y (g_- + g_+)`` cancel to 0). torch's own binary cross-entropy, used for
    ``gamma=0, alpha=None``, does cancel there.

    A ``target``, ``alpha`` or ``pos_weight`` that requires grad receives its exact gradient
    (the loss is then weighted by ordinary autograd operations; the logit gradient stays in
    closed form).

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_focal_loss_with_logits
    >>> logits = torch.tensor([3.0, -1.0, 0.5])
    >>> target = torch.tensor([1.0, 0.0, 0.0])
    >>> binary_focal_loss_with_logits(logits, target, gamma=2.0, alpha=0.25)
    tensor(0.1000)
    """
    check_reduction(reduction)
    gamma = check_gamma(gamma)
    alpha = check_alpha(alpha)
    input, target = check_binary_shapes(input, target, "binary_focal_loss_with_logits")
    hard = check_binary_target_values(target, "binary_focal_loss_with_logits")
    return sigmoid_loss(input, target, alpha, pos_weight, reduction, gamma, hard)
