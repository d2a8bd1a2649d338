r"""Stacked losses: one kernel over the logits of ``M`` members, hyperparameters as columns.

The shared machinery of the stacked forms (a vectorized grid search trains ``M`` members as
one model): :class:`_StackedSoftmaxLoss` and :class:`_StackedSigmoidLoss` evaluate a kernel of
:mod:`~skfocal.losses._kernels` whose hyperparameters are per-member columns, with the
closed-form backward of the single losses. Each loss file holds its own stacked form (the
focal loss's in ``_focal``, the margin loss's in ``_margin``) or says it has none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ._softmax import log_softmax


class _StackedSoftmaxLoss(torch.autograd.Function):
    """``weight_t * kernel(log_softmax(input)[target])`` over (k, B, C) logits."""

    @staticmethod
    def forward(ctx, input, target, weight_t, kernel):
        need_grad = ctx.needs_input_grad[0]
        logp = log_softmax(input, input.dtype, dim=-1)  # the single fits' log-softmax
        ell = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        loss, grad = kernel(ell, ell.exp(), torch.expm1(ell).neg_(), need_grad)
        if weight_t is not None:
            loss = loss * weight_t
            if need_grad:
                grad = grad.mul_(weight_t)
        if need_grad:
            ctx.save_for_backward(logp, target, grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        logp, target, dloss_dell = ctx.saved_tensors
        g = (dloss_dell * grad_output).unsqueeze(-1)
        # d ell / d input = onehot(target) - softmax(input)
        grad_input = torch.exp(logp).mul_(g.neg())
        grad_input.scatter_add_(-1, target.unsqueeze(-1), g)
        return grad_input, None, None, None


def stacked_sigmoid(input, target, pos_w, neg_w, kernel, need_grad):
    """``pos_w y kernel(log p) + neg_w (1 - y) kernel(log(1 - p))`` for sigmoid ``p``, and its
    logit gradient: the compute function of :func:`~skfocal.losses._fused.run`."""
    # log p and log(1 - p) each from its own softplus: log(1 - p) = log p - x would lose
    # all digits of a tiny -log(1 - p) to cancellation (e.g. x = -26, y = 0)
    log_p = F.softplus(-input).neg_()
    log_q = F.softplus(input).neg_()
    p, q = log_p.exp(), log_q.exp()
    loss_pos, d_pos = kernel(log_p, p, q, need_grad)
    loss_neg, d_neg = kernel(log_q, q, p, need_grad)
    w_pos = target if pos_w is None else target * pos_w
    w_neg = 1.0 - target
    if neg_w is not None:
        w_neg = w_neg * neg_w
    loss = loss_pos.mul_(w_pos).add_(loss_neg.mul_(w_neg))
    if not need_grad:
        return loss, None
    # d log p / dx = q and d log q / dx = -p
    return loss, d_pos.mul_(q).mul_(w_pos).sub_(d_neg.mul_(p).mul_(w_neg))
