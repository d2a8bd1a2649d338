"""skfocal: class-imbalance handling for PyTorch models as scikit-learn hyperparameters.

The package has two layers:

* :mod:`skfocal.losses` -- correct, numerically stable focal and margin losses for PyTorch,
  usable as plain functions, ``nn.Module`` criteria or skorch criteria;
* :class:`skfocal.FocalClassifier` -- a skorch-backed scikit-learn classifier whose imbalance
  handling (``loss``, ``gamma``, ``alpha``, ``class_weight``, ``sampler``) is a set of ordinary
  constructor hyperparameters.
"""

from . import datasets, losses
from ._classifier import FocalClassifier
from ._net import NonFiniteTrainingError
from ._plotting import plot_training_curves, training_curves
from ._version import __version__
from .losses import (
    BinaryFocalLoss,
    BinaryMarginLoss,
    FocalLoss,
    MarginLoss,
    binary_focal_loss_with_logits,
    binary_margin_loss_with_logits,
    focal_loss,
    margin_loss,
)

__all__ = [
    "BinaryFocalLoss",
    "BinaryMarginLoss",
    "FocalClassifier",
    "FocalLoss",
    "MarginLoss",
    "NonFiniteTrainingError",
    "__version__",
    "binary_focal_loss_with_logits",
    "binary_margin_loss_with_logits",
    "datasets",
    "focal_loss",
    "losses",
    "margin_loss",
    "plot_training_curves",
    "training_curves",
]
