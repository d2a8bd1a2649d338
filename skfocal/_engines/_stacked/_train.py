r"""The training loop of ``M`` stacked fits: epochs of one summed backward pass per step.

At every step the ``M`` members' batch losses are summed into one scalar,

.. math::

    L = \sum_{m} \sum_{b} r_{m,b}\, w_{m,b}\, \ell_{m,b},

with :math:`r` the ``row_weight`` of the :class:`~skfocal._engines._stacked.Batch`
(``1/|batch_m|``, 0 on padding), :math:`w` the per-sample weights and :math:`\ell` the
per-sample losses of :class:`~skfocal._engines._stacked.StackedLoss`. As the members share no
parameter, one backward pass gives every member the gradient of its own batch mean, i.e. what
its single fit's ``(w * loss).mean()`` gives; the optimizer then steps the members that had a
batch.
"""

from __future__ import annotations

import torch

from ._lean import LeanStackedStep, lean_applies, window


def train_stacked(
    model,
    optimizer,
    loss,
    batches,
    X,
    y,
    *,
    max_epochs,
    weights=None,
    weight_scale=None,
    on_epoch_end=None,
    lean=True,
    average=None,
):
    r"""Train a :class:`StackedMLP` for ``max_epochs`` epochs; return the training losses.

    Parameters
    ----------
    model : StackedMLP
        The ``M`` members, trained in place.
    optimizer : StackedAdamW or StackedAdam
        Optimizer over ``model.flat_params`` / ``model.flat_grads``.
    loss : StackedLoss
        Per-member per-sample losses.
    batches : MemberBatches
        Per-member index batches into ``X`` and ``y``.
    X : Tensor of shape (N, n_features)
        Shared training data, in the model's dtype and on its device.
    y : Tensor of shape (N,) or (N, L)
        Shared targets: 0/1 labels in ``X``'s dtype (binary), class indices (multiclass) or
        a 0/1 indicator matrix (multilabel).
    max_epochs : int
        Number of epochs.
    weights : Tensor of shape (N,) or (M, N), default=None
        Per-sample weights: shared by all members (times ``weight_scale``), or one row per
        member (each normalised on its own training rows, as its single fit does).
    weight_scale : Tensor of shape (M,), default=None
        Per-member factor of shared ``weights`` (e.g. one over their mean on the member's
        training rows).
    on_epoch_end : callable or list of callables, default=None
        Called as ``on_epoch_end(epoch, train_loss)`` after each epoch with that epoch's
        ``(M,)`` losses (e.g. to validate, snapshot or freeze members, or to report
        progress); a list is called in its order. Training ends early when one returns True
        (every member has stopped).
    lean : bool, default=True
        Take the autograd-free step (:mod:`~skfocal._engines._stacked._lean`) where it
        applies (binary or multiclass members of one hidden layer without dropout, one
        loss group); it then also computes only the run of members that train in a step.
        False: autograd's step for every stack (the reference the tests compare the lean
        step with).
    average : StackedAverage, default=None
        Moving averages of the weights of some members, moved after every step in which
        those members are updated (:mod:`~skfocal._engines._stacked._average`).

    Returns
    -------
    history : Tensor of shape (n_epochs, M)
        Every member's mean weighted training loss per epoch trained (skorch's
        ``train_loss``; ``n_epochs <= max_epochs``). A member whose loss is not finite is
        frozen at the end of that epoch. With the lean step, a member frozen for a whole
        epoch (from the second on) is not computed, and its last recorded loss is repeated.

    Examples
    --------
    >>> import torch
    >>> from skfocal._module import MLP
    >>> from skfocal._sampling import EpochSampler
    >>> from skfocal._engines._stacked import (MemberBatches, MemberLoss, StackedAdamW, StackedLoss,
    ...                               StackedMLP, train_stacked)
    >>> _ = torch.manual_seed(0)
    >>> X, y = torch.randn(40, 3), (torch.rand(40) < 0.3).float()
    >>> model = StackedMLP([MLP(3, 1, (8,)) for _ in range(2)])
    >>> opt = StackedAdamW(model.flat_params, model.flat_grads, lr=[1e-2, 3e-2])
    >>> from skfocal._targets import BINARY
    >>> loss = StackedLoss(BINARY, [MemberLoss(gamma=2.0), MemberLoss(gamma=0.0)], 1)
    >>> folds = [torch.arange(0, 30), torch.arange(10, 40)]
    >>> samplers = [EpochSampler(30, torch.Generator().manual_seed(s)) for s in (1, 2)]
    >>> batches = MemberBatches(samplers, folds, batch_size=8)
    >>> train_stacked(model, opt, loss, batches, X, y, max_epochs=3).shape
    torch.Size([3, 2])
    """
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 0:
        raise ValueError(f"max_epochs must be an int >= 0, got {max_epochs!r}.")
    n_members = model.n_members
    for name, other in (("optimizer", optimizer), ("loss", loss), ("batches", batches)):
        if other.n_members != n_members:
            raise ValueError(f"{name} has {other.n_members} members but the model has {n_members}.")
    if X.dim() != 2 or X.shape[1] != model.n_features:
        raise ValueError(f"X must have shape (N, {model.n_features}), got {tuple(X.shape)}.")
    if len(y) != len(X):
        raise ValueError(f"X and y must have as many rows, got {len(X)} and {len(y)}.")
    per_member = weights is not None and weights.dim() == 2
    if weights is not None and weights.shape[-1] != len(X):
        raise ValueError(
            f"weights must have shape (N,) or (M, N) with N={len(X)}, got {tuple(weights.shape)}."
        )
    if per_member and weights.shape[0] != n_members:
        raise ValueError(f"weights must have {n_members} rows, got {weights.shape[0]}.")
    scale = None if weight_scale is None else weight_scale.reshape(-1, 1).to(X.dtype)
    if on_epoch_end is None:
        listeners = []
    elif callable(on_epoch_end):
        listeners = [on_epoch_end]
    else:
        listeners = list(on_epoch_end)
    history = torch.zeros(max_epochs, n_members, dtype=torch.float64)
    model.train()
    lean_step = LeanStackedStep(model, loss) if lean and lean_applies(model, loss) else None
    if lean_step is not None:
        X, y = X.detach(), y.detach()
    spans = _Spans(n_members)
    weighting = None if weights is None else (weights, per_member, scale)
    for epoch in range(max_epochs):
        total = torch.zeros(n_members, dtype=X.dtype, device=X.device)
        if lean_step is not None:
            # members frozen for the whole epoch are not computed (from the second epoch on,
            # so that every member has a recorded loss to repeat)
            spans.start_epoch([True] * n_members if epoch == 0 else (~optimizer.frozen).tolist())
            for k, batch in enumerate(batches.epoch()):
                span = spans.of_step(k, batch.active)
                if span is None:  # nobody trains in this step
                    continue
                lo, hi = span
                rows = slice(None) if hi - lo == n_members else slice(lo, hi)
                idx = batch.idx[rows]
                row_weight = batch.row_weight
                if isinstance(row_weight, torch.Tensor):
                    row_weight = row_weight[rows]
                wb = _batch_weights(weighting, idx, rows)
                scaled = lean_step(X, y, idx, row_weight, wb, lo, hi)
                stepped = optimizer.step(active=batch.active)
                if average is not None and stepped:
                    average.update(stepped)
                total[rows].addcmul_(scaled.sum(1), batch.counts[rows])
        else:
            for batch in batches.epoch():
                idx = batch.idx
                yb = y.index_select(0, idx.reshape(-1)).view(*idx.shape, *y.shape[1:])
                per_sample = loss(model(X, rows=idx, reuse_buffers=True), yb)
                wb = _batch_weights(weighting, idx, slice(None))
                if wb is not None:
                    per_sample = per_sample * wb
                scaled = per_sample * batch.row_weight
                model.zero_grad()
                scaled.sum().backward()
                stepped = optimizer.step(active=batch.active)
                if average is not None and stepped:
                    average.update(stepped)
                with torch.no_grad():
                    total += scaled.sum(1) * batch.counts
        epoch_loss = (total / torch.tensor(batches.n_rows, device=X.device)).double().cpu()
        if lean_step is not None and epoch:
            skipped = torch.tensor([not c for c in spans.computed])
            if bool(skipped.any()):  # not computed this epoch: repeat the last recorded loss
                epoch_loss[skipped] = history[epoch - 1, skipped]
        history[epoch] = epoch_loss
        failed = ~torch.isfinite(epoch_loss)
        if bool(failed.any()):
            optimizer.freeze(failed)
        if any([bool(listener(epoch, epoch_loss)) for listener in listeners]):
            return history[: epoch + 1]
    return history


