"""skfocal: class-imbalance handling for PyTorch models as scikit-learn hyperparameters.

The package has two layers:

* :mod:`skfocal.losses` -- correct, numerically stable imbalance losses for PyTorch (focal,
  margin, LDAM, logit-adjusted, poly-1, asymmetric), usable as plain functions, ``nn.Module``
  criteria or skorch criteria;
* :class:`skfocal.FocalClassifier` -- a skorch-backed scikit-learn classifier whose imbalance
  handling (``loss``, ``gamma``, ``alpha``, ``class_weight``, ``sampler``) is a set of ordinary
  constructor hyperparameters.
"""

from . import datasets, losses
from ._classifier import FocalClassifier
from ._decision import TunedDecisionClassifierCV
from ._engines._net import NonFiniteTrainingError
from ._loss_specs import LDAM, Asymmetric, LogitAdjusted, Poly1
from ._plotting import plot_training_curves, training_curves
from ._search import BatchedGridSearchCV
from ._threads import torch_threads
from ._version import __version__
from ._weights import ClassBalanced
from .losses import (
    BinaryAsymmetricLoss,
    BinaryFocalLoss,
    BinaryLDAMLoss,
    BinaryLogitAdjustedLoss,
    BinaryMarginLoss,
    BinaryPoly1Loss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    MarginLoss,
    Poly1Loss,
    binary_asymmetric_loss_with_logits,
    binary_focal_loss_with_logits,
    binary_ldam_loss_with_logits,
    binary_logit_adjusted_loss_with_logits,
    binary_margin_loss_with_logits,
    binary_poly1_loss_with_logits,
    focal_loss,
    ldam_loss,
    logit_adjusted_loss,
    margin_loss,
    poly1_loss,
)

__all__ = [
    "Asymmetric",
    "ClassBalanced",
    "LDAM",
    "LogitAdjusted",
    "Poly1",
    "BatchedGridSearchCV",
    "BinaryAsymmetricLoss",
    "BinaryFocalLoss",
    "BinaryLDAMLoss",
    "BinaryLogitAdjustedLoss",
    "BinaryMarginLoss",
    "BinaryPoly1Loss",
    "FocalClassifier",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "MarginLoss",
    "NonFiniteTrainingError",
    "Poly1Loss",
    "__version__",
    "binary_asymmetric_loss_with_logits",
    "binary_focal_loss_with_logits",
    "binary_ldam_loss_with_logits",
    "binary_logit_adjusted_loss_with_logits",
    "binary_margin_loss_with_logits",
    "binary_poly1_loss_with_logits",
    "datasets",
    "focal_loss",
    "ldam_loss",
    "logit_adjusted_loss",
    "losses",
    "margin_loss",
    "plot_training_curves",
    "poly1_loss",
    "torch_threads",
    "training_curves",
    "TunedDecisionClassifierCV",
]
