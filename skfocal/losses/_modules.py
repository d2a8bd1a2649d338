"""``nn.Module`` criteria: the losses of the functional forms, validated once.

The modules validate their hyperparameters once at construction and keep a per-class
``alpha`` (and ``pos_weight``) as buffers, so ``.to(device)`` and ``state_dict`` carry them.
Their ``forward`` checks only the data (shapes; on the CPU also the target values, which costs
no device synchronisation) and calls the same internal path as the functions, with the
derived weight tensors cached per dtype and device: at training batch sizes, where the loss
costs tens of microseconds, per-call argument handling is a visible share. They work as
criteria anywhere PyTorch or skorch expects one, e.g.
``NeuralNetClassifier(criterion=FocalLoss, criterion__gamma=2.0)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .._fastpaths import tensor_version
from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_binary_target_values,
    check_gamma,
    check_margin,
    check_multiclass_shapes,
    check_reduction,
    check_softness,
)
from ._functions import _compute_dtype, pair_constants, signed_constants
from ._kernels import make_kernel
from ._reduce import sigmoid_apply, sigmoid_weights, softmax_loss


def _stamp(value):
    """A hashable stand-in for a hyperparameter: a tensor by identity and version.

    Where the version cannot be read (:func:`skfocal._fastpaths.tensor_version`), a tensor's
    stamp is a fresh object, so that nothing is cached on it.
    """
    if not isinstance(value, torch.Tensor):
        return value
    version = tensor_version(value)
    return (id(value), version) if version is not None else object()


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

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_weights_cache", None)
        return state

    def _cached(self, input, build, extra=None):
        """``build(input)`` cached on ``input``'s dim, dtype and device, on the weights and on
        ``extra``.

        The cache holds the weights it was built from, so their ``id`` cannot be reused while
        it lives; a tensor's in-place change shows in its version.
        """
        alpha, pos_weight = self.alpha, self.pos_weight
        key = (input.dim(), input.dtype, input.device, _stamp(alpha), _stamp(pos_weight), extra)
        cache = self.__dict__.get("_weights_cache")
        if cache is not None and cache[0] == key:
            return cache[1]
        value = build(input)
        self.__dict__["_weights_cache"] = (key, value, alpha, pos_weight)
        return value

    def _class_weights(self, input):
        """``alpha`` for the softmax losses as a class-weight tensor, cached."""
        alpha = self.alpha
        if isinstance(alpha, torch.Tensor):
            return self._cached(input, lambda x: alpha.to(device=x.device, dtype=x.dtype))
        if alpha is None or input.shape[1] != 2:
            return alpha  # None, or the two-class shorthand with C != 2: softmax_loss says so
        return self._cached(
            input, lambda x: torch.tensor([1.0 - alpha, alpha], dtype=x.dtype, device=x.device)
        )

    def _softmax(self, input, target, name, kernel):
        input, target, unbatched = check_multiclass_shapes(input, target, name)
        alpha = self._class_weights(input)
        loss = softmax_loss(input, target, alpha, self.reduction, self.ignore_index, kernel)
        return loss.squeeze(0) if unbatched and self.reduction == "none" else loss

    def _sigmoid_weights(self, input):
        pos_w, neg_w = sigmoid_weights(self.alpha, self.pos_weight, input)
        n = input.numel()
        scale = 1.0 / n if self.reduction == "mean" and n else 1.0
        cdtype = _compute_dtype(input.dtype)
        consts = pair_constants(pos_w, neg_w, input.dim(), cdtype, input.device, scale)
        signed = signed_constants(pos_w, neg_w, cdtype, input.device, scale)
        return pos_w, neg_w, consts, signed

    def _sigmoid(self, input, target, name, kernel):
        if not (
            isinstance(input, torch.Tensor)
            and isinstance(target, torch.Tensor)
            and target.dtype is input.dtype
            and input.shape == target.shape
            and input.is_floating_point()
        ):
            input, target = check_binary_shapes(input, target, name)  # raises or converts
        hard = check_binary_target_values(target, name)
        # the constants hold the mean's 1 / n: rebuilt when the batch size changes
        n = input.numel() if self.reduction == "mean" else None
        pos_w, neg_w, consts, signed = self._cached(input, self._sigmoid_weights, n)
        return sigmoid_apply(
            input, target, kernel, self.reduction, pos_w, neg_w, consts, hard, signed
        )


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
        kernel = None if self.gamma == 0 else self.gamma  # None: F.cross_entropy
        return self._softmax(input, target, "FocalLoss", kernel)

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
        return self._sigmoid(input, target, "BinaryFocalLoss", self.gamma)

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
        kernel = make_kernel("margin", margin=self.margin, softness=self.softness)
        return self._softmax(input, target, "MarginLoss", kernel)

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
        kernel = make_kernel("margin", margin=self.margin, softness=self.softness)
        return self._sigmoid(input, target, "BinaryMarginLoss", kernel)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, softness={self.softness}, {self._alpha_repr()}"
