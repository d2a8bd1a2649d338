r"""M copies of the default :class:`~skfocal._module.MLP` trained as one batched model.

Every member ``m`` of a :class:`StackedMLP` computes what its own ``MLP`` computes,

.. math::

    h^{(0)}_m = X_m, \qquad
    h^{(l+1)}_m = \mathrm{ReLU}\!\left(h^{(l)}_m W^{(l)}_m + b^{(l)}_m\right), \qquad
    z_m = h^{(L-1)}_m W^{(L-1)}_m + b^{(L-1)}_m,

with one ``torch.baddbmm`` per layer for all members at once (``X`` of shape
``(M, B, n_features)``, ``W`` of shape ``(M, in, out)``, ``b`` of shape ``(M, out)``).

All parameters live in one member-major buffer ``flat_params`` of shape ``(M, P)`` (row ``m``
holds member ``m``'s ``P`` parameters) and the per-layer parameters are views into it; their
gradients are views into ``flat_grads`` of the same shape, into which autograd accumulates in
place. An optimizer therefore updates all members with a few elementwise operations on two
``(M, P)`` tensors (see :mod:`skfocal._stacked._optim`), and a member's weights are one row to
snapshot or restore (per-member early stopping).
"""

from __future__ import annotations

import torch
from torch import nn

from .._module import MLP

# autograd warns once per process that the in-place gradient views into ``flat_grads`` are not
# dense; they are strided like their parameters on purpose (see the module docstring)
LAYOUT_WARNING = "grad and param do not obey the gradient layout contract"


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
    flat_params : Tensor of shape (M, P)
        All parameters, member-major; ``weights[l]`` and ``biases[l]`` are views into it.
    flat_grads : Tensor of shape (M, P)
        Their gradients (the ``.grad`` of every parameter is a view into it).
    weights : nn.ParameterList
        ``weights[l]`` of shape ``(M, in_l, out_l)``: member ``m``'s ``Linear`` weight is
        ``weights[l][m].T``.
    biases : nn.ParameterList
        ``biases[l]`` of shape ``(M, out_l)``.
    dropout : Tensor of shape (M,)
        Per-member dropout probability.

    Examples
    --------
    >>> import torch
    >>> from skfocal._module import MLP
    >>> from skfocal._stacked import StackedMLP
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
        sizes = [i * o + o for i, o in self.shapes]
        self.n_params = sum(sizes)
        kwargs = {"dtype": first.dtype, "device": first.device}
        # plain attributes, not buffers: the parameters are views into them, which moving the
        # module (``.to``) would break; see ``_apply``
        self.flat_params = torch.empty(n_members, self.n_params, **kwargs)
        self.flat_grads = torch.zeros(n_members, self.n_params, **kwargs)
        self.dropout = torch.tensor(dropout, dtype=torch.float64)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self._slices = []
        start = 0
        for fan_in, fan_out in self.shapes:
            w_slice = slice(start, start + fan_in * fan_out)
            b_slice = slice(w_slice.stop, w_slice.stop + fan_out)
            start = b_slice.stop
            self._slices.append((w_slice, b_slice))
            self.weights.append(nn.Parameter(self._view(self.flat_params, w_slice, fan_out)))
            self.biases.append(nn.Parameter(self._view(self.flat_params, b_slice, None)))
        with torch.no_grad():
            for m, lins in enumerate(layers):
                for lin, weight, bias in zip(lins, self.weights, self.biases, strict=True):
                    weight[m].copy_(lin.weight.detach().T)
                    bias[m].copy_(lin.bias.detach())
        self._link_grads()
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
            "a StackedMLP cannot be moved or cast (its parameters are views into flat_params); "
            "build it from members already on the target device and dtype."
        )

    def _view(self, flat, part, fan_out):
        rows = flat[:, part]
        return rows if fan_out is None else rows.view(self.n_members, -1, fan_out)

    def _link_grads(self):
        """Make every parameter's ``.grad`` a view into ``flat_grads``."""
        for (w_slice, b_slice), (_, fan_out), weight, bias in zip(
            self._slices, self.shapes, self.weights, self.biases, strict=True
        ):
            weight.grad = self._view(self.flat_grads, w_slice, fan_out)
            bias.grad = self._view(self.flat_grads, b_slice, None)

    def zero_grad(self, set_to_none: bool = False):
        """Zero ``flat_grads`` in place, keeping the gradient views (``set_to_none`` is ignored)."""
        if any(p.grad is None for p in self.parameters()):
            self._link_grads()
        self.flat_grads.zero_()

    def forward(self, X):
        """Logits of shape ``(M, B, n_outputs)`` of ``X`` of shape ``(M, B, n_features)``."""
        if X.dim() != 3 or X.shape[0] != self.n_members or X.shape[2] != self.n_features:
            raise ValueError(
                f"X must have shape (n_members, batch, n_features) = ({self.n_members}, B, "
                f"{self.n_features}), got {tuple(X.shape)}."
            )
        h = X
        last = len(self.shapes) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(bias.unsqueeze(1), h, weight)
            if layer < last:
                h = torch.relu(h)
                if self.training and self.generators is not None:
                    h = h * self._dropout_mask(h)
        return h

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
            return self.flat_params.clone()
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
