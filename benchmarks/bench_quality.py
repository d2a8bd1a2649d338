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
``focal_oversample``  FocalClassifier(sampler="oversample")
``focal_calibrated``  CalibratedClassifierCV(FocalClassifier(), method="sigmoid", cv=3)
``focal_unfused``     FocalClassifier() with the previous default optimizer step,
                      functools.partial(torch.optim.AdamW, fused=False)
``focal_skorch_loop`` FocalClassifier() trained through skorch's per-batch path (the previous
                      default loop): a callback that listens to on_batch_end (and does
                      nothing) keeps the lean epoch from running
``focal_ldam``, ``focal_logit_adjusted``, ``focal_poly``, ``focal_asymmetric``
                      FocalClassifier(loss=...) at the loss's published defaults
                      (asymmetric: binary sets only)
``focal_decision_f1``  TunedDecisionClassifierCV(FocalClassifier(), scoring="f1_macro") with an
                      inner stratified 5-fold split (per-class offsets, or scikit-learn's
                      threshold for binary sets); its refit member is focal_default's fit
``hgb_decision_f1``   the same meta-estimator around hgb_balanced
``<m>_raw``, ``<m>_prior_data``, ``<m>_prior_balanced`` for ``<m>`` in focal_default,
focal_alpha_balanced, focal_oversample: from the same fit as ``<m>``, the sigmoid / softmax
                      of the module's logits (no inverse link), and class_prior="data" /
                      "balanced" (realised on the fit's posterior; equal to refitting)

All networks share one architecture and optimiser: the skorch nets copy the defaults of
``FocalClassifier`` (hidden layers, dropout, optimiser, learning rate, weight decay, batch
size, epochs), so the comparisons isolate the imbalance handling.

Metrics: average precision (of the minority class for binary sets, macro one-vs-rest for
multiclass), balanced accuracy, macro-F1, fit time, and of ``predict_proba``: log-loss, Brier
score and the expected calibration error over 15 equal-width bins (binary: of the
positive-class probability; multiclass: top-label ECE). The table gives means over datasets of
the per-dataset means, and paired win/tie/loss counts against ``skorch_ce`` and
``hgb_balanced`` *per dataset*: a model wins on a dataset when its mean over that dataset's
folds is higher and the mean paired (same fold) difference is larger than two standard errors
of those differences; it loses in the mirror case; otherwise it is a tie.

Run from the repository root (needs ``pip install -e ".[benchmarks]"``)::

    python benchmarks/bench_quality.py                  # the full run in docs/benchmarks.rst
    python benchmarks/bench_quality.py --quick          # a smoke run (two small sets)
    python benchmarks/bench_quality.py --report-only    # table + figure from the saved CSV
    python benchmarks/bench_quality.py --budget         # the training-budget study
    python benchmarks/bench_quality.py --merge --models focal_poly   # rerun some models,
                                                        # keep the saved rows of the others

``--budget`` runs ``FocalClassifier()`` and the plain skorch net at learning rates 1e-3, 3e-3
and 1e-2 (50 epochs) and at 1e-3 with 100 epochs (``focal_lr3e-3``, ``skorch_ce_lr3e-3``, ...),
the evidence for the default ``lr``; it writes to ``benchmarks/results/budget/``.

The decisions study (``focal_decision_f1``, ``hgb_decision_f1``) prints macro-F1 per set and
W/T/L of the tuned network against the boosted trees with a fixed tie band: a set is a win
when the mean macro-F1 over its folds is higher by more than ``DECISION_TIE`` (0.005), a loss
when lower by more, a tie otherwise; and the largest AP difference between
``focal_decision_f1`` and ``focal_default`` (the same network: the decision changes nothing
else)::

    python benchmarks/bench_quality.py --merge --models focal_default hgb_balanced \
        focal_decision_f1 hgb_decision_f1

It writes the per-fold results to ``benchmarks/results/quality.csv``, the summary tables next
to it and the figure to ``docs/_static/bench_quality.png``.
"""

from __future__ import annotations

import argparse
import functools
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
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    make_scorer,
)
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, QuantileTransformer, label_binarize
from sklearn.utils.class_weight import compute_class_weight
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from skfocal._auto import MAX_EPOCHS
from skfocal._module import MLP
from skfocal.datasets import list_imbalanced, load_imbalanced

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "_static" / "bench_quality.png"
# fars (100,968 rows, 5 folds x every model: hours) is benchmarks/bench_defaults.py's set
DATASETS = [name for name in list_imbalanced().index if name != "fars"]
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
# The calibrated-outputs, more-losses and fit-speed studies (in the default run too).
# FocalClassifier fits of focal_default, focal_alpha_balanced and focal_oversample each also
# give, from the same fit, the rows <name>_raw (sigmoid/softmax of the module's logits: no
# inverse link), <name>_prior_data and <name>_prior_balanced (class_prior="data"/"balanced",
# realised on the fit's posterior: class_prior only post-processes the logits).
STUDY_MODELS = [
    "focal_oversample",
    "focal_calibrated",
    "focal_unfused",
    "focal_skorch_loop",
    "focal_ldam",
    "focal_logit_adjusted",
    "focal_poly",
    "focal_asymmetric",
]
# Decisions tuned to macro-F1 by TunedDecisionClassifierCV (issue 23), against argmax.
DECISION_MODELS = ["focal_decision_f1", "hgb_decision_f1"]
DECISION_TIE = 0.005
DERIVED = ("raw", "prior_data", "prior_balanced")
DERIVING = ("focal_default", "focal_alpha_balanced", "focal_oversample")
DERIVED_MODELS = [f"{base}_{suffix}" for base in DERIVING for suffix in DERIVED]
BINARY_ONLY = {"focal_asymmetric"}


class BatchListener(Callback):
    """A callback that listens to ``on_batch_end`` and does nothing: with it, FocalClassifier
    trains through skorch's per-batch path instead of its lean epoch (``focal_skorch_loop``)."""

    def on_batch_end(self, net, **kwargs):
        pass


ABLATIONS = {
    "focal_default": {},
    "focal_ce": {"loss": "cross_entropy"},
    "focal_ce_balanced": {"loss": "cross_entropy", "class_weight": "balanced"},
    "focal_alpha_balanced": {"alpha": "balanced"},
    "focal_bias_zero": {"bias_init": "zero"},
    "focal_oversample": {"sampler": "oversample"},
    # the previous default optimizer step: torch's single-tensor AdamW (now fused)
    "focal_unfused": {"optimizer": functools.partial(torch.optim.AdamW, fused=False)},
    # the previous default loop: skorch's per-batch path (a per-batch listener forces it)
    "focal_skorch_loop": {"callbacks": [BatchListener()]},
    "focal_ldam": {"loss": "ldam"},
    "focal_logit_adjusted": {"loss": "logit_adjusted"},
    "focal_poly": {"loss": "poly"},
    "focal_asymmetric": {"loss": "asymmetric"},
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
DEFAULT_MODELS = MODELS + STUDY_MODELS + DECISION_MODELS
ALL_MODELS = MODELS + STUDY_MODELS + DECISION_MODELS + DERIVED_MODELS + BUDGET_MODELS
REFERENCES = ["skorch_ce", "hgb_balanced"]
METRICS = {"ap": "AP", "balanced_accuracy": "bal. acc.", "macro_f1": "macro-F1"}
# probability quality (lower is better); older rows of the CSV may lack them
CALIBRATION = {"log_loss": "log-loss", "brier": "Brier", "ece": "ECE"}
ECE_BINS = 15
CALIBRATION_MODELS = [
    "focal_default_raw",
    "focal_default",
    "focal_default_prior_data",
    "focal_default_prior_balanced",
    "focal_alpha_balanced_raw",
    "focal_alpha_balanced",
    "focal_alpha_balanced_prior_data",
    "focal_alpha_balanced_prior_balanced",
    "focal_oversample_raw",
    "focal_oversample",
    "focal_oversample_prior_data",
    "focal_oversample_prior_balanced",
    "focal_calibrated",
    "focal_ce",
    "logreg_balanced",
    "hgb_balanced",
    "skorch_ce",
]
LOSS_MODELS = [
    "focal_default",
    "focal_ce",
    "focal_ldam",
    "focal_logit_adjusted",
    "focal_poly",
    "focal_asymmetric",
]


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


def brier(y_true, proba):
    """Binary: mean squared error of the positive-class probability; multiclass: the mean over
    samples of the summed squared errors over classes (the multiclass Brier score)."""
    if proba.shape[1] == 2:
        return float(np.mean((proba[:, 1] - (y_true == 1)) ** 2))
    onehot = label_binarize(y_true, classes=np.arange(proba.shape[1]))
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def expected_calibration_error(y_true, proba, n_bins=ECE_BINS):
    """ECE over ``n_bins`` equal-width bins of [0, 1]: binary sets bin the positive-class
    probability against the positive rate; multiclass sets use the top-label ECE (the largest
    probability against the accuracy of the argmax)."""
    if proba.shape[1] == 2:
        conf, hit = proba[:, 1], (y_true == 1).astype(float)
    else:
        conf, hit = proba.max(axis=1), (proba.argmax(axis=1) == y_true).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        mask = bins == b
        ece += mask.mean() * abs(hit[mask].mean() - conf[mask].mean())
    return float(ece)


def scores(y_true, proba, pred):
    """Every metric of one prediction (probabilities of shape (n, n_classes))."""
    proba = np.asarray(proba, dtype=np.float64)
    return {
        "ap": imbalanced_ap(y_true, proba),
        "balanced_accuracy": balanced_accuracy_score(y_true, pred),
        "macro_f1": f1_score(y_true, pred, average="macro"),
        "log_loss": log_loss(y_true, proba, labels=np.arange(proba.shape[1])),
        "brier": brier(y_true, proba),
        "ece": expected_calibration_error(y_true, proba),
    }


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
    # the fixed budget of max_epochs="auto" without early stopping (every set but sylva,
    # whose training folds of 10,469 rows turn FocalClassifier()'s early stopping on)
    settings["max_epochs"] = MAX_EPOCHS if params["max_epochs"] == "auto" else params["max_epochs"]
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


def tuned_decision(estimator, seed):
    """``estimator`` with its decision tuned to macro-F1 on inner 5-fold out-of-fold outputs."""
    from skfocal import TunedDecisionClassifierCV

    inner = StratifiedKFold(5, shuffle=True, random_state=seed)
    return TunedDecisionClassifierCV(estimator, scoring="f1_macro", cv=inner)


def make_model(name, n_features, n_classes, seed, quick):
    """A fresh, unfitted model; the same preprocessing in front of every one."""
    if name == "logreg_balanced":
        return make_pipeline(
            preprocessing(), LogisticRegression(class_weight="balanced", max_iter=2000)
        )
    if name in ("hgb_balanced", "hgb_decision_f1"):
        hgb = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
        if name == "hgb_decision_f1":
            hgb = tuned_decision(hgb, seed)
        return make_pipeline(preprocessing(), hgb)
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
    if name == "focal_decision_f1":
        return make_pipeline(preprocessing(), tuned_decision(focal, seed))
    if name == "focal_calibrated":
        calibrated = CalibratedClassifierCV(
            focal, method="sigmoid", cv=StratifiedKFold(3, shuffle=True, random_state=seed)
        )
        return make_pipeline(preprocessing(), calibrated)
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
    """Fit one model on one training fold and score it on the test fold: a list of rows (one,
    or four for the models in ``DERIVING``: see ``derived_outputs``)."""
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
        outputs = {model_name: (model.predict_proba(X[test]), np.asarray(model.predict(X[test])))}
        if model_name in DERIVING:
            outputs.update(derived_outputs(model, model_name, X[test], y[train]))
    rows = []
    for name, (proba, pred) in outputs.items():
        row = {
            "dataset": dataset,
            "task": "binary" if n_classes == 2 else "multiclass",
            "model": name,
            "repeat": repeat,
            "fold": fold,
            **scores(y[test], proba, pred),
            "fit_time": fit_time,
        }
        if model_name == "focal_tuned":
            best = model.best_params_
            row["best_params"] = ", ".join(
                f"{k.split('__', 1)[1]}={v}" for k, v in sorted(best.items())
            )
        rows.append(row)
    return rows


def derived_outputs(pipeline, name, X_test, y_train):
    """From one fitted FocalClassifier: the raw outputs of its module and the outputs under
    ``class_prior="data"`` and ``"balanced"``.

    ``class_prior`` only shifts the log posterior that the loss's inverse link recovers from
    the logits (``skfocal._posterior``), so the two other priors are the fit's own
    ``posterior_`` with the shift ``log_shift`` gives for them; the training emphasis it needs
    is ``class_prior_ / data prior`` of the training fold (``class_prior_`` of the default
    ``"training"`` prior is the normalised ``emphasis x data prior``). This equals refitting
    with that ``class_prior`` (checked to 1e-7 on yeast4 and yeast).
    """
    from skfocal._posterior import Posterior, log_shift

    clf = pipeline[-1]
    Z = torch.as_tensor(pipeline[:-1].transform(X_test), dtype=torch.float32)
    module = clf.net_.module_
    module.eval()
    with torch.no_grad():
        z = module(Z).double()
    post = clf.posterior_
    classes = clf.classes_
    binary = len(classes) == 2
    if binary:
        z = z[:, 0]
        p1 = torch.sigmoid(z).numpy()
        raw = np.column_stack([1 - p1, p1])
    else:
        raw = torch.softmax(z, dim=1).numpy()
    out = {f"{name}_raw": (raw, classes[raw.argmax(axis=1)])}
    data_prior = np.bincount(np.searchsorted(classes, y_train), minlength=len(classes))
    data_prior = data_prior / data_prior.sum()
    emphasis = np.asarray(clf.class_prior_, dtype=np.float64) / data_prior
    for prior in ("data", "balanced"):
        shift = log_shift(post.kind, prior, classes, emphasis, data_prior)
        proba = Posterior(post.kind, post.spec, post.hyper, shift).proba(z).numpy()
        out[f"{name}_prior_{prior}"] = (proba, classes[proba.argmax(axis=1)])
    return out


def run(datasets, models, repeats, seed, n_jobs, quick):
    tasks = []
    for dataset in datasets:
        _, y = load_imbalanced(dataset)
        cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=repeats, random_state=seed)
        for index, (train, test) in enumerate(cv.split(np.zeros(len(y)), y)):
            repeat, fold = divmod(index, 5)
            for model in models:
                if model in BINARY_ONLY and len(np.unique(y)) > 2:
                    continue
                tasks.append((dataset, model, repeat, fold, train, test, seed, quick))
    # Slow tasks first, so that the pool does not end on one long straggler.
    tasks.sort(key=lambda t: (t[1] not in ("focal_tuned", "focal_calibrated"), -len(t[4])))
    rows = Parallel(n_jobs=n_jobs, verbose=5)(delayed(run_one)(*t) for t in tasks)
    rows = [row for task_rows in rows for row in task_rows]
    return pd.DataFrame(rows).sort_values(["dataset", "model", "repeat", "fold"])


def merge(previous, new):
    """The saved rows with those of the (dataset, model) pairs just run replaced by the new."""
    ran = set(zip(new["dataset"], new["model"]))
    keep = [pair not in ran for pair in zip(previous["dataset"], previous["model"])]
    merged = pd.concat([previous[keep], new], ignore_index=True)
    return merged.sort_values(["dataset", "model", "repeat", "fold"])


# -- report -------------------------------------------------------------------------------------
def win_tie_loss(results, model, reference, metric):
    """Per-dataset paired comparison of ``model`` against ``reference`` on ``metric`` (for the
    metrics of ``CALIBRATION``, lower is better: a win is a lower value)."""
    counts = {"W": 0, "T": 0, "L": 0}
    sign = -1.0 if metric in CALIBRATION else 1.0
    for _, group in results.groupby("dataset"):
        pivot = group.pivot_table(index=["repeat", "fold"], columns="model", values=metric)
        if model not in pivot or reference not in pivot:
            continue
        diff = sign * (pivot[model] - pivot[reference]).dropna()
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
    models = [m for m in ALL_MODELS if m in means.index and m not in DERIVED_MODELS]
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


def _means(results, models, metrics, task=None):
    rows = results if task is None else results[results["task"] == task]
    rows = rows[rows["model"].isin(models)]
    means = rows.groupby(["model", "dataset"])[metrics].mean().groupby("model").mean()
    return means.reindex([m for m in models if m in means.index])


def calibration_table(results):
    """Probability quality and decisions of the calibrated-outputs study: means over the binary
    sets and over the multiclass sets (ECE: positive class / top label), W/T/L on log-loss
    against the raw outputs of FocalClassifier()."""
    models = [m for m in CALIBRATION_MODELS if m in set(results["model"])]
    metrics = [*CALIBRATION, *METRICS]
    parts = []
    for task, short in (("binary", "bin"), ("multiclass", "multi")):
        means = _means(results, models, metrics, task).round(3)
        means.columns = [f"{c} ({short})" for c in means.columns]
        parts.append(means)
    table = pd.concat(parts, axis=1).reindex(models)
    table.index.name = "model"
    if "focal_default_raw" in models:
        for metric, short in (("log_loss", "log-loss"), ("ece", "ECE")):
            table[f"{short} W/T/L vs focal_default_raw"] = [
                "--"
                if m == "focal_default_raw"
                else win_tie_loss(results, m, "focal_default_raw", metric)
                for m in models
            ]
    return table


def losses_table(results):
    """AP, BA and macro-F1 of the losses at their published defaults: means over all ten sets
    and over the binary sets, W/T/L against focal_default."""
    models = [m for m in LOSS_MODELS if m in set(results["model"])]
    metrics = list(METRICS)
    every = _means(results, models, metrics).round(3)
    every.columns = [f"{c} (all)" for c in every.columns]
    binary = _means(results, models, metrics, "binary").round(3)
    binary.columns = [f"{c} (binary)" for c in binary.columns]
    table = pd.concat([every, binary], axis=1).reindex(models)
    table.index.name = "model"
    for metric, short in (("ap", "AP"), ("balanced_accuracy", "BA"), ("macro_f1", "F1")):
        table[f"{short} W/T/L vs focal_default"] = [
            "--" if m == "focal_default" else win_tie_loss(results, m, "focal_default", metric)
            for m in models
        ]
    return table


def paired_table(results, new="focal_default", old="focal_unfused", labels=("fused", "unfused")):
    """Per set: model ``new`` minus model ``old`` (e.g. the fused AdamW step against the
    single-tensor one, or the lean loop against skorch's per-batch path), paired by fold, with
    the noise band of the W/T/L rule (two standard errors of the paired differences) and the
    verdict; the last row counts W/T/L. Columns are named with ``labels``."""
    a, b = labels
    rows = []
    for dataset in [d for d in DATASETS if d in set(results["dataset"])]:
        group = results[results["dataset"] == dataset]
        row = {"dataset": dataset}
        for metric, short in (("ap", "AP"), ("balanced_accuracy", "BA")):
            pivot = group.pivot_table(index=["repeat", "fold"], columns="model", values=metric)
            if new not in pivot or old not in pivot:
                return None
            diff = (pivot[new] - pivot[old]).dropna()
            band = 2 * diff.std(ddof=1) / np.sqrt(len(diff))
            row[f"{short} {a}"] = round(pivot[new].mean(), 3)
            row[f"{short} {b}"] = round(pivot[old].mean(), 3)
            row[f"{short} diff"] = round(diff.mean(), 4)
            row[f"{short} 2SE"] = round(band, 4)
            row[f"{short}"] = "W" if diff.mean() > band else "L" if diff.mean() < -band else "T"
        times = group.groupby("model")["fit_time"].mean()
        row[f"fit s {a}"] = round(times[new], 2)
        row[f"fit s {b}"] = round(times[old], 2)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("dataset").astype(object)
    total = {c: "" for c in table.columns}
    for short, metric in (("AP", "ap"), ("BA", "balanced_accuracy")):
        total[short] = win_tie_loss(results, new, old, metric)
    total[f"fit s {a}"] = round(table[f"fit s {a}"].mean(), 2)
    total[f"fit s {b}"] = round(table[f"fit s {b}"].mean(), 2)
    table.loc["W/T/L (mean fit s)"] = total
    return table


def decision_table(results, tie=DECISION_TIE):
    """Macro-F1 per set of the decisions study, W/T/L of the tuned network with a fixed tie
    band on the per-set mean difference, and its AP against focal_default's."""
    models = [
        m for m in ("focal_default", *MODELS[1:2], *DECISION_MODELS) if m in set(results["model"])
    ]
    if "focal_decision_f1" not in models:
        return None
    table = by_dataset(results, "macro_f1", models)
    rows = []
    for reference in [m for m in ("hgb_balanced", "hgb_decision_f1") if m in models]:
        diff = table["focal_decision_f1"] - table[reference]
        table[f"diff vs {reference}"] = diff.round(3)
        table[f"W/T/L vs {reference}"] = np.where(diff > tie, "W", np.where(diff < -tie, "L", "T"))
        counts = {v: int((table[f"W/T/L vs {reference}"] == v).sum()) for v in "WTL"}
        rows.append(f"{reference}: {counts['W']}/{counts['T']}/{counts['L']}")
    if "focal_default" in models:
        ap = results.pivot_table(index=["dataset", "repeat", "fold"], columns="model", values="ap")
        ap = (ap["focal_decision_f1"] - ap["focal_default"]).abs().dropna()
        rows.append(f"max |AP focal_decision_f1 - focal_default| over folds: {ap.max():.2e}")
    means = table[models].mean().round(3)
    table = table.astype(object)
    table.loc["mean"] = [means.get(c, "") for c in table.columns]
    return table, rows


def by_dataset(results, metric, models=None):
    table = results.pivot_table(index="dataset", columns="model", values=metric, aggfunc="mean")
    order = [d for d in DATASETS if d in table.index]
    models = [m for m in (models or ALL_MODELS) if m in table.columns]
    return table.loc[order, models].round(3)


def render_figure(results, path=FIGURE):
    """Heat maps of mean AP and balanced accuracy per dataset and model (one PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("ap", "Average precision"), ("balanced_accuracy", "Balanced accuracy")]
    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5), constrained_layout=True)
    for ax, (metric, title) in zip(axes, panels):
        table = by_dataset(results, metric, MODELS)
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
        studies = {}
        if "log_loss" in results and results["model"].isin(CALIBRATION_MODELS).any():
            studies["calibration"] = calibration_table(results)
            print("\nCalibrated outputs (means over the 7 binary / 3 multiclass sets; ECE of")
            print("the positive class (bin) / top-label ECE (multi), 15 equal-width bins):")
            print(studies["calibration"].to_string())
            studies["ece"] = by_dataset(results, "ece", CALIBRATION_MODELS)
            studies["log_loss"] = by_dataset(results, "log_loss", CALIBRATION_MODELS)
            for key in ("ece", "log_loss"):
                print(f"\n{CALIBRATION[key]} per dataset:")
                print(studies[key].to_string())
        if results["model"].isin(LOSS_MODELS[2:]).any():
            studies["losses"] = losses_table(results)
            print("\nLosses at their published defaults:")
            print(studies["losses"].to_string())
        decisions = decision_table(results)
        if decisions is not None:
            studies["decisions"], summary_rows = decisions
            print("\nDecisions tuned to macro-F1 (TunedDecisionClassifierCV), macro-F1 per set;")
            print(f"W/T/L of focal_decision_f1 with a tie band of +-{DECISION_TIE}:")
            print(studies["decisions"].to_string())
            print("\n".join(summary_rows))
        fused = paired_table(results)
        if fused is not None:
            studies["fused"] = fused
            print("\nFused AdamW step (new default) against the single-tensor step (previous):")
            print(fused.to_string())
        lean = paired_table(results, old="focal_skorch_loop", labels=("lean", "skorch"))
        if lean is not None:
            studies["lean"] = lean
            print("\nLean training loop (new default) against skorch's per-batch path:")
            print(lean.to_string())
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "quality_summary.csv")
    for metric in METRICS:
        by_dataset(results, metric, MODELS + STUDY_MODELS).to_csv(out_dir / f"quality_{metric}.csv")
    for key, table in studies.items():
        table.to_csv(out_dir / f"quality_{key}.csv")
    if figure is not None:
        print(f"\nfigure: {render_figure(results, figure)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None)
    parser.add_argument(
        "--models",
        nargs="+",
        choices=[m for m in ALL_MODELS if m not in DERIVED_MODELS],
        default=DEFAULT_MODELS,
    )
    parser.add_argument("--repeats", type=int, default=1, help="repeats of 5-fold CV")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="two small sets, 10 epochs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="re-read quality.csv")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the saved rows of quality.csv for the (dataset, model) pairs not run",
    )
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
    n_rows = len(results)
    if args.merge and csv.exists():
        results = merge(pd.read_csv(csv), results)
    results.to_csv(csv, index=False)
    print(f"\n{n_rows} rows in {elapsed / 60:.1f} min on {args.n_jobs} worker(s); {csv}")
    report(results, args.out, figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
