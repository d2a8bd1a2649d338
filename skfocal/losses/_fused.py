r"""Loss and logit gradient in one forward pass, behind one thin autograd node.

Every loss here is computed by a *compute function* that returns the loss (per element or
already reduced) together with its gradient with respect to the logits, in closed form and in
few fused operations (:mod:`~skfocal.losses._softmax`, :mod:`~skfocal.losses._sigmoid`, the
asymmetric loss). :class:`FusedLoss` runs it inside an ``autograd.Function`` whose backward
only scales the stored gradient by the incoming one (or returns it as is when that is the
scalar 1 of ``loss.backward()`` on the CPU). Reductions happen inside the compute function, so
a ``"mean"`` adds no autograd node of its own. This is what keeps the losses close to
``F.cross_entropy`` at training batch sizes, where each eager operation and each autograd node
costs microseconds; the closed-form gradient is also what keeps them finite for every
``gamma >= 0`` (see ``_kernels``).
"""

from __future__ import annotations

import functools

import torch
from torch.autograd.function import once_differentiable

from .._fastpaths import function_apply

_LOW_PRECISION = (torch.float16, torch.bfloat16)


PLAIN_DTYPES = (torch.float32, torch.float64)  # computed in their own dtype, no cast


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs (their losses are computed in float32), else ``dtype``."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


@functools.lru_cache(maxsize=256)
def _const(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A cached 0-dim tensor: multiplying by it spares wrapping a Python number into a fresh
    tensor, which torch does on every call."""
    return torch.tensor(value, dtype=dtype, device=device)


def _as(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t.to(dtype)``, without the call's cost when the dtype already matches."""
    return t if t.dtype is dtype else t.to(dtype)


def _scaled_grad(grad, grad_output):
    ndim = grad_output.dim()
    if ndim == 0:
        # ``loss.backward()`` on a reduced loss: the scale is 1, known without a device sync
        # only on the CPU. Returning the saved tensor is safe: autograd copies it if the graph
        # (and with it this tensor) is retained.
        if grad_output.is_cpu and grad_output.item() == 1.0:
            return grad, None, None
    elif ndim != grad.dim():
        grad_output = grad_output.unsqueeze(1)
    return grad * grad_output, None, None


@once_differentiable
def _scaled_grad_once(grad, grad_output):
    """:func:`_scaled_grad` for a backward that is recorded (``create_graph=True``): its
    result has no derivative (a second backward raises, rather than leaving out the gradient's
    own dependence on the logits), and it reads no value (``vmap`` cannot)."""
    if grad_output.dim() not in (0, grad.dim()):
        grad_output = grad_output.unsqueeze(1)
    return grad * grad_output, None, None


class FusedLoss(torch.autograd.Function):
    """``compute(input, *args, need_grad)`` returns ``(loss, d loss / d input)``.

    ``args`` come as one tuple: ``Function.apply`` inspects each of its arguments.

    The gradient is stored and, in the backward, multiplied by the incoming gradient (unsqueezed
    at dimension 1 when the loss has one dimension fewer than the input: the class dimension of
    a per-element softmax loss). It has no derivative itself: a double backward raises.

    The gradient is an intermediate tensor (neither input nor output), kept as an attribute of
    ``ctx`` rather than packed by ``save_for_backward`` (which it needs for no double backward;
    ``bench_losses.py --only thresholds`` times the two). It is freed with the graph;
    saved-tensor hooks do not see it.
    """

    @staticmethod
    def forward(ctx, input, compute, args):
        loss, grad = compute(input, *args, True)
        ctx.grad = grad
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        if torch.is_grad_enabled():  # create_graph=True: mark the result as not differentiable
            return _scaled_grad_once(ctx.grad, grad_output)
        return _scaled_grad(ctx.grad, grad_output)


class TransformableFusedLoss(torch.autograd.Function):
    """:class:`FusedLoss` in the form ``torch.func`` transforms and ``torch.compile`` take.

    ``forward`` has no ``ctx`` (``setup_context`` saves what the backward needs), the
    gradient is a second, non-differentiable output, and vmap's rule is generated. Like
    :class:`FusedLoss` it has first derivatives in reverse mode only (``backward``,
    ``torch.func.grad`` / ``vjp`` / ``jacrev``): differentiating its backward raises, and
    forward mode (``jvp``, ``jacfwd``, ``hessian``) raises torch's "implement the jvp"
    error, rather than returning a second derivative that leaves out the gradient's own
    dependence on the logits. Used under functorch transforms and dynamo, and whenever the
    fast paths are off (:mod:`skfocal._fastpaths`); it computes the same values.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input, compute, args):
        return compute(input, *args, True)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, grad = output
        ctx.mark_non_differentiable(grad)
        ctx.save_for_backward(grad)

    @staticmethod
    def backward(ctx, grad_output, _grad_of_grad):
        (grad,) = ctx.saved_tensors
        if torch.is_grad_enabled():
            return _scaled_grad_once(grad, grad_output)
        if grad_output.dim() not in (0, grad.dim()):
            grad_output = grad_output.unsqueeze(1)
        return grad * grad_output, None, None  # no shortcut for 1: vmap cannot read values


def _apply_transformable(input, compute, args):
    return TransformableFusedLoss.apply(input, compute, args)[0]


def run(compute, input, *args):
    """Apply ``compute`` through an autograd Function when the logits need a gradient.

    :func:`skfocal._fastpaths.function_apply` gives :class:`FusedLoss`'s C++ entry point
    where that is safe (no functorch transform active, not compiling), else
    :class:`TransformableFusedLoss`.
    """
    if input.requires_grad and torch.is_grad_enabled():
        return function_apply(FusedLoss, _apply_transformable)(input, compute, args)
    return compute(input, *args, False)[0]
