"""
============================
Hard versus soft margin loss
============================

The margin loss is cross-entropy multiplied by :math:`\\lambda(p_t)`: with ``softness=None``
(hard) :math:`\\lambda = 1` while the true class has :math:`p_t \\le m` and 0 beyond, so examples
that are "right enough" stop contributing; with ``softness=K`` (soft) the step becomes
:math:`\\sigma(K(\\operatorname{logit} m - \\operatorname{logit} p_t))`.

This example trains :class:`~skfocal.FocalClassifier` with ``loss="margin"`` on yeast6
(KEEL; 35 positives out of 1484): the hard and the soft margin loss at ``margin=0.6``, the
soft one at ``margin=0.5, softness=1`` (which equals focal loss with ``gamma=1``), and
cross-entropy, and compares the out-of-fold average precision and how confident the models
become.
"""

# %%
# Cross-validated comparison
# --------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from skfocal import FocalClassifier
from skfocal.datasets import load_imbalanced

X, y = load_imbalanced("yeast6")
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
variants = {
    "cross-entropy": dict(loss="cross_entropy"),
    "hard margin, m=0.6": dict(loss="margin", margin=0.6),
    "soft margin, m=0.6, K=2": dict(loss="margin", margin=0.6, softness=2.0),
    "soft margin, m=0.5, K=1 (= focal, gamma=1)": dict(loss="margin", margin=0.5, softness=1.0),
}
probas, rows = {}, []
for name, params in variants.items():
    clf = FocalClassifier(lr=1e-2, batch_size=128, max_epochs=20, random_state=0, **params)
    proba = cross_val_predict(clf, X, y, cv=cv, method="predict_proba")[:, 1]
    probas[name] = proba
    rows.append(
        {
            "loss": name,
            "average precision": average_precision_score(y, proba),
            "median P(y=1) of positives": np.median(proba[y == 1]),
            "median P(y=1) of negatives": np.median(proba[y == 0]),
        }
    )
table = pd.DataFrame(rows).set_index("loss")
print(table.round(4).to_string())

# %%
# How confident the models become
# -------------------------------
# A margin stops pushing an example once :math:`p_t > m`: the predicted probability of the
# true class piles up near the margin instead of near 1. The soft version spreads the pile.
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
bins = np.linspace(0, 1, 41)
for name in ["cross-entropy", "hard margin, m=0.6", "soft margin, m=0.6, K=2"]:
    p_true = np.where(y == 1, probas[name], 1 - probas[name])
    axes[0].hist(p_true, bins=bins, histtype="step", lw=2, label=name)
axes[0].set(
    xlabel="$p_t$ (out-of-fold)", ylabel="examples", yscale="log", title="Distribution of $p_t$"
)
axes[0].legend(fontsize="small")
axes[1].barh(table.index, table["average precision"], color="C2")
for i, value in enumerate(table["average precision"]):
    axes[1].text(value, i, f" {value:.3f}", va="center")
axes[1].set(xlabel="average precision (3-fold out-of-fold)", title="yeast6")
axes[1].invert_yaxis()
fig.tight_layout()
plt.show()
