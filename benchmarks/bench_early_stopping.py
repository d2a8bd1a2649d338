"""How early stopping on a ranking score fares with few minority rows in the validation part.

Binary ``make_classification`` data (20 features, 5 informative, 1 % of labels flipped) with
2,000 negatives and ``10 k`` positives, so that the default stratified validation part
(``validation_fraction=0.1``) holds ``k`` positives, and a test set of 20,000 rows with the
same positive rate. For every ``k`` and seed, ``FocalClassifier()`` (its defaults) trains for
``max_epochs`` epochs with the validation part held out, recording per epoch the validation
loss, the validation average precision (AP) or ROC AUC, and the test AP of the network. A
fit's trajectory does not depend on when it would stop, so the early-stopping rules are
replayed on the recorded epochs (patience ``n_iter_no_change=10``):

``loss``        the validation loss (``scoring=None``)
``<s>_skorch``  scorer ``s`` under skorch's rule, skfocal's previous one: an epoch improves
                only when the score beats the best by 1e-4 relative
``<s>``         scorer ``s`` under skfocal's rule (:func:`skfocal._early_stopping.improves`:
                a tie of the score with a lower validation loss improves too)
``none``        no early stopping: the last epoch

Printed per ``k``: for each rule, the median kept epoch, the mean over seeds of the kept
network's test AP relative to the best test AP of any epoch of the run (the oracle), and the
number of runs where it falls below 0.9 of the oracle (a barely trained or badly chosen
network).

Run from the repository root::

    python benchmarks/bench_early_stopping.py            # the study in the user guide
    python benchmarks/bench_early_stopping.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from skorch.callbacks import Callback

from skfocal import FocalClassifier
from skfocal._early_stopping import THRESHOLD, improves

SCORERS = {"ap": "average_precision", "auc": "roc_auc"}
PATIENCE = 10


class TestAP(Callback):
    """Records the test average precision of the network at the end of every epoch."""

    def __init__(self, X_test, y_test):
        self.X_test = X_test
        self.y_test = y_test

    def on_epoch_end(self, net, **kwargs):
        from sklearn.metrics import average_precision_score

        module = net.module_
        module.eval()
        with torch.no_grad():
            z = module(torch.as_tensor(self.X_test)).squeeze(-1).double().numpy()
        module.train()
        net.history.record("test_ap", average_precision_score(self.y_test, z))


def draw(k, seed, n_neg=2000, n_test=20000):
    """Fit and test rows: ``n_neg`` negatives and ``10 k`` positives to fit on."""
    from sklearn.datasets import make_classification

    rate = 10 * k / (n_neg + 10 * k)
    X, y = make_classification(
        n_samples=4 * (n_neg + n_test),
        n_features=20,
        n_informative=5,
        flip_y=0.01,
        weights=[0.5],
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    pos, neg = rng.permutation(np.flatnonzero(y == 1)), rng.permutation(np.flatnonzero(y == 0))
    n_test_pos = max(1, round(rate * n_test))
    fit = np.concatenate([pos[: 10 * k], neg[:n_neg]])
    test = np.concatenate([pos[10 * k : 10 * k + n_test_pos], neg[n_neg : n_neg + n_test]])
    return X[fit].astype(np.float32), y[fit], X[test].astype(np.float32), y[test]


def trajectory(X, y, X_test, y_test, scoring, seed, epochs):
    """Per-epoch ``(score, validation loss, test AP)`` of one fit that never stops."""
    clf = FocalClassifier(
        early_stopping=True,
        scoring=scoring,
        n_iter_no_change=epochs + 1,
        max_epochs=epochs,
        random_state=seed,
        callbacks=[("test_ap", TestAP(X_test, y_test))],
    )
    with warnings.catch_warnings():  # the warning this study sets the threshold of
        warnings.filterwarnings("ignore", message=".*too coarse to choose an epoch")
        clf.fit(X, y)
    h = clf.net_.history
    return (
        np.array(h[:, f"valid_{scoring}"]),
        np.array(h[:, "valid_loss"]),
        np.array(h[:, "test_ap"]),
    )


def skorch_improves(score, best, lower_is_better):
    """skorch's ``EarlyStopping._is_score_improved`` (relative threshold 1e-4)."""
    if lower_is_better:
        return score < best - THRESHOLD * best
    return score > best + THRESHOLD * best


def replay(score, loss, rule, lower_is_better=False):
    """Index of the epoch the rule keeps (the last improving one before patience runs out)."""
    best_s = np.inf if lower_is_better else -np.inf
    best_loss, kept, misses = np.inf, 0, 0
    for epoch, (s, v) in enumerate(zip(score, loss, strict=True)):
        if rule == "skorch":
            better = skorch_improves(s, best_s, lower_is_better)
        else:
            better = improves(s, v, best_s, best_loss, lower_is_better=lower_is_better)
        if better:
            best_s, best_loss, kept, misses = s, v, epoch, 0
        else:
            misses += 1
        if misses == PATIENCE:
            break
    return kept


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 8, 12, 20])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: k 1 and 5, 2 seeds")
    args = parser.parse_args()
    if args.quick:
        args.ks, args.seeds, args.epochs = [1, 5], 2, 12
    torch.set_num_threads(args.threads)
    print(
        f"torch threads: {torch.get_num_threads()}; seeds: {args.seeds}; max_epochs: "
        f"{args.epochs}; patience: {PATIENCE}; 2,000 negatives and 10 k positives to fit on, "
        "validation_fraction=0.1 (k positives held out)"
    )
    print(
        "cells: median kept epoch / mean test AP of the kept network relative to the run's "
        "best epoch / runs below 0.9 of it"
    )
    labels = ["none", "loss"] + [f"{s}{r}" for s in SCORERS for r in ("_skorch", "")]
    print(f"{'k':<3}{'oracle AP':>10}" + "".join(f"{label:>20}" for label in labels))
    start = time.perf_counter()
    for k in args.ks:
        kept = {label: [] for label in labels}
        ratio = {label: [] for label in labels}
        oracle = []
        for seed in range(args.seeds):
            X, y, X_test, y_test = draw(k, seed)
            for short, name in SCORERS.items():
                score, loss, test_ap = trajectory(X, y, X_test, y_test, name, seed, args.epochs)
                best = test_ap.max()
                choices = {
                    f"{short}_skorch": replay(score, loss, "skorch"),
                    short: replay(score, loss, "skfocal"),
                }
                if short == "ap":  # the same trajectory for every scorer: one loss replay
                    oracle.append(best)
                    choices["loss"] = replay(loss, loss, "skfocal", lower_is_better=True)
                    choices["none"] = len(loss) - 1
                for label, epoch in choices.items():
                    kept[label].append(epoch + 1)
                    ratio[label].append(test_ap[epoch] / best)
        cells = [
            f"{np.median(kept[label]):>4.0f} / {np.mean(ratio[label]):.3f} / "
            f"{int(np.sum(np.array(ratio[label]) < 0.9)):>2}"
            for label in labels
        ]
        print(f"{k:<3}{np.mean(oracle):>10.3f}" + "".join(f"{c:>20}" for c in cells), flush=True)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
