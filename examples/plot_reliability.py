"""
====================================================================
Reliability diagrams: raw focal outputs, recovered and recalibrated
====================================================================

The focal loss squeezes the network's probabilities toward 1/2: a network trained with it
is under-confident, and the sigmoid of its logits is not the probability of the class. Since
the loss is a strictly proper composite loss, the true posterior can be recovered from the
logits through the loss's inverse link (Charoenphakdee et al., CVPR 2021); that is what
:class:`~skfocal.FocalClassifier`'s ``predict_proba`` returns (see
:ref:`probabilities`). This example draws the reliability diagrams of

* the **raw** outputs: the sigmoid of the trained module's logit (what a hand-written focal
  loss training loop would report);
* the **recovered** outputs: ``FocalClassifier().predict_proba``, from the same fits;
* :class:`~sklearn.calibration.CalibratedClassifierCV` around ``FocalClassifier()``
  (Platt's sigmoid, 3 folds): the usual post-hoc fix, at three more fits each.

Data: yeast4 (KEEL, 1,484 rows, 51 positives), out-of-fold predictions of a stratified
5-fold cross-validation, so that every row is scored once by a model that did not see it.
"""

# %%
# Out-of-fold predictions
# -----------------------
# One ``FocalClassifier()`` per fold gives both the raw and the recovered probabilities: the
# raw ones from its network's logit (``predict_logits``), the recovered ones from
# ``predict_proba``.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import CalibratedClassifierCV, CalibrationDisplay
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfocal import FocalClassifier
from skfocal.datasets import load_imbalanced

X, y = load_imbalanced("yeast4")
proba = {"raw (sigmoid of the logit)": np.zeros(len(y))}
proba["recovered (predict_proba)"] = np.zeros(len(y))
proba["CalibratedClassifierCV (sigmoid)"] = np.zeros(len(y))

for fold, (train, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)):
    focal = make_pipeline(StandardScaler(), FocalClassifier(random_state=fold))
    focal.fit(X[train], y[train])
    logit = focal[-1].predict_logits(focal[0].transform(X[test]))  # the network's output
    proba["raw (sigmoid of the logit)"][test] = 1 / (1 + np.exp(-logit))
    proba["recovered (predict_proba)"][test] = focal.predict_proba(X[test])[:, 1]

    calibrated = make_pipeline(
        StandardScaler(),
        CalibratedClassifierCV(FocalClassifier(random_state=fold), method="sigmoid", cv=3),
    )
    calibrated.fit(X[train], y[train])
    proba["CalibratedClassifierCV (sigmoid)"][test] = calibrated.predict_proba(X[test])[:, 1]


# %%
# Scores
# ------
# Log-loss and Brier score (lower is better) and the expected calibration error over 15
# equal-width bins of the positive-class probability.
def expected_calibration_error(y_true, p, n_bins=15):
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return sum(
        np.mean(bins == b) * abs(y_true[bins == b].mean() - p[bins == b].mean())
        for b in np.unique(bins)
    )


print(f"{'':34}{'log-loss':>10}{'Brier':>8}{'ECE':>8}")
for label, p in proba.items():
    print(
        f"{label:34}{log_loss(y, p):10.3f}{brier_score_loss(y, p):8.3f}"
        f"{expected_calibration_error(y, p):8.3f}"
    )

# %%
# Reliability diagrams
# --------------------
# Quantile bins (each holds a tenth of the rows) because almost every probability is small:
# the positives are 3.4 % of the data. The raw focal outputs lie below the diagonal: they
# overstate the minority class's probability (the focal loss pushes the small posteriors up
# toward 1/2, as the histogram shows). The recovered ones follow the diagonal about as
# closely as the recalibrated ones, without the three extra fits per model.
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for label, p in proba.items():
    CalibrationDisplay.from_predictions(
        y, p, n_bins=10, strategy="quantile", name=label, ax=axes[0]
    )
axes[0].set_title("Reliability on yeast4 (out-of-fold, quantile bins)")
for label, p in proba.items():
    axes[1].hist(p, bins=30, range=(0, 1), histtype="step", label=label, lw=2)
axes[1].set_yscale("log")
axes[1].set_xlabel("predicted probability of the minority class")
axes[1].set_ylabel("rows")
axes[1].set_title("Where the probabilities lie")
axes[1].legend()
fig.tight_layout()
plt.show()
