r"""Label-distribution-aware margin (LDAM) loss (Cao et al., 2019): its one home.

Cross-entropy on logits from which a per-class margin :math:`\Delta_y` has been subtracted at
the true class, so that rare classes (larger margins) must be separated by a wider gap.
Both forms delegate to torch's own stable cross-entropy on the shifted logits.

* functions: :func:`ldam_loss`, :func:`binary_ldam_loss_with_logits` (and
  :func:`ldam_margins`, the margins from class counts);
* modules: :class:`LDAMLoss`, :class:`BinaryLDAMLoss`;
* lean batch mean: none; stacked form: none (a grid over LDAM is fitted one candidate at a
  time);
* inverse link: none in closed form (the margins couple the classes; see :func:`ldam_loss`'s
  Notes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_class_counts,
    check_margins,
    check_multiclass_shapes,
    check_nonnegative,
    check_positive,
    check_reduction,
    cpu_checked,
)
from ._criterion import _AlphaLoss
from ._fused import compute_dtype
from ._reduce import reduce_elementwise, sigmoid_weights, softmax_loss

# -- functions ---------------------------------------------------------------------------------


def ldam_margins(class_counts, max_margin: float = 0.5) -> torch.Tensor:
    r"""Per-class LDAM margins :math:`\Delta_c \propto n_c^{-1/4}`, the largest ``max_margin``.

    .. math::

        \Delta_c = \Delta_{\max} \left(\frac{\min_k n_k}{n_c}\right)^{1/4}

    which is the reference's ``m_list = 1 / sqrt(sqrt(n)); m_list *= max_m / max(m_list)``.

    Parameters
    ----------
    class_counts : sequence of float of length C
        Number of training samples of each class (positive; need not be integers).
    max_margin : float, default=0.5
        Margin :math:`\Delta_{\max} \ge 0` of the rarest class (the reference's ``max_m``).

    Returns
    -------
    margins : Tensor of shape (C,), float64
        The ``margins`` argument of :func:`ldam_loss`. For :func:`binary_ldam_loss_with_logits`
        pass the counts ``[n_negative, n_positive]``.

    Examples
    --------
    >>> from skfocal.losses import ldam_margins
    >>> ldam_margins([10000, 625, 16], max_margin=0.5)
    tensor([0.1000, 0.2000, 0.5000], dtype=torch.float64)
    """
    counts = check_class_counts(class_counts)
    max_margin = check_nonnegative("max_margin", max_margin)
    return max_margin * (counts.min() / counts) ** 0.25


def ldam_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    margins,
    scale: float = 30.0,
    alpha=None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""LDAM loss: cross-entropy of scaled logits with a per-class margin at the true class.

    .. math::

        \mathcal{L} = -\alpha_y \log \operatorname{softmax}\!\big(s\,(z - \Delta_y e_y)\big)_y
        = \alpha_y \left[ -s (z_y - \Delta_y)
          + \log\!\Big(e^{s (z_y - \Delta_y)} + \sum_{j \ne y} e^{s z_j}\Big) \right]

    The logit of the true class must beat the others by :math:`\Delta_y` before the loss sees
    the same confidence as plain cross-entropy; with margins from :func:`ldam_margins`
    (:math:`\Delta_c \propto n_c^{-1/4}`) rare classes get the wider margins.

    Parameters
    ----------
    input : Tensor of shape (N, C), (N, C, d1, ...) or (C,)
        Unnormalised logits :math:`z` (cosine similarities with a normalised last layer, see
        Notes).
    target : Tensor of shape (N,), (N, d1, ...) or ()
        Integer class indices in ``[0, C)``; entries equal to ``ignore_index`` are ignored.
    margins : sequence of float or Tensor of shape (C,)
        Per-class margins :math:`\Delta_c \ge 0`, in the units of ``input`` (before
        ``scale``); usually ``ldam_margins(class_counts)``. The function takes margins rather
        than counts so that it holds no data statistics and any margin schedule can be used.
    scale : float, default=30.0
        Scale :math:`s > 0` applied to the shifted logits (the reference's ``s``).
    alpha : None, float or sequence of float, default=None
        Class weights :math:`\alpha_c`, exactly like ``weight`` of ``F.cross_entropy`` (and
        ``alpha`` of :func:`focal_loss`): a float is the two-class shorthand.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides by :math:`\sum \alpha_y` over non-ignored targets.
    ignore_index : int, default=-100
        Target value that contributes neither to the loss nor to the mean's denominator.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``target`` for ``reduction="none"``.

    See Also
    --------
    LDAMLoss : The same loss as an ``nn.Module``.
    ldam_margins : Margins from class counts.
    binary_ldam_loss_with_logits : The one-logit binary form.
    class_balanced_weights : Weights for the deferred re-weighting (DRW) stage.

    Notes
    -----
    **Scale and the cosine layer.** The reference trains LDAM on a normalised last layer
    (``NormedLinear``: :math:`z_c = \cos(x, w_c) \in [-1, 1]`; here
    ``MLP(..., output_layer="cosine")``). Cosine logits alone cannot make the softmax
    confident: :math:`p_y \le 1 / (1 + (C - 1) e^{-2})` whatever the network does, so
    cross-entropy never stops pushing. The scale :math:`s` sets the attainable confidence,
    :math:`p_y \le 1 / (1 + (C - 1) e^{-2s})`; ``scale=30`` (the reference value, with
    ``max_margin=0.5``) lets :math:`p_y` reach 1 to float precision while the margin of the
    rarest class is :math:`s \Delta_{\max} = 15` nats, which is why it is the default. On an
    unnormalised (linear) last layer the scale only multiplies the logits: the loss is plain
    LDAM with margins :math:`s\Delta` in the units of :math:`s z`, and the last layer's
    gradient is :math:`s` times larger. There use ``scale=1`` and margins in logit units.

    With all margins 0 and ``scale=1`` this is ``F.cross_entropy`` (value and gradient); the
    call is delegated to ``F.cross_entropy`` on the shifted logits, so it is as stable as
    cross-entropy, provided :math:`s\,|z|` stays within the dtype's range.

    **Probabilities (inverse link).** There is no closed-form inverse link: each class's
    term sees a *differently* shifted logit vector, so the margins couple the classes. At the
    minimiser of the conditional risk :math:`\sum_y \eta_y \mathcal{L}(z, y)` the gradient
    :math:`s\,(M(z)\eta - \eta)` vanishes, where the column-stochastic matrix
    :math:`M(z)_{jy} = \operatorname{softmax}(s(z - \Delta_y e_y))_j` has positive entries:
    the class posterior :math:`\eta` is the Perron (stationary) vector of :math:`M(z)`, one
    :math:`C \times C` eigen/linear solve per sample. For two classes it is explicit,
    :math:`\eta_1 = M_{10} / (M_{10} + M_{01})`. Since LDAM is meant to be followed by
    deferred re-weighting and the minimiser is only reached approximately, the package
    treats ``softmax(s * z)`` as an approximate (emphasis-weighted) posterior and recommends
    post-hoc calibration when probabilities matter.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning Imbalanced Datasets
       with Label-Distribution-Aware Margin Loss", NeurIPS 2019 (code: kaidic/LDAM-DRW).

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from skfocal.losses import ldam_loss, ldam_margins
    >>> logits = torch.tensor([[0.4, 0.1, -0.2], [0.1, 0.3, 0.2]])
    >>> target = torch.tensor([0, 2])
    >>> margins = ldam_margins([900, 90, 9], max_margin=0.5)
    >>> margins
    tensor([0.1581, 0.2812, 0.5000], dtype=torch.float64)
    >>> ldam_loss(logits, target, margins=margins, scale=10.0, reduction="none")
    tensor([0.2264, 6.1291])
    >>> torch.allclose(ldam_loss(logits, target, margins=[0.0, 0.0, 0.0], scale=1.0),
    ...                F.cross_entropy(logits, target))
    True
    """
    check_reduction(reduction)
    margins = check_margins(margins)
    scale = check_positive("scale", scale)
    alpha = check_alpha(alpha)
    input, target, unbatched = check_multiclass_shapes(input, target, "ldam_loss")
    n_classes = input.shape[1]
    if margins.numel() != n_classes:
        raise ValueError(
            f"margins must have one margin per class: expected length {n_classes}, "
            f"got length {margins.numel()}."
        )
    margins = margins.to(device=input.device, dtype=input.dtype)
    # out-of-range targets are reported by softmax_loss; clamp only to index the margins
    index = torch.where(target != ignore_index, target, torch.zeros_like(target))
    index = index.clamp(0, n_classes - 1).unsqueeze(1)
    shifted = input.scatter_add(1, index, margins[index].neg())
    if scale != 1.0:
        shifted = shifted * scale
    loss = softmax_loss(shifted, target, alpha, reduction, ignore_index, None)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_ldam_loss_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    margins,
    scale: float = 30.0,
    alpha=None,
    pos_weight=None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""One-logit LDAM loss for binary and multilabel targets.

    Derived from the two-logit form :func:`ldam_loss` with logits :math:`(0, z)`:

    .. math::

        \mathcal{L} = y\,a_+ \log\!\big(1 + e^{-s (z - \Delta_1)}\big)
                    + (1 - y)\,a_- \log\!\big(1 + e^{s (z + \Delta_0)}\big)

    i.e. binary cross-entropy that asks for :math:`z > \Delta_1` on positives and
    :math:`z < -\Delta_0` on negatives (:math:`a_\pm` are the ``alpha``/``pos_weight``
    weights of :func:`binary_focal_loss_with_logits`).

    Parameters
    ----------
    input : Tensor of any shape, e.g. (N,) for binary or (N, L) for multilabel
        One logit per element.
    target : Tensor of the same shape as ``input``
        Labels in {0, 1}; soft labels in [0, 1] mix the two terms linearly.
    margins : sequence of two floats, or Tensor of shape (2,) or (2, L)
        :math:`(\Delta_0, \Delta_1) \ge 0`: the margin of the negative and of the positive
        class (per label for shape (2, L)); ``ldam_margins([n_negative, n_positive])``.
    scale : float, default=30.0
        Scale :math:`s > 0` (see :func:`ldam_loss` for the default and the cosine layer).
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha`` (per label if a sequence).
    pos_weight : None, float or Tensor broadcastable to ``input``, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` is the plain mean over elements.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``input`` for ``reduction="none"``.

    See Also
    --------
    BinaryLDAMLoss : The same loss as an ``nn.Module``.
    ldam_loss : The softmax form.

    Notes
    -----
    For labels in {0, 1} and a scalar ``alpha`` this equals ``ldam_loss`` on the two-column
    logits ``stack([0, z])`` with ``margins=(Δ0, Δ1)`` (``alpha`` being the two-class
    shorthand there), in value and gradient. With zero margins and ``scale=1`` it is
    ``F.binary_cross_entropy_with_logits``. Both terms are softplus functions of shifted
    logits, so loss and gradient (a sigmoid) are finite for any finite :math:`s z`.

    The two-class posterior at the conditional-risk minimiser is explicit (see the Notes of
    :func:`ldam_loss`): :math:`\eta = \sigma(s(z + \Delta_0)) / (\sigma(s(z + \Delta_0)) +
    \sigma(-s(z - \Delta_1)))`, which is :math:`\sigma(s z)` for zero margins.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_ldam_loss_with_logits
    >>> logits = torch.tensor([0.2, -0.1, 0.05])
    >>> target = torch.tensor([1.0, 0.0, 1.0])
    >>> binary_ldam_loss_with_logits(logits, target, margins=[0.1, 0.3], scale=10.0,
    ...                              reduction="none")
    tensor([1.3133, 0.6931, 2.5789])
    """
    check_reduction(reduction)
    margins = check_margins(margins, binary=True)
    scale = check_positive("scale", scale)
    alpha = check_alpha(alpha)
    input, target = check_binary_shapes(input, target, "binary_ldam_loss_with_logits")
    if margins.dim() == 2 and (input.dim() == 0 or input.shape[-1] != margins.shape[1]):
        last = input.shape[-1] if input.dim() else None
        raise ValueError(
            "margins of shape (2, L) need one pair per label (the last dimension of input): "
            f"expected L = {last}, got shape {tuple(margins.shape)}."
        )
    x = input.to(compute_dtype(input.dtype))
    y = target.to(x.dtype)
    margins = margins.to(device=x.device, dtype=x.dtype)
    loss_pos = F.softplus((margins[1] - x) * scale)  # -log sigma(s (z - Delta_1))
    loss_neg = F.softplus((x + margins[0]) * scale)  # -log(1 - sigma(s (z + Delta_0)))
    pos_w, neg_w = sigmoid_weights(alpha, pos_weight, x)
    if pos_w is not None:
        loss_pos = loss_pos * pos_w
    if neg_w is not None:
        loss_neg = loss_neg * neg_w
    loss = torch.lerp(loss_neg, loss_pos, y)
    return reduce_elementwise(loss, reduction).to(input.dtype)


# -- modules -----------------------------------------------------------------------------------


class LDAMLoss(_AlphaLoss):
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

    _function = staticmethod(ldam_loss)
    _hyperparameters = ("margins", "scale")

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


class BinaryLDAMLoss(_AlphaLoss):
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

    _function = staticmethod(binary_ldam_loss_with_logits)
    _hyperparameters = ("margins", "scale")

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
