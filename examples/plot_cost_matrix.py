"""
============================================================
Decisions for a cost matrix: the argmax, tuned offsets, cost
============================================================

A triage model sorts patients into *healthy*, *mild* and *severe*. Sending a severe case home
costs far more than over-treating a healthy one, and the costs are not symmetric between
classes: mistaking *severe* for *mild* is bad, for *healthy* much worse. This example compares
three ways of turning one network's probabilities into decisions:

* the **argmax** of the probabilities (the most probable class);
* **per-class offsets** on the log posterior tuned to macro-F1 by
  :class:`~skfocal.TunedDecisionClassifierCV` (what a change of class prior can do);
* the **expected-cost decision** :math:`\\operatorname{argmin}_j \\sum_i p_i C_{ij}`, which
  :class:`~skfocal.TunedDecisionClassifierCV` applies when ``scoring`` is a cost matrix
  (see :ref:`decisions`).

The data are synthetic, two features drawn from a Gaussian per class, so that the true
posterior, and with it the best achievable expected cost (the Bayes decision), is known.
"""

# %%
# Data with a known posterior
# ---------------------------
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from scipy.special import logsumexp
from sklearn.metrics import f1_score

from skfocal import FocalClassifier, TunedDecisionClassifierCV

CLASSES = np.array(["healthy", "mild", "severe"])
PRIORS = np.array([0.80, 0.15, 0.05])
MEANS = np.array([[0.0, 0.0], [1.5, 1.0], [2.5, 2.5]])
# rows: the truth, columns: the decision (healthy, mild, severe)
COST = np.array(
    [
        [0.0, 1.0, 3.0],  # a healthy patient: treated as mild costs 1, as severe 3
        [10.0, 0.0, 1.0],  # a mild case sent home costs 10
        [100.0, 20.0, 0.0],  # a severe case sent home costs 100, treated as mild 20
    ]
)
rng = np.random.default_rng(0)


def sample(n):
    """Labels, features and the exact posterior of each sample."""
    y = rng.choice(3, size=n, p=PRIORS)
    X = MEANS[y] + rng.normal(size=(n, 2))
    log_joint = np.log(PRIORS) - 0.5 * ((X[:, None, :] - MEANS) ** 2).sum(axis=2)
    return X, y, np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


X_train, y_train, _ = sample(2000)
X_test, y_test, posterior_test = sample(20000)
y_train, y_test = CLASSES[y_train], CLASSES[y_test]

# %%
# One network, two tuned decisions
# --------------------------------
# ``alpha="balanced"`` makes training emphasise the rare classes. For a cost matrix the
# meta-estimator trains the network with ``class_prior="data"``, so that ``predict_proba`` is
# the posterior under the data's class frequencies -- the expected-cost decision needs
# calibrated probabilities. For macro-F1 the network is kept as it is and per-class offsets
# are searched on out-of-fold predictions (5 folds).
network = FocalClassifier(alpha="balanced", max_epochs=20, random_state=0)
by_cost = TunedDecisionClassifierCV(network, scoring=COST).fit(X_train, y_train)
by_f1 = TunedDecisionClassifierCV(network, scoring="f1_macro").fit(X_train, y_train)
print(f"class_prior of the network trained for the cost matrix: {by_cost.estimator_.class_prior}")
print("offsets on the log posterior for macro-F1:", np.round(by_f1.class_offsets_, 2))

# %%
# Expected cost on new data
# -------------------------
# The expected cost of a decision is computed with the true posterior, so it has no sampling
# noise; the Bayes decision (the expected-cost rule on the true posterior) is the floor.
decisions = {
    "argmax (class_prior='data')": by_cost.estimator_.predict(X_test),
    "offsets tuned to macro-F1": by_f1.predict(X_test),
    "expected-cost decision": by_cost.predict(X_test),
    "Bayes (true posterior)": CLASSES[np.argmin(posterior_test @ COST, axis=1)],
}
costs = {}
for name, pred in decisions.items():
    index = np.searchsorted(CLASSES, pred)
    costs[name] = np.mean((posterior_test @ COST)[np.arange(len(index)), index])
    print(
        f"{name:30s} expected cost {costs[name]:.3f}  "
        f"macro-F1 {f1_score(y_test, pred, average='macro'):.3f}"
    )

# %%
# The decision regions
# --------------------
# Shaded: the decision at each point (blue *healthy*, orange *mild*, red *severe*); dots: test
# patients by their true class. The offsets move the boundaries of the argmax in parallel (a
# change of prior); the cost matrix moves them further towards *healthy*, since missing a
# severe case costs the most.
grid = np.stack(np.meshgrid(np.linspace(-3, 5.5, 200), np.linspace(-3, 5.5, 200)), axis=-1)
points = grid.reshape(-1, 2)
models = {
    "argmax": by_cost.estimator_,
    "offsets for macro-F1": by_f1,
    "expected cost": by_cost,
}
colors = ListedColormap(["#c6dbef", "#fdd0a2", "#fcbba1"])
fig, axes = plt.subplots(1, 3, figsize=(13, 4.5), sharex=True, sharey=True)
shown = rng.choice(len(X_test), size=1500, replace=False)
for ax, (title, model) in zip(axes, models.items()):
    regions = np.searchsorted(CLASSES, model.predict(points)).reshape(grid.shape[:2])
    ax.contourf(grid[..., 0], grid[..., 1], regions, levels=[-0.5, 0.5, 1.5, 2.5], cmap=colors)
    for k, color in enumerate(["#08519c", "#d94801", "#a50f15"]):
        mask = y_test[shown] == CLASSES[k]
        ax.scatter(*X_test[shown][mask].T, s=4, color=color, label=CLASSES[k])
    ax.set_title(title)
    ax.set_aspect("equal")
axes[0].legend(loc="upper left", markerscale=3)
fig.tight_layout()

fig, ax = plt.subplots(figsize=(8, 2.8))
names = list(costs)
ax.barh(names, [costs[n] for n in names], color=["#bbbbbb", "#9ecae1", "#fd8d3c", "#555555"])
ax.invert_yaxis()
ax.set_xlabel("expected cost per patient (computed with the true posterior)")
fig.tight_layout()
plt.show()

# %%
# The expected-cost decision comes close to the Bayes decision because the network's
# ``predict_proba`` estimates the posterior; offsets chosen for macro-F1 optimise another
# metric, and no offsets express this cost matrix: each row's errors cost different amounts,
# so the best decision is not a change of class prior.
