"""``nn.Module`` criteria for the LDAM, logit-adjusted, poly-1 and asymmetric losses.

As in ``_modules``: hyperparameters are validated once at construction, per-class tensors
(``margins``, ``prior``, ``alpha``, ``pos_weight``) are buffers so that ``.to(device)`` and
``state_dict`` carry them, and ``forward`` is a single delegation to the functional form.
"""

from __future__ import annotations

import torch

from ._asymmetric import binary_asymmetric_loss_with_logits
from ._checks import check_gamma, label_alpha
from ._ldam import binary_ldam_loss_with_logits, ldam_loss, ldam_margins
from ._logit_adjusted import binary_logit_adjusted_loss_with_logits, logit_adjusted_loss
from ._modules import _AlphaLoss
from ._params import (
    check_clip,
    check_epsilon,
    check_margins,
    check_nonnegative,
    check_positive,
    check_prior,
    cpu_checked,
)
from ._poly import binary_poly1_loss_with_logits, poly1_loss


def _tensor_repr(value) -> str:
    return str(value.tolist()) if isinstance(value, torch.Tensor) else repr(value)


class _ExtraLoss(_AlphaLoss):
    def _check_label_alpha(self) -> None:
        """Sigmoid losses weight negatives by ``1 - alpha``: per-label entries must be <= 1."""
        if isinstance(self.alpha, torch.Tensor):
            label_alpha(self.alpha.cpu(), self.alpha.numel(), self.alpha.cpu())

    def _register_vector(self, name: str, tensor: torch.Tensor) -> None:
        """A validated tensor hyperparameter: a buffer, or a float if it is 0-d."""
        if tensor.dim() == 0:
            setattr(self, name, float(tensor))
        else:
            self.register_buffer(name, tensor.detach().to(torch.get_default_dtype()))


