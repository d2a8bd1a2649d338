"""
=================================================
Tuning gamma and alpha together with GridSearchCV
=================================================

``gamma`` and ``alpha`` are ordinary constructor hyperparameters of
:class:`~skfocal.FocalClassifier`, so scikit-learn's searches work unchanged. Class weights
resolved from ``"balanced"`` are computed inside each ``fit``, from that CV fold's training
data only, so nothing leaks across folds.

The best ``alpha`` depends on ``gamma`` (focal loss already shifts weight toward the hard,
often minority, examples), which is why they are searched together here and the
cross-validated average precision is drawn as a heatmap. Data: yeast4 (KEEL), 3.4% positives.
"""

# %%
# Search
# ------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skfocal import FocalClassifier
from skfocal.datasets import load_imbalanced

X, y = load_imbalanced("yeast4")

gammas = [0.0, 1.0, 2.0, 4.0]
alphas = [None, 0.25, 0.75, "balanced"]
search = GridSearchCV(
    FocalClassifier(lr=1e-2, batch_size=128, max_epochs=15, random_state=0),
    param_grid={"gamma": gammas, "alpha": alphas},
    scoring="average_precision",
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
)
search.fit(X, y)
print("best:", search.best_params_, f"AP={search.best_score_:.3f}")

# %%
# Heatmap of the cross-validated average precision
# ------------------------------------------------
results = pd.DataFrame(search.cv_results_)
results["alpha"] = results["param_alpha"].map(lambda a: "None" if a is None else str(a))
table = results.pivot_table(index="alpha", columns="param_gamma", values="mean_test_score")
table = table.loc[[("None" if a is None else str(a)) for a in alphas]]
print(table.round(3))

fig, ax = plt.subplots(figsize=(6, 4))
image = ax.imshow(table.to_numpy(), cmap="viridis", aspect="auto")
ax.set_xticks(range(len(table.columns)), [f"{g:g}" for g in table.columns])
ax.set_yticks(range(len(table.index)), table.index)
ax.set(xlabel="gamma", ylabel="alpha", title="yeast4: mean CV average precision")
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
# The spread across folds matters as much as the mean: with 51 positives, each test fold holds
# only 17 of them.
cols = ["param_gamma", "alpha", "mean_test_score", "std_test_score", "rank_test_score"]
print(results[cols].sort_values("rank_test_score").head(6).to_string(index=False))
