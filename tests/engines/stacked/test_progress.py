"""EpochProgress: which epochs a stacked run reports, and what a line says."""

import numpy as np
import pytest

from skfocal._engines._stacked import _progress
from skfocal._engines._stacked._progress import EpochProgress


@pytest.fixture
def clock(monkeypatch):
    """A perf_counter the test moves by hand."""
    now = [100.0]
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: now[0])
    return now


def _epochs(capsys):
    return [line for line in capsys.readouterr().out.splitlines() if "] epoch " in line]


def test_verbose_one_reports_first_last_changes_and_each_interval(clock, capsys):
    progress = EpochProgress("group 1/1", verbose=1, interval=1.0)
    progress.begin(4, max_epochs=10)
    for epoch in range(10):
        clock[0] += 0.3  # an epoch every 0.3 s: a line at most every ~4 epochs
        stopped = [epoch >= 6, False, False, False]  # a member stops at epoch 7
        progress.epoch(epoch, np.ones(4), stopped)
    reported = [int(line.split("epoch ")[1].split("/")[0]) for line in _epochs(capsys)]
    # the first (1); a second after it (5: 1.2 s); the stop (7); not 8-9 (0.3-0.6 s after 7);
    # the last (10)
    assert reported == [1, 5, 7, 10]


def test_verbose_two_reports_every_epoch(clock, capsys):
    progress = EpochProgress("g", verbose=2)
    progress.begin(2, max_epochs=5)
    for epoch in range(5):
        clock[0] += 0.01
        progress.epoch(epoch, np.ones(2), [False, False])
    assert len(_epochs(capsys)) == 5


def test_a_line_counts_members_and_estimates_what_is_left(clock, capsys):
    progress = EpochProgress("group 2/3", verbose=2)
    progress.begin(3, max_epochs=4, description="MLP (8,)")
    assert capsys.readouterr().out == "[group 2/3] 3 members: MLP (8,)\n"
    clock[0] += 2.0
    progress.epoch(0, [0.5, float("inf"), 0.4], [False, False, True])
    (line,) = _epochs(capsys)
    # a non-finite loss is a failure, not an early stop; 2 s per epoch, 3 epochs left
    assert line == (
        "[group 2/3] epoch 1/4: 1/3 training, 1 stopped early, 1 failed | 2.0s, ~6.0s left"
    )
    clock[0] += 2.0
    progress.epoch(1, [0.4, float("nan"), 0.4], [True, False, True])  # all done: the last line
    (line,) = _epochs(capsys)
    assert line.endswith("0/3 training, 2 stopped early, 1 failed | 4.0s, ~0.0s left")
    progress.end()
    assert capsys.readouterr().out == (
        "[group 2/3] done in 4.0s: 2 epochs; 0 members trained to the end, 2 stopped early, "
        "1 failed\n"
    )
