"""Scorer adapters: scikit-learn scorers on outputs already computed.

Early stopping on a ``scoring`` metric scores the validation part's outputs once per epoch,
without a second pass of the network over the data: :class:`FrozenPredictions` is a stand-in
fitted classifier whose ``predict`` / ``predict_proba`` / ``decision_function`` return those
outputs, mapped as the fitted estimator maps them. :func:`check_scorer` tries a scorer on
constant outputs before training, so that a scorer unfit for the target fails at once.
Used by the plan (the check), the skorch engine's ``ValidScoring`` callback and the stacked
engine's per-member validation.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


class FrozenPredictions:
    """Minimal fitted classifier returning precomputed outputs (for scikit-learn scorers)."""

    _estimator_type = "classifier"

    def __init__(self, logits, classes, kind, posterior=None):
        if posterior is not None:  # decision scores under the fit's class_prior
            logits = posterior.decision(torch.from_numpy(logits)).numpy()
        self.logits = logits
        self.classes_ = classes
        self.kind = kind

    def __sklearn_tags__(self):
        from sklearn.base import BaseEstimator, ClassifierMixin

        class _Tagged(ClassifierMixin, BaseEstimator):
            pass

        return _Tagged().__sklearn_tags__()

    def decision_function(self, X):
        return self.logits

    def predict_proba(self, X):
        return self.kind.proba(torch.from_numpy(self.logits)).numpy()

    def predict(self, X):
        return self.kind.labels(self.logits, self.classes_)


def check_scorer(scorer, name, kind, classes, y_valid):
    """Raise before training when ``scorer`` cannot score this kind of target.

    The scorer is tried once on constant outputs for the validation labels, so that e.g.
    ``scoring="roc_auc"`` on a multiclass target or a regression scorer on string labels fail
    here, not after the first epoch.
    """
    n_outputs = kind.n_outputs(len(classes))
    shape = (len(y_valid),) if n_outputs == 1 and not kind.softmax else (len(y_valid), n_outputs)
    frozen = FrozenPredictions(np.zeros(shape), classes, kind)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined-metric warnings of constant outputs
            scorer(frozen, np.zeros((len(y_valid), 1)), y_valid)
    except Exception as exc:  # noqa: BLE001 -- any failure means the scorer does not fit
        raise ValueError(
            f"scoring={name!r} cannot score the early-stopping validation part of this "
            f"{kind.name} target: {type(exc).__name__}: {exc}. Choose a scorer for "
            f"{kind.name} targets (e.g. 'neg_log_loss', 'balanced_accuracy', "
            "'average_precision' for binary ones) or scoring=None for the validation loss."
        ) from exc
