"""Quality on real imbalanced data: skfocal against what users would pick instead.

Stratified 5-fold cross-validation (repeatable and seeded) on the development sets of
:mod:`skfocal.datasets` -- yeast4, yeast6, SATIMAGE, abalone19, poker-8-9_vs_5,
winequality-red-4, sylva (binary) and page_blocks, yeast, satimage (multiclass). Every model
sees the same preprocessing, fitted on the training fold only: a normal-output
``QuantileTransformer`` (robust to the heavy-tailed features of page_blocks and sylva).

Models
------
``logreg_balanced``   LogisticRegression(class_weight="balanced")
``hgb_balanced``      HistGradientBoostingClassifier(class_weight="balanced")
``skorch_ce``         skorch NeuralNetClassifier, plain cross-entropy
``skorch_weighted``   the same net, cross-entropy weighted by compute_class_weight("balanced")
                      computed on each training fold (a small ``fit`` override does it)
``ros_skorch``        imblearn RandomOverSampler, then the plain skorch net
``smote_skorch``      imblearn SMOTE, then the plain skorch net
``focal_default``     FocalClassifier() with its defaults
``focal_tuned``       FocalClassifier tuned by an inner 3-fold GridSearchCV (average precision)
                      over loss, gamma, alpha, class_weight and sampler (7 candidates)
``focal_ce``, ``focal_ce_balanced``, ``focal_alpha_balanced``, ``focal_bias_zero``
                      FocalClassifier() with one setting changed (loss="cross_entropy",
                      plus class_weight="balanced", alpha="balanced", bias_init="zero"):
                      the evidence for its defaults

All networks share one architecture and optimiser: the skorch nets copy the defaults of
``FocalClassifier`` (hidden layers, dropout, optimiser, learning rate, weight decay, batch
size, epochs), so the comparisons isolate the imbalance handling.

Metrics: average precision (of the minority class for binary sets, macro one-vs-rest for
multiclass), balanced accuracy, macro-F1 and fit time. The table gives means over datasets of
the per-dataset means, and paired win/tie/loss counts against ``skorch_ce`` and
``hgb_balanced`` *per dataset*: a model wins on a dataset when its mean over that dataset's
folds is higher and the mean paired (same fold) difference is larger than two standard errors
of those differences; it loses in the mirror case; otherwise it is a tie.

Run from the repository root (needs ``pip install -e ".[benchmarks]"``)::

    python benchmarks/bench_quality.py                  # the full run in docs/benchmarks.rst
    python benchmarks/bench_quality.py --quick          # a smoke run (two small sets)
    python benchmarks/bench_quality.py --report-only    # table + figure from the saved CSV
    python benchmarks/bench_quality.py --budget         # the training-budget study

``--budget`` runs ``FocalClassifier()`` and the plain skorch net at learning rates 1e-3, 3e-3
and 1e-2 (50 epochs) and at 1e-3 with 100 epochs (``focal_lr3e-3``, ``skorch_ce_lr3e-3``, ...),
the evidence for the default ``lr``; it writes to ``benchmarks/results/budget/``.

It writes the per-fold results to ``benchmarks/results/quality.csv``, the summary tables next
to it and the figure to ``docs/_static/bench_quality.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from joblib import Parallel, delayed
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    make_scorer,
)
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, QuantileTransformer, label_binarize
from sklearn.utils.class_weight import compute_class_weight
from skorch import NeuralNetClassifier
from torch import nn

from skfocal._module import MLP
from skfocal.datasets import list_imbalanced, load_imbalanced

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "_static" / "bench_quality.png"
DATASETS = list(list_imbalanced().index)
QUICK_DATASETS = ["yeast4", "page_blocks"]
MODELS = [
    "logreg_balanced",
    "hgb_balanced",
    "skorch_ce",
    "skorch_weighted",
    "ros_skorch",
    "smote_skorch",
    "focal_default",
    "focal_tuned",
    # one-knob ablations of FocalClassifier(), for choosing its defaults
    "focal_ce",
    "focal_ce_balanced",
    "focal_alpha_balanced",
    "focal_bias_zero",
]
ABLATIONS = {
    "focal_default": {},
    "focal_ce": {"loss": "cross_entropy"},
    "focal_ce_balanced": {"loss": "cross_entropy", "class_weight": "balanced"},
    "focal_alpha_balanced": {"alpha": "balanced"},
    "focal_bias_zero": {"bias_init": "zero"},
}
# The training budget, for choosing the default lr and max_epochs: FocalClassifier() and the
# plain skorch net with the learning rate and epochs set explicitly (the other settings are the
# defaults). Not in the default run: --budget runs them.
BUDGETS = {
    "lr1e-3": {"lr": 1e-3},
    "lr3e-3": {"lr": 3e-3},
    "lr1e-2": {"lr": 1e-2},
    "lr1e-3-epochs100": {"lr": 1e-3, "max_epochs": 100},
}
BUDGET_MODELS = [f"{net}_{budget}" for budget in BUDGETS for net in ("focal", "skorch_ce")]
ALL_MODELS = MODELS + BUDGET_MODELS
REFERENCES = ["skorch_ce", "hgb_balanced"]
METRICS = {"ap": "AP", "balanced_accuracy": "bal. acc.", "macro_f1": "macro-F1"}


# -- scoring ------------------------------------------------------------------------------------
def imbalanced_ap(y_true, y_score):
    """Average precision: of class 1 for a 1-D score, macro one-vs-rest for a 2-D one."""
    y_score = np.asarray(y_score)
    if y_score.ndim == 1:
        return average_precision_score(y_true, y_score)
    if y_score.shape[1] == 2:
        return average_precision_score(y_true, y_score[:, 1])
    y_bin = label_binarize(y_true, classes=np.arange(y_score.shape[1]))
    return average_precision_score(y_bin, y_score, average="macro")


AP_SCORER = make_scorer(imbalanced_ap, response_method="predict_proba")


# -- the networks -------------------------------------------------------------------------------
class ClassWeightedNet(NeuralNetClassifier):
    """skorch net whose cross-entropy weights are ``compute_class_weight("balanced")`` of the
    ``y`` given to each ``fit``, so nothing leaks across CV folds (a fixed ``criterion__weight``
    computed once on all the data would)."""

    def fit(self, X, y=None, **fit_params):
        weight = compute_class_weight("balanced", classes=np.unique(y), y=y)
        self.set_params(criterion__weight=torch.as_tensor(weight, dtype=torch.float32))
        return super().fit(X, y, **fit_params)


def _to_float32(X):
    return np.asarray(X, dtype=np.float32)


def network_settings(quick):
    """The training settings shared by every network: FocalClassifier's defaults."""
    from skfocal import FocalClassifier

    params = FocalClassifier().get_params()
    settings = {
        key: params[key]
        for key in ("hidden_layer_sizes", "dropout", "lr", "weight_decay", "batch_size")
    }
    settings["max_epochs"] = params["max_epochs"]
    if quick:
        settings["max_epochs"] = min(settings["max_epochs"], 10)
    return settings


