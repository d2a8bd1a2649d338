"""Correct, numerically stable imbalance losses for PyTorch.

Every loss takes logits, works in log space and has a gradient that is finite for all valid
hyperparameters (closed-form, or torch's own cross-entropy on shifted logits). Each comes as a
typed function and as an ``nn.Module`` criterion: focal and margin (truncated) losses, LDAM,
logit adjustment (balanced softmax), poly-1 and the asymmetric loss, with the helpers
``ldam_margins`` and ``class_balanced_weights`` and, for calibrated probabilities,
``logit_adjusted_log_posterior`` and the ``*_log_abs_dloss`` derivatives.

Examples
--------
>>> import torch
>>> from skfocal.losses import FocalLoss, focal_loss
>>> logits, target = torch.tensor([[2.0, -1.0], [0.5, 0.5]]), torch.tensor([0, 1])
>>> criterion = FocalLoss(gamma=2.0, alpha=[0.25, 0.75])
>>> torch.equal(criterion(logits, target), focal_loss(logits, target, gamma=2.0,
...                                                   alpha=[0.25, 0.75]))
True
"""

from ._asymmetric import (
    BinaryAsymmetricLoss,
    asymmetric_neg_log_abs_dloss,
    asymmetric_pos_log_abs_dloss,
    binary_asymmetric_loss_with_logits,
)
from ._class_balanced import class_balanced_weights
from ._focal import (
    BinaryFocalLoss,
    FocalLoss,
    binary_focal_loss_with_logits,
    binary_focal_posterior,
    cross_entropy_log_abs_dloss,
    focal_log_abs_dloss,
    focal_loss,
    focal_posterior,
)
from ._ldam import BinaryLDAMLoss, LDAMLoss, binary_ldam_loss_with_logits, ldam_loss, ldam_margins
from ._links import sigmoid_log_odds, softmax_log_posterior
from ._logit_adjusted import (
    BinaryLogitAdjustedLoss,
    LogitAdjustedLoss,
    binary_logit_adjusted_loss_with_logits,
    logit_adjusted_log_posterior,
    logit_adjusted_loss,
)
from ._margin import (
    BinaryMarginLoss,
    MarginLoss,
    binary_margin_loss_with_logits,
    margin_loss,
    soft_margin_link_is_invertible,
    soft_margin_log_abs_dloss,
)
from ._poly import (
    BinaryPoly1Loss,
    Poly1Loss,
    binary_poly1_loss_with_logits,
    poly1_log_abs_dloss,
    poly1_loss,
)

__all__ = [
    "BinaryAsymmetricLoss",
    "BinaryFocalLoss",
    "BinaryLDAMLoss",
    "BinaryLogitAdjustedLoss",
    "BinaryMarginLoss",
    "BinaryPoly1Loss",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "MarginLoss",
    "Poly1Loss",
    "asymmetric_neg_log_abs_dloss",
    "asymmetric_pos_log_abs_dloss",
    "binary_asymmetric_loss_with_logits",
    "binary_focal_loss_with_logits",
    "binary_focal_posterior",
    "binary_ldam_loss_with_logits",
    "binary_logit_adjusted_loss_with_logits",
    "binary_margin_loss_with_logits",
    "binary_poly1_loss_with_logits",
    "class_balanced_weights",
    "cross_entropy_log_abs_dloss",
    "focal_log_abs_dloss",
    "focal_loss",
    "focal_posterior",
    "ldam_loss",
    "ldam_margins",
    "logit_adjusted_log_posterior",
    "logit_adjusted_loss",
    "margin_loss",
    "poly1_log_abs_dloss",
    "poly1_loss",
    "sigmoid_log_odds",
    "soft_margin_link_is_invertible",
    "soft_margin_log_abs_dloss",
    "softmax_log_posterior",
]
