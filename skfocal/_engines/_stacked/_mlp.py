r"""M copies of the default :class:`~skfocal._module.MLP` trained as one batched model.

Every member ``m`` of a :class:`StackedMLP` computes what its own ``MLP`` computes,

.. math::

    a^{(0)}_m = X_m, \qquad
    a^{(l+1)}_m = \mathrm{ReLU}\!\left(a^{(l)}_m W^{(l)}_m + b^{(l)}_m\right), \qquad
    z_m = a^{(L-1)}_m W^{(L-1)}_m + b^{(L-1)}_m,

with one batched matrix product per layer for all members at once (``X`` of shape
``(M, B, n_features)``, ``W`` of shape ``(M, in, out)``, ``b`` of shape ``(M, out)``).

All parameters are one leaf tensor ``flat_params`` of shape ``(M, P)``: row ``m`` holds member
``m``'s parameters, layer after layer, each layer's ``W`` (``in x out``, row-major) followed by
its ``b``, so that ``[W; b]`` is one contiguous ``(in + 1, out)`` block. Its gradient is the
persistent buffer ``flat_grads``. An optimizer therefore updates all members with a few
elementwise operations on two ``(M, P)`` tensors (see :mod:`skfocal._engines._stacked._optim`),
and a member's weights are one row to snapshot or restore (per-member early stopping).

Forward and backward are written out in closed form (:class:`_StackedMLPFunction`): the first
layer's bias is folded into its matrix product by gathering the rows of ``X`` next to a column
of ones (``[x, 1] [W; b] = x W + b``), the ReLU is applied in place, below a single-output
layer all gradients need only the ReLU pattern (see :func:`_single_output_grads`), and the
backward pass writes every gradient once into a new ``(M, P)`` tensor that autograd adds into
``flat_grads``. With ``reuse_buffers=True`` (as
:func:`~skfocal._engines._stacked.train_stacked` does) the multi-megabyte activations are
written into buffers kept from step to step instead of fresh tensors, whose pages the CPU would
fault in at every step.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..._module import MLP


def _linears_and_dropout(member):
    """The ``nn.Linear`` layers of an ``MLP`` and its dropout probability (0 without dropout)."""
    if not isinstance(member, MLP):
        raise TypeError(
            "StackedMLP stacks skfocal._module.MLP instances (the default network); "
            f"got {type(member).__name__}."
        )
    linears = [layer for layer in member.layers if isinstance(layer, nn.Linear)]
    dropouts = {layer.p for layer in member.layers if isinstance(layer, nn.Dropout)}
    return linears, (dropouts.pop() if dropouts else 0.0)


def _layer_views(flat, shapes):
    """Per layer, the views ``[W; b]`` (M, in + 1, out), ``W`` (M, in, out), ``b`` (M, out)."""
    views, start = [], 0
    n_members = flat.shape[0]
    for fan_in, fan_out in shapes:
        stop = start + (fan_in + 1) * fan_out
        block = flat[:, start:stop].view(n_members, fan_in + 1, fan_out)
        views.append((block, block[:, :fan_in], block[:, fan_in]))
        start = stop
    return views


def _linear(a, weight, bias, folded, out=None):
    """``a W + b`` per member (``folded``: ``a`` ends with ones and ``weight`` is ``[W; b]``).

    ``out``, if given, is a ``(M, B, out)`` buffer to write into.
    """
    z = torch.bmm(a, weight, out=out)
    if not folded:
        z.add_(bias.unsqueeze(1))
    return z


def _single_output_grads(x, a, g, layers, grads, folded, pattern, xg):
    r"""Gradients of a ``Linear -> ReLU -> Linear(1)`` pair from the ReLU pattern alone.

    With one output :math:`z = a w + c` over :math:`a = \mathrm{ReLU}(x W + b)`, the hidden
    gradient is the outer product :math:`(g\,w^\top) \circ P` with :math:`P = [a > 0]`
    (``sign(a)``, as ``a >= 0``). Writing :math:`G = (x \circ g)^\top P` (and
    :math:`G_b = g^\top P`):

    .. math::

        \frac{\partial L}{\partial W} = G \circ w^\top, \quad
        \frac{\partial L}{\partial b} = G_b \circ w^\top, \quad
        \frac{\partial L}{\partial w_j} = \sum_b g_b a_{bj}
            = \sum_i W_{ij} G_{ij} + b_j (G_b)_j, \quad
        \frac{\partial L}{\partial c} = \sum_b g_b,

    so the only passes over the ``(M, B, hidden)`` activations are ``sign(a)`` and the
    product forming ``G`` (instead of the outer product, ``threshold_backward``, and a product
    for each weight gradient). With ``folded`` inputs (a ones column) :math:`G` holds
    :math:`G_b` as its last row and ``[W; b]`` is one block. ``pattern`` and ``xg`` are
    buffers for :math:`P` and :math:`x \circ g`.
    """
    (block_in, weight_in, bias_in), (_, weight_out, _) = layers
    (g_block_in, g_weight_in, g_bias_in), (_, g_weight_out, g_bias_out) = grads
    pattern = torch.sign(a, out=pattern)
    scale = weight_out.transpose(1, 2)  # (M, 1, hidden)
    G = torch.bmm(torch.mul(x, g, out=xg).transpose(1, 2), pattern)
    if folded:  # written into the gradient's rows (no temporaries to copy)
        torch.sum(block_in * G, dim=1, keepdim=True, out=g_weight_out.transpose(1, 2))
        torch.mul(G, scale, out=g_block_in)
    else:
        Gb = torch.bmm(g.transpose(1, 2), pattern)  # (M, 1, hidden)
        g_weight_out.copy_(((weight_in * G).sum(dim=1) + bias_in * Gb.squeeze(1)).unsqueeze(2))
        g_weight_in.copy_(G.mul_(scale))
        g_bias_in.copy_(Gb.mul_(scale).squeeze(1))
    torch.sum(g, dim=1, out=g_bias_out)


class _StackedMLPFunction(torch.autograd.Function):
    """Forward and closed-form backward of all members; gradient w.r.t. ``flat`` (and ``X``)."""

    @staticmethod
    def forward(ctx, X, flat, shapes, folded, masks_of, buffer):
        layers = _layer_views(flat, shapes)
        inputs, masks = [], []
        a = X
        last = len(layers) - 1
        for layer, (block, weight, bias) in enumerate(layers):
            inputs.append(a)
            fold = folded and layer == 0
            if layer < last:  # hidden activations: into reused buffers (no fresh pages)
                out = buffer(("hidden", layer), (a.shape[0], a.shape[1], weight.shape[2]))
            else:
                out = None
            a = _linear(a, block if fold else weight, bias, fold, out)
            if layer < last:
                a = a.relu_()
                mask = None if masks_of is None else masks_of(a)
                if mask is not None:
                    a = a.mul_(mask)
                masks.append(mask)
        ctx.shapes, ctx.folded, ctx.masks, ctx.buffer = shapes, folded, masks, buffer
        ctx.save_for_backward(flat, *inputs)
        return a

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        flat, *inputs = ctx.saved_tensors
        layers = _layer_views(flat, ctx.shapes)
        grad_flat = torch.empty_like(flat)
        grad_layers = _layer_views(grad_flat, ctx.shapes)
        g = grad_output
        grad_X = None
        for layer in range(len(layers) - 1, -1, -1):
            a = inputs[layer]
            block, weight, _ = layers[layer]
            g_block, g_weight, g_bias = grad_layers[layer]
            if (
                layer == 1
                and weight.shape[2] == 1
                and ctx.masks[0] is None
                and not ctx.needs_input_grad[0]
            ):  # the default binary MLP: see _single_output_grads
                pattern = ctx.buffer(("pattern",), a.shape)
                xg = ctx.buffer(("xg",), inputs[0].shape)
                _single_output_grads(
                    inputs[0], a, g, layers[:2], grad_layers[:2], ctx.folded, pattern, xg
                )
                break
            # gradients are parameter-sized: computed, then copied into their rows of grad_flat
            if ctx.folded and layer == 0:
                g_block.copy_(torch.bmm(a.transpose(1, 2), g))
            else:
                if weight.shape[2] == 1:  # (1, B) x (B, in) per member
                    g_weight.copy_(torch.bmm(g.transpose(1, 2), a).transpose(1, 2))
                else:
                    g_weight.copy_(torch.bmm(a.transpose(1, 2), g))
                g_bias.copy_(g.sum(dim=1))
            if layer == 0 and not ctx.needs_input_grad[0]:
                break
            if weight.shape[2] == 1:
                g = g * weight.transpose(1, 2)
            else:
                g = torch.bmm(g, weight.transpose(1, 2))
            if layer == 0:
                grad_X = g
                break
            mask = ctx.masks[layer - 1]
            if mask is not None:
                g = g.mul_(mask)
            g = torch.ops.aten.threshold_backward(g, a, 0)
        return grad_X, grad_flat, None, None, None, None


class StackedMLP(nn.Module):
    """``M`` MLPs of identical shape evaluated, trained and stored as one batched model.

    Parameters
    ----------
    members : sequence of skfocal._module.MLP
        The members' initial networks (e.g. each built under its own ``torch.manual_seed``
        with its output bias set); their weights are copied, the instances are not kept.
        All must have the same layer sizes, dtype and device; the dropout probability may
        differ between members.
    dropout_seeds : sequence of int, default=None
        Seeds of the per-member ``torch.Generator`` that draw the dropout masks (only used
        when a member has dropout). None draws them from torch's global generator.

    Attributes
    ----------
    flat_params : nn.Parameter of shape (M, P)
        All parameters, member-major (the module's only parameter).
    flat_grads : Tensor of shape (M, P)
        Their gradient (``flat_params.grad``), accumulated in place by ``backward``.
    weights : list of Tensor
        ``weights[l]`` of shape ``(M, in_l, out_l)``, a view of ``flat_params``: member
        ``m``'s ``Linear`` weight is ``weights[l][m].T``.
    biases : list of Tensor
        ``biases[l]`` of shape ``(M, out_l)``, a view of ``flat_params``.
    dropout : Tensor of shape (M,)
        Per-member dropout probability.

    Examples
    --------
    >>> import torch
    >>> from skfocal._module import MLP
    >>> from skfocal._engines._stacked import StackedMLP
    >>> members = []
    >>> for seed in range(3):
    ...     _ = torch.manual_seed(seed)
    ...     members.append(MLP(4, 2, hidden_layer_sizes=(8,)))
    >>> stack = StackedMLP(members)
    >>> X = torch.randn(3, 5, 4)
    >>> stack(X).shape
    torch.Size([3, 5, 2])
    >>> torch.allclose(stack(X)[1], members[1](X[1]), atol=1e-6)
    True
    >>> data, rows = torch.randn(10, 4), torch.tensor([[0, 1], [2, 3], [4, 4]])
    >>> torch.allclose(stack(data, rows)[2], members[2](data[[4, 4]]), atol=1e-6)
    True
    >>> torch.equal(stack.member(2).layers[0].weight, members[2].layers[0].weight)
    True
    """

    def __init__(self, members, dropout_seeds=None):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("members must hold at least one MLP, got an empty sequence.")
        layers, dropout = zip(*(_linears_and_dropout(m) for m in members))
        shapes = [tuple((lin.in_features, lin.out_features) for lin in lins) for lins in layers]
        if any(shape != shapes[0] for shape in shapes):
            bad = next(i for i, shape in enumerate(shapes) if shape != shapes[0])
            raise ValueError(
                "members must all have the same layer sizes (in, out) per Linear layer: member 0 "
                f"has {list(shapes[0])}, member {bad} has {list(shapes[bad])}."
            )
        first = layers[0][0].weight
        for i, lins in enumerate(layers):
            weight = lins[0].weight
            if weight.dtype != first.dtype or weight.device != first.device:
                raise ValueError(
                    "members must share one dtype and device: member 0 has "
                    f"{first.dtype} on {first.device}, member {i} has {weight.dtype} on "
                    f"{weight.device}."
                )
        n_members = len(members)
        self.shapes = shapes[0]
        self.n_members = n_members
        self.n_features = self.shapes[0][0]
        self.n_outputs = self.shapes[-1][1]
        self.hidden_layer_sizes = tuple(out for _, out in self.shapes[:-1])
        self.n_params = sum((i + 1) * o for i, o in self.shapes)
        kwargs = {"dtype": first.dtype, "device": first.device}
        self.flat_params = nn.Parameter(torch.empty(n_members, self.n_params, **kwargs))
        self.flat_grads = torch.zeros(n_members, self.n_params, **kwargs)
        self.flat_params.grad = self.flat_grads
        self.dropout = torch.tensor(dropout, dtype=torch.float64)
        views = _layer_views(self.flat_params.detach(), self.shapes)
        self.weights = [weight for _, weight, _ in views]
        self.biases = [bias for _, _, bias in views]
        with torch.no_grad():
            for m, lins in enumerate(layers):
                for lin, weight, bias in zip(lins, self.weights, self.biases, strict=True):
                    weight[m].copy_(lin.weight.detach().T)
                    bias[m].copy_(lin.bias.detach())
        self._workspace = {}
        self.generators = None
        if bool((self.dropout > 0).any()):
            if dropout_seeds is None:
                dropout_seeds = torch.randint(2**31 - 1, (n_members,)).tolist()
            if len(dropout_seeds) != n_members:
                raise ValueError(
                    f"dropout_seeds must hold one seed per member ({n_members}), got "
                    f"{len(dropout_seeds)}."
                )
            self.generators = []
            for seed in dropout_seeds:
                generator = torch.Generator(device=first.device)
                generator.manual_seed(int(seed))
                self.generators.append(generator)

    def _apply(self, fn, recurse=True):
        raise TypeError(
            "a StackedMLP cannot be moved or cast (its weight views and gradient buffer would "
            "be left behind); build it from members already on the target device and dtype."
        )

    def zero_grad(self, set_to_none: bool = False):
        """Zero ``flat_grads`` in place and keep it as the gradient (``set_to_none`` is ignored)."""
        if self.flat_params.grad is not self.flat_grads:
            self.flat_params.grad = self.flat_grads
        self.flat_grads.zero_()

    def forward(self, X, rows=None, reuse_buffers=False):
        """Logits of shape ``(M, B, n_outputs)``.

        Parameters
        ----------
        X : Tensor
            The members' inputs of shape ``(M, B, n_features)``, or, with ``rows``, the shared
            data of shape ``(N, n_features)``.
        rows : LongTensor of shape (M, B), default=None
            Rows of the shared ``X`` that make up each member's batch. They are gathered next
            to a column of ones that folds the first layer's bias into its product; ``X``
            gets no gradient on this path.
        reuse_buffers : bool, default=False
            Write the gathered inputs and the hidden activations into buffers kept from call
            to call (large fresh tensors cost page faults at every step on CPU). Then every
            forward must be followed by its backward before the next forward: the backward of
            an earlier graph fails autograd's in-place check instead of computing wrong
            gradients.
        """
        if rows is None:
            if X.dim() != 3 or X.shape[0] != self.n_members or X.shape[2] != self.n_features:
                raise ValueError(
                    f"X must have shape (n_members, batch, n_features) = ({self.n_members}, "
                    f"B, {self.n_features}), got {tuple(X.shape)}."
                )
            inputs, folded = X, False
        else:
            if X.dim() != 2 or X.shape[1] != self.n_features:
                raise ValueError(
                    f"with rows, X must be the shared data of shape (N, {self.n_features}), got "
                    f"{tuple(X.shape)}."
                )
            if rows.dim() != 2 or rows.shape[0] != self.n_members:
                raise ValueError(
                    f"rows must have shape (n_members, batch) = ({self.n_members}, B), got "
                    f"{tuple(rows.shape)}."
                )
            n_rows = rows.numel()
            shape = (n_rows, self.n_features + 1)
            if reuse_buffers:
                inputs = self._buffer(("inputs",), shape, fill=1.0)
            else:
                inputs = torch.empty(shape, dtype=X.dtype, device=X.device)
                inputs[:, -1] = 1.0
            torch.index_select(X.detach(), 0, rows.reshape(-1), out=inputs[:, :-1])
            inputs, folded = inputs.view(*rows.shape, self.n_features + 1), True
        masks_of = self._dropout_mask if self.training and self.generators is not None else None
        buffer = self._buffer if reuse_buffers else self._fresh
        return _StackedMLPFunction.apply(
            inputs, self.flat_params, self.shapes, folded, masks_of, buffer
        )

    def _fresh(self, key, shape):
        flat = self.flat_params
        return torch.empty(shape, dtype=flat.dtype, device=flat.device)

    def _buffer(self, key, shape, fill=None):
        """A workspace tensor of ``shape`` reused from call to call (``fill``: on creation)."""
        shape = tuple(shape)
        buf = self._workspace.get(key)
        if buf is None or tuple(buf.shape) != shape:
            flat = self.flat_params
            buf = torch.empty(shape, dtype=flat.dtype, device=flat.device)
            if fill is not None:
                buf.fill_(fill)
            self._workspace[key] = buf
        return buf

    def _dropout_mask(self, h):
        """Mask ``bernoulli(1 - p_m) / (1 - p_m)`` of each member, drawn with its own generator."""
        mask = torch.ones_like(h)
        for m, (p, generator) in enumerate(zip(self.dropout.tolist(), self.generators)):
            if p > 0:
                mask[m].bernoulli_(1.0 - p, generator=generator).div_(1.0 - p)
        return mask

    def member(self, m):
        """Member ``m`` as a standalone :class:`~skfocal._module.MLP` with its current weights.

        The network is built on the meta device, so torch's global random state is untouched.
        """
        if not -self.n_members <= m < self.n_members:
            raise IndexError(f"member must be in [0, {self.n_members}), got {m}.")
        with torch.device("meta"):
            mlp = MLP(
                self.n_features,
                self.n_outputs,
                self.hidden_layer_sizes,
                float(self.dropout[m]),
            )
        mlp = mlp.to_empty(device=self.flat_params.device).to(self.flat_params.dtype)
        linears = [layer for layer in mlp.layers if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for lin, weight, bias in zip(linears, self.weights, self.biases, strict=True):
                lin.weight.copy_(weight[m].T)
                lin.bias.copy_(bias[m])
        return mlp

    def _rows(self, members):
        if members is None:
            return None
        index = torch.as_tensor(members, device=self.flat_params.device)
        if index.dtype == torch.bool:
            if index.shape != (self.n_members,):
                raise ValueError(
                    f"a boolean members mask must have shape ({self.n_members},), got "
                    f"{tuple(index.shape)}."
                )
            index = index.nonzero().squeeze(1)
        return index.long().reshape(-1)

    @torch.no_grad()
    def snapshot(self, members=None, out=None):
        """Copy the parameters of ``members`` (all if None) into ``out`` (a new tensor if None).

        ``out`` has shape ``(M, P)`` like ``flat_params``: row ``m`` is member ``m``'s
        parameters, and rows of members not selected are left as they are. ``members`` is a
        sequence of member indices or a boolean mask of shape ``(M,)``.
        """
        rows = self._rows(members)
        if out is None:
            return self.flat_params.detach().clone()
        if rows is None:
            out.copy_(self.flat_params)
        else:
            out.index_copy_(0, rows, self.flat_params.index_select(0, rows))
        return out

    @torch.no_grad()
    def restore(self, snapshot, members=None):
        """Load rows ``members`` (all if None) of a :meth:`snapshot` back into the parameters."""
        if snapshot.shape != self.flat_params.shape:
            raise ValueError(
                f"snapshot must have shape {tuple(self.flat_params.shape)} like flat_params, got "
                f"{tuple(snapshot.shape)}."
            )
        rows = self._rows(members)
        if rows is None:
            self.flat_params.copy_(snapshot)
        else:
            self.flat_params.index_copy_(0, rows, snapshot.index_select(0, rows))
        return self
