"""The lean path of a training loop: an epoch's batch losses summed at once.

A criterion's lean batch mean is its own (``criterion._lean_mean()``: the focal losses'
``SoftmaxFocalMean`` / ``SigmoidFocalMean`` in ``_focal.py``, None for the others); its
``value_and_grad`` returns a batch's loss as a pair of factors, which :func:`batch_losses`
multiplies and sums for a whole epoch.
"""

from __future__ import annotations

import torch


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
