r"""The stacked training step without autograd, for members of one hidden layer.

For the default network (``Linear -> ReLU -> Linear``, no dropout) on a binary or multiclass
target, a step of :func:`~skfocal._engines._stacked.train_stacked` needs no autograd graph:
the loss's stacked form gives each member's per-sample loss :math:`\ell_{m,b}` and its
gradient in the logits (:meth:`~skfocal._engines._stacked.StackedLoss.value_and_grad`), and
the closed-form gradients of the two layers take the logit gradient

.. math::

    g_{m,b} = r_{m,b}\, w_{m,b}\, \frac{\partial \ell_{m,b}}{\partial z_{m,b}}

(:math:`r` the batch's ``row_weight``, :math:`w` the per-sample weights) straight to every
parameter, written into the rows of ``flat_grads`` that the optimizer then reads: with
:math:`a = \mathrm{ReLU}([x, 1] W_0)` and :math:`P = [a > 0]`, :math:`\partial L / \partial
W_1 = a^\top g`, :math:`\partial L / \partial b_1 = \sum_b g` and :math:`\partial L /
\partial [W_0; b_0] = [x, 1]^\top ((g W_1^\top) \circ P)`; one output (binary) needs only
the ReLU pattern (as :func:`~skfocal._engines._stacked._mlp._single_output_grads`). This is
the gradient autograd computes for :math:`\sum_{m,b} r_{m,b} w_{m,b} \ell_{m,b}` (the same
operations, in another order: equal to rounding), without the graph's recording, the
engine's dispatch, the gradient accumulation and the zeroing that cost more than the
arithmetic at a small network's batch sizes.

A step computes only a contiguous run of members (a *window*) when the members that train in it
(those with a batch, not frozen) are a run narrower than the stack: the last batches of a refit
member beside fold members with fewer rows, the members left once the others stopped early.
Every tensor of the step is then a view of those members' rows; the others are not touched.
"""

from __future__ import annotations

import torch

from ._mlp import _layer_views, _single_output_grads


def lean_applies(model, loss):
    """Whether :class:`LeanStackedStep` serves ``model`` and ``loss`` (else autograd's step)."""
    return len(model.shapes) == 2 and model.generators is None and loss.has_value_and_grad


class LeanStackedStep:
    """One training step of a one-hidden-layer stack, on a window of its members.

    Parameters
    ----------
    model : StackedMLP
        Two layers, no dropout (:func:`lean_applies`).
    loss : StackedLoss
        Binary or multiclass, one group of members
        (:attr:`StackedLoss.has_value_and_grad`).
    """

    def __init__(self, model, loss):
        self.model, self.loss = model, loss
        self.n_features = model.n_features
        self.binary = model.n_outputs == 1
        self._views = {}  # window -> (layers, grad_layers) of its rows
        self._buffers = {}  # (name, shape) -> workspace tensor

    def _buffer(self, name, shape, fill=None):
        key = (name, shape)
        buf = self._buffers.get(key)
        if buf is None:
            flat = self.model.flat_params
            buf = torch.empty(shape, dtype=flat.dtype, device=flat.device)
            if fill is not None:
                buf.fill_(fill)
            self._buffers[key] = buf
        return buf

    def _layers(self, lo, hi):
        views = self._views.get((lo, hi))
        if views is None:
            model = self.model
            params = model.flat_params.detach()[lo:hi]
            grads = model.flat_grads[lo:hi]
            views = (_layer_views(params, model.shapes), _layer_views(grads, model.shapes))
            self._views[(lo, hi)] = views
        return views

    def __call__(self, X, y, idx, row_weight, weights, lo, hi):
        """Forward, loss and gradients of members ``lo:hi`` on their rows ``idx`` of ``X``.

        Parameters
        ----------
        X : Tensor of shape (N, n_features)
            The shared data (no gradient: every tensor of the step is detached, so that no
            autograd scope is needed).
        y : Tensor of shape (N,)
            Its labels: 0/1 in ``X``'s dtype (binary) or class indices.
        idx : LongTensor of shape (k, B)
            The window's rows of ``X`` (``k = hi - lo`` members).
        row_weight : float or Tensor of shape (k, B)
            The batch's row factors of the window's members.
        weights : Tensor of shape (k, B) or None
            Per-sample weights of the window's rows.
        lo, hi : int
            The window: members ``lo`` to ``hi - 1``.

        Returns
        -------
        scaled : Tensor of shape (k, B)
            ``row_weight * weights * loss``, whose row sums are the members' batch means;
            the gradients of their sum are in ``flat_grads[lo:hi]``.
        """
        k, width = idx.shape
        layers, grad_layers = self._layers(lo, hi)
        (block_in, _, _), (_, weight_out, bias_out) = layers
        (g_block_in, _, _), (_, g_weight_out, g_bias_out) = grad_layers
        n_in = self.n_features + 1
        inputs = self._buffer("inputs", (k * width, n_in), fill=1.0)  # the last column stays 1
        flat = idx.reshape(-1)
        torch.index_select(X, 0, flat, out=inputs[:, :-1])
        x = inputs.view(k, width, n_in)
        hidden = torch.bmm(x, block_in, out=self._buffer("hidden", (k, width, block_in.shape[2])))
        hidden.relu_()
        z = torch.bmm(hidden, weight_out).add_(bias_out.unsqueeze(1))
        if self.binary:
            z = z.squeeze(2)
        target = y.index_select(0, flat).view(k, width)
        loss, dloss = self.loss.value_and_grad(z, target, slice(lo, hi))
        if weights is not None:
            loss = loss.mul_(weights)
            dloss = dloss.mul_(weights if self.binary else weights.unsqueeze(2))
        scaled = loss.mul_(row_weight)
        if isinstance(row_weight, torch.Tensor) and not self.binary:
            row_weight = row_weight.unsqueeze(2)
        grad = dloss.mul_(row_weight)
        if self.binary:  # from the ReLU pattern alone, as autograd's step (folded inputs)
            buffers = self._buffer("pattern", hidden.shape), self._buffer("xg", x.shape)
            _single_output_grads(x, hidden, grad.unsqueeze(2), layers, grad_layers, True, *buffers)
        else:  # the output layer's gradients, then the hidden layer's through the ReLU
            torch.bmm(hidden.transpose(1, 2), grad, out=g_weight_out)
            torch.sum(grad, dim=1, out=g_bias_out)
            back = torch.bmm(grad, weight_out.transpose(1, 2))
            back = torch.ops.aten.threshold_backward(back, hidden, 0)
            torch.bmm(x.transpose(1, 2), back, out=g_block_in)
        return scaled


def window(members):
    """``(lo, hi)``: the contiguous run of stack rows that covers the True entries of the
    boolean list ``members``; None when none is True."""
    try:
        lo = members.index(True)
    except ValueError:
        return None
    hi = len(members) - members[::-1].index(True)
    return lo, hi