def skorch_net(cls, n_features, n_classes, settings):
    return cls(
        MLP,  # FocalClassifier's own default network
        module__n_features=n_features,
        module__n_outputs=n_classes,
        module__hidden_layer_sizes=tuple(settings["hidden_layer_sizes"]),
        module__dropout=settings["dropout"],
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        lr=settings["lr"],
        optimizer__weight_decay=settings["weight_decay"],
        batch_size=settings["batch_size"],
        max_epochs=settings["max_epochs"],
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )


# -- the models ---------------------------------------------------------------------------------
def preprocessing():
    return QuantileTransformer(n_quantiles=500, output_distribution="normal", random_state=0)


TUNING_GRID = [
    {"loss": ["cross_entropy"], "class_weight": [None, "balanced"]},
    {"loss": ["cross_entropy"], "sampler": ["oversample"]},
    {"loss": ["focal"], "gamma": [1.0, 2.0], "alpha": [None, "balanced"]},
]


def make_model(name, n_features, n_classes, seed, quick):
    """A fresh, unfitted model; the same preprocessing in front of every one."""
    if name == "logreg_balanced":
        return make_pipeline(
            preprocessing(), LogisticRegression(class_weight="balanced", max_iter=2000)
        )
    if name == "hgb_balanced":
        return make_pipeline(
            preprocessing(),
            HistGradientBoostingClassifier(class_weight="balanced", random_state=seed),
        )
    settings = network_settings(quick)
    budget = {}
    if name in BUDGET_MODELS:
        name, budget = name.rsplit("_", 1)
        budget = BUDGETS[budget]
        settings.update(budget)
    cast = FunctionTransformer(_to_float32)
    if name == "skorch_ce":
        net = skorch_net(NeuralNetClassifier, n_features, n_classes, settings)
        return make_pipeline(preprocessing(), cast, net)
    if name == "skorch_weighted":
        net = skorch_net(ClassWeightedNet, n_features, n_classes, settings)
        return make_pipeline(preprocessing(), cast, net)
    if name in ("ros_skorch", "smote_skorch"):
        sampler = (
            RandomOverSampler(random_state=seed)
            if name == "ros_skorch"
            else SMOTE(random_state=seed, k_neighbors=3)
        )
        net = skorch_net(NeuralNetClassifier, n_features, n_classes, settings)
        return make_imb_pipeline(preprocessing(), sampler, cast, net)
    from skfocal import FocalClassifier

    focal = FocalClassifier(random_state=seed)
    if quick:
        focal.set_params(max_epochs=settings["max_epochs"])
    if name == "focal":
        return make_pipeline(preprocessing(), focal.set_params(**budget))
    if name in ABLATIONS:
        return make_pipeline(preprocessing(), focal.set_params(**ABLATIONS[name]))
    if name == "focal_tuned":
        grid = [{f"focalclassifier__{k}": v for k, v in g.items()} for g in TUNING_GRID]
        return GridSearchCV(
            make_pipeline(preprocessing(), focal),
            grid,
            scoring=AP_SCORER,
            cv=StratifiedKFold(3, shuffle=True, random_state=seed),
            n_jobs=1,
        )
    raise ValueError(f"unknown model {name!r}; expected one of {ALL_MODELS}")


