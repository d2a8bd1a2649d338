"""
==========================================================
Batched grid search: gamma x alpha in one vectorized model
==========================================================

:class:`~skfocal.BatchedGridSearchCV` is scikit-learn's ``GridSearchCV`` whose candidates x
folds are trained together as one stacked network: here 4 values of ``gamma`` x 3 of
``alpha`` x 3 folds = 36 members in one training run. Each member computes what the same
candidate fitted alone on that fold computes, so ``cv_results_`` and ``best_params_`` are the
ones ``GridSearchCV`` would return; only the wall time differs.

Data: a small synthetic binary problem with 8 % positives.
"""

# %%
# Search
# ------
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold

from skfocal import BatchedGridSearchCV, FocalClassifier

X, y = make_classification(
    n_samples=2000, n_features=10, n_informative=5, weights=[0.92], random_state=0
)
X = X.astype(np.float32)

gammas = [0.0, 1.0, 2.0, 4.0]
alphas = [None, 0.25, "balanced"]
search = BatchedGridSearchCV(
    FocalClassifier(lr=1e-2, batch_size=128, max_epochs=10, random_state=0),
    param_grid={"gamma": gammas, "alpha": alphas},
    scoring="average_precision",
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
)
start = time.perf_counter()
search.fit(X, y)
print(f"{len(gammas) * len(alphas) * 3} members + refit in {time.perf_counter() - start:.1f} s")
print("best:", search.best_params_, f"AP={search.best_score_:.3f}")

# %%
# Heatmap of the cross-validated average precision
# ------------------------------------------------
results = pd.DataFrame(search.cv_results_)
results["alpha"] = results["param_alpha"].map(lambda a: "None" if a is None else str(a))
table = results.pivot_table(index="alpha", columns="param_gamma", values="mean_test_score")
table = table.loc[[("None" if a is None else str(a)) for a in alphas]]
print(table.round(3))

fig, ax = plt.subplots(figsize=(6, 3.5))
image = ax.imshow(table.to_numpy(), cmap="viridis", aspect="auto")
ax.set_xticks(range(len(table.columns)), [f"{g:g}" for g in table.columns])
ax.set_yticks(range(len(table.index)), table.index)
ax.set(xlabel="gamma", ylabel="alpha", title="mean CV average precision (one batched search)")
for (i, j), value in np.ndenumerate(table.to_numpy()):
    ax.text(
        j,
        i,
        f"{value:.3f}",
        ha="center",
        va="center",
        color="w" if value < table.to_numpy().mean() else "k",
    )
fig.colorbar(image, ax=ax)
fig.tight_layout()
plt.show()

# %%
# ``mean_fit_time`` of members trained together is the stacked run's wall time divided by
# its members: each fit's share of the batched run.
cols = ["param_gamma", "alpha", "mean_test_score", "std_test_score", "mean_fit_time"]
print(results[cols].sort_values("mean_test_score", ascending=False).head(5).to_string(index=False))
