r"""Progress of a stacked run, printed after its epochs (``verbose >= 1``).

One line when the run starts, one per reported epoch (members still training, stopped
early, failed; time elapsed and left) and one when it ends, in the manner of scikit-learn's
searches (``[CV 1/5] END ...``), skorch's epoch table and joblib's ``elapsed: 1.2s
remaining: 3.4s``::

    [group 1/1] 45 members: MLP (64,), batch 256, max_epochs 50
    [group 1/1] epoch  1/50: 45/45 training, 0 stopped early, 0 failed | 0.4s, ~19.6s left
    ...
    [group 1/1] done in 20.1s: 50 epochs; 45 members trained to the end, 0 stopped early, 0 failed

The estimate of what remains is the mean epoch's time so far times the epochs left to
``max_epochs`` (an upper bound when members stop early: the run ends once all have). At
``verbose=1`` an epoch is reported when a second has passed since the last report, when a
member stops or fails, and at the first and last epoch; at ``verbose >= 2`` every epoch.
"""

from __future__ import annotations

import time

import numpy as np


class EpochProgress:
    """Prints the progress of one stacked run (see the module docstring).

    Parameters
    ----------
    label : str
        What the lines start with, e.g. ``"group 1/2"`` or ``"group 1/1, chunk 2/4"``.
    verbose : int, default=1
        1: throttled epoch lines; 2 and more: every epoch.
    interval : float, default=1.0
        Seconds between two epoch lines at ``verbose=1``.

    Examples
    --------
    >>> from skfocal._engines._stacked._progress import EpochProgress
    >>> progress = EpochProgress("group 1/1", verbose=2)
    >>> progress.begin(3, max_epochs=2, description="MLP (8,)")
    [group 1/1] 3 members: MLP (8,)
    >>> progress.epoch(0, [0.5, float("nan"), 0.4], stopped=[False, True, False])
    [group 1/1] epoch 1/2: 2/3 training, 0 stopped early, 1 failed | ...s, ~...s left
    >>> progress.epoch(1, [0.4, float("nan"), 0.3], stopped=[True, True, False])
    [group 1/1] epoch 2/2: 1/3 training, 1 stopped early, 1 failed | ...s, ~0.0s left
    >>> progress.end()
    [group 1/1] done in ...s: 2 epochs; 1 members trained to the end, 1 stopped early, 1 failed
    """

    def __init__(self, label, verbose=1, interval=1.0):
        self.label = label
        self.verbose = verbose
        self.interval = interval

    def _print(self, text):
        print(f"[{self.label}] {text}", flush=True)

    def begin(self, n_members, max_epochs, description=""):
        """The run starts: ``n_members`` members for at most ``max_epochs`` epochs."""
        self.n_members, self.max_epochs = n_members, max_epochs
        self.failed = np.zeros(n_members, dtype=bool)
        self.counts = (0, 0)
        self.start = self.last = time.perf_counter()
        self.epochs = 0
        self._print(f"{n_members} members{': ' + description if description else ''}")

    def epoch(self, epoch, train_loss, stopped):
        """Epoch ``epoch`` (0-based) ended with ``train_loss`` (M,); ``stopped`` flags (M,)."""
        now = time.perf_counter()
        self.epochs = epoch + 1
        self.failed |= ~np.isfinite(np.asarray(train_loss, dtype=float))
        stopped = np.asarray(stopped, dtype=bool) | self.failed
        counts = (int(stopped.sum() - self.failed.sum()), int(self.failed.sum()))
        last = self.epochs == self.max_epochs or bool(stopped.all())
        due = self.verbose >= 2 or now - self.last >= self.interval or self.epochs == 1
        if not (due or last or counts != self.counts):
            return
        self.counts, self.last = counts, now
        elapsed = now - self.start
        remaining = 0.0 if last else elapsed / self.epochs * (self.max_epochs - self.epochs)
        width = len(str(self.max_epochs))
        self._print(
            f"epoch {self.epochs:>{width}}/{self.max_epochs}: "
            f"{self.n_members - int(stopped.sum())}/{self.n_members} training, {counts[0]} "
            f"stopped early, {counts[1]} failed | {elapsed:.1f}s, ~{remaining:.1f}s left"
        )

    def end(self):
        """The run ended (after its last epoch)."""
        early, failed = self.counts
        full = self.n_members - early - failed
        self._print(
            f"done in {time.perf_counter() - self.start:.1f}s: {self.epochs} epochs; {full} "
            f"members trained to the end, {early} stopped early, {failed} failed"
        )
