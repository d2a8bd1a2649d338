"""Argument validation shared by every loss.

Every check raises before any computation and names the parameter, the allowed values and the
value that was given, so that a bad call never surfaces as a shape error deep inside torch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
    return reduction


def _check_real(name: str, value, allowed: str) -> float:
    if type(value) is float and value == value:  # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number ({allowed}), got {value!r}.")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return value


def check_gamma(gamma) -> float:
    gamma = _check_real("gamma", gamma, "a finite float >= 0")
    if not (0.0 <= gamma < math.inf):
        raise ValueError(f"gamma must be a finite float >= 0, got {gamma!r}.")
    return gamma


def check_margin(margin) -> float:
    margin = _check_real("margin", margin, "a float in the open interval (0, 1)")
    if not 0.0 < margin < 1.0:
        raise ValueError(f"margin must be a float in the open interval (0, 1), got {margin!r}.")
    return margin


def check_softness(softness) -> float | None:
    if softness is None:
        return None
    softness = _check_real("softness", softness, "None or a finite float >= 0")
    if not (0.0 <= softness < math.inf):
        raise ValueError(f"softness must be None or a finite float >= 0, got {softness!r}.")
    return softness


def check_alpha(alpha) -> float | torch.Tensor | None:
    """Validate ``alpha`` without knowing the number of classes yet.

    Returns ``None``, a float in [0, 1], or a 1-D floating tensor of non-negative finite
    weights. Value checks on tensors that live on an accelerator are skipped to avoid a device
    synchronisation on every call; the modules check them once at construction.
    """
    if alpha is None:
        return None
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        value = float(alpha)
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                "alpha must be None, a float in [0, 1] or a sequence of per-class weights, "
                f"got {alpha!r}."
            )
        return value
    if isinstance(alpha, torch.Tensor):
        tensor = alpha
    elif isinstance(alpha, Sequence) and not isinstance(alpha, str) or hasattr(alpha, "__array__"):
        try:
            tensor = torch.as_tensor(alpha, dtype=torch.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                "alpha must be None, a float in [0, 1] or a sequence of per-class weights, "
                f"got {alpha!r}."
            ) from exc
    else:
        raise TypeError(
            "alpha must be None, a float in [0, 1] or a sequence of per-class weights, "
            f"got {alpha!r}."
        )
    if tensor.dim() == 0:
        return check_alpha(float(tensor))
    if tensor.dim() != 1:
        raise ValueError(
            "alpha must be one-dimensional (one weight per class), "
            f"got shape {tuple(tensor.shape)}."
        )
    if not tensor.is_floating_point():
        tensor = tensor.double()
    if tensor.device.type == "cpu":
        if not bool(torch.isfinite(tensor).all()) or bool((tensor < 0).any()):
            raise ValueError(
                f"alpha must hold finite, non-negative per-class weights, got {tensor.tolist()}."
            )
    return tensor


def class_alpha(alpha, n_classes: int, like: torch.Tensor) -> torch.Tensor | None:
    """Turn a validated ``alpha`` into a length-``n_classes`` tensor on ``like``'s device."""
    if alpha is None:
        return None
    if isinstance(alpha, float):
        if n_classes != 2:
            raise ValueError(
                "A scalar alpha is the two-class shorthand (alpha for class 1, 1 - alpha for "
                f"class 0); with {n_classes} classes pass one weight per class, "
                f"got alpha={alpha!r}."
            )
        return torch.tensor([1.0 - alpha, alpha], dtype=like.dtype, device=like.device)
    if alpha.numel() != n_classes:
        raise ValueError(
            f"alpha must have one weight per class: expected length {n_classes}, "
            f"got length {alpha.numel()}."
        )
    return alpha.to(device=like.device, dtype=like.dtype)