def _batch_weights(weighting, idx, rows):
    """Per-sample weights of a step's ``(k, B)`` rows ``idx`` (members ``rows``), or None."""
    if weighting is None:
        return None
    weights, per_member, scale = weighting
    if per_member:
        return weights[rows].gather(1, idx)
    wb = weights.index_select(0, idx.reshape(-1)).view(idx.shape)
    return wb if scale is None else wb * scale[rows]


class _Spans:
    """Per step of an epoch, the run of members that a lean step computes (cached)."""

    def __init__(self, n_members):
        self.n_members = n_members
        self.live = None
        self.spans = {}
        self.computed = [False] * n_members

    def start_epoch(self, live):
        """The members not frozen for this epoch; the cache holds while they stay the same."""
        if live != self.live:
            self.live, self.spans = live, {}
        self.computed = [False] * self.n_members

    def of_step(self, k, active):
        """``(lo, hi)`` of step ``k`` (whose members with a batch are ``active``), or None."""
        span = self.spans.get(k, False)
        if span is False:
            members = self.live
            if active is not None:
                members = [a and m for a, m in zip(active.tolist(), members, strict=True)]
            span = self.spans[k] = window(members)
        if span is not None:
            lo, hi = span
            self.computed[lo:hi] = [True] * (hi - lo)
        return span
