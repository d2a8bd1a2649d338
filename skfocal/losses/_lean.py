"""The lean path of a training loop: a criterion's batch-mean twin and the epoch's losses.

:func:`mean_loss` gives the lean batch mean of a criterion where it has one (the focal
losses': :class:`~skfocal.losses._focal.SoftmaxFocalMean`,
:class:`~skfocal.losses._focal.SigmoidFocalMean`); :func:`batch_losses` sums an epoch's batch
losses, which those return as factor pairs, at once.
"""

from __future__ import annotations

import torch

from ._focal import BinaryFocalLoss, FocalLoss, SigmoidFocalMean, SoftmaxFocalMean


def mean_loss(criterion):
    """The lean batch-mean twin of a ``reduction="none"`` focal criterion, or None.

    Only where the criterion's ``"mean"`` is the plain mean of its per-sample losses: the
    sigmoid focal loss (its mean divides by the element count; a multilabel sample's loss is
    the mean over its labels) and the softmax focal loss without ``alpha`` (with class
    weights its mean divides by their sum, like ``F.cross_entropy``).
    """
    if type(criterion) is BinaryFocalLoss and criterion.reduction == "none":
        return SigmoidFocalMean(criterion.gamma, criterion.alpha, criterion.pos_weight)
    if type(criterion) is FocalLoss and criterion.reduction == "none" and criterion.alpha is None:
        return SoftmaxFocalMean(criterion.gamma, criterion.ignore_index)
    return None


def batch_losses(losses):
    """The values of a list of batch losses as one tensor (float64 where any was a pair).

    The entries are 0-dim tensors, or the pairs ``(f, g)`` of ``value_and_grad`` whose loss
    is ``sum(f * g)``. Pairs are multiplied and summed for all batches at once -- a
    concatenation, one product and one ``index_add_`` in float64, instead of a ``vdot`` per
    batch -- which is what a training loop that reads its losses back once per epoch needs.
    """
    if not any(type(loss) is tuple for loss in losses):
        return torch.stack(losses)
    pairs = [loss for loss in losses if type(loss) is tuple]
    if len(pairs) != len(losses):  # mixed (not produced by one fit): one at a time
        return torch.stack(
            [
                torch.vdot(loss[0].reshape(-1), loss[1].reshape(-1)).double()
                if type(loss) is tuple
                else loss.double()
                for loss in losses
            ]
        )
    f, g = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
    device = f.device
    sizes = [p[0].numel() for p in pairs]
    lengths = torch.tensor(sizes, device=device)
    batch = torch.repeat_interleave(  # output_size: no device synchronisation for the sum
        torch.arange(len(pairs), device=device), lengths, output_size=sum(sizes)
    )
    products = torch.mul(f, g).view(-1).double()
    return torch.zeros(len(pairs), dtype=torch.float64, device=device).index_add_(
        0, batch, products
    )
