"""``nn.Module`` wrappers whose ``forward`` is a single delegation to the functional form.

The modules validate their hyperparameters once at construction and keep a per-class
``alpha`` (and ``pos_weight``) as buffers, so ``.to(device)`` and ``state_dict`` carry them.
They work as criteria anywhere PyTorch or skorch expects one, e.g.
``NeuralNetClassifier(criterion=FocalLoss, criterion__gamma=2.0)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_alpha, check_gamma, check_margin, check_reduction, check_softness
from ._focal import binary_focal_loss_with_logits, focal_loss
from ._margin import binary_margin_loss_with_logits, margin_loss


class _AlphaLoss(nn.Module):
    """Stores the validated ``alpha``/``pos_weight`` (as buffers when tensors) and reduction."""

    def __init__(self, alpha, reduction: str, pos_weight=None):
        super().__init__()
        self.reduction = check_reduction(reduction)
        if isinstance(alpha, torch.Tensor) and alpha.device.type != "cpu":
            check_alpha(alpha.detach().cpu())
        alpha = check_alpha(alpha)
        if isinstance(alpha, torch.Tensor):
            self.register_buffer("alpha", alpha.to(torch.get_default_dtype()))
        else:
            self.alpha = alpha
        if pos_weight is not None:
            self.register_buffer(
                "pos_weight", torch.as_tensor(pos_weight, dtype=torch.get_default_dtype())
            )
        else:
            self.pos_weight = None

    def _alpha_repr(self) -> str:
        alpha = self.alpha.tolist() if isinstance(self.alpha, torch.Tensor) else self.alpha
        return f"alpha={alpha}, reduction={self.reduction!r}"


class FocalLoss(_AlphaLoss):
    r"""Softmax focal loss as an ``nn.Module``; see :func:`focal_loss` for the math.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`.
    alpha : None, float or sequence of float, default=None
        Class weights (float: two-class shorthand, ``alpha`` for class 1).
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.
    ignore_index : int, default=-100
        Target value to ignore.

    See Also
    --------
    focal_loss : The functional form, with the full description.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import FocalLoss
    >>> criterion = FocalLoss(gamma=2.0, alpha=[0.25, 0.75])
    >>> criterion
    FocalLoss(gamma=2.0, alpha=[0.25, 0.75], reduction='mean', ignore_index=-100)
    >>> logits = torch.zeros(4, 2, requires_grad=True)
    >>> loss = criterion(logits, torch.tensor([0, 1, 1, 1]))
    >>> loss.backward()
    >>> bool(torch.isfinite(logits.grad).all())
    True
    """

    def __init__(
        self, gamma: float = 2.0, alpha=None, reduction: str = "mean", ignore_index: int = -100
    ):
        super().__init__(alpha, reduction)
        self.gamma = check_gamma(gamma)
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(
            input,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, {self._alpha_repr()}, ignore_index={self.ignore_index}"


class BinaryFocalLoss(_AlphaLoss):
    r"""Sigmoid focal loss as an ``nn.Module``; see :func:`binary_focal_loss_with_logits`.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha`` (per label if a sequence).
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.

    See Also
    --------
    binary_focal_loss_with_logits : The functional form, with the full description.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import BinaryFocalLoss
    >>> criterion = BinaryFocalLoss(gamma=2.0, pos_weight=torch.tensor([3.0]))
    >>> criterion(torch.tensor([[2.0], [-1.0]]), torch.tensor([[1.0], [0.0]]))
    tensor(0.0140)
    """

    def __init__(self, gamma: float = 2.0, alpha=None, pos_weight=None, reduction: str = "mean"):
        super().__init__(alpha, reduction, pos_weight)
        self.gamma = check_gamma(gamma)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_focal_loss_with_logits(
            input,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            pos_weight=self.pos_weight,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, {self._alpha_repr()}"


class MarginLoss(_AlphaLoss):
    r"""Truncated softmax cross-entropy as an ``nn.Module``; see :func:`margin_loss`.

    Parameters
    ----------
    margin : float, default=0.6
        Probability threshold :math:`m \in (0, 1)`.
    softness : None or float, default=None
        ``None`` for hard truncation, or the slope :math:`K \ge 0` of the soft gate.
    alpha : None, float or sequence of float, default=None
        Class weights, as in :class:`FocalLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.
    ignore_index : int, default=-100
        Target value to ignore.

    See Also
    --------
    margin_loss : The functional form, with the full description.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import MarginLoss
    >>> criterion = MarginLoss(margin=0.6, softness=4.0)
    >>> criterion(torch.tensor([[3.0, 0.0], [0.2, 0.0]]), torch.tensor([0, 0]))
    tensor(0.2077)
    """

    def __init__(
        self,
        margin: float = 0.6,
        softness: float | None = None,
        alpha=None,
        reduction: str = "mean",
        ignore_index: int = -100,
    ):
        super().__init__(alpha, reduction)
        self.margin = check_margin(margin)
        self.softness = check_softness(softness)
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return margin_loss(
            input,
            target,
            margin=self.margin,
            softness=self.softness,
            alpha=self.alpha,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, softness={self.softness}, {self._alpha_repr()}, "
            f"ignore_index={self.ignore_index}"
        )


class BinaryMarginLoss(_AlphaLoss):
    r"""Truncated binary cross-entropy as an ``nn.Module``.

    See :func:`binary_margin_loss_with_logits` for the math.

    Parameters
    ----------
    margin : float, default=0.6
        Probability threshold :math:`m \in (0, 1)`.
    softness : None or float, default=None
        ``None`` for hard truncation, or the slope :math:`K \ge 0` of the soft gate.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha``.
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.

    See Also
    --------
    binary_margin_loss_with_logits : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import BinaryMarginLoss
    >>> criterion = BinaryMarginLoss(margin=0.6)
    >>> criterion(torch.tensor([3.0, 0.1, -2.0]), torch.tensor([1.0, 1.0, 0.0]))
    tensor(0.2148)
    """

    def __init__(
        self,
        margin: float = 0.6,
        softness: float | None = None,
        alpha=None,
        pos_weight=None,
        reduction: str = "mean",
    ):
        super().__init__(alpha, reduction, pos_weight)
        self.margin = check_margin(margin)
        self.softness = check_softness(softness)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_margin_loss_with_logits(
            input,
            target,
            margin=self.margin,
            softness=self.softness,
            alpha=self.alpha,
            pos_weight=self.pos_weight,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, softness={self.softness}, {self._alpha_repr()}"
