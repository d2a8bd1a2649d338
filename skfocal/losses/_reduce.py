"""Target handling and reductions shared by the softmax and sigmoid losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import class_alpha, label_alpha
from ._functions import SigmoidFocalLoss, SigmoidTargetLoss, SoftmaxTargetLoss


def softmax_loss(input, target, alpha, reduction, ignore_index, kernel):
    """Apply a softmax kernel with ``F.cross_entropy``'s weighting, ignoring and reductions.

    ``reduction="mean"`` divides by the summed weights of the non-ignored targets, so that a
    kernel equal to cross-entropy reproduces ``F.cross_entropy(weight=alpha)`` exactly.
    ``kernel=None`` *is* cross-entropy (focal ``gamma=0``): torch's fused kernel is used.
    """
    n_classes = input.shape[1]
    weights = class_alpha(alpha, n_classes, input)
    valid = target != ignore_index
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    if target.device.type == "cpu" and target.numel():
        low, high = int(safe_target.min()), int(safe_target.max())
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"target must hold class indices in [0, {n_classes - 1}] (or ignore_index="
                f"{ignore_index}), got {bad}."
            )
    if kernel is None:
        return F.cross_entropy(
            input, target, weight=weights, ignore_index=ignore_index, reduction=reduction
        )
    valid = valid.to(input.dtype)
    weight_t = valid if weights is None else weights[safe_target].mul_(valid)
    loss = SoftmaxTargetLoss.apply(input, safe_target, weight_t, kernel)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    return total / weight_t.sum()


def sigmoid_loss(input, target, alpha, pos_weight, reduction, kernel):
    """Apply a sigmoid kernel to positives and negatives with alpha and ``pos_weight``.

    ``kernel`` is a kernel from ``_kernels.make_kernel``, or a float: the focal ``gamma``, for
    which a fused implementation is used. ``gamma=0`` without ``alpha`` *is* binary
    cross-entropy: torch's fused ``binary_cross_entropy_with_logits`` is used.

    ``alpha`` weights positives by ``alpha`` and negatives by ``1 - alpha``; ``pos_weight``
    multiplies the positive term as in :class:`torch.nn.BCEWithLogitsLoss`. ``"mean"`` is the
    plain mean over elements, like ``F.binary_cross_entropy_with_logits``.
    """
    n_labels = input.shape[-1] if input.dim() else 1
    alpha = label_alpha(alpha, n_labels, input)
    pos_w = neg_w = None
    if alpha is not None:
        pos_w, neg_w = alpha, 1.0 - alpha
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=input.dtype, device=input.device)
        pos_w = pos_weight if pos_w is None else pos_w * pos_weight
    if isinstance(kernel, float) and kernel == 0.0 and alpha is None:
        return F.binary_cross_entropy_with_logits(
            input, target, pos_weight=pos_weight, reduction=reduction
        )
    if isinstance(kernel, float):  # the focal loss' gamma: the fused sigmoid focal path
        loss = SigmoidFocalLoss.apply(input, target, kernel, pos_w, neg_w)
    else:
        loss = SigmoidTargetLoss.apply(input, target, pos_w, neg_w, kernel)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()
