"""
=======================================
Multilabel targets with per-label alpha
=======================================

With a multilabel indicator matrix ``y`` of shape ``(n_samples, n_labels)``,
:class:`~skfocal.FocalClassifier` trains one sigmoid output per label with the sigmoid focal
loss. ``alpha`` can then be given **per label**: :math:`\\alpha_l` weights the positives of label
*l* and :math:`1 - \\alpha_l` its negatives.

This example uses a synthetic data set (scikit-learn's
:func:`~sklearn.datasets.make_multilabel_classification`) where the labels have very different
frequencies, and compares no alpha, a per-label alpha derived from the label frequencies, and
plain cross-entropy. It ends with the same loss in plain PyTorch, where ``pos_weight`` (as in
``BCEWithLogitsLoss``) is the per-label knob.
"""

# %%
# A multilabel problem with rare labels
# -------------------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split

from skfocal import FocalClassifier
from skfocal.losses import binary_focal_loss_with_logits

X, Y = make_multilabel_classification(
    n_samples=1500, n_features=20, n_classes=5, n_labels=1, allow_unlabeled=True, random_state=3
)
# make two of the labels rare by dropping most of their positives
rng = np.random.default_rng(0)
for label, keep in [(3, 0.15), (4, 0.05)]:
    positives = np.flatnonzero(Y[:, label])
    Y[rng.choice(positives, size=int(len(positives) * (1 - keep)), replace=False), label] = 0
X = (X - X.mean(0)) / X.std(0)
print("positive rate per label:", Y.mean(0).round(3))
X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.3, random_state=0)

# %%
# Per-label alpha from the label frequencies
# ------------------------------------------
# A common choice is to give positives of label *l* the weight of the negatives' share,
# :math:`\alpha_l = 1 - \pi_l` (so a label with 2% positives gets :math:`\alpha_l = 0.98`).
# Like "balanced", it is computed on the training data only.
alpha_per_label = 1.0 - Y_train.mean(0)
print("alpha per label:", alpha_per_label.round(3))

variants = {
    "cross-entropy": dict(gamma=0.0),
    "focal, no alpha": dict(gamma=2.0),
    "focal, per-label alpha": dict(gamma=2.0, alpha=alpha_per_label),
}
ap = {}
for name, params in variants.items():
    clf = FocalClassifier(lr=1e-2, batch_size=128, max_epochs=20, random_state=0, **params)
    clf.fit(X_train, Y_train)
    proba = clf.predict_proba(X_test)  # (n_samples, n_labels), one probability per label
    ap[name] = [average_precision_score(Y_test[:, j], proba[:, j]) for j in range(Y.shape[1])]
ap = pd.DataFrame(ap, index=[f"label {j} ({Y.mean(0)[j]:.1%})" for j in range(Y.shape[1])])
print(ap.round(3))
print("macro average precision:\n" + ap.mean().round(3).to_string())

# %%
# Per-label average precision
# ---------------------------
ax = ap.plot.bar(figsize=(8, 4), rot=0)
ax.set(ylabel="average precision (test)", title="Multilabel: per-label AP")
ax.legend(loc="lower left", fontsize="small")
plt.tight_layout()

# %%
# The same loss in plain PyTorch, with per-label ``pos_weight``
# -------------------------------------------------------------
# :func:`~skfocal.losses.binary_focal_loss_with_logits` takes ``(N, L)`` logits and targets;
# ``pos_weight`` multiplies the positive term of each label like in
# :class:`torch.nn.BCEWithLogitsLoss`. ``n_neg / n_pos`` is the usual per-label choice. Here a
# linear model is trained for a few hundred full-batch steps with and without it.
Xt = torch.as_tensor(X_train, dtype=torch.float32)
Yt = torch.as_tensor(Y_train, dtype=torch.float32)
pos_weight = (1 - Yt.mean(0)) / Yt.mean(0)
print("pos_weight per label:", pos_weight.numpy().round(1))

curves = {}
for name, pw in [("no pos_weight", None), ("pos_weight = n_neg / n_pos", pos_weight)]:
    torch.manual_seed(0)
    model = torch.nn.Linear(X.shape[1], Y.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    recall_rare = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = binary_focal_loss_with_logits(model(Xt), Yt, gamma=2.0, pos_weight=pw)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            pred = model(torch.as_tensor(X_test, dtype=torch.float32)) > 0
            recall_rare.append(pred[:, 4][torch.as_tensor(Y_test[:, 4] == 1)].float().mean().item())
    curves[name] = recall_rare

fig, ax = plt.subplots(figsize=(6.4, 4))
for name, values in curves.items():
    ax.plot(values, label=name)
ax.set(xlabel="full-batch step", ylabel="test recall of the rarest label (threshold 0.5)")
ax.legend()
fig.tight_layout()
plt.show()
