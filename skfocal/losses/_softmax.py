r"""The fused softmax losses: loss and logit gradient in one pass, per element or reduced.

The compute function of :func:`~skfocal.losses._fused.run` for softmax outputs
(:func:`softmax_compute`), the focal ``gamma`` in fused formulas (a float) or any kernel of
:mod:`~skfocal.losses._kernels`. With ``ell = log p_t``, ``nq = expm1(ell) = p_t - 1`` and
``D = -d loss/d ell``:

.. math::

    \frac{\partial \mathcal{L}}{\partial x} = D\,(\operatorname{softmax}(x) - e_t),

formed by writing ``nq`` into the target column of ``exp(log_softmax(x))`` (exact where
:math:`p_t \to 1`, unlike ``softmax - 1``) and one multiplication.

The forms here assume that the weights and targets need no gradient. When one of them does,
``_reduce`` switches to :func:`softmax_terms`: the unweighted per-element terms with the same
closed-form logit gradient, weighted by ordinary autograd operations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._fused import _as, _const, compute_dtype, run
from ._kernels import bind_focal


def log_softmax(input, cdtype, dim=1):
    """``F.log_softmax(input, dim)`` in ``cdtype``.

    On a CPU, torch's kernel walks the rows one by one when there are 4 to 15 classes (and is
    vectorised from 16 on); there the same arithmetic -- ``z = x - max``,
    ``z - log(sum(exp(z)))`` -- in four vectorised operations is faster, by more the more
    classes (``python benchmarks/bench_losses.py --only thresholds``; the numbers are in
    ``benchmarks/README.md``). Other sizes and devices use the kernel.
    """
    if input.is_cpu and input.dim() >= 2 and 4 <= input.shape[dim] < 16:
        x = input if input.dtype is cdtype else input.to(cdtype)
        z = x - x.amax(dim, keepdim=True)
        return z.sub_(z.exp().sum(dim, keepdim=True).log_())
    if input.dtype is cdtype:
        return F.log_softmax(input, dim)
    return F.log_softmax(input, dim, dtype=cdtype)


def _softmax_terms(kernel, ell, p, nq, need_grad):
    """``(a, f, sa, b, sb)``: per-element loss ``sa * a * f`` (``f`` None: 1) and
    ``-d loss / d ell = sb * b``.

    ``kernel`` is the focal ``gamma`` (a float: formulas written for few operations) or a
    generic kernel ``(ell, p, q, need_grad) -> (loss, d loss / d ell)`` from ``_kernels``. The
    loss comes as two factors so that a reduction is one ``vdot``, and with Python signs
    ``sa, sb`` that the caller folds into a multiplication it does anyway.
    """
    if isinstance(kernel, float):
        gamma = kernel
        if gamma == 2.0:  # loss = -q^2 ell = -(nq ell) nq, D = q (q - 2 p ell) = nq (nq + 2 p ell)
            b = torch.addcmul(nq, p, ell, value=2.0).mul_(nq) if need_grad else None
            return nq * ell, nq, -1.0, b, 1.0
        if gamma == 1.0:  # loss = -q ell = nq ell, D = q - p ell = -(nq + p ell)
            b = torch.addcmul(nq, p, ell) if need_grad else None
            return nq, ell, 1.0, b, -1.0
        if gamma == 0.0:  # cross-entropy: loss = -ell, D = 1
            return ell.neg(), None, 1.0, (torch.ones_like(ell) if need_grad else None), 1.0
        if gamma > 1.0:  # loss = -q^gamma ell, D = q^(gamma - 1) (q - gamma p ell)
            q = nq.neg()
            mod = q.pow(gamma - 1.0)
            b = torch.addcmul(q, p, ell, value=-gamma).mul_(mod) if need_grad else None
            return mod.mul_(q), ell, -1.0, b, 1.0
        # 0 < gamma < 1: q^(gamma - 1) is infinite at p = 1; the kernel's ratio form is finite
        kernel = bind_focal(gamma)
    loss, grad = kernel(ell, p, nq.neg(), need_grad)
    return loss, None, 1.0, grad, -1.0


def _flat(t):
    return t if t.dim() == 1 else t.reshape(-1)


def softmax_compute(input, target, kernel, weight, reduction, need_grad):
    """Softmax loss of ``input`` (N, C, ...) at ``target`` (N, ...), and its gradient.

    ``target`` holds valid class indices (ignored entries replaced by any valid index and
    given weight 0). ``weight`` is None or the per-element weights (N, ...) in the compute
    dtype; ``"mean"`` divides by their sum (by the element count when None). A zero sum gives
    a NaN mean, like ``F.cross_entropy``, but a zero gradient, where torch's is NaN or zero.
    """
    logp = log_softmax(input, compute_dtype(input.dtype))
    cdtype = logp.dtype
    index = target.unsqueeze(1)
    ell = logp.gather(1, index).squeeze(1)  # every result below is a fresh tensor, not a view
    p = ell.exp()
    nq = torch.expm1(ell)  # p - 1, exact as p -> 1
    a, f, sa, b, sb = _softmax_terms(kernel, ell, p, nq, need_grad)
    if weight is None and reduction != "none":
        scale_loss, scale_grad = sa, sb
        if reduction == "mean":
            n = a.numel()
            scale_loss = sa / n if n else float("nan")
            scale_grad = sb / n if n else 0.0
        loss = a.sum() if f is None else torch.vdot(_flat(a), _flat(f))
        if scale_loss != 1.0:
            loss = loss.mul_(_const(scale_loss, cdtype, loss.device))
        if need_grad and scale_grad != 1.0:
            b = b.mul_(_const(scale_grad, cdtype, b.device))
    else:
        a = a if f is None else a * f
        if weight is None:  # reduction "none"
            loss = a if sa == 1.0 else a.neg_()
            if need_grad and sb != 1.0:
                b = b.neg_()
        elif reduction == "mean":
            den = weight.sum()
            loss = torch.vdot(_flat(a), _flat(weight)).mul_(sa).div_(den)
            if need_grad:
                b = b.mul_(weight).mul_(sb).div_(den.clamp_min(torch.finfo(cdtype).tiny))
        else:
            loss = a.mul_(weight)
            loss = loss.sum() if reduction == "sum" else loss
            if sa != 1.0:
                loss = loss.neg_()
            if need_grad:
                b = b.mul_(weight) if sb == 1.0 else b.mul_(weight).neg_()
    loss = _as(loss, input.dtype)
    if not need_grad:
        return loss, None
    # d loss / d x = D (softmax - onehot); the target column of softmax - onehot is p - 1 = nq
    grad = logp.exp_().scatter_(1, index, nq.unsqueeze(1)).mul_(b.unsqueeze(1))
    return loss, _as(grad, input.dtype)


def _softmax_terms_compute(input, target, kernel, need_grad):
    """Unweighted per-element softmax loss (N, ...) and its logit gradient."""
    return softmax_compute(input, target, kernel, None, "none", need_grad)


def softmax_terms(input, target, kernel):
    """Unweighted per-element loss (N, ...) with the closed-form logit gradient."""
    return run(_softmax_terms_compute, input, target, kernel)
