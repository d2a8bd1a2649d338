"""Fixed FocalClassifier configurations whose trained outputs are recorded in
``tests/data/recorded_outputs.npz`` (see ``tests/test_recorded_outputs.py``).

Run ``python tests/_recorded_configs.py`` from the repository root to re-record, only in a
commit that changes the numerics on purpose and says why; ``python tests/_recorded_configs.py
NAME ...`` re-records only the named configurations and keeps the others' recorded values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from sklearn.datasets import make_classification, make_multilabel_classification

from skfocal import FocalClassifier

PATH = Path(__file__).parent / "data" / "recorded_outputs.npz"
BASE = dict(max_epochs=6, lr=0.02, batch_size=32, hidden_layer_sizes=(8,), random_state=0)


def datasets():
    Xb, yb = make_classification(
        n_samples=160, n_features=5, n_informative=3, weights=[0.85], random_state=1
    )
    Xm, ym = make_classification(
        n_samples=180, n_features=5, n_informative=3, n_classes=3, weights=[0.6, 0.3],
        random_state=2,
    )  # fmt: skip
    Xl, yl = make_multilabel_classification(
        n_samples=150, n_features=5, n_classes=3, random_state=3
    )
    sw = np.random.default_rng(4).uniform(0.2, 2.0, size=len(yb))
    return {
        "binary": (Xb.astype(np.float32), yb, None),
        "binary_sw": (Xb.astype(np.float32), yb, sw),
        "multiclass": (Xm.astype(np.float32), ym, None),
        "multilabel": (Xl.astype(np.float32), yl, None),
    }


CONFIGS = {
    "binary_focal": ("binary", {}),
    "binary_ce": ("binary", {"loss": "cross_entropy"}),
    "binary_margin_hard": ("binary", {"loss": "margin"}),
    "binary_margin_soft": ("binary", {"loss": "margin", "softness": 2.0, "margin": 0.7}),
    "binary_alpha_float": ("binary", {"alpha": 0.25}),
    "binary_alpha_balanced": ("binary", {"alpha": "balanced"}),
    "binary_class_weight": ("binary", {"class_weight": {0: 1.0, 1: 3.0}}),
    "binary_oversample": ("binary", {"sampler": "oversample"}),
    "binary_ros": ("binary", {"sampler": RandomOverSampler(random_state=0)}),
    "binary_smote": ("binary", {"sampler": SMOTE(k_neighbors=3, random_state=0)}),
    "binary_warmup": ("binary", {"warmup_epochs": 2, "gamma": 1.0}),
    "binary_sample_weight": ("binary_sw", {"class_weight": "balanced"}),
    "binary_early_stopping": (
        "binary",
        {
            "early_stopping": True,
            "scoring": "average_precision",
            "n_iter_no_change": 2,
            "max_epochs": 12,
        },
    ),  # fmt: skip
    "binary_float64_dropout": ("binary", {"dtype": "float64", "dropout": 0.2}),
    "multiclass_focal": ("multiclass", {}),
    "multiclass_alpha_array": ("multiclass", {"alpha": [0.2, 0.5, 1.0]}),
    "multiclass_class_weight": ("multiclass", {"class_weight": "balanced", "gamma": 0.5}),
    "multiclass_sqrt": ("multiclass", {"sampler": "sqrt"}),
    "multiclass_margin_soft": ("multiclass", {"loss": "margin", "softness": 1.0}),
    "multiclass_early_stopping_loss": ("multiclass", {"early_stopping": True, "max_epochs": 10}),
    "multilabel_focal": ("multilabel", {"class_weight": "balanced"}),
    "multilabel_alpha": ("multilabel", {"alpha": "balanced", "loss": "margin"}),
}


def outputs(name):
    data, params = CONFIGS[name]
    X, y, sw = datasets()[data]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clf = FocalClassifier(**{**BASE, **params}).fit(X, y, sample_weight=sw)
        module = clf.net_.module_.eval()
        with torch.no_grad():
            z = module(torch.as_tensor(X, dtype=getattr(torch, clf.dtype)))
    finally:
        torch.set_num_threads(threads)
    return z.double().numpy(), clf.n_iter_


def record(path=PATH, names=None):
    """Record the configurations ``names`` (all if None), keeping the others' values."""
    arrays = {}
    if names is not None:
        unknown = sorted(set(names) - set(CONFIGS))
        if unknown:
            raise ValueError(f"unknown configurations {unknown}; known: {sorted(CONFIGS)}")
        with np.load(path) as data:
            arrays = dict(data)
    for name in CONFIGS if names is None else names:
        z, n_iter = outputs(name)
        arrays[name] = z
        arrays[name + "__n_iter"] = np.array(n_iter)
    np.savez_compressed(path, **arrays)
    return len(CONFIGS) if names is None else len(names)


if __name__ == "__main__":
    import sys

    n = record(names=sys.argv[1:] or None)
    print(f"recorded {n} configuration(s) in {PATH}")
