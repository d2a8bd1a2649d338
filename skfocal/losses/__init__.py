"""Correct, numerically stable imbalance losses for PyTorch.

Every loss takes logits, works in log space and has a closed-form backward that is finite for
all hyperparameters. Each comes as a typed function and as an ``nn.Module`` criterion.

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

from ._focal import binary_focal_loss_with_logits, focal_loss
from ._links import (
    binary_focal_posterior,
    cross_entropy_log_abs_dloss,
    focal_log_abs_dloss,
    focal_posterior,
    sigmoid_log_odds,
    soft_margin_link_is_invertible,
    soft_margin_log_abs_dloss,
    softmax_log_posterior,
)
from ._margin import binary_margin_loss_with_logits, margin_loss
from ._modules import BinaryFocalLoss, BinaryMarginLoss, FocalLoss, MarginLoss

__all__ = [
    "BinaryFocalLoss",
    "BinaryMarginLoss",
    "FocalLoss",
    "MarginLoss",
    "binary_focal_loss_with_logits",
    "binary_focal_posterior",
    "binary_margin_loss_with_logits",
    "cross_entropy_log_abs_dloss",
    "focal_log_abs_dloss",
    "focal_loss",
    "focal_posterior",
    "margin_loss",
    "sigmoid_log_odds",
    "soft_margin_link_is_invertible",
    "soft_margin_log_abs_dloss",
    "softmax_log_posterior",
]
