r"""Loss and logit gradient in one forward pass, behind one thin autograd node.

Every loss here is computed by a *compute function* that returns the loss (per element or
already reduced) together with its gradient with respect to the logits, in closed form and in
few fused operations. :class:`FusedLoss` runs it inside an ``autograd.Function`` whose backward
only scales the stored gradient by the incoming one (or returns it as is when that is the
scalar 1 of ``loss.backward()`` on the CPU). Reductions happen inside the compute function, so
a ``"mean"`` adds no autograd node of its own. This is what keeps the losses close to
``F.cross_entropy`` at training batch sizes, where each eager operation and each autograd node
costs microseconds; the closed-form gradient is also what keeps them finite for every
``gamma >= 0`` (see ``_kernels``).

The forms here assume that the weights and targets need no gradient. When one of them does,
``_reduce`` switches to :func:`softmax_terms` / :func:`sigmoid_terms`: the unweighted
per-element terms with the same closed-form logit gradient, weighted by ordinary autograd
operations, so that every tensor gets its exact gradient.

Softmax (``ell = log p_t``, ``nq = expm1(ell) = p_t - 1``, ``D = -d loss/d ell``):

.. math::

    \frac{\partial \mathcal{L}}{\partial x} = D\,(\operatorname{softmax}(x) - e_t),

formed by writing ``nq`` into the target column of ``exp(log_softmax(x))`` (exact where
:math:`p_t \to 1`, unlike ``softmax - 1``) and one multiplication.

Sigmoid: the logits are stacked as ``[-x, x, -x]`` so that one ``sigmoid`` gives
``[q, p, q]`` (with ``p = sigmoid(x)``, ``q = 1 - p``, each exact) and one ``softplus`` gives
``[-log p, -log(1 - p)]`` (both exact: no ``softplus(-x) + x`` cancellation), and the positive
and negative terms then share every operation. Positive and negative parts are blended with
``torch.lerp``, which returns its end points exactly for hard labels: no ``a - y (a + b)``
cancellation in the loss or its gradient.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ._kernels import make_kernel

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _LOW_PRECISION else dtype


class FusedLoss(torch.autograd.Function):
    """``compute(input, *args, need_grad=True)`` returns ``(loss, d loss / d input)``.

    The gradient is stored and, in the backward, multiplied by the incoming gradient (unsqueezed
    at dimension 1 when the loss has one dimension fewer than the input: the class dimension of
    a per-element softmax loss).
    """

    @staticmethod
    def forward(ctx, input, compute, *args):
        loss, grad = compute(input, *args, need_grad=True)
        ctx.save_for_backward(grad)
        ctx.n_args = len(args)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        nones = (None,) * (ctx.n_args + 1)
        if grad_output.dim() == 0:
            # ``loss.backward()`` on a reduced loss: the scale is 1, known without a device sync
            # only on the CPU. Returning the saved tensor is safe: autograd copies it if the
            # graph (and with it this tensor) is retained.
            if grad_output.device.type == "cpu" and grad_output.item() == 1.0:
                return (grad, *nones)
        elif grad_output.dim() != grad.dim():
            grad_output = grad_output.unsqueeze(1)
        return (grad * grad_output, *nones)


def run(compute, input, *args):
    """Apply ``compute`` through :class:`FusedLoss` when the logits need a gradient."""
    if input.requires_grad and torch.is_grad_enabled():
        return FusedLoss.apply(input, compute, *args)
    return compute(input, *args, need_grad=False)[0]


# -- softmax ---------------------------------------------------------------------------------


def _softmax_terms(kernel, ell, p, nq, need_grad):
    """``(a, sa, b, sb)`` with per-element loss ``sa * a`` and ``-d loss/d ell = sb * b``.

    ``kernel`` is the focal ``gamma`` (a float: formulas written for few operations) or a
    generic kernel ``(ell, p, q, need_grad) -> (loss, d loss / d ell)`` from ``_kernels``. The
    signs ``sa, sb`` are Python numbers, folded by the caller into a multiplication it does
    anyway.
    """
    if isinstance(kernel, float):
        gamma = kernel
        if gamma == 2.0:  # loss = -q^2 ell, D = q (q - 2 p ell) = nq (nq + 2 p ell)
            a = nq * ell
            b = torch.addcmul(nq, p, ell, value=2.0).mul_(nq) if need_grad else None
            return a.mul_(nq), -1.0, b, 1.0
        if gamma == 1.0:  # loss = -q ell = nq ell, D = q - p ell = -(nq + p ell)
            b = torch.addcmul(nq, p, ell) if need_grad else None
            return nq * ell, 1.0, b, -1.0
        if gamma == 0.0:  # cross-entropy: loss = -ell, D = 1
            return ell, -1.0, (torch.ones_like(ell) if need_grad else None), 1.0
        if gamma > 1.0:  # loss = -q^gamma ell, D = q^(gamma - 1) (q - gamma p ell)
            q = nq.neg()
            mod = q.pow(gamma - 1.0)
            b = torch.addcmul(q, p, ell, value=-gamma).mul_(mod) if need_grad else None
            return mod.mul_(q).mul_(ell), -1.0, b, 1.0
        # 0 < gamma < 1: q^(gamma - 1) is infinite at p = 1; the kernel's ratio form is finite
        kernel = make_kernel("focal", gamma=gamma)
    loss, grad = kernel(ell, p, nq.neg(), need_grad)
    return loss, 1.0, grad, -1.0


def softmax_compute(input, target, kernel, weight, reduction, need_grad):
    """Softmax loss of ``input`` (N, C, ...) at ``target`` (N, 1, ...), and its gradient.

    ``target`` holds valid class indices (ignored entries replaced by any valid index and
    given weight 0). ``weight`` is None or the per-element weights (N, 1, ...) in the compute
    dtype; ``"mean"`` divides by their sum (by the element count when None). A zero sum gives
    a NaN mean, like ``F.cross_entropy``, but a zero gradient, where torch's is NaN or zero.
    """
    cdtype = _compute_dtype(input.dtype)
    if cdtype is input.dtype:
        logp = F.log_softmax(input, 1)
    else:
        logp = F.log_softmax(input, 1, dtype=cdtype)
    ell = logp.gather(1, target)
    p = ell.exp()
    nq = torch.expm1(ell)  # p - 1, exact as p -> 1
    a, sa, b, sb = _softmax_terms(kernel, ell, p, nq, need_grad)
    if weight is None:
        if reduction == "mean":
            n = a.numel()
            scale_loss = sa / n if n else float("nan")
            scale_grad = sb / n if n else 0.0
        else:
            scale_loss, scale_grad = sa, sb
        if reduction == "none":
            loss = a if scale_loss == 1.0 else a.mul_(scale_loss)
        else:
            loss = a.sum().mul_(scale_loss)
        if need_grad and scale_grad != 1.0:
            b = b.mul_(scale_grad)
    else:
        if reduction == "mean":
            den = weight.sum()
            loss = torch.vdot(a.reshape(-1), weight.reshape(-1)).mul_(sa).div_(den)
            if need_grad:
                b = b.mul_(weight).mul_(sb).div_(den.clamp_min(torch.finfo(cdtype).tiny))
        else:
            loss = a.mul_(weight)
            loss = loss.sum() if reduction == "sum" else loss
            if sa != 1.0:
                loss = loss.neg_()
            if need_grad:
                b = b.mul_(weight) if sb == 1.0 else b.mul_(weight).neg_()
    if reduction == "none":
        loss = loss.squeeze(1)
    loss = loss.to(input.dtype)
    if not need_grad:
        return loss, None
    # d loss / d x = D (softmax - onehot); the target column of softmax - onehot is p - 1 = nq
    grad = logp.exp_().scatter_(1, target, nq).mul_(b)
    return loss, grad.to(input.dtype)


def _softmax_terms_compute(input, target, kernel, need_grad):
    """Unweighted per-element softmax loss (N, ...) and its logit gradient."""
    return softmax_compute(input, target, kernel, None, "none", need_grad)


def softmax_terms(input, target, kernel):
    """Unweighted per-element loss (N, ...) with the closed-form logit gradient."""
    return run(_softmax_terms_compute, input, target, kernel)


# -- sigmoid ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _signs(ndim: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[-1, 1, -1]`` shaped (3, 1, ..., 1) to stack ``[-x, x, -x]`` with one multiplication."""
    return torch.tensor([-1.0, 1.0, -1.0], dtype=dtype, device=device).view((3,) + (1,) * ndim)


