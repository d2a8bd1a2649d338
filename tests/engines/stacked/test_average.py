"""Per-member moving averages of a stacked model's weights."""

import pytest
import torch

from skfocal._engines._stacked._average import StackedAverage
from skfocal._engines._stacked._mlp import StackedMLP
from skfocal._module import MLP


def _model(n_members=4):
    torch.manual_seed(0)
    mlps = [MLP(3, 1, (5,)).double() for _ in range(n_members)]
    return StackedMLP(mlps)


@pytest.mark.parametrize("rows", [[0, 1, 2, 3], [1, 3], [2]])
def test_update_moves_only_the_updated_members_with_an_average(seed, rows):
    model = _model()
    weights = [0.25, None, 1.0, 0.1]  # member 1 keeps none
    average = StackedAverage(model, weights)
    start = average.average.clone()
    with torch.no_grad():
        model.flat_params.add_(torch.randn_like(model.flat_params))
    average.update(rows)
    average.update(rows)  # the cached index of the same rows
    trained = model.flat_params.detach()
    for m, w in enumerate(weights):
        want = start[m]
        if m in rows and w is not None:
            want = torch.lerp(torch.lerp(want, trained[m], w), trained[m], w)
        torch.testing.assert_close(average.average[m], want, rtol=0, atol=1e-15)


def test_averaged_and_trained_weights_swap_back_exactly(seed):
    model = _model()
    average = StackedAverage(model, [0.5, None, 1 / 3, None])
    with torch.no_grad():
        model.flat_params.add_(torch.randn_like(model.flat_params))
    average.update([0, 1, 2, 3])
    trained = model.flat_params.detach().clone()
    average.averaged_weights()
    average.averaged_weights()  # no-op: the trained weights stay kept once
    flat = model.flat_params.detach()
    torch.testing.assert_close(flat[[0, 2]], average.average[[0, 2]], rtol=0, atol=0)
    torch.testing.assert_close(flat[[1, 3]], trained[[1, 3]], rtol=0, atol=0)
    average.train_weights()
    torch.testing.assert_close(model.flat_params.detach(), trained, rtol=0, atol=0)
