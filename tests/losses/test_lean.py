"""An epoch's batch losses summed at once (skfocal/losses/_lean.py)."""

import pytest
import torch

from skfocal.losses._focal import SigmoidFocalMean, SoftmaxFocalMean
from skfocal.losses._lean import batch_losses


@pytest.mark.parametrize("kind", ["sigmoid", "softmax"])
def test_batch_losses_sum_each_batch_of_an_epoch_at_once(seed, kind):
    """An epoch's batches (the last one shorter) summed at once equal each batch's loss."""
    sizes = [64, 64, 64, 17]
    if kind == "softmax":
        twin = SoftmaxFocalMean(2.0)
        batches = [
            (torch.randn(n, 5, dtype=torch.float64), torch.randint(0, 5, (n,))) for n in sizes
        ]
    else:
        twin = SigmoidFocalMean(2.0, alpha=0.3)
        batches = [
            (torch.randn(n, dtype=torch.float64), (torch.rand(n) < 0.3).double()) for n in sizes
        ]
    losses = [twin.value_and_grad(x, y)[0] for x, y in batches]
    assert all(type(loss) is tuple for loss in losses)
    expected = torch.stack([twin(x, y) for x, y in batches])
    torch.testing.assert_close(batch_losses(losses), expected, rtol=1e-12, atol=0.0)


def test_batch_losses_keep_tensors_mixed_entries_and_non_finite_values():
    plain = [torch.tensor(0.5), torch.tensor(1.5)]
    torch.testing.assert_close(batch_losses(plain), torch.tensor([0.5, 1.5]))
    pair = (torch.tensor([1.0, 2.0]), torch.tensor([3.0, float("nan")]))
    values = batch_losses([torch.tensor(0.25), pair, (torch.ones(1), torch.full((1,), 2.0))])
    assert values.dtype == torch.float64
    assert values[0] == 0.25 and torch.isnan(values[1]) and values[2] == 2.0
    inf = batch_losses(
        [(torch.tensor([float("inf")]), torch.ones(1)), (torch.ones(2), torch.ones(2))]
    )
    assert inf[0] == float("inf") and inf[1] == 2.0
