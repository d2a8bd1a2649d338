r"""Per-member moving averages of the weights of a stacked model (``weight_averaging``).

Member :math:`m` with ``weight_averaging`` :math:`h_m` keeps, after each step in which it is
updated (it had a batch and is not frozen),

.. math::

    \bar w_m \leftarrow \bar w_m + \frac{1}{h_m S_m}\,(w_m - \bar w_m)

from its initial weights, :math:`S_m` the steps of its epoch -- what its single fit's
:class:`~skfocal._engines._net.WeightAverage` does, with the same weight
(:func:`~skfocal._engines._net.averaging_weight`) and the same ``lerp``. Members without
``weight_averaging`` keep no average. :meth:`StackedAverage.averaged_weights` puts the
averages in the model for validation (and for early stopping's snapshots of the best
epochs), :meth:`StackedAverage.train_weights` puts the trained weights back before the next
epoch, and the averages are the members' weights after training.
"""

from __future__ import annotations

import torch


class StackedAverage:
    """Moving averages of some members' rows of ``model.flat_params``.

    Parameters
    ----------
    model : StackedMLP
    weights : list of (float or None)
        Per member, the weight of a step :math:`1 / (h_m S_m)`
        (:func:`~skfocal._engines._net.averaging_weight`; None: no average).
    """

    def __init__(self, model, weights):
        self.flat = model.flat_params
        self.on = [w is not None for w in weights]
        device, dtype = self.flat.device, self.flat.dtype
        self.members = torch.tensor(
            [m for m, on in enumerate(self.on) if on], dtype=torch.long, device=device
        )
        self.weight = torch.tensor(
            [[1.0 if w is None else w] for w in weights],
            dtype=dtype,
            device=device,
        )
        with torch.no_grad():
            self.average = self.flat.detach().clone()
        self.trained = None
        self._steps = {}  # stepped members -> (index, weight column) of those with an average

    @torch.no_grad()
    def update(self, rows):
        """Move the averages of the updated members ``rows`` (indices) towards their weights."""
        key = tuple(rows)
        entry = self._steps.get(key, False)
        if entry is False:
            index = [m for m in rows if self.on[m]]
            entry = None
            if index:
                index = torch.tensor(index, dtype=torch.long, device=self.flat.device)
                entry = (index, self.weight.index_select(0, index))
            self._steps[key] = entry
        if entry is None:
            return
        index, weight = entry
        average = self.average.index_select(0, index)
        weights = self.flat.detach().index_select(0, index)
        self.average.index_copy_(0, index, torch.lerp(average, weights, weight))

    @torch.no_grad()
    def averaged_weights(self):
        """Put the averages in the model (no-op when they are there)."""
        if self.trained is None and len(self.members):
            flat = self.flat.detach()
            self.trained = flat.index_select(0, self.members)
            flat.index_copy_(0, self.members, self.average.index_select(0, self.members))

    @torch.no_grad()
    def train_weights(self):
        """Put the trained weights back (no-op when they are there)."""
        if self.trained is not None:
            self.flat.detach().index_copy_(0, self.members, self.trained)
            self.trained = None