class LDAMLoss(_ExtraLoss):
    r"""LDAM loss as an ``nn.Module``; see :func:`ldam_loss` for the math and the scale.

    Parameters
    ----------
    margins : sequence of float or Tensor of shape (C,)
        Per-class margins :math:`\Delta_c \ge 0` (e.g. ``ldam_margins(class_counts)``, or
        build the criterion with :meth:`from_class_counts`).
    scale : float, default=30.0
        Scale :math:`s > 0` of the shifted logits (meant for a cosine output layer).
    alpha : None, float or sequence of float, default=None
        Class weights (e.g. ``class_balanced_weights`` for deferred re-weighting).
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.
    ignore_index : int, default=-100
        Target value to ignore.

    See Also
    --------
    ldam_loss : The functional form, with the full description.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import LDAMLoss
    >>> criterion = LDAMLoss.from_class_counts([900, 90, 10], max_margin=0.5, scale=10.0)
    >>> criterion
    LDAMLoss(margins=[0.1623..., 0.2886..., 0.5], scale=10.0, alpha=None, ...)
    >>> logits = torch.tensor([[0.5, -0.2, 0.1]], requires_grad=True)
    >>> loss = criterion(logits, torch.tensor([2]))
    >>> loss.backward()
    >>> bool(torch.isfinite(logits.grad).all())
    True
    """

    def __init__(
        self,
        margins,
        scale: float = 30.0,
        alpha=None,
        reduction: str = "mean",
        ignore_index: int = -100,
    ):
        super().__init__(alpha, reduction)
        self._register_vector("margins", cpu_checked(check_margins, margins))
        self.scale = check_positive("scale", scale)
        self.ignore_index = ignore_index

    @classmethod
    def from_class_counts(cls, class_counts, max_margin: float = 0.5, **kwargs) -> LDAMLoss:
        """Build the criterion with ``margins=ldam_margins(class_counts, max_margin)``."""
        return cls(ldam_margins(class_counts, max_margin), **kwargs)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ldam_loss(
            input,
            target,
            margins=self.margins,
            scale=self.scale,
            alpha=self.alpha,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return (
            f"margins={_tensor_repr(self.margins)}, scale={self.scale}, {self._alpha_repr()}, "
            f"ignore_index={self.ignore_index}"
        )


class BinaryLDAMLoss(_ExtraLoss):
    r"""One-logit LDAM loss as an ``nn.Module``; see :func:`binary_ldam_loss_with_logits`.

    Parameters
    ----------
    margins : sequence of two floats, or Tensor of shape (2,) or (2, L)
        Margins :math:`(\Delta_0, \Delta_1) \ge 0` of the negative and positive class.
    scale : float, default=30.0
        Scale :math:`s > 0`.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha``.
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.

    See Also
    --------
    binary_ldam_loss_with_logits : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import BinaryLDAMLoss, ldam_margins
    >>> criterion = BinaryLDAMLoss(ldam_margins([950, 50]), scale=10.0)
    >>> criterion(torch.tensor([0.3, -0.4]), torch.tensor([1.0, 0.0]))
    tensor(1.1550)
    """

    def __init__(
        self,
        margins,
        scale: float = 30.0,
        alpha=None,
        pos_weight=None,
        reduction: str = "mean",
    ):
        super().__init__(alpha, reduction, pos_weight)
        self._check_label_alpha()
        self._register_vector("margins", cpu_checked(check_margins, margins, binary=True))
        self.scale = check_positive("scale", scale)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_ldam_loss_with_logits(
            input,
            target,
            margins=self.margins,
            scale=self.scale,
            alpha=self.alpha,
            pos_weight=self.pos_weight,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"margins={_tensor_repr(self.margins)}, scale={self.scale}, {self._alpha_repr()}"


class LogitAdjustedLoss(_ExtraLoss):
    r"""Logit-adjusted cross-entropy as an ``nn.Module``; see :func:`logit_adjusted_loss`.

    Parameters
    ----------
    prior : sequence of float or Tensor of shape (C,)
        Class prior :math:`\pi` (frequencies or counts, all > 0).
    tau : float, default=1.0
        Adjustment strength :math:`\tau \ge 0`.
    alpha : None, float or sequence of float, default=None
        Class weights.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.
    ignore_index : int, default=-100
        Target value to ignore.

    See Also
    --------
    logit_adjusted_loss : The functional form.
    logit_adjusted_log_posterior : Calibrated probabilities of the trained model.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import LogitAdjustedLoss
    >>> criterion = LogitAdjustedLoss(prior=[900, 90, 10])
    >>> criterion
    LogitAdjustedLoss(prior=[900.0, 90.0, 10.0], tau=1.0, alpha=None, reduction='mean', ...)
    >>> criterion(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([2]))
    tensor(4.6052)
    """

    def __init__(
        self,
        prior,
        tau: float = 1.0,
        alpha=None,
        reduction: str = "mean",
        ignore_index: int = -100,
    ):
        super().__init__(alpha, reduction)
        self._register_vector("prior", cpu_checked(check_prior, prior))
        self.tau = check_nonnegative("tau", tau)
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return logit_adjusted_loss(
            input,
            target,
            prior=self.prior,
            tau=self.tau,
            alpha=self.alpha,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return (
            f"prior={_tensor_repr(self.prior)}, tau={self.tau}, {self._alpha_repr()}, "
            f"ignore_index={self.ignore_index}"
        )


class BinaryLogitAdjustedLoss(_ExtraLoss):
    r"""One-logit logit-adjusted BCE as an ``nn.Module``.

    See :func:`binary_logit_adjusted_loss_with_logits` for the math.

    Parameters
    ----------
    prior : float or sequence of float
        Positive rate :math:`\pi \in (0, 1)`, or one per label.
    tau : float, default=1.0
        Adjustment strength :math:`\tau \ge 0`.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha``.
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.

    See Also
    --------
    binary_logit_adjusted_loss_with_logits : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import BinaryLogitAdjustedLoss
    >>> criterion = BinaryLogitAdjustedLoss(prior=0.1)
    >>> criterion(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
    tensor(1.2040)
    """

    def __init__(
        self,
        prior,
        tau: float = 1.0,
        alpha=None,
        pos_weight=None,
        reduction: str = "mean",
    ):
        super().__init__(alpha, reduction, pos_weight)
        self._check_label_alpha()
        self._register_vector("prior", cpu_checked(check_prior, prior, binary=True))
        self.tau = check_nonnegative("tau", tau)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_logit_adjusted_loss_with_logits(
            input,
            target,
            prior=self.prior,
            tau=self.tau,
            alpha=self.alpha,
            pos_weight=self.pos_weight,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"prior={_tensor_repr(self.prior)}, tau={self.tau}, {self._alpha_repr()}"


class Poly1Loss(_ExtraLoss):
    r"""Poly-1 softmax loss as an ``nn.Module``; see :func:`poly1_loss` for the math.

    Parameters
    ----------
    epsilon : float, default=1.0
        Coefficient :math:`\epsilon \ge -1` of the added :math:`(1 - p_t)^{\gamma+1}` term.
    gamma : float, default=0.0
        Focusing parameter :math:`\gamma \ge 0` (0: Poly-1 cross-entropy).
    alpha : None, float or sequence of float, default=None
        Class weights.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.
    ignore_index : int, default=-100
        Target value to ignore.

    See Also
    --------
    poly1_loss : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import Poly1Loss
    >>> criterion = Poly1Loss(epsilon=2.0)
    >>> criterion
    Poly1Loss(epsilon=2.0, gamma=0.0, alpha=None, reduction='mean', ignore_index=-100)
    >>> criterion(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    tensor(2.7754)
    """

    def __init__(
        self,
        epsilon: float = 1.0,
        gamma: float = 0.0,
        alpha=None,
        reduction: str = "mean",
        ignore_index: int = -100,
    ):
        super().__init__(alpha, reduction)
        self.epsilon = check_epsilon(epsilon)
        self.gamma = check_gamma(gamma)
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return poly1_loss(
            input,
            target,
            epsilon=self.epsilon,
            gamma=self.gamma,
            alpha=self.alpha,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return (
            f"epsilon={self.epsilon}, gamma={self.gamma}, {self._alpha_repr()}, "
            f"ignore_index={self.ignore_index}"
        )


class BinaryPoly1Loss(_ExtraLoss):
    r"""Poly-1 sigmoid loss as an ``nn.Module``; see :func:`binary_poly1_loss_with_logits`.

    Parameters
    ----------
    epsilon : float, default=1.0
        Coefficient :math:`\epsilon \ge -1`.
    gamma : float, default=0.0
        Focusing parameter :math:`\gamma \ge 0`.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha``.
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.

    See Also
    --------
    binary_poly1_loss_with_logits : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import BinaryPoly1Loss
    >>> criterion = BinaryPoly1Loss(epsilon=-1.0, gamma=2.0)
    >>> criterion(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0]))
    tensor(0.1556)
    """

    def __init__(
        self,
        epsilon: float = 1.0,
        gamma: float = 0.0,
        alpha=None,
        pos_weight=None,
        reduction: str = "mean",
    ):
        super().__init__(alpha, reduction, pos_weight)
        self._check_label_alpha()
        self.epsilon = check_epsilon(epsilon)
        self.gamma = check_gamma(gamma)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_poly1_loss_with_logits(
            input,
            target,
            epsilon=self.epsilon,
            gamma=self.gamma,
            alpha=self.alpha,
            pos_weight=self.pos_weight,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, gamma={self.gamma}, {self._alpha_repr()}"


class BinaryAsymmetricLoss(_ExtraLoss):
    r"""Asymmetric loss (ASL) as an ``nn.Module``.

    See :func:`binary_asymmetric_loss_with_logits` for the math.

    Parameters
    ----------
    gamma_pos : float, default=1.0
        Focusing parameter :math:`\gamma_+ \ge 0` of positives.
    gamma_neg : float, default=4.0
        Focusing parameter :math:`\gamma_- \ge 0` of negatives.
    clip : float, default=0.05
        Probability margin :math:`m \in [0, 1)` of negatives.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha``.
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined (``"sum"`` is the reference's).

    See Also
    --------
    binary_asymmetric_loss_with_logits : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import BinaryAsymmetricLoss
    >>> criterion = BinaryAsymmetricLoss()
    >>> criterion
    BinaryAsymmetricLoss(gamma_pos=1.0, gamma_neg=4.0, clip=0.05, alpha=None, reduction='mean')
    >>> criterion(torch.tensor([[2.0, -3.0, 0.5]]), torch.tensor([[1.0, 0.0, 0.0]]))
    tensor(0.0355)
    """

    def __init__(
        self,
        gamma_pos: float = 1.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        alpha=None,
        pos_weight=None,
        reduction: str = "mean",
    ):
        super().__init__(alpha, reduction, pos_weight)
        self._check_label_alpha()
        self.gamma_pos = check_nonnegative("gamma_pos", gamma_pos)
        self.gamma_neg = check_nonnegative("gamma_neg", gamma_neg)
        self.clip = check_clip(clip)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_asymmetric_loss_with_logits(
            input,
            target,
            gamma_pos=self.gamma_pos,
            gamma_neg=self.gamma_neg,
            clip=self.clip,
            alpha=self.alpha,
            pos_weight=self.pos_weight,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}, "
            f"{self._alpha_repr()}"
        )
