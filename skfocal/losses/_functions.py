"""Custom autograd functions with closed-form backward passes.

Both functions return *per-element, weighted* losses; reductions are ordinary tensor ops
applied by the callers. The backward is written out by hand for two reasons: it is finite for
every ``gamma >= 0`` where autograd of the textbook formula gives NaN (see ``_kernels``), and
it costs about as much as the backward of ``F.cross_entropy`` because it reuses the saved
``log_softmax`` like torch's own kernel does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _sigmoid_logs(x):
    """``log p``, ``log(1 - p)``, ``p`` and ``1 - p`` for ``p = sigmoid(x)``, all accurate.

    ``-softplus(-x)`` is several times faster than ``F.logsigmoid`` on CPU (which also fills a
    buffer for its own backward) and as accurate; ``log(1 - p) = log p - x`` exactly.
    """
    log_p = F.softplus(-x).neg_()
    log_q = log_p - x
    return log_p, log_q, log_p.exp(), log_q.exp()


class SoftmaxTargetLoss(torch.autograd.Function):
    """``weight_t * kernel(log_softmax(input)[target])`` with an analytic backward."""

    @staticmethod
    def forward(ctx, input, target, weight_t, kernel):
        need_grad = ctx.needs_input_grad[0]
        logp = F.log_softmax(input, dim=1)
        ell = logp.gather(1, target.unsqueeze(1)).squeeze(1).to(_compute_dtype(input.dtype))
        q = torch.expm1(ell).neg_()
        p = ell.exp()
        loss, grad = kernel(ell, p, q, need_grad)
        if weight_t is not None:
            loss = loss * weight_t
            if need_grad:
                grad = grad.mul_(weight_t)
        if need_grad:
            ctx.save_for_backward(logp, target, grad)
        return loss.to(input.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        logp, target, dloss_dell = ctx.saved_tensors
        g = (dloss_dell * grad_output).to(logp.dtype).unsqueeze(1)
        # d ell / d input = onehot(target) - softmax(input)
        grad_input = torch.exp(logp).mul_(g.neg())
        grad_input.scatter_add_(1, target.unsqueeze(1), g)
        return grad_input, None, None, None


class SigmoidTargetLoss(torch.autograd.Function):
    """``pos_w * y * kernel(log p) + neg_w * (1 - y) * kernel(log(1 - p))`` for sigmoid ``p``.

    The gradient with respect to the logits is computed together with the loss in the forward
    pass (the two share every intermediate) and only scaled in the backward.
    """

    @staticmethod
    def forward(ctx, input, target, pos_w, neg_w, kernel):
        need_grad = ctx.needs_input_grad[0]
        x = input.to(_compute_dtype(input.dtype))
        y = target.to(x.dtype)
        log_p, log_q, p, q = _sigmoid_logs(x)
        loss_pos, d_pos = kernel(log_p, p, q, need_grad)
        loss_neg, d_neg = kernel(log_q, q, p, need_grad)
        w_pos = y if pos_w is None else y * pos_w
        w_neg = 1.0 - y
        if neg_w is not None:
            w_neg = w_neg * neg_w
        loss = loss_pos.mul_(w_pos).add_(loss_neg.mul_(w_neg))
        if need_grad:
            # d log p / dx = q and d log q / dx = -p
            grad = d_pos.mul_(q).mul_(w_pos).sub_(d_neg.mul_(p).mul_(w_neg))
            ctx.save_for_backward(grad)
            ctx.input_dtype = input.dtype
        return loss.to(input.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return (grad * grad_output).to(ctx.input_dtype), None, None, None, None


class SigmoidFocalLoss(torch.autograd.Function):
    r"""Sigmoid focal loss with loss and gradient fused into a few elementwise passes.

    With :math:`\ell_+ = \log p`, :math:`\ell_- = \log(1 - p) = \ell_+ - x`,
    :math:`a_\pm` the positive/negative weights and :math:`y` the (possibly soft) label:

    .. math::

        \mathcal{L} &= -y\,a_+ (1-p)^\gamma \ell_+ - (1-y)\,a_- p^\gamma \ell_- \\
        \frac{\partial \mathcal{L}}{\partial x} &=
            y\,a_+ (1-p)^\gamma (\gamma\,p\,\ell_+ - (1-p))
            + (1-y)\,a_- p^\gamma (p - \gamma\,(1-p)\,\ell_-)

    No negative power of :math:`p` or :math:`1-p` appears, so both are finite for every
    :math:`\gamma \ge 0`. The gradient is formed in the forward pass, where every
    intermediate is at hand, and only scaled in the backward.
    """

    @staticmethod
    def forward(ctx, input, target, gamma, pos_w, neg_w):
        need_grad = ctx.needs_input_grad[0]
        x = input.to(_compute_dtype(input.dtype))
        y = target.to(x.dtype)
        # Written for few temporaries (each fresh 1M-element buffer costs page faults on CPU):
        # nl_p = -log p = softplus(-x), nl_q = -log(1 - p) = nl_p + x, q = sigmoid(-x).
        neg_x = x.neg()
        loss_pos = F.softplus(neg_x)
        loss_neg = loss_pos + x
        q = neg_x.sigmoid_()
        p = torch.sigmoid(x)
        if gamma == 0.0:
            mod_pos = mod_neg = None
        elif gamma == 1.0:
            mod_pos, mod_neg = q, p
        elif gamma == 2.0:
            mod_pos, mod_neg = q * q, p * p
        else:
            mod_pos, mod_neg = q.pow(gamma), p.pow(gamma)
        # loss terms a+ (1-p)^gamma (-log p) and a- p^gamma (-log(1-p))
        if mod_pos is not None:
            loss_pos.mul_(mod_pos)
            loss_neg.mul_(mod_neg)
        if pos_w is not None:
            loss_pos = loss_pos * pos_w
        if neg_w is not None:
            loss_neg = loss_neg * neg_w
        loss = torch.lerp(loss_neg, loss_pos, y)
        if need_grad:
            # d/dx: -(a+ (1-p)^(gamma+1) + gamma p L+) for y = 1, a- p^(gamma+1) + gamma q L- for
            # y = 0, where L+- are the loss terms above (weights included)
            if mod_pos is None:
                base_pos, base_neg = q.clone(), p.clone()
            elif gamma == 1.0:  # mod_pos is q itself: do not overwrite it
                base_pos, base_neg = q * q, p * p
            else:
                base_pos, base_neg = mod_pos.mul_(q), mod_neg.mul_(p)
            if pos_w is not None:
                base_pos = base_pos * pos_w
            if neg_w is not None:
                base_neg = base_neg * neg_w
            grad_pos = base_pos.addcmul_(p, loss_pos, value=gamma)
            grad_neg = base_neg.addcmul_(q, loss_neg, value=gamma)
            # grad = (1 - y) grad_neg - y grad_pos = grad_neg - y (grad_neg + grad_pos)
            grad = grad_neg.sub_(grad_pos.add_(grad_neg).mul_(y))
            ctx.save_for_backward(grad)
            ctx.input_dtype = input.dtype
        return loss.to(input.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return (grad * grad_output).to(ctx.input_dtype), None, None, None, None
