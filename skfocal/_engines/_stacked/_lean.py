r"""The stacked training step without autograd, for binary members of one hidden layer.

For the default network on a binary target (``Linear -> ReLU -> Linear(1)``, no dropout) a
step of :func:`~skfocal._engines._stacked.train_stacked` needs no autograd graph: the loss's
stacked form gives each member's per-sample loss :math:`\ell_{m,b}` and its derivative in the
logit (:meth:`~skfocal._engines._stacked.StackedLoss.value_and_grad`), and the closed-form
gradients of :func:`~skfocal._engines._stacked._mlp._single_output_grads` take the logit
gradient

.. math::

    g_{m,b} = r_{m,b}\, w_{m,b}\, \frac{\partial \ell_{m,b}}{\partial z_{m,b}}

(:math:`r` the batch's ``row_weight``, :math:`w` the per-sample weights) straight to every
parameter, written into the rows of ``flat_grads`` that the optimizer then reads. This is the
gradient autograd computes for :math:`\sum_{m,b} r_{m,b} w_{m,b} \ell_{m,b}` (the same
operations, in another order: equal to rounding), without the graph's recording, the engine's
dispatch, the gradient accumulation and the zeroing that cost more than the arithmetic at a
small network's batch sizes (``benchmarks/bench_stacked_step.py`` times both).

A step computes only a contiguous run of members (a *window*) when the members that train in it
(those with a batch, not frozen) are a run narrower than the stack: the last batches of a refit
member beside fold members with fewer rows, the members left once the others stopped early.
Every tensor of the step is then a view of those members' rows; the others are not touched.
"""

from __future__ import annotations

import torch

from ._mlp import _layer_views


def lean_applies(model, loss):
    """Whether :class:`LeanBinaryStep` serves ``model`` and ``loss`` (else autograd's step)."""
    return (
        len(model.shapes) == 2
        and model.n_outputs == 1
        and model.generators is None
        and loss.has_value_and_grad
    )


class LeanBinaryStep:
    """One training step of a binary one-hidden-layer stack, on a window of its members.

    Parameters
    ----------
    model : StackedMLP
        Two layers, one output, no dropout (:func:`lean_applies`).
    loss : StackedLoss
        Binary, one group of members (:attr:`StackedLoss.has_value_and_grad`).
    """

    def __init__(self, model, loss):
        self.model, self.loss = model, loss
        self.n_members = model.n_members
        self.n_features = model.n_features
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
            Its 0/1 labels.
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
        n_in = self.n_features + 1
        inputs = self._buffer("inputs", (k * width, n_in), fill=1.0)  # the last column stays 1
        flat = idx.reshape(-1)
        torch.index_select(X, 0, flat, out=inputs[:, :-1])
        x = inputs.view(k, width, n_in)
        hidden = torch.bmm(x, block_in, out=self._buffer("hidden", (k, width, block_in.shape[2])))
        hidden.relu_()
        z = torch.bmm(hidden, weight_out).add_(bias_out.unsqueeze(1)).squeeze(2)
        target = y.index_select(0, flat).view(k, width)
        loss, dloss = self.loss.value_and_grad(z, target, slice(lo, hi))
        if weights is not None:
            loss = loss.mul_(weights)
            dloss = dloss.mul_(weights)
        scaled = loss.mul_(row_weight)
        grad = dloss.mul_(row_weight).unsqueeze(2)
        # the gradients of _single_output_grads (folded inputs), each written once into its
        # rows of flat_grads: G = (x o g)^T P into the first layer's block, where it is scaled
        pattern = torch.sign(hidden, out=self._buffer("pattern", hidden.shape))
        xg = torch.mul(x, grad, out=self._buffer("xg", x.shape))
        (g_block_in, _, _), (_, g_weight_out, g_bias_out) = grad_layers
        G = torch.bmm(xg.transpose(1, 2), pattern, out=self._buffer("G", block_in.shape))
        torch.sum(block_in * G, dim=1, keepdim=True, out=g_weight_out.transpose(1, 2))
        torch.mul(G, weight_out.transpose(1, 2), out=g_block_in)
        torch.sum(grad, dim=1, out=g_bias_out)
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
