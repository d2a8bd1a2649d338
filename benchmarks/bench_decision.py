"""TunedDecisionClassifierCV: scikit-learn's thresholds on real sets, and the plateau rule.

``--parity`` (binary sets of :mod:`skfocal.datasets`): ``TunedDecisionClassifierCV`` and
scikit-learn's ``TunedThresholdClassifierCV`` around the same estimator (a
``QuantileTransformer`` and ``FocalClassifier(random_state=0)``), with the same stratified
5-fold split and the default grid of 100 thresholds, for ``scoring="f1"`` and
``"balanced_accuracy"``: are ``best_threshold_``, ``best_score_`` and the predictions on the
whole set equal? The exact comparison trains our members as scikit-learn does (clone and
fit); the default route, which trains them as one stacked run, is compared beside it (its
responses equal the single fits' to float32 rounding, so its thresholds may move by as much).
Also the time of each fit and of our decision search alone (our fit minus the members'
training).

``--plateau`` (multiclass): per-class offsets chosen to maximise macro-F1 with the near-optimal
tolerance ``PLATEAU_TOL`` at 0 (the plain maximum; the middle of tied maxima), 0.01 (the
default) and 0.03, then scored on held-out data:

* synthetic five-class data (``make_classification``, 3,000 training and 5,000 test
  samples, 12 seeds), logistic regression, inner stratified 5-fold;
* the multiclass sets page_blocks, yeast, satimage: outer stratified 5-fold; on each outer
  training part the out-of-fold log posteriors of ``FocalClassifier()`` (inner stratified
  5-fold) choose the offsets, which are applied to a ``FocalClassifier()`` refitted on that
  part and scored on the outer test part. The fits are shared by the tolerances: only the
  search differs.

Each prints the mean test macro-F1 per tolerance and the mean paired difference against the
default with its standard error.

``--time`` (``make_classification`` 20,000 x 20 float32, 10 % positives): wall time of
``TunedDecisionClassifierCV(FocalClassifier(), scoring="f1", cv=5)`` -- the five fold members
and the refit member trained as one stacked run, threshold search included -- against one
``FocalClassifier()`` fit, with scikit-learn's ``TunedThresholdClassifierCV`` (six fits)
beside; contenders interleaved after one warm-up round, ``--repeats`` rounds, medians; target:
tuned <= 2.0x one fit. The members see five times the rows of one fit (five training folds of
0.8 n and the refit on n), so the target asks a stacked step of six members to cost 2.5 times
less per member than a single fit's step; at this size (one thread) a single step is mostly
per-step overhead (about 0.19 ms), the six members' stacked step about 0.8 ms.

Run from the repository root::

    python benchmarks/bench_decision.py             # all three
    python benchmarks/bench_decision.py --parity    # one of them
    python benchmarks/bench_decision.py --quick     # smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, get_scorer
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer

from skfocal import (
    FocalClassifier,
    TunedDecisionClassifierCV,
    _decision,
    _decision_members,
    _decision_rules,
)
from skfocal._decision_metrics import Fold, Objective, metric_of, scorer_parts
from skfocal.datasets import load_imbalanced

PARITY_SETS = ["yeast4", "yeast6", "winequality-red-4", "abalone19", "SATIMAGE"]
MULTICLASS_SETS = ["page_blocks", "yeast", "satimage"]
TOLERANCES = (0.0, 0.01, 0.03)


def focal(quick):
    clf = FocalClassifier(random_state=0, max_epochs=5 if quick else 50)
    return make_pipeline(QuantileTransformer(n_quantiles=500, output_distribution="normal"), clf)


# -- (a) parity with scikit-learn ------------------------------------------------------------------
def parity(sets, quick):
    members_time = []
    original = _decision.fit_members
    fit_stacked = _decision_members._fit_stacked

    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        members_time.append(time.perf_counter() - start)
        return out

    _decision.fit_members = timed
    print("\n== parity with TunedThresholdClassifierCV (same folds, 100 thresholds)")
    header = (
        f"{'dataset':18s} {'scoring':18s} {'ours':>9s} {'sklearn':>9s} threshold score "
        "predict  ours s  sklearn s  search s  stacked: threshold rel. predict"
    )
    print(header)
    agree, stacked_agree = [], []
    for name in sets:
        X, y = load_imbalanced(name)
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        for scoring in ("f1", "balanced_accuracy"):
            stacked = TunedDecisionClassifierCV(focal(quick), scoring=scoring, cv=cv).fit(X, y)
            _decision_members._fit_stacked = lambda *args, **kwargs: None
            try:
                start = time.perf_counter()
                ours = TunedDecisionClassifierCV(focal(quick), scoring=scoring, cv=cv).fit(X, y)
                ours_s = time.perf_counter() - start
            finally:
                _decision_members._fit_stacked = fit_stacked
            start = time.perf_counter()
            theirs = TunedThresholdClassifierCV(focal(quick), scoring=scoring, cv=cv).fit(X, y)
            theirs_s = time.perf_counter() - start
            same = (
                ours.best_threshold_ == theirs.best_threshold_,
                ours.best_score_ == theirs.best_score_,
                bool(np.array_equal(ours.predict(X), theirs.predict(X))),
            )
            agree.append(all(same))
            moved = abs(stacked.best_threshold_ - theirs.best_threshold_) / max(
                abs(theirs.best_threshold_), 1e-12
            )
            same_predict = bool(np.array_equal(stacked.predict(X), theirs.predict(X)))
            stacked_agree.append(moved <= 1e-5 and same_predict)
            print(
                f"{name:18s} {scoring:18s} {ours.best_threshold_:9.5f} "
                f"{theirs.best_threshold_:9.5f} {same[0]!s:9s} {same[1]!s:5s} {same[2]!s:7s} "
                f"{ours_s:7.1f} {theirs_s:9.1f} {ours_s - members_time[-1]:9.2f}  "
                f"{moved:18.1e} {same_predict!s}"
            )
    _decision.fit_members = original
    print(f"all equal: {all(agree)} ({sum(agree)}/{len(agree)} fits)")
    print(
        "stacked route within 1e-5 relative, same predictions: "
        f"{all(stacked_agree)} ({sum(stacked_agree)}/{len(stacked_agree)} fits)"
    )


# -- (b) the plateau tolerance ---------------------------------------------------------------------
def _offsets(response, y, splits, tolerance, classes):
    folds = [
        Fold(y=np.searchsorted(classes, y[t]), response=response[t], weights=None)
        for _, t in splits
    ]
    scorer = get_scorer("f1_macro")
    objective = Objective(scorer, metric_of(scorer_parts(scorer)), classes, False)
    _decision_rules.PLATEAU_TOL = tolerance
    try:
        return _decision_rules.ClassOffsets(100).search(objective, folds)
    finally:
        _decision_rules.PLATEAU_TOL = 0.01


def _oof(make, X, y, splits, n_classes):
    response = np.zeros((len(y), n_classes))
    for train, test in splits:
        proba = make().fit(X[train], y[train]).predict_proba(X[test])
        response[test] = np.log(np.maximum(proba, np.finfo(np.float64).tiny))
    return response


def _test_scores(make, X_train, y_train, X_test, y_test, seed):
    classes = np.unique(y_train)
    splits = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(X_train, y_train))
    response = _oof(make, X_train, y_train, splits, len(classes))
    final = make().fit(X_train, y_train)
    test = np.log(np.maximum(final.predict_proba(X_test), np.finfo(np.float64).tiny))
    out = {}
    for tolerance in TOLERANCES:
        rule = _offsets(response, y_train, splits, tolerance, classes)
        out[tolerance] = f1_score(y_test, classes[rule.labels(test)], average="macro")
    out["argmax"] = f1_score(y_test, classes[test.argmax(axis=1)], average="macro")
    return out


def _print_tolerances(rows):
    default = np.array([r[0.01] for r in rows])
    print(f"{'offsets':28s} {'test macro-F1':>13s} {'minus tol 0.01':>15s} {'(SE)':>8s}")
    for key in ("argmax", *TOLERANCES):
        values = np.array([r[key] for r in rows])
        diff = values - default
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        label = "none (argmax)" if key == "argmax" else f"PLATEAU_TOL={key}"
        print(f"{label:28s} {values.mean():13.4f} {diff.mean():+15.4f} {se:8.4f}")


def plateau(sets, quick):
    print("\n== plateau tolerance: synthetic five-class data, logistic regression")
    rows = []
    for seed in range(2 if quick else 12):
        X, y = make_classification(
            n_samples=8000,
            n_classes=5,
            n_informative=5,
            n_clusters_per_class=1,
            weights=[0.6, 0.2, 0.1, 0.06, 0.04],
            flip_y=0.05,
            random_state=seed,
        )
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, train_size=3000, stratify=y, random_state=0
        )
        rows.append(_test_scores(LogisticRegression, X_train, y_train, X_test, y_test, seed))
    _print_tolerances(rows)
    print("\n== plateau tolerance: FocalClassifier() on the multiclass sets, outer 5-fold")
    rows = []
    for name in sets:
        X, y = load_imbalanced(name)
        outer = StratifiedKFold(5, shuffle=True, random_state=0)
        for fold, (train, test) in enumerate(outer.split(X, y)):
            if quick and fold > 0:
                break
            scores = _test_scores(lambda: focal(quick), X[train], y[train], X[test], y[test], fold)
            rows.append(scores)
            print(f"{name} fold {fold}: " + ", ".join(f"{k}: {v:.4f}" for k, v in scores.items()))
    _print_tolerances(rows)


def timing(quick, repeats):
    """One fit against the tuned decision (stacked members) and scikit-learn's tuned threshold."""
    from sklearn.model_selection import TunedThresholdClassifierCV

    rows, epochs = (2_000, 3) if quick else (20_000, "auto")
    X, y = make_classification(
        n_samples=rows, n_features=20, n_informative=10, weights=[0.9], random_state=0
    )
    X = X.astype(np.float32)
    # the defaults: on 20,000 rows early_stopping="auto" is on, patience ends the fit
    clf = FocalClassifier(max_epochs=epochs, random_state=0)
    runs = {
        "one FocalClassifier() fit": lambda: clf.fit(X, y),
        "TunedDecisionClassifierCV(cv=5)": lambda: TunedDecisionClassifierCV(
            clf, scoring="f1", cv=5
        ).fit(X, y),
        "sklearn TunedThresholdClassifierCV(cv=5)": lambda: TunedThresholdClassifierCV(
            clf, scoring="f1", cv=5
        ).fit(X, y),
    }
    for run in runs.values():  # warm-up: imports, probes
        run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    fitted = clf.fit(X, y)
    print(
        f"\n== Time: {rows:,} x 20, FocalClassifier(max_epochs={epochs!r}): one fit trains "
        f"{fitted.n_iter_} epochs (early stopping {fitted.early_stopping_}); median of "
        f"{repeats} interleaved rounds, torch threads {torch.get_num_threads()}"
    )
    base = float(np.median(times["one FocalClassifier() fit"]))
    for name, values in times.items():
        median = float(np.median(values))
        print(f"  {name:<44}{median:8.2f} s {median / base:6.2f}x")
    ratio = float(np.median(times["TunedDecisionClassifierCV(cv=5)"])) / base
    verdict = "met" if ratio <= 2.0 else "MISSED"
    print(f"  tuned decision / one fit: {ratio:.2f}x  target <= 2.0: {verdict}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parity", action="store_true")
    parser.add_argument("--plateau", action="store_true")
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of --time")
    parser.add_argument("--quick", action="store_true", help="one set each, 5 epochs")
    args = parser.parse_args(argv)
    both = not (args.parity or args.plateau or args.time)
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}")
    warnings.simplefilter("ignore")
    if args.parity or both:
        parity(PARITY_SETS[:1] if args.quick else PARITY_SETS, args.quick)
    if args.plateau or both:
        plateau(MULTICLASS_SETS[:1] if args.quick else MULTICLASS_SETS, args.quick)
    if args.time or both:
        timing(args.quick, 1 if args.quick else args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
