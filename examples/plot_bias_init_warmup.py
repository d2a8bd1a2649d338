"""
============================================
Prior bias initialisation and warm-up epochs
============================================

Two training-start tricks for rare classes, both constructor hyperparameters of
:class:`~skfocal.FocalClassifier`:

* ``bias_init="prior"`` sets the output bias to the log prior, :math:`b = \\log(\\pi / (1 - \\pi))`
  for a binary logit (:math:`\\log \\pi_c` per class for softmax), with :math:`\\pi` the
  class prior the loss sees (here, without weights or a sampler, the data's), so the
  untrained network already predicts the class frequencies. With ``"zero"`` it predicts
  50/50 and the first epochs are spent learning that positives are rare -- a large, useless
  loss that dominates the early gradient.
* ``warmup_epochs=k`` trains the first *k* epochs with plain cross-entropy and then switches to
  the chosen loss. Focal loss down-weights "easy" examples; at initialisation nothing is easy
  or hard yet, so a short cross-entropy phase gives focal loss meaningful :math:`p_t` values
  to work with.

The curves come from :func:`~skfocal.plot_training_curves`. Data: yeast6 (KEEL; 35
positives out of 1484, imbalance ratio 41), with 30% held out (stratified) to record the
validation loss and average precision every epoch.
"""

# %%
# What the untrained network predicts
# -----------------------------------
# A learning rate of ~0 leaves the network as initialised; its mean predicted probability
# of the positive class shows what ``bias_init`` does before any learning.
import matplotlib.pyplot as plt
from sklearn.preprocessing import StandardScaler

from skfocal import FocalClassifier, plot_training_curves, training_curves
from skfocal.datasets import load_imbalanced

X, y = load_imbalanced("yeast6")
X = StandardScaler().fit_transform(X)
print(f"positive rate: {y.mean():.4f}")
for bias_init in ["zero", "prior"]:
    untrained = FocalClassifier(bias_init=bias_init, lr=1e-12, max_epochs=1, random_state=0)
    proba = untrained.fit(X, y).predict_proba(X)[:, 1]
    print(f"bias_init={bias_init!r}: mean P(y=1) before training = {proba.mean():.4f}")

# %%
# Training with each setting
# --------------------------

settings = {
    'bias_init="zero"': dict(bias_init="zero"),
    'bias_init="prior"': dict(bias_init="prior"),
    'bias_init="prior", warmup_epochs=5': dict(bias_init="prior", warmup_epochs=5),
}
fitted = {}
for name, params in settings.items():
    clf = FocalClassifier(
        gamma=2.0,
        lr=1e-2,
        batch_size=64,
        max_epochs=20,
        early_stopping=True,  # holds out 30% to record the validation AP every epoch
        validation_fraction=0.3,
        n_iter_no_change=20,  # ... but never stops early here
        scoring="average_precision",
        random_state=0,
        **params,
    )
    fitted[name] = clf.fit(X, y)
    curves = training_curves(clf)
    print(
        f"{name:38s} first-epoch train loss {curves['train_loss'].iloc[0]:.4f}, "
        f"last-epoch valid AP {curves.iloc[-1, -1]:.3f}"
    )

# %%
# Training curves
# ---------------
# With ``bias_init="zero"`` the first epoch's training loss is much larger: the network first
# has to learn that positives are rare. With the prior bias it starts near that point. During
# the warm-up the training loss is cross-entropy, which is larger than focal loss; it drops
# in scale at the switch (dotted line). The validation loss is always the chosen focal loss.
# With about 10 positives in the validation part, the validation AP is noisy from epoch to
# epoch: these settings change how training starts, not where a long training ends.
fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
for ax, (name, clf) in zip(axes, fitted.items()):
    plot_training_curves(clf, ax=ax)
    ax.set_title(name)
fig.tight_layout()
plt.show()