def label_alpha(alpha, n_labels: int, like: torch.Tensor):
    """Per-label positive weight ``alpha`` for sigmoid losses (scalar or length ``n_labels``)."""
    if alpha is None or isinstance(alpha, float):
        return alpha
    if alpha.device.type == "cpu" and bool((alpha > 1).any()):
        raise ValueError(
            "alpha for a sigmoid loss weights positives by alpha and negatives by 1 - alpha, "
            f"so each entry must lie in [0, 1], got {alpha.tolist()}."
        )
    if alpha.numel() != n_labels:
        raise ValueError(
            "alpha must be a float or have one entry per label (the last dimension of input): "
            f"expected length {n_labels}, got length {alpha.numel()}."
        )
    return alpha.to(device=like.device, dtype=like.dtype)


def check_multiclass_shapes(input: torch.Tensor, target: torch.Tensor, name: str):
    """Normalise ``(C,)``/``()`` to ``(1, C)``/``(1,)`` and check shapes like F.cross_entropy."""
    if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"{name} expects torch tensors for input and target, got "
            f"{type(input).__name__} and {type(target).__name__}."
        )
    if not input.is_floating_point():
        raise TypeError(f"{name} expects floating-point logits as input, got dtype {input.dtype}.")
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"{name} expects integer class indices as target (like F.cross_entropy), "
            f"got dtype {target.dtype}."
        )
    if input.dim() == 0:
        raise ValueError(f"{name} expects input of shape (C,), (N, C) or (N, C, d1, ...), got ().")
    if input.dim() == 1:
        if target.dim() != 0:
            raise ValueError(
                f"{name}: for input of shape (C,) = {tuple(input.shape)} the target must be a "
                f"scalar class index, got shape {tuple(target.shape)}."
            )
        return input.unsqueeze(0), target.unsqueeze(0).long(), True
    if input.dim() == 2 and target.dim() == 1 and input.shape[0] == target.shape[0]:
        pass  # the common case, checked without building tuples
    elif tuple(target.shape) != (input.shape[0],) + tuple(input.shape[2:]):
        expected = (input.shape[0],) + tuple(input.shape[2:])
        raise ValueError(
            f"{name}: target must have shape (N, d1, ...) = {expected} for input of shape "
            f"(N, C, d1, ...) = {tuple(input.shape)}, got target of shape {tuple(target.shape)}."
        )
    return input, (target if target.dtype is torch.int64 else target.long()), False


def check_binary_shapes(input: torch.Tensor, target: torch.Tensor, name: str):
    if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"{name} expects torch tensors for input and target, got "
            f"{type(input).__name__} and {type(target).__name__}."
        )
    if not input.is_floating_point():
        raise TypeError(f"{name} expects floating-point logits as input, got dtype {input.dtype}.")
    if input.shape != target.shape:
        hint = ""
        if input.dim() == target.dim() + 1 and input.shape[-1] == 1:
            hint = " (a single-logit model's output of shape (N, 1) needs input.squeeze(-1))"
        raise ValueError(
            f"{name}: input and target must have the same shape, got input of shape "
            f"{tuple(input.shape)} and target of shape {tuple(target.shape)}{hint}."
        )
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    return input, target


def check_binary_target_values(target: torch.Tensor, name: str) -> bool:
    """Refuse labels outside [0, 1] (which make the loss negative); CPU tensors only.

    Returns whether every label is exactly 0 or 1 (hard labels, for which the losses take
    their signed-logit form), False for soft labels and where the values were not read.

    On an accelerator the values are not read, which would synchronise the device on every
    call; the documentation states the range instead.
    """
    if not target.is_cpu or not target.numel():
        return False
    values = target.detach() if target.requires_grad else target
    # three operations, no read-back of a scalar: c = clamp(y, 0, 1) equals c * c only for
    # y in {0, 1} (inf clamps to 1, NaN stays NaN: both fail)
    clamped = values.clamp(0.0, 1.0)
    if torch.equal(clamped * clamped, values):
        return True
    if clamped.equal(values):
        return False
    low, high = torch.aminmax(values)  # NaN fails the tests above as well: name the value
    low, high = low.item(), high.item()
    bad = high if low >= 0.0 else low
    raise ValueError(f"{name}: target must hold labels in [0, 1], got {bad}.")
