"""Numbers for the user guide's weighting page, computed when the docs are built.

Writes reStructuredText tables to ``docs/generated/*.inc`` (included by
``user_guide/weighting.rst``). Run as a script to print them.

* ``weighting_yeast4.inc``: the share of the expected loss that the minority class of the real
  yeast4 data set receives under each combination of ``class_weight``/``alpha`` and
  ``sampler``, from the class counts, scikit-learn's ``compute_class_weight`` and the class
  probabilities that each sampler draws with.
* ``fastai_pt.inc``: the modulating factor of focal loss when p_t is computed from the
  *weighted* cross-entropy (the fastai / blog-post formula) versus from the softmax, evaluated
  with skfocal's loss and the three-line formula.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from skfocal.datasets import load_imbalanced
from skfocal.losses import focal_loss

OUT = Path(__file__).resolve().parents[1] / "generated"


def _table(header, rows):
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def weighting_yeast4():
    _, y = load_imbalanced("yeast4")
    counts = np.bincount(y).astype(float)
    n = counts.sum()
    minority = int(np.argmin(counts))
    majority = 1 - minority
    balanced = compute_class_weight("balanced", classes=np.arange(2), y=y)
    ones = np.ones(2)
    draw = {
        "none (shuffle)": counts / n,
        '``"oversample"``': np.full(2, 0.5),
        '``"sqrt"``': np.sqrt(counts) / np.sqrt(counts).sum(),
    }
    weights = {
        "none": ones,
        '``"balanced"``': balanced,
        '``"balanced"`` in both ``class_weight`` and ``alpha``': balanced**2,
    }
    rows = []
    for sampler_name, p in draw.items():
        for weight_name, w in weights.items():
            mass = p * w  # expected loss mass of each class per drawn example (at equal loss)
            share = mass[minority] / mass.sum()
            per_example = (mass[minority] / counts[minority]) / (mass[majority] / counts[majority])
            rows.append(
                [
                    sampler_name,
                    weight_name,
                    f"{p[minority]:.1%}",
                    f"{w[minority] / w[majority]:.3g}",
                    f"**{share:.1%}**",
                    f"{per_example:,.3g}",
                ]
            )
    intro = (
        f"yeast4: {int(counts[majority])} majority and {int(counts[minority])} minority "
        f"examples (imbalance ratio {counts[majority] / counts[minority]:.1f}); "
        f'``compute_class_weight("balanced")`` gives {balanced[majority]:.3f} (majority) and '
        f"{balanced[minority]:.3f} (minority).\n\n"
    )
    header = [
        "sampler",
        "loss weight (``class_weight`` / ``alpha``)",
        "minority share of drawn examples",
        "minority / majority weight",
        "minority share of the loss",
        "weight of one minority example relative to one majority example",
    ]
    return intro + _table(header, rows)


def fastai_pt():
    rows = []
    for p_true in (0.5, 0.9, 0.99):
        for weight in (5.0, 28.0):
            # two classes, true class 1 with probability p_true; class weight `weight` on it
            logits = torch.tensor(
                [[0.0, float(np.log(p_true / (1 - p_true)))]], dtype=torch.float64
            )
            target = torch.tensor([1])
            alpha = torch.tensor([1.0, weight], dtype=torch.float64)
            ce_w = F.cross_entropy(logits, target, weight=alpha, reduction="none")
            wrong_pt = torch.exp(-ce_w)  # fastai: p_t = exp(-weighted CE) = p_t ** weight
            wrong = float((1 - wrong_pt) ** 2 * ce_w)
            right = float(focal_loss(logits, target, gamma=2.0, alpha=alpha, reduction="sum"))
            rows.append(
                [
                    f"{p_true:g}",
                    f"{weight:g}",
                    f"{float(wrong_pt):.3g}",
                    f"{right:.4g}",
                    f"{wrong:.4g}",
                    f"{wrong / right:.3g}x",
                ]
            )
    header = [
        "true p_t",
        "class weight",
        "p_t as exp(-weighted CE)",
        "skfocal loss (gamma=2)",
        "exp(-weighted CE) formula",
        "ratio",
    ]
    return _table(header, rows)


def write_all(out=OUT):
    out.mkdir(parents=True, exist_ok=True)
    (out / "weighting_yeast4.inc").write_text(weighting_yeast4())
    (out / "fastai_pt.inc").write_text(fastai_pt())


if __name__ == "__main__":
    print(weighting_yeast4())
    print(fastai_pt())
