"""Target handling, weighting and reductions shared by the softmax and sigmoid losses.

Both entry points choose between two evaluations of the same formulas:

* the fused path (``_softmax.softmax_compute`` / ``_sigmoid.sigmoid_compute``): loss, reduction and
  logit gradient in one pass behind one autograd node, used whenever only the logits need a
  gradient (the training case);
* the differentiable path: the unweighted per-element terms (closed-form logit gradient) are
  weighted and reduced by ordinary autograd operations, used when the target, ``alpha`` or
  ``pos_weight`` requires a gradient, so that each of them gets its exact gradient.

Data checks that read values (class-index range, label range) run only for CPU tensors, where
they cost a microsecond and no device synchronisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import class_alpha, label_alpha
from ._fused import PLAIN_DTYPES, compute_dtype, run
from ._sigmoid import (
    _sigmoid_signed,
    _sigmoid_signed_blocks,
    _sigmoid_stacked,
    pair_constants,
    sigmoid_compute,
    sigmoid_terms,
    signed_constants,
    stacks,
)
from ._softmax import softmax_compute, softmax_terms


def _needs_grad(a, b=None, c=None) -> bool:
    """Whether autograd is on and one of the (tensor or other) arguments requires grad."""
    return torch.is_grad_enabled() and (
        getattr(a, "requires_grad", False)
        or getattr(b, "requires_grad", False)
        or getattr(c, "requires_grad", False)
    )


def _check_class_range(target, n_classes: int, ignore_index: int) -> bool:
    """Raise on an index outside ``[0, C)`` (CPU only); return True if no entry is ignored."""
    if not target.is_cpu:
        return False  # unknown without a device sync: take the masking path
    if not target.numel():
        return True
    low, high = torch.aminmax(target)
    low, high = low.item(), high.item()
    if low >= 0 and high < n_classes:
        if 0 <= ignore_index < n_classes:
            return not bool((target == ignore_index).any())
        return True
    safe = torch.where(target != ignore_index, target, 0)
    low, high = (int(v) for v in torch.aminmax(safe))
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"target must hold class indices in [0, {n_classes - 1}] (or ignore_index="
            f"{ignore_index}), got {bad}."
        )
    return False


def _masked_mean(total, den):
    """``total / den``, NaN for ``den == 0`` (like ``F.cross_entropy``) with a finite gradient."""
    ratio = total / den.clamp_min(torch.finfo(den.dtype).tiny)
    return torch.where(den > 0, ratio, torch.full_like(ratio, float("nan")))


def softmax_loss(input, target, alpha, reduction, ignore_index, kernel):
    """Apply a softmax kernel with ``F.cross_entropy``'s weighting, ignoring and reductions.

    ``reduction="mean"`` divides by the summed weights of the non-ignored targets, so that a
    kernel equal to cross-entropy reproduces ``F.cross_entropy(weight=alpha)`` exactly; when
    that sum is zero (every target ignored) the mean is NaN, as in torch, and the gradient is
    zero. ``kernel`` is a kernel ``(ell, p, q, need_grad) -> (loss, d loss / d ell)``
    (``_kernels.bind_focal``, ``bind_margin``, ...), a float (the focal ``gamma``, computed by
    fused formulas) or None: cross-entropy, for which torch's fused ``F.cross_entropy`` is
    called.
    """
    n_classes = input.shape[1]
    weights = class_alpha(alpha, n_classes, input)
    none_ignored = _check_class_range(target, n_classes, ignore_index)
    differentiable = weights is not None and _needs_grad(weights)
    if kernel is None:
        if not differentiable:
            return F.cross_entropy(
                input, target, weight=weights, ignore_index=ignore_index, reduction=reduction
            )
        kernel = 0.0
    cdtype = compute_dtype(input.dtype)
    if none_ignored:
        index = target
        w = None if weights is None else weights.to(cdtype).take(index)
    else:
        valid = target != ignore_index
        index = torch.where(valid, target, 0)
        w = valid.to(cdtype) if weights is None else weights.to(cdtype).take(index) * valid
    if not differentiable:
        return run(softmax_compute, input, index, kernel, w, reduction)
    loss = softmax_terms(input, index, kernel) * w
    if reduction == "none":
        return loss
    total = loss.sum()
    return total if reduction == "sum" else _masked_mean(total, w.sum())


def sigmoid_weights(alpha, pos_weight, input):
    """Positive and negative weights ``(pos_w, neg_w)`` (None, float or tensor) of a sigmoid loss.

    ``alpha`` weights positives by ``alpha`` and negatives by ``1 - alpha``; ``pos_weight``
    multiplies the positive term as in :class:`torch.nn.BCEWithLogitsLoss`.
    """
    n_labels = input.shape[-1] if input.dim() else 1
    alpha = label_alpha(alpha, n_labels, input)
    pos_w = neg_w = None
    if alpha is not None:
        pos_w, neg_w = alpha, 1.0 - alpha
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=input.dtype, device=input.device)
        pos_w = pos_weight if pos_w is None else pos_w * pos_weight
    if isinstance(pos_w, torch.Tensor) and pos_w.dim() > input.dim():
        raise ValueError(
            "alpha and pos_weight must be broadcastable to input: got weights of shape "
            f"{tuple(pos_w.shape)} for input with {input.dim()} dimension(s)."
        )
    return pos_w, neg_w


def sigmoid_apply(
    input, target, kernel, reduction, pos_w, neg_w, consts=None, hard=False, signed=None
):
    """Sigmoid loss with the weights of :func:`sigmoid_weights` (``consts``: their
    ``_sigmoid.pair_constants`` for this input, or None to form them when needed).

    ``hard``: the labels were checked to be exactly 0 or 1 (and to have the input's shape), so that
    the focal loss takes the signed-logit form ``_sigmoid._sigmoid_signed`` (``signed``:
    its ``signed_constants``, or None to form them).
    """
    if torch.is_grad_enabled() and (
        target.requires_grad
        or getattr(pos_w, "requires_grad", False)
        or getattr(neg_w, "requires_grad", False)
    ):
        terms = sigmoid_terms(input, kernel)  # [L_pos, L_neg], unweighted
        pos, neg = terms[0], terms[1]
        pos = pos if pos_w is None else pos * pos_w
        neg = neg if neg_w is None else neg * neg_w
        loss = torch.lerp(neg, pos, target)
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.mean()
    if kernel == 0.0 and neg_w is None and isinstance(kernel, float):
        return F.binary_cross_entropy_with_logits(
            input, target, pos_weight=pos_w, reduction=reduction
        )
    plain = type(kernel) is float and input.dtype in PLAIN_DTYPES and input.numel()
    if plain and hard:  # the signed-logit form; large CPU inputs block by block
        if target.dtype is not input.dtype:
            target = target.to(input.dtype)
        if signed is None:
            scale = 1.0 / input.numel() if reduction == "mean" else 1.0
            signed = signed_constants(pos_w, neg_w, input.dtype, input.device, scale)
        compute = _sigmoid_signed if stacks(input) else _sigmoid_signed_blocks
        return run(compute, input, target, kernel, signed, reduction != "none")
    if plain and stacks(input):
        # sigmoid_compute's stacked form, without its dispatch: the plain small-input case
        if target.dtype is not input.dtype:
            target = target.to(input.dtype)
        scale = 1.0 / input.numel() if reduction == "mean" else 1.0
        if consts is None:
            consts = pair_constants(pos_w, neg_w, input.dim(), input.dtype, input.device, scale)
        return run(_sigmoid_stacked, input, target, kernel, consts, reduction != "none")
    return run(sigmoid_compute, input, target, kernel, pos_w, neg_w, reduction, consts)


def sigmoid_loss(input, target, alpha, pos_weight, reduction, kernel, hard=False):
    """Apply a sigmoid kernel to positives and negatives with alpha and ``pos_weight``.

    ``kernel`` is a kernel ``(ell, p, q, need_grad) -> (loss, d loss / d ell)`` (see
    :func:`softmax_loss`), or a float: the focal ``gamma``, for which fused formulas are used.
    ``gamma=0`` without ``alpha`` *is* binary cross-entropy: torch's fused
    ``binary_cross_entropy_with_logits`` is used.

    ``alpha`` weights positives by ``alpha`` and negatives by ``1 - alpha``; ``pos_weight``
    multiplies the positive term as in :class:`torch.nn.BCEWithLogitsLoss`. ``"mean"`` is the
    plain mean over elements, like ``F.binary_cross_entropy_with_logits``. ``hard``: see
    :func:`sigmoid_apply`.
    """
    if alpha is None and pos_weight is None:
        return sigmoid_apply(input, target, kernel, reduction, None, None, hard=hard)
    pos_w, neg_w = sigmoid_weights(alpha, pos_weight, input)
    return sigmoid_apply(input, target, kernel, reduction, pos_w, neg_w, hard=hard)


def reduce_elementwise(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """The sigmoid losses' reductions: ``"mean"`` is the plain mean over elements."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()
