"""
=======================================================================
A custom PyTorch module (a small token-embedding model) with focal loss
=======================================================================

:class:`~skfocal.FocalClassifier` trains any ``nn.Module`` that maps a tensor of shape
``(N, n_features)`` to logits of shape ``(N, n_outputs)`` (float features arrive in the
training ``dtype``, integer ids as int64; a dict ``X`` arrives as keyword arguments, see
:ref:`text`). Pass the module *class* and the
estimator calls it with ``n_features`` and ``n_outputs`` (those its ``__init__`` accepts),
so other constructor arguments need defaults; or pass a module *instance*, which is copied at
every ``fit``.

Here the "documents" are synthetic sequences of 20 token ids from a vocabulary of 60; a
document is positive (about 4%) when it contains at least two of five "signal" tokens. The
model is a bag of embeddings (:class:`torch.nn.EmbeddingBag`) followed by a linear layer -- the
shape of a small text classifier. The second half shows the same module in a plain skorch
``NeuralNetClassifier`` with :class:`~skfocal.losses.FocalLoss` as criterion, and the
``predict_nonlinearity`` pitfall that comes with it.
"""

# %%
# Synthetic token sequences with a rare positive class
# ----------------------------------------------------
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from skfocal import FocalClassifier, plot_training_curves
from skfocal.losses import FocalLoss

VOCAB, LENGTH, SIGNAL = 60, 20, np.arange(1, 6)
rng = np.random.default_rng(0)
n = 3000
X = rng.integers(6, VOCAB, size=(n, LENGTH))
y = np.zeros(n, dtype=np.int64)
for i in range(n):
    if rng.random() < 0.04:  # positive: two distinct signal tokens somewhere
        X[i, rng.choice(LENGTH, 2, replace=False)] = rng.choice(SIGNAL, 2, replace=False)
        y[i] = 1
    elif rng.random() < 0.5:  # hard negative: exactly one signal token
        X[i, rng.integers(LENGTH)] = rng.choice(SIGNAL)
print(f"{n} documents, {y.sum()} positives ({y.mean():.1%})")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


# %%
# The module
# ----------
# Integer ``X`` reaches a user module as int64, so the token ids go straight into the
# embedding, exactly. ``n_outputs`` is 1 for a binary target (one sigmoid logit).
class TokenBag(nn.Module):
    def __init__(self, n_outputs, vocab_size=VOCAB, dim=8):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, dim, mode="sum")
        self.out = nn.Linear(dim, n_outputs)

    def forward(self, X):
        return self.out(self.embed(X))


clf = FocalClassifier(
    module=TokenBag,
    gamma=2.0,
    lr=0.05,
    batch_size=128,
    max_epochs=25,
    early_stopping=True,
    scoring="average_precision",
    random_state=0,
)
clf.fit(X_train, y_train)
proba = clf.predict_proba(X_test)[:, 1]
print(f"FocalClassifier(module=TokenBag) test AP: {average_precision_score(y_test, proba):.3f}")

ax = plot_training_curves(clf)
ax.set_title("TokenBag trained with focal loss (gamma=2)")
plt.tight_layout()

# %%
# The same module in plain skorch: set ``predict_nonlinearity``
# -------------------------------------------------------------
# With a criterion skorch does not know, ``predict_proba`` applies **no** nonlinearity and
# returns logits. For a two-logit softmax model, pass the softmax explicitly.
Xt = torch.as_tensor(X_train)  # int64 token ids
common = dict(
    module=TokenBag,
    module__n_outputs=2,
    criterion=FocalLoss,
    criterion__gamma=2.0,
    optimizer=torch.optim.Adam,
    lr=0.01,
    max_epochs=10,
    train_split=None,
    verbose=0,
)
torch.manual_seed(0)
raw = NeuralNetClassifier(**common).fit(Xt, y_train)
torch.manual_seed(0)
fixed = NeuralNetClassifier(**common, predict_nonlinearity=partial(torch.softmax, dim=-1))
fixed.fit(Xt, y_train)

Xtest = torch.as_tensor(X_test)
raw_out = raw.predict_proba(Xtest)
fixed_out = fixed.predict_proba(Xtest)
print(
    "without predict_nonlinearity: row sums",
    raw_out[:3].sum(1).round(3),
    "min value",
    raw_out.min().round(2),
)
print("with softmax:                 row sums", fixed_out[:3].sum(1).round(3))

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].hist(raw_out[:, 1], bins=50)
axes[0].set(
    title="predict_proba()[:, 1] without predict_nonlinearity\n(raw logits)", xlabel="value"
)
axes[1].hist(fixed_out[:, 1], bins=50, color="C1")
axes[1].set(title="with predict_nonlinearity=softmax", xlabel="probability", yscale="log")
fig.tight_layout()
plt.show()
