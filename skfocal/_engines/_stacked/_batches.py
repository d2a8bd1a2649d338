r"""Per-member minibatches of ``M`` stacked fits as index matrices into one shared ``X``.

Member ``m`` has its own training rows ``train_idx[m]`` (``n_m`` of them) and its own epoch
sampler (an :class:`~skfocal._sampling.EpochSampler` with its own seeded generator, i.e. the
one its single fit would build), and its single fit would train on the batches

.. math::

    \text{rows}_m = \text{train\_idx}_m[\text{sampler}_m()], \qquad
    \text{batch}_{m,k} = \text{rows}_m[k\,b_m : (k+1)\,b_m], \quad
    b_m = \max(1, \min(\text{batch\_size}, n_m)).

Every epoch draws each member's order once, in member order, so that each generator goes
through exactly the draws of its single fit. Step ``k`` of the stack gathers the ``(M, B)``
index matrix of all members' ``k``-th batches (``B = max_m b_m``); ``X.index_select`` then
gives the ``(M, B, n_features)`` inputs, with no per-member copy of ``X``. A member whose
batch is shorter (its last one) is padded with row 0, and a member that has no ``k``-th batch
(fewer rows) is padded entirely and marked inactive (its optimizer must skip the step). The
per-row factor ``row_weight`` is :math:`1 / |\text{batch}_{m,k}|` on real rows and 0 on
padding, so that :math:`\sum_{b} \text{row\_weight}_{m,b}\,\ell_{m,b}` is member ``m``'s batch
mean, exactly the quantity its single fit differentiates.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Batch(NamedTuple):
    """One step of the stack.

    Attributes
    ----------
    idx : LongTensor of shape (M, B)
        Rows of the shared data (padding: row 0).
    row_weight : float or Tensor of shape (M, B)
        ``1 / B`` when every member has a full batch of ``B`` rows, else per row
        ``1 / |batch_m|`` (0 on padding).
    counts : Tensor of shape (M,)
        Number of real rows of each member's batch (0: no batch this step), in the dtype of
        ``row_weight``'s tensors.
    active : BoolTensor of shape (M,) or None
        Members with a batch in this step; None when all have one.
    """

    idx: torch.Tensor
    row_weight: float | torch.Tensor
    counts: torch.Tensor
    active: torch.Tensor | None


class MemberBatches:
    """Epochs of ``(M, B)`` index batches, each member drawing its rows like its single fit.

    Parameters
    ----------
    samplers : sequence of callable
        ``samplers[m]()`` returns the positions (into member ``m``'s training rows) of one
        epoch, e.g. an :class:`~skfocal._sampling.EpochSampler`; its length is the number of
        draws per epoch. ``samplers[m].n_rows`` (or else ``len(train_idx[m])``) gives ``n_m``.
    train_idx : sequence of LongTensor or None
        Member ``m``'s training rows of the shared data; None means the positions are rows.
    batch_size : int
        Batch size of every member (capped at its number of rows, as in a single fit).
    dtype : torch.dtype, default=torch.float32
        Dtype of ``row_weight`` and ``counts`` (that of the losses).
    device : torch.device or str, default=None
        Device of the index matrices (that of the samplers' generators and of ``X``).

    Examples
    --------
    >>> import torch
    >>> from skfocal._sampling import EpochSampler
    >>> from skfocal._engines._stacked import MemberBatches
    >>> train_idx = [torch.tensor([0, 1, 2, 3, 4]), torch.tensor([2, 3, 4, 5])]
    >>> samplers = [EpochSampler(len(t), torch.Generator().manual_seed(s))
    ...             for s, t in enumerate(train_idx)]
    >>> batches = MemberBatches(samplers, train_idx, batch_size=2)
    >>> len(batches), [tuple(b.idx.shape) for b in batches.epoch()]
    (3, [(2, 2), (2, 2), (2, 2)])
    >>> last = list(batches.epoch())[-1]
    >>> last.counts, last.active
    (tensor([1., 0.]), tensor([ True, False]))
    """

    def __init__(self, samplers, train_idx, batch_size, *, dtype=torch.float32, device=None):
        samplers, train_idx = list(samplers), list(train_idx)
        if not samplers:
            raise ValueError("samplers must hold one sampler per member, got none.")
        if len(train_idx) != len(samplers):
            raise ValueError(
                f"train_idx must hold one entry per member ({len(samplers)}), got {len(train_idx)}."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
        n_rows = []
        for m, (sampler, rows) in enumerate(zip(samplers, train_idx, strict=True)):
            if not callable(sampler):
                raise TypeError(f"samplers[{m}] must be callable, got {type(sampler).__name__}.")
            n = getattr(sampler, "n_rows", None)
            if n is None:
                if rows is None:
                    raise ValueError(
                        f"samplers[{m}] has no n_rows and train_idx[{m}] is None: the number "
                        "of rows of the member is unknown."
                    )
                n = len(rows)
            if n < 1:
                raise ValueError(f"member {m} has no training rows (n_rows={n}).")
            n_rows.append(int(n))
        self.samplers = samplers
        self.train_idx = [
            None if rows is None else torch.as_tensor(rows, device=device).long()
            for rows in train_idx
        ]
        self.device = device
        self.n_members = len(samplers)
        self.n_rows = n_rows
        self.batch_sizes = [max(1, min(batch_size, n)) for n in n_rows]
        self.n_batches = [-(-n // b) for n, b in zip(n_rows, self.batch_sizes, strict=True)]
        self.width = max(self.batch_sizes)
        self.n_steps = max(self.n_batches)
        self._steps = [self._step_weights(k, dtype) for k in range(self.n_steps)]
        self._order = None

    def __len__(self):
        return self.n_steps

    def _step_weights(self, k, dtype):
        """``(row_weight, counts, active)`` of step ``k``: fixed by the sizes alone."""
        counts = [
            max(0, min(b, n - k * b)) for n, b in zip(self.n_rows, self.batch_sizes, strict=True)
        ]
        counts_t = torch.tensor(counts, dtype=dtype, device=self.device)
        if all(c == self.width for c in counts):
            return 1.0 / self.width, counts_t, None
        columns = torch.arange(self.width, device=self.device)
        real = columns < counts_t.unsqueeze(1)
        inverse = torch.where(counts_t > 0, 1.0 / counts_t.clamp_min(1), 0.0)
        row_weight = real.to(dtype) * inverse.unsqueeze(1)
        active = counts_t > 0
        return row_weight, counts_t, (None if bool(active.all()) else active.cpu())

    def epoch(self):
        """Draw every member's order for one epoch and yield its :class:`Batch` es.

        The index matrices are views of one buffer that the next epoch overwrites: use (or
        copy) an epoch's batches before drawing the next one.
        """
        if self._order is None:  # padding stays 0 from epoch to epoch
            self._order = torch.zeros(
                self.n_steps, self.n_members, self.width, dtype=torch.long, device=self.device
            )
        order = self._order
        for m, (sampler, rows) in enumerate(zip(self.samplers, self.train_idx, strict=True)):
            positions = sampler()
            b, n = self.batch_sizes[m], self.n_rows[m]
            if len(positions) != n:
                raise ValueError(
                    f"samplers[{m}] must draw n_rows={n} positions per epoch, got {len(positions)}."
                )
            member_rows = positions if rows is None else rows[positions]
            full = n // b
            if full:
                order[:full, m, :b] = member_rows[: full * b].view(full, b)
            if n > full * b:
                order[full, m, : n - full * b] = member_rows[full * b :]
        for k, (row_weight, counts, active) in enumerate(self._steps):
            yield Batch(order[k], row_weight, counts, active)
