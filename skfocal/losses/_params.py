"""Validation of the hyperparameters of the LDAM, logit-adjusted, poly-1 and asymmetric losses.

Like ``_checks`` (whose helpers cover ``reduction``, ``alpha`` and the shapes), every check
raises before any computation and names the parameter, the allowed values and the value given.
Value checks on tensors that live on an accelerator are skipped to avoid a device
synchronisation on every call; the modules check them once at construction (on a CPU copy).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from ._checks import label_alpha


def check_float(name: str, value, allowed: str, ok) -> float:
    """``value`` as a float; ``ok(value)`` must hold (``allowed`` describes it in words)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number ({allowed}), got {value!r}.")
    value = float(value)
    if math.isnan(value) or not ok(value):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return value


def check_nonnegative(name: str, value) -> float:
    return check_float(name, value, "a finite float >= 0", lambda v: 0.0 <= v < math.inf)


def check_positive(name: str, value) -> float:
    return check_float(name, value, "a finite float > 0", lambda v: 0.0 < v < math.inf)


def check_epsilon(epsilon) -> float:
    # below -1 the poly-1 loss increases with p_t near p_t = 1 (see _poly.py)
    return check_float("epsilon", epsilon, "a finite float >= -1", lambda v: -1.0 <= v < math.inf)


def check_clip(clip) -> float:
    return check_float("clip", clip, "a float in [0, 1)", lambda v: 0.0 <= v < 1.0)


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


def sigmoid_weights(alpha, pos_weight, like: torch.Tensor):
    """Positive and negative weights (or None) of a sigmoid loss, as in ``_reduce.sigmoid_loss``.

    ``alpha`` (validated by ``check_alpha``) weights positives by ``alpha`` and negatives by
    ``1 - alpha``; ``pos_weight`` multiplies the positive term.
    """
    n_labels = like.shape[-1] if like.dim() else 1
    alpha = label_alpha(alpha, n_labels, like)
    pos_w = neg_w = None
    if alpha is not None:
        pos_w, neg_w = alpha, 1.0 - alpha
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=like.dtype, device=like.device)
        pos_w = pos_weight if pos_w is None else pos_w * pos_weight
    return pos_w, neg_w


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs (their losses are computed in float32), else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def reduce_elementwise(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """The sigmoid losses' reductions: ``"mean"`` is the plain mean over elements."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()