def pair_weights(pos_w, neg_w, ndim: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Signed weights ``[-a_pos, a_neg]`` of shape (2, 1..., *broadcast shape) for ``ndim``-D input.

    ``pos_w`` and ``neg_w`` are None (weight 1), Python floats or tensors broadcastable to the
    input; the result broadcasts against the stacked ``(2, *input.shape)`` terms.
    """
    pos = torch.as_tensor(1.0 if pos_w is None else pos_w, dtype=dtype, device=device)
    neg = torch.as_tensor(1.0 if neg_w is None else neg_w, dtype=dtype, device=device)
    pos, neg = torch.broadcast_tensors(pos, neg)
    if pos.dim() > ndim:
        raise ValueError(
            "alpha and pos_weight must be broadcastable to input: got weights of shape "
            f"{tuple(pos.shape)} for input with {ndim} dimension(s)."
        )
    return torch.stack((pos.neg(), neg)).view((2,) + (1,) * (ndim - pos.dim()) + tuple(pos.shape))


def _sigmoid_parts(x):
    """``[q, p, q]`` and ``[-log p, -log q]`` for ``p = sigmoid(x)``, in the compute dtype.

    ``softplus(z)`` returns ``z`` above its threshold, dropping ``log1p(exp(-z))``: below the
    float32 rounding of ``z`` from 20 on, but not below float64's before 37.
    """
    cdtype = _compute_dtype(x.dtype)
    xx = x * _signs(x.dim(), cdtype, x.device)  # [-x, x, -x] (and float32 for half precision)
    threshold = 40.0 if cdtype == torch.float64 else 20.0
    return torch.sigmoid(xx), F.softplus(xx[:2], threshold=threshold)


def sigmoid_compute(input, target, kernel, weights, reduction, need_grad):
    r"""Sigmoid loss ``lerp(a_neg L_neg, a_pos L_pos, y)`` and its gradient.

    ``weights`` are the signed pair weights ``[-a_pos, a_neg]`` of :func:`pair_weights` (None
    for ``[-1, 1]``). ``kernel`` is the focal ``gamma`` (float) or a generic kernel. With
    :math:`s_\pm = -\log p, -\log(1-p)`, the focal terms and their derivatives are

    .. math::

        L_+ = q^\gamma s_+, \quad \partial_x L_+ = -q^\gamma (q + \gamma\,p\,s_+), \qquad
        L_- = p^\gamma s_-, \quad \partial_x L_- = p^\gamma (p + \gamma\,q\,s_-).
    """
    pqq, s = _sigmoid_parts(input)
    qp, pq = pqq[:2], pqq[1:]  # [q, p] and [p, q], views
    y = target if target.dtype is pqq.dtype else target.to(pqq.dtype)
    if weights is None:
        weights = _signs(input.dim(), pqq.dtype, pqq.device)[:2]
    if reduction == "mean":
        n = input.numel()
        weights = weights * (1.0 / n if n else float("nan"))
    if isinstance(kernel, float):
        gamma = kernel
        if gamma == 0.0:
            mw = weights
        elif gamma == 1.0:
            mw = qp * weights
        elif gamma == 2.0:
            mw = torch.mul(qp, qp).mul_(weights)
        else:
            mw = qp.pow(gamma).mul_(weights)
        grad = None
        if need_grad:  # [-a+ q^g (q + g p s+), a- p^g (p + g q s-)] = [d L+, d L-]
            inner = torch.addcmul(qp, pq, s, value=gamma) if gamma else qp
            g = inner.mul_(mw) if gamma else inner * mw
            grad = torch.lerp(g[1], g[0], y)
        terms = s.mul_(mw)  # [-a+ L+, a- L-]
        loss = torch.lerp(terms[1], terms[0].neg_(), y)
    else:
        ell = s.neg()  # [log p, log q]
        k, dk = kernel(ell, pq, qp, need_grad)  # pairs (ell, p, q) for positives, negatives
        grad = None
        if need_grad:  # d log p / dx = q, d log q / dx = -p
            g = dk.mul_(qp).mul_(weights)  # [-a+ dL+/dx, -a- dL-/dx]
            grad = torch.lerp(g[1], g[0], y).neg_()
        terms = k.mul_(weights)
        loss = torch.lerp(terms[1], terms[0].neg_(), y)
    if reduction != "none":
        loss = loss.sum()
    loss = loss.to(input.dtype)
    return loss, (None if grad is None else grad.to(input.dtype))


def _sigmoid_terms_compute(input, kernel, need_grad):
    """Unweighted ``[L_pos, L_neg]`` (2, ...) and their logit derivatives, for autograd."""
    pqq, s = _sigmoid_parts(input)
    qp, pq = pqq[:2], pqq[1:]
    if isinstance(kernel, float):
        gamma = kernel
        mod = qp.pow(gamma) if gamma not in (0.0, 1.0) else (qp if gamma else None)
        terms = s * mod if mod is not None else s.clone()
        grad = None
        if need_grad:
            inner = torch.addcmul(qp, pq, s, value=gamma)
            grad = inner.mul_(mod) if mod is not None else inner
            grad[0].neg_()
    else:
        terms, dk = kernel(s.neg(), pq, qp, need_grad)
        grad = None
        if need_grad:
            grad = dk.mul_(qp)
            grad[1].neg_()
    return terms.to(input.dtype), (None if grad is None else grad.to(input.dtype))


class SigmoidTerms(torch.autograd.Function):
    """Stacked unweighted terms ``[L_pos, L_neg]`` of a sigmoid loss, closed-form backward."""

    @staticmethod
    def forward(ctx, input, kernel):
        terms, grad = _sigmoid_terms_compute(input, kernel, need_grad=True)
        ctx.save_for_backward(grad)
        return terms

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return (grad * grad_output).sum(0), None


def sigmoid_terms(input, kernel):
    """``[L_pos, L_neg]`` of shape (2, *input.shape), differentiable w.r.t. ``input``."""
    if input.requires_grad and torch.is_grad_enabled():
        return SigmoidTerms.apply(input, kernel)
    return _sigmoid_terms_compute(input, kernel, need_grad=False)[0]


# -- the per-element Functions of earlier versions, kept for code that builds on them ---------


class SoftmaxTargetLoss(torch.autograd.Function):
    """``weight_t * kernel(log_softmax(input)[target])`` per element (``weight_t`` constant)."""

    @staticmethod
    def forward(ctx, input, target, weight_t, kernel):
        w = None if weight_t is None else weight_t.unsqueeze(1).to(_compute_dtype(input.dtype))
        need_grad = ctx.needs_input_grad[0]
        loss, grad = softmax_compute(input, target.unsqueeze(1), kernel, w, "none", need_grad)
        if need_grad:
            ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output.unsqueeze(1), None, None, None


class SigmoidTargetLoss(torch.autograd.Function):
    """``pos_w * y * kernel(log p) + neg_w * (1 - y) * kernel(log(1 - p))`` per element."""

    @staticmethod
    def forward(ctx, input, target, pos_w, neg_w, kernel):
        weights = pair_weights(pos_w, neg_w, input.dim(), _compute_dtype(input.dtype), input.device)
        need_grad = ctx.needs_input_grad[0]
        loss, grad = sigmoid_compute(input, target, kernel, weights, "none", need_grad)
        if need_grad:
            ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None


class SigmoidFocalLoss(torch.autograd.Function):
    """Per-element sigmoid focal loss (``SigmoidTargetLoss`` with the focal ``gamma``)."""

    @staticmethod
    def forward(ctx, input, target, gamma, pos_w, neg_w):
        weights = pair_weights(pos_w, neg_w, input.dim(), _compute_dtype(input.dtype), input.device)
        need_grad = ctx.needs_input_grad[0]
        loss, grad = sigmoid_compute(input, target, float(gamma), weights, "none", need_grad)
        if need_grad:
            ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None
