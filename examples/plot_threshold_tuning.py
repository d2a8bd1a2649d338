"""
=========================================================
Precision-recall curves, threshold tuning and calibration
=========================================================

On imbalanced data the default decision threshold of 0.5 is rarely the one you want, and
re-balancing knobs (class weights, samplers, focal loss) distort the predicted
probabilities. Because :class:`~skfocal.FocalClassifier` has a real ``predict_proba`` and a
``decision_function``, scikit-learn's post-processing tools work on it unchanged:

* :class:`~sklearn.model_selection.TunedThresholdClassifierCV` picks the threshold that
  maximises a metric by cross-validation;
* :class:`~sklearn.calibration.CalibratedClassifierCV` maps scores to calibrated
  probabilities.

Data: yeast4 (KEEL), 3.4% positives, stratified 40% test split.
"""

# %%
# Fit, tune the threshold, calibrate
# ----------------------------------
import matplotlib.pyplot as plt
from sklearn.calibration import CalibratedClassifierCV, CalibrationDisplay
from sklearn.metrics import (
    PrecisionRecallDisplay,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
)
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV, train_test_split

from skfocal import FocalClassifier
from skfocal.datasets import load_imbalanced

X, y = load_imbalanced("yeast4")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)

plain = FocalClassifier(gamma=2.0, lr=1e-2, batch_size=128, max_epochs=20, random_state=0)
plain.fit(X_train, y_train)
tuned = TunedThresholdClassifierCV(plain, scoring="f1", cv=cv).fit(X_train, y_train)
print(f"tuned threshold: {tuned.best_threshold_:.3f} (cross-validated F1 {tuned.best_score_:.3f})")
for name, model in [("threshold 0.5", plain), ("tuned threshold", tuned)]:
    pred = model.predict(X_test)
    print(
        f"{name:16s} precision {precision_score(y_test, pred, zero_division=0):.3f}  "
        f"recall {recall_score(y_test, pred):.3f}  F1 {f1_score(y_test, pred):.3f}  "
        f"balanced accuracy {balanced_accuracy_score(y_test, pred):.3f}"
    )

# %%
# ``alpha="balanced"`` gives the rare class a large weight, so under the default
# ``class_prior="training"`` the probabilities of a weighted model overestimate it (they are
# those of the balanced training distribution). ``CalibratedClassifierCV`` (sigmoid
# calibration on cross-validated predictions) maps them back to observed frequencies;
# ``class_prior="data"`` would undo the weighting from the fit itself, without the three
# extra fits (user guide, "Probabilities and decisions").
weighted = FocalClassifier(
    gamma=2.0, alpha="balanced", lr=1e-2, batch_size=128, max_epochs=20, random_state=0
)
weighted.fit(X_train, y_train)
calibrated = CalibratedClassifierCV(weighted, method="sigmoid", cv=cv).fit(X_train, y_train)
for name, model in [("weighted, raw", weighted), ("weighted, calibrated", calibrated)]:
    proba = model.predict_proba(X_test)[:, 1]
    print(
        f"{name:21s} AP {average_precision_score(y_test, proba):.3f}, mean P(y=1) "
        f"{proba.mean():.3f} (true rate {y_test.mean():.3f})"
    )

# %%
# Precision-recall curve with the two operating points, and calibration
# ---------------------------------------------------------------------
proba = plain.predict_proba(X_test)[:, 1]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
PrecisionRecallDisplay.from_predictions(
    y_test, proba, name="FocalClassifier(gamma=2)", ax=axes[0], plot_chance_level=True
)
for name, threshold, marker in [
    ("threshold 0.5", 0.5, "o"),
    (f"tuned threshold {tuned.best_threshold_:.2f}", tuned.best_threshold_, "*"),
]:
    pred = proba >= threshold
    axes[0].plot(
        recall_score(y_test, pred),
        precision_score(y_test, pred, zero_division=0),
        marker=marker,
        ms=12,
        ls="none",
        label=name,
    )
axes[0].legend(fontsize="small")
axes[0].set_title("Precision-recall (test set)")
# Right: reliability diagram of the weighted model before and after calibration.
CalibrationDisplay.from_predictions(
    y_test,
    weighted.predict_proba(X_test)[:, 1],
    n_bins=8,
    strategy="quantile",
    name='alpha="balanced", raw',
    ax=axes[1],
)
CalibrationDisplay.from_predictions(
    y_test,
    calibrated.predict_proba(X_test)[:, 1],
    n_bins=8,
    strategy="quantile",
    name="CalibratedClassifierCV",
    ax=axes[1],
)
axes[1].set_title("Reliability diagram (test set)")
fig.tight_layout()
plt.show()
