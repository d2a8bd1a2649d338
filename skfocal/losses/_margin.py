r"""Margin (truncated cross-entropy) losses: cross-entropy switched off for confident samples."""

from __future__ import annotations

import torch

from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_binary_target_values,
    check_margin,
    check_multiclass_shapes,
    check_reduction,
    check_softness,
)
from ._kernels import make_kernel
from ._reduce import sigmoid_loss, softmax_loss


def margin_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    margin: float = 0.6,
    softness: float | None = None,
    alpha=None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""Truncated softmax cross-entropy: only samples with :math:`p_t \le m` are trained on.

    .. math::

        \mathcal{L} = -\alpha_t\,\lambda(p_t)\,\log p_t, \qquad
        \lambda(p_t) =
        \begin{cases}
            \mathbb{1}[p_t \le m] & \text{hard (``softness=None``)} \\
            \sigma\!\left(K\,(\operatorname{logit} m - \operatorname{logit} p_t)\right)
                & \text{soft (``softness=K``)}
        \end{cases}

    The hard version stops pushing samples that are already classified with margin :math:`m`.
    The soft version is differentiable in :math:`\lambda` and interpolates towards focal loss:
    with :math:`m = 1/2` and :math:`K = 1`, :math:`\lambda = 1 - p_t` and the loss equals
    focal loss with :math:`\gamma = 1`. :math:`\operatorname{logit} p_t = \log p_t -
    \log(1 - p_t)` is computed in log space, so the loss and its gradient stay finite.

    Parameters
    ----------
    input : Tensor of shape (N, C), (N, C, d1, ...) or (C,)
        Unnormalised logits.
    target : Tensor of shape (N,), (N, d1, ...) or ()
        Integer class indices; entries equal to ``ignore_index`` are ignored.
    margin : float, default=0.6
        Probability threshold :math:`m \in (0, 1)` above which a sample stops contributing.
    softness : None or float, default=None
        ``None`` for hard truncation, or the slope :math:`K \ge 0` of the soft gate.
    alpha : None, float or sequence of float, default=None
        Class weights, with the same conventions as :func:`focal_loss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        As in :func:`focal_loss` (``"mean"`` divides by :math:`\sum \alpha_t`; NaN with a zero
        gradient when every target is ignored, like ``F.cross_entropy``).
    ignore_index : int, default=-100
        Target value to ignore.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``target`` for ``reduction="none"``.

    See Also
    --------
    MarginLoss : The same loss as an ``nn.Module``.
    binary_margin_loss_with_logits : The sigmoid version.
    focal_loss : The smooth limit of the soft margin loss.

    Notes
    -----
    In the hard version :math:`\lambda` is a step function; its derivative (zero almost
    everywhere) is not propagated, so the gradient is that of cross-entropy on the samples
    with :math:`p_t \le m` and zero elsewhere.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import focal_loss, margin_loss
    >>> logits = torch.tensor([[3.0, 0.0], [0.2, 0.0]])
    >>> target = torch.tensor([0, 0])
    >>> margin_loss(logits, target, margin=0.6, reduction="none")
    tensor([0.0000, 0.5981])
    >>> torch.allclose(margin_loss(logits, target, margin=0.5, softness=1.0),
    ...                focal_loss(logits, target, gamma=1.0))
    True
    """
    check_reduction(reduction)
    margin = check_margin(margin)
    softness = check_softness(softness)
    alpha = check_alpha(alpha)
    input, target, unbatched = check_multiclass_shapes(input, target, "margin_loss")
    kernel = make_kernel("margin", margin=margin, softness=softness)
    loss = softmax_loss(input, target, alpha, reduction, ignore_index, kernel)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_margin_loss_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    margin: float = 0.6,
    softness: float | None = None,
    alpha=None,
    pos_weight=None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Truncated binary cross-entropy for binary and multilabel targets, from logits.

    Each element contributes :math:`-\lambda(p_t)\log p_t` with :math:`p_t = \sigma(x)` for
    positives and :math:`1 - \sigma(x)` for negatives, :math:`\lambda` as in
    :func:`margin_loss`, weighted by ``alpha``/``pos_weight`` as in
    :func:`binary_focal_loss_with_logits`. With ``margin=0.5`` and ``softness=1`` it equals
    the binary focal loss with :math:`\gamma = 1`.

    Parameters
    ----------
    input : Tensor of any shape
        One logit per element.
    target : Tensor of the same shape as ``input``
        Labels in {0, 1} (soft labels in [0, 1] are accepted; values outside [0, 1] raise a
        ``ValueError`` for CPU tensors).
    margin : float, default=0.6
        Probability threshold :math:`m \in (0, 1)`.
    softness : None or float, default=None
        ``None`` for hard truncation, or the slope :math:`K \ge 0` of the soft gate.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha`` (per label if a sequence).
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` is the plain mean over elements.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``input`` for ``reduction="none"``.

    See Also
    --------
    BinaryMarginLoss : The same loss as an ``nn.Module``.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_margin_loss_with_logits
    >>> logits = torch.tensor([3.0, 0.1, -2.0])
    >>> target = torch.tensor([1.0, 1.0, 0.0])
    >>> binary_margin_loss_with_logits(logits, target, margin=0.6, reduction="none")
    tensor([0.0000, 0.6444, 0.0000])
    """
    check_reduction(reduction)
    margin = check_margin(margin)
    softness = check_softness(softness)
    alpha = check_alpha(alpha)
    input, target = check_binary_shapes(input, target, "binary_margin_loss_with_logits")
    check_binary_target_values(target, "binary_margin_loss_with_logits")
    kernel = make_kernel("margin", margin=margin, softness=softness)
    return sigmoid_loss(input, target, alpha, pos_weight, reduction, kernel)
