"""MemberBatches: every member gets exactly the batches of its single fit."""

import pytest
import torch

from skfocal._engines._net import BatchIterator, FitData, TensorPart
from skfocal._engines._stacked import MemberBatches

from ._reference import make_sampler


def _single_fit_batches(n_total, rows, seed, batch_size, n_epochs, y=None, power=None):
    """Rows of every batch of the single fit's own iterator (``_engines._net.BatchIterator``)."""
    X = torch.arange(n_total, dtype=torch.float64).unsqueeze(1)  # a row's value is its index
    y_all = torch.zeros(n_total) if y is None else y
    y_train = None if power is None else y_all[rows]
    sampler = make_sampler(len(rows), seed, y_train, 3 if power is not None else None, power)
    data = FitData(X, y_all, None, rows, None, sampler)
    iterator = BatchIterator(TensorPart(data, rows, sampler), batch_size, training=True)
    return [[Xb[:, 0].long() for Xb, _ in iterator] for _ in range(n_epochs)]


@pytest.mark.parametrize("power", [None, 0.0])
def test_batches_equal_single_fit_batches(power, seed):
    n_total, batch_size = 50, 8
    y = torch.randint(0, 3, (n_total,))
    folds = [
        torch.arange(0, 40),  # 5 full batches
        torch.arange(10, 50),  # 5 full batches
        torch.arange(3, 37),  # 34 rows: 4 full batches and one of 2
        torch.arange(0, 50, 2),  # 25 rows: 3 full batches and one of 1
        torch.arange(20, 25),  # fewer rows than batch_size: one batch of 5
        torch.arange(0, 49),  # 49 rows: 6 full batches and one of 1 (the most steps)
    ]
    seeds = [3, 1, 4, 1, 5, 9]  # members 1 and 3 share a seed, not a generator
    samplers = [
        make_sampler(len(f), s, None if power is None else y[f], 3, power)
        for f, s in zip(folds, seeds, strict=True)
    ]
    batches = MemberBatches(samplers, folds, batch_size, dtype=torch.float64)
    assert len(batches) == 7 and batches.width == 8
    assert batches.batch_sizes == [8, 8, 8, 8, 5, 8]
    expected = [
        _single_fit_batches(n_total, f, s, batch_size, 3, y, power)
        for f, s in zip(folds, seeds, strict=True)
    ]
    for epoch in range(3):
        steps = list(batches.epoch())
        assert len(steps) == 7
        for m in range(len(folds)):
            mine = expected[m][epoch]
            for k, step in enumerate(steps):
                count = int(step.counts[m])
                if k < len(mine):
                    assert count == len(mine[k])
                    assert torch.equal(step.idx[m, :count], mine[k])
                    assert not step.idx[m, count:].any()  # padding: row 0
                    weight = step.row_weight
                    if isinstance(weight, float):
                        assert count == 8 and weight == 1 / 8
                    else:
                        torch.testing.assert_close(
                            weight[m], (torch.arange(8) < count).double() / count
                        )
                else:
                    assert count == 0 and not step.idx[m].any()
                    assert step.active is not None and not step.active[m]
                    assert not step.row_weight[m].any()
        for step in steps:
            assert (step.active is None) == bool((step.counts > 0).all())
            assert not isinstance(step.row_weight, float)  # member 4 has batches of 5 rows


def test_positions_without_train_idx_are_rows(seed):
    samplers = [make_sampler(10, 0), make_sampler(10, 1)]
    batches = MemberBatches(samplers, [None, None], batch_size=4)
    steps = list(batches.epoch())
    assert [tuple(s.idx.shape) for s in steps] == [(2, 4)] * 3
    assert steps[-1].counts.tolist() == [2.0, 2.0] and steps[-1].active is None
    assert [s.row_weight for s in steps[:2]] == [0.25, 0.25]  # full batches: one float
    rows = torch.cat([s.idx[0, : int(s.counts[0])] for s in steps])
    assert torch.equal(rows, make_sampler(10, 0)())


def test_sampler_without_n_rows_uses_train_idx():
    rows = torch.tensor([5, 6, 7])
    batches = MemberBatches([lambda: torch.tensor([2, 0, 1])], [rows], batch_size=2)
    assert batches.n_rows == [3]
    steps = list(batches.epoch())
    assert steps[0].idx.tolist() == [[7, 5]] and steps[1].idx.tolist() == [[6, 0]]


def test_errors():
    sampler = make_sampler(4, 0)
    with pytest.raises(ValueError, match="samplers must hold one sampler per member, got none"):
        MemberBatches([], [], 2)
    with pytest.raises(ValueError, match=r"train_idx must hold one entry per member \(1\), got 2"):
        MemberBatches([sampler], [None, None], 2)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        MemberBatches([sampler], [None], 0)
    with pytest.raises(TypeError, match=r"samplers\[0\] must be callable, got int"):
        MemberBatches([3], [None], 2)
    with pytest.raises(ValueError, match=r"samplers\[0\] has no n_rows and train_idx\[0\] is None"):
        MemberBatches([lambda: torch.arange(3)], [None], 2)
    with pytest.raises(
        ValueError, match=r"samplers\[0\] must draw n_rows=3 positions per epoch, got 2"
    ):
        next(MemberBatches([lambda: torch.arange(2)], [torch.arange(3)], 2).epoch())
    with pytest.raises(ValueError, match=r"member 0 has no training rows \(n_rows=0\)"):
        MemberBatches([lambda: torch.arange(0)], [torch.arange(0)], 2)
