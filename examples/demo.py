"""
Imbalance handling as hyperparameters: a demo on real data
==========================================================

The README's first command. On the KEEL set ``yeast4`` (1,484 proteins, 51 in the minority
class: an imbalance ratio of 28), five ways to train the same network, each one
:class:`~skfocal.FocalClassifier` hyperparameter away from the others, are compared by
stratified 5-fold cross-validation on average precision (AP, of the minority class: ranking
quality), balanced accuracy (of ``predict``: the decisions) and log-loss (of
``predict_proba``: are the probabilities honest?):

* ``loss="cross_entropy"`` -- plain cross-entropy, what a skorch user starts from;
* ``FocalClassifier()`` -- the defaults: focal loss, probabilities recovered through the
  loss's inverse link, decisions at the training class prior;
* ``alpha="balanced"`` -- focal loss with inverse-frequency class weights;
* ``sampler="oversample"`` -- class-balanced minibatches;
* ``class_prior="balanced"`` -- the default training, with decisions (and probabilities) for
  equal class priors;
* ``TunedDecisionClassifierCV(FocalClassifier(), scoring="f1")`` -- the default training, with
  the decision threshold tuned to F1 by an inner 5-fold cross-validation (its five fold members
  and the refit member trained as one stacked run); macro-F1 on multiclass sets.

Weighting, oversampling and ``class_prior="balanced"`` buy balanced accuracy at the price of
log-loss (their probabilities are those of a balanced world); ``class_prior="balanced"`` does
it on the default's training, so its AP is the default's. The default keeps probabilities
close to cross-entropy's in log-loss. The tuned decision changes neither the ranking (AP) nor
the probabilities (log-loss): only where the line is drawn, here for the F1 column.

Run it from the repository root (needs ``pip install "skfocal[datasets]"``)::

    python examples/demo.py             # yeast4: 30 small fits, two at a time; about 10 s
                                        # on two CPU cores (6 s measured, shared with other jobs)
    python examples/demo.py abalone19   # any name from skfocal.datasets.list_imbalanced()
"""

import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, make_scorer
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfocal import FocalClassifier, TunedDecisionClassifierCV
from skfocal.datasets import load_imbalanced

name = sys.argv[1] if len(sys.argv) > 1 else "yeast4"
data = load_imbalanced(name, return_X_y=False)
X, y = data.data, data.target
print(data.DESCR, "\n")
f1 = "f1" if len(np.unique(y)) == 2 else "f1_macro"

candidates = {
    'loss="cross_entropy"': FocalClassifier(loss="cross_entropy"),
    "FocalClassifier()": FocalClassifier(),
    'alpha="balanced"': FocalClassifier(alpha="balanced"),
    'sampler="oversample"': FocalClassifier(sampler="oversample"),
    'class_prior="balanced"': FocalClassifier(class_prior="balanced"),
    "tuned to F1" if f1 == "f1" else "tuned to macro-F1": TunedDecisionClassifierCV(
        FocalClassifier(random_state=0), scoring=f1
    ),
}
# AP from predict_proba: for the multiclass sets this is the macro one-vs-rest AP of the
# probabilities (the "average_precision" scorer string ranks by decision_function, the log of
# predict_proba, and gives the same number).
ap = make_scorer(average_precision_score, response_method="predict_proba")
scoring = {"AP": ap, "balanced accuracy": "balanced_accuracy", "F1": f1, "log-loss": "neg_log_loss"}
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)

rows = {}
start = time.perf_counter()
print(f"5-fold CV of {len(candidates)} candidates on {name}, two fits at a time:", flush=True)
for i, (label, classifier) in enumerate(candidates.items(), 1):
    classifier.set_params(random_state=0)
    scores = cross_validate(
        make_pipeline(StandardScaler(), classifier), X, y, cv=cv, scoring=scoring, n_jobs=2
    )
    scores["test_log-loss"] = -scores["test_log-loss"]  # the scorer is negated
    rows[label] = {
        metric: f"{scores[f'test_{metric}'].mean():.3f} ± {scores[f'test_{metric}'].std():.3f}"
        for metric in scoring
    } | {"fit time (s)": f"{scores['fit_time'].mean():.1f}"}
    print(
        f"  [{i}/{len(candidates)}] {label:<24} AP {scores['test_AP'].mean():.3f}"
        f"  ({time.perf_counter() - start:.0f} s)",
        flush=True,
    )

table = pd.DataFrame.from_dict(rows, orient="index")
print()
print(table.to_string())
print(f"\n5-fold stratified CV on {name}; total {time.perf_counter() - start:.0f} s.")
