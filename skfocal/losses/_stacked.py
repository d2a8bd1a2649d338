r"""Stacked losses: one kernel over the logits of ``M`` members, hyperparameters as columns.

The shared machinery of the stacked forms (a vectorized grid search trains ``M`` members as
one model). A loss that has a stacked form defines a :class:`StackedForm` in its own file
(``_focal.STACKED``, ``_margin.STACKED``; the others say they have none); the loss specs name
it (``LossSpec.stacked_form``), and the stacked engine's ``StackedLoss`` asks it how to group
members, which function serves a group that shares its hyperparameters, and which kernel
serves one that does not. :class:`_StackedSoftmaxLoss` and :func:`stacked_sigmoid` evaluate
such a kernel of :mod:`~skfocal.losses._kernels` with the hyperparameters as per-member
columns, with the closed-form gradient of the single losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ._fused import run
from ._softmax import log_softmax


def _softmax_terms(input, target, weight_t, kernel, need_grad):
    """``(loss, log_softmax(input), d loss / d ell)`` of ``weight_t * kernel(ell)``, with
    ``ell = log_softmax(input)[target]`` (the last None without ``need_grad``)."""
    logp = log_softmax(input, input.dtype, dim=-1)  # the single fits' log-softmax
    ell = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    loss, grad = kernel(ell, ell.exp(), torch.expm1(ell).neg_(), need_grad)
    if weight_t is not None:
        loss = loss * weight_t
        if need_grad:
            grad = grad.mul_(weight_t)
    return loss, logp, grad


def _softmax_input_grad(logp, target, dloss_dell):
    """The logit gradient from ``d loss / d ell``: ``d ell / d input = onehot(target) -
    softmax(input)``."""
    g = dloss_dell.unsqueeze(-1)
    grad_input = torch.exp(logp).mul_(g.neg())
    return grad_input.scatter_add_(-1, target.unsqueeze(-1), g)


def stacked_softmax(input, target, weight_t, kernel):
    """``(loss, d loss / d input)`` of :class:`_StackedSoftmaxLoss` over (k, B, C) logits,
    without autograd (for a loop that backpropagates by hand)."""
    loss, logp, dloss_dell = _softmax_terms(input, target, weight_t, kernel, True)
    return loss, _softmax_input_grad(logp, target, dloss_dell)


class _StackedSoftmaxLoss(torch.autograd.Function):
    """``weight_t * kernel(log_softmax(input)[target])`` over (k, B, C) logits."""

    @staticmethod
    def forward(ctx, input, target, weight_t, kernel):
        need_grad = ctx.needs_input_grad[0]
        loss, logp, grad = _softmax_terms(input, target, weight_t, kernel, need_grad)
        if need_grad:
            ctx.save_for_backward(logp, target, grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        logp, target, dloss_dell = ctx.saved_tensors
        return _softmax_input_grad(logp, target, dloss_dell * grad_output), None, None, None


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


class StackedForm:
    """A loss's stacked form: how members that train with it are evaluated together.

    A member is an object with the loss's hyperparameters as attributes (the stacked engine's
    ``MemberLoss``). Members of one group share a kernel; a group whose members also share
    their hyperparameters is one call of the loss's public function.

    Attributes
    ----------
    softmax, sigmoid : callable
        The loss's public softmax and sigmoid functions.
    """

    softmax = sigmoid = None

    def group(self, member):
        """``(key, values)``: the group ``member`` joins and its hyperparameters, checked."""
        raise NotImplementedError

    def kwargs(self, key, values):
        """The hyperparameters of :attr:`softmax` / :attr:`sigmoid` for one member's
        ``values``."""
        raise NotImplementedError

    def kernel(self, key, params, shape, dtype):
        """The group's kernel: ``params`` (k, n) float64, one row of values per member, as
        columns of ``shape`` in ``dtype``."""
        raise NotImplementedError

    def sigmoid_loss(self, key, input, target, params, shared, pos_w, neg_w):
        """A group's per-element sigmoid loss where the function does not serve it (per-member
        weights or hyperparameters): the kernel on both sides. ``shared``: the values every
        member of the group has, or None."""
        shape = (-1,) + (1,) * (input.dim() - 1)
        kernel = self.kernel(key, params, shape, input.dtype)
        return run(stacked_sigmoid, input, target, pos_w, neg_w, kernel)

    def softmax_value_and_grad(self, key, params, shared, dtype):
        """``f(input, target, weight_t) -> (loss, d loss / d input)`` for ``(k, B, C)`` logits
        and class indices, ``weight_t`` each sample's class factor or None: what the stacked
        engine's softmax groups compute, without autograd; the kernel is made here, once."""
        kernel = self.kernel(key, params, (-1, 1), dtype)
        return lambda input, target, weight_t: stacked_softmax(input, target, weight_t, kernel)

    def sigmoid_value_and_grad(self, key, params, shared, pos_w, neg_w, dtype):
        """``f(input, target) -> (loss, d loss / d input)``: what :meth:`sigmoid_loss`
        computes for ``(k, B)`` logits and hard 0/1 labels, and its gradient in the logits,
        without autograd (for a loop that backpropagates by hand); its constants are made
        here, once."""
        kernel = self.kernel(key, params, (-1, 1), dtype)
        return lambda input, target: stacked_sigmoid(input, target, pos_w, neg_w, kernel, True)