# -- one fold -----------------------------------------------------------------------------------
def run_one(dataset, model_name, repeat, fold, train, test, seed, quick):
    """Fit one model on one training fold and score it on the test fold."""
    torch.set_num_threads(1)
    X, y = load_imbalanced(dataset)
    n_classes = len(np.unique(y))
    fold_seed = seed + 1000 * repeat + fold
    model = make_model(model_name, X.shape[1], n_classes, fold_seed, quick)
    torch.manual_seed(fold_seed)  # the skorch nets' initialisation and shuffling
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model.fit(X[train], y[train])
        fit_time = time.perf_counter() - start
        proba = model.predict_proba(X[test])
        pred = np.asarray(model.predict(X[test]))
    row = {
        "dataset": dataset,
        "task": "binary" if n_classes == 2 else "multiclass",
        "model": model_name,
        "repeat": repeat,
        "fold": fold,
        "ap": imbalanced_ap(y[test], proba),
        "balanced_accuracy": balanced_accuracy_score(y[test], pred),
        "macro_f1": f1_score(y[test], pred, average="macro"),
        "fit_time": fit_time,
    }
    if model_name == "focal_tuned":
        best = model.best_params_
        row["best_params"] = ", ".join(
            f"{k.split('__', 1)[1]}={v}" for k, v in sorted(best.items())
        )
    return row


def run(datasets, models, repeats, seed, n_jobs, quick):
    tasks = []
    for dataset in datasets:
        _, y = load_imbalanced(dataset)
        cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=repeats, random_state=seed)
        for index, (train, test) in enumerate(cv.split(np.zeros(len(y)), y)):
            repeat, fold = divmod(index, 5)
            for model in models:
                tasks.append((dataset, model, repeat, fold, train, test, seed, quick))
    # Slow tasks first, so that the pool does not end on one long straggler.
    tasks.sort(key=lambda t: (t[1] != "focal_tuned", -len(t[4])))
    rows = Parallel(n_jobs=n_jobs, verbose=5)(delayed(run_one)(*t) for t in tasks)
    return pd.DataFrame(rows).sort_values(["dataset", "model", "repeat", "fold"])


# -- report -------------------------------------------------------------------------------------
def win_tie_loss(results, model, reference, metric):
    """Per-dataset paired comparison of ``model`` against ``reference`` on ``metric``."""
    counts = {"W": 0, "T": 0, "L": 0}
    for _, group in results.groupby("dataset"):
        pivot = group.pivot_table(index=["repeat", "fold"], columns="model", values=metric)
        if model not in pivot or reference not in pivot:
            continue
        diff = (pivot[model] - pivot[reference]).dropna()
        if len(diff) == 0:
            continue
        standard_error = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        if diff.mean() > 2 * standard_error and diff.mean() > 0:
            counts["W"] += 1
        elif diff.mean() < -2 * standard_error and diff.mean() < 0:
            counts["L"] += 1
        else:
            counts["T"] += 1
    return f"{counts['W']}/{counts['T']}/{counts['L']}"


