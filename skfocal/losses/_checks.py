"""Argument validation shared by every loss.

Every check raises before any computation and names the parameter, the allowed values and the
value that was given, so that a bad call never surfaces as a shape error deep inside torch.
Value checks on tensors that live on an accelerator are skipped to avoid a device
synchronisation on every call; the modules check them once at construction (on a CPU copy,
:func:`cpu_checked`). Every real-number hyperparameter goes through :func:`check_float`.
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


def check_float(name: str, value, allowed: str, ok) -> float:
    """``value`` as a float; ``ok(value)`` must hold (``allowed`` describes it in words).

    A value that is no real number (or a bool) raises ``TypeError``, NaN and a value outside
    ``ok`` a ``ValueError``.
    """
    if type(value) is not float:  # a float skips the ABC check: the common case
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number ({allowed}), got {value!r}.")
        value = float(value)
    if value != value or not ok(value):  # NaN fails
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return value


def _finite_nonnegative(value: float) -> bool:
    return 0.0 <= value < math.inf


def _finite_positive(value: float) -> bool:
    return 0.0 < value < math.inf


def _open_unit(value: float) -> bool:
    return 0.0 < value < 1.0


def _half_open_unit(value: float) -> bool:
    return 0.0 <= value < 1.0


def check_gamma(gamma) -> float:
    return check_float("gamma", gamma, "a finite float >= 0", _finite_nonnegative)


def check_margin(margin) -> float:
    return check_float("margin", margin, "a float in the open interval (0, 1)", _open_unit)


def check_softness(softness) -> float | None:
    if softness is None:
        return None
    return check_float("softness", softness, "None or a finite float >= 0", _finite_nonnegative)


def check_nonnegative(name: str, value) -> float:
    return check_float(name, value, "a finite float >= 0", _finite_nonnegative)


def check_positive(name: str, value) -> float:
    return check_float(name, value, "a finite float > 0", _finite_positive)


def check_epsilon(epsilon) -> float:
    # below -1 the poly-1 loss increases with p_t near p_t = 1 (see _poly.py)
    return check_float("epsilon", epsilon, "a finite float >= -1", lambda v: -1.0 <= v < math.inf)


def check_unit(name: str, value) -> float:
    """A float in [0, 1) (``clip``, ``beta`` of the class-balanced weights, ...)."""
    return check_float(name, value, "a float in [0, 1)", _half_open_unit)


def check_clip(clip) -> float:
    return check_unit("clip", clip)


def as_vector(name: str, value, allowed: str, *, ndim=(1,)) -> torch.Tensor:
    """A floating tensor from a sequence, array or tensor (a float becomes a 0-d tensor)."""
    if isinstance(value, torch.Tensor):
        tensor = value
    elif (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        or isinstance(value, Sequence)
        and not isinstance(value, str)
        or hasattr(value, "__array__")
    ):
        try:
            tensor = torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be {allowed}, got {value!r}.") from exc
    else:
        raise TypeError(f"{name} must be {allowed}, got {value!r}.")
    if tensor.dim() not in ndim or tensor.is_complex() or tensor.dtype == torch.bool:
        shown = tuple(tensor.shape) if tensor.dim() else value
        raise ValueError(f"{name} must be {allowed}, got {shown!r}.")
    if not tensor.is_floating_point():
        tensor = tensor.double()
    return tensor


def check_values(name: str, tensor: torch.Tensor, allowed: str, ok) -> torch.Tensor:
    """Check ``ok(tensor).all()`` (and finiteness) for CPU tensors only."""
    if tensor.device.type == "cpu" and tensor.numel():
        if not bool(torch.isfinite(tensor).all()) or not bool(ok(tensor).all()):
            raise ValueError(f"{name} must be {allowed}, got {tensor.tolist()}.")
    return tensor


def check_margins(margins, *, binary: bool = False) -> torch.Tensor:
    """Per-class LDAM margins: finite, >= 0; shape (C,), or (2,)/(2, L) for the binary form."""
    if binary:
        allowed = (
            "finite margins >= 0 of shape (2,) (negative class, positive class) or (2, L) "
            "(one pair per label)"
        )
        tensor = as_vector("margins", margins, allowed, ndim=(1, 2))
        if tensor.shape[0] != 2:
            raise ValueError(f"margins must be {allowed}, got shape {tuple(tensor.shape)}.")
    else:
        allowed = "a one-dimensional sequence of finite per-class margins >= 0"
        tensor = as_vector("margins", margins, allowed)
    return check_values("margins", tensor, allowed, lambda t: t >= 0)


def check_prior(prior, *, binary: bool = False) -> torch.Tensor:
    """Class prior: positive frequencies (C,), or positive rates in (0, 1) for the binary form."""
    if binary:
        allowed = "a float or a sequence of per-label positive rates in the open interval (0, 1)"
        tensor = as_vector("prior", prior, allowed, ndim=(0, 1))
        return check_values("prior", tensor, allowed, lambda t: (t > 0) & (t < 1))
    allowed = "a one-dimensional sequence of positive class frequencies (or counts)"
    tensor = as_vector("prior", prior, allowed)
    return check_values("prior", tensor, allowed, lambda t: t > 0)


def check_class_counts(class_counts) -> torch.Tensor:
    allowed = "a one-dimensional sequence of positive, finite class counts"
    tensor = as_vector("class_counts", class_counts, allowed).to(torch.float64)
    if tensor.numel() == 0:
        raise ValueError(f"class_counts must be {allowed}, got [].")
    return check_values("class_counts", tensor.cpu(), allowed, lambda t: t > 0)


def cpu_checked(check, value, **kwargs):
    """Run ``check`` on a CPU copy of a tensor (for the modules: once, at construction)."""
    if isinstance(value, torch.Tensor) and value.device.type != "cpu":
        check(value.detach().cpu(), **kwargs)
    return check(value, **kwargs)


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