def summarize(results):
    """Model-level table: means over datasets of per-dataset means, and W/T/L counts."""
    per_dataset = results.groupby(["model", "dataset"])[[*METRICS, "fit_time"]].mean()
    means = per_dataset.groupby("model").mean()
    models = [m for m in ALL_MODELS if m in means.index]
    table = pd.DataFrame(index=pd.Index(models, name="model"))
    for metric in METRICS:
        table[metric] = means.loc[models, metric].round(3)
    table["fit_time_s"] = means.loc[models, "fit_time"].round(2)
    for reference in [r for r in REFERENCES if r in means.index]:
        for metric in ("ap", "balanced_accuracy"):
            short = "AP" if metric == "ap" else "BA"
            table[f"{short} W/T/L vs {reference}"] = [
                "--" if m == reference else win_tie_loss(results, m, reference, metric)
                for m in models
            ]
    if any(m.startswith("focal_") and m in BUDGET_MODELS for m in models):
        # the budget study: each FocalClassifier against the skorch net with the same budget
        for metric in ("ap", "balanced_accuracy"):
            short = "AP" if metric == "ap" else "BA"
            table[f"{short} W/T/L vs skorch_ce, same budget"] = [
                win_tie_loss(results, m, "skorch_ce" + m[len("focal") :], metric)
                if m.startswith("focal_") and m in BUDGET_MODELS
                else "--"
                for m in models
            ]
    return table


def by_dataset(results, metric):
    table = results.pivot_table(index="dataset", columns="model", values=metric, aggfunc="mean")
    order = [d for d in DATASETS if d in table.index]
    return table.loc[order, [m for m in ALL_MODELS if m in table.columns]].round(3)


def render_figure(results, path=FIGURE):
    """Heat maps of mean AP and balanced accuracy per dataset and model (one PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("ap", "Average precision"), ("balanced_accuracy", "Balanced accuracy")]
    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5), constrained_layout=True)
    for ax, (metric, title) in zip(axes, panels):
        table = by_dataset(results, metric)
        image = ax.imshow(table.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(table.shape[1]), table.columns, rotation=40, ha="right")
        ax.set_yticks(range(table.shape[0]), table.index)
        best = table.to_numpy().argmax(axis=1)
        for i in range(table.shape[0]):
            for j in range(table.shape[1]):
                value = table.iat[i, j]
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    fontweight="bold" if j == best[i] else "normal",
                    color="black" if value > 0.6 else "white",
                )
        ax.set_title(f"{title} (mean over folds; best per row in bold)")
    fig.colorbar(image, ax=axes, shrink=0.8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(results, out_dir, figure):
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        summary = summarize(results)
        print("\nMeans over datasets (each dataset's mean over folds first):")
        print(summary.to_string())
        for metric, label in METRICS.items():
            print(f"\n{label} per dataset:")
            print(by_dataset(results, metric).to_string())
        if "best_params" in results:
            picks = results.dropna(subset=["best_params"])
            print("\nfocal_tuned: parameters picked by the inner search (count over folds):")
            print(picks.groupby("best_params").size().sort_values(ascending=False).to_string())
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "quality_summary.csv")
    for metric in METRICS:
        by_dataset(results, metric).to_csv(out_dir / f"quality_{metric}.csv")
    if figure is not None:
        print(f"\nfigure: {render_figure(results, figure)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None)
    parser.add_argument("--models", nargs="+", choices=ALL_MODELS, default=MODELS)
    parser.add_argument("--repeats", type=int, default=1, help="repeats of 5-fold CV")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="two small sets, 10 epochs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="re-read quality.csv")
    parser.add_argument(
        "--budget", action="store_true", help="the training-budget study (see the docstring)"
    )
    args = parser.parse_args(argv)
    if args.budget:
        args.models = BUDGET_MODELS
        args.out = args.out / "budget" if args.out == RESULTS else args.out
        args.no_figure = True
    figure = None if args.no_figure or args.quick else FIGURE
    csv = args.out / "quality.csv"
    if args.report_only:
        report(pd.read_csv(csv), args.out, figure)
        return 0
    datasets = args.datasets or (QUICK_DATASETS if args.quick else DATASETS)
    start = time.perf_counter()
    results = run(datasets, args.models, args.repeats, args.seed, args.n_jobs, args.quick)
    elapsed = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    results.to_csv(csv, index=False)
    print(f"\n{len(results)} fits in {elapsed / 60:.1f} min on {args.n_jobs} worker(s); {csv}")
    report(results, args.out, figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
