r"""Margin (truncated cross-entropy) losses: its one home.

Cross-entropy switched off for confident samples, by a hard or a soft gate.

* functions: :func:`margin_loss`, :func:`binary_margin_loss_with_logits`;
* modules: :class:`MarginLoss`, :class:`BinaryMarginLoss`;
* lean batch mean: none (the estimator weights the per-sample losses, ``reduction="none"``);
* inverse links: :func:`soft_margin_log_abs_dloss` where
  :func:`soft_margin_link_is_invertible` (the hard gate has none);
* stacked form (members' margin and softness as columns): :data:`STACKED`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_binary_target_values,
    check_margin,
    check_multiclass_shapes,
    check_reduction,
    check_softness,
)
from ._criterion import _AlphaLoss
from ._kernels import bind_margin
from ._links import _ratio
from ._reduce import sigmoid_loss, softmax_loss
from ._stacked import StackedForm

# -- functions ---------------------------------------------------------------------------------


def _kernel(margin: float, softness):
    """The kernel of a validated ``margin`` and ``softness`` (floats; None: the hard gate)."""
    log_margin = math.log(margin)
    return bind_margin(log_margin, log_margin - math.log1p(-margin), softness)


def margin_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    margin: float = 0.6,
    softness: float | None = None,
    alpha=None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""Truncated softmax cross-entropy: only samples with :math:`p_t \le m` are trained on.

    .. math::

        \mathcal{L} = -\alpha_t\,\lambda(p_t)\,\log p_t, \qquad
        \lambda(p_t) =
        \begin{cases}
            \mathbb{1}[p_t \le m] & \text{hard (``softness=None``)} \\
            \sigma\!\left(K\,(\operatorname{logit} m - \operatorname{logit} p_t)\right)
                & \text{soft (``softness=K``)}
        \end{cases}

    The hard version stops pushing samples that are already classified with margin :math:`m`.
    The soft version is differentiable in :math:`\lambda` and interpolates towards focal loss:
    with :math:`m = 1/2` and :math:`K = 1`, :math:`\lambda = 1 - p_t` and the loss equals
    focal loss with :math:`\gamma = 1`. :math:`\operatorname{logit} p_t = \log p_t -
    \log(1 - p_t)` is computed in log space, so the loss and its gradient stay finite.

    Parameters
    ----------
    input : Tensor of shape (N, C), (N, C, d1, ...) or (C,)
        Unnormalised logits.
    target : Tensor of shape (N,), (N, d1, ...) or ()
        Integer class indices; entries equal to ``ignore_index`` are ignored.
    margin : float, default=0.6
        Probability threshold :math:`m \in (0, 1)` above which a sample stops contributing.
    softness : None or float, default=None
        ``None`` for hard truncation, or the slope :math:`K \ge 0` of the soft gate.
    alpha : None, float or sequence of float, default=None
        Class weights, with the same conventions as :func:`focal_loss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        As in :func:`focal_loss` (``"mean"`` divides by :math:`\sum \alpha_t`; NaN with a zero
        gradient when every target is ignored, like ``F.cross_entropy``).
    ignore_index : int, default=-100
        Target value to ignore.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``target`` for ``reduction="none"``.

    See Also
    --------
    MarginLoss : The same loss as an ``nn.Module``.
    binary_margin_loss_with_logits : The sigmoid version.
    focal_loss : The smooth limit of the soft margin loss.

    Notes
    -----
    In the hard version :math:`\lambda` is a step function; its derivative (zero almost
    everywhere) is not propagated, so the gradient is that of cross-entropy on the samples
    with :math:`p_t \le m` and zero elsewhere.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import focal_loss, margin_loss
    >>> logits = torch.tensor([[3.0, 0.0], [0.2, 0.0]])
    >>> target = torch.tensor([0, 0])
    >>> margin_loss(logits, target, margin=0.6, reduction="none")
    tensor([0.0000, 0.5981])
    >>> torch.allclose(margin_loss(logits, target, margin=0.5, softness=1.0),
    ...                focal_loss(logits, target, gamma=1.0))
    True
    """
    check_reduction(reduction)
    margin = check_margin(margin)
    softness = check_softness(softness)
    alpha = check_alpha(alpha)
    input, target, unbatched = check_multiclass_shapes(input, target, "margin_loss")
    kernel = _kernel(margin, softness)
    loss = softmax_loss(input, target, alpha, reduction, ignore_index, kernel)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_margin_loss_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    margin: float = 0.6,
    softness: float | None = None,
    alpha=None,
    pos_weight=None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Truncated binary cross-entropy for binary and multilabel targets, from logits.

    Each element contributes :math:`-\lambda(p_t)\log p_t` with :math:`p_t = \sigma(x)` for
    positives and :math:`1 - \sigma(x)` for negatives, :math:`\lambda` as in
    :func:`margin_loss`, weighted by ``alpha``/``pos_weight`` as in
    :func:`binary_focal_loss_with_logits`. With ``margin=0.5`` and ``softness=1`` it equals
    the binary focal loss with :math:`\gamma = 1`.

    Parameters
    ----------
    input : Tensor of any shape
        One logit per element.
    target : Tensor of the same shape as ``input``
        Labels in {0, 1} (soft labels in [0, 1] are accepted; values outside [0, 1] raise a
        ``ValueError`` for CPU tensors).
    margin : float, default=0.6
        Probability threshold :math:`m \in (0, 1)`.
    softness : None or float, default=None
        ``None`` for hard truncation, or the slope :math:`K \ge 0` of the soft gate.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha`` (per label if a sequence).
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` is the plain mean over elements.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``input`` for ``reduction="none"``.

    See Also
    --------
    BinaryMarginLoss : The same loss as an ``nn.Module``.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_margin_loss_with_logits
    >>> logits = torch.tensor([3.0, 0.1, -2.0])
    >>> target = torch.tensor([1.0, 1.0, 0.0])
    >>> binary_margin_loss_with_logits(logits, target, margin=0.6, reduction="none")
    tensor([0.0000, 0.6444, 0.0000])
    """
    check_reduction(reduction)
    margin = check_margin(margin)
    softness = check_softness(softness)
    alpha = check_alpha(alpha)
    input, target = check_binary_shapes(input, target, "binary_margin_loss_with_logits")
    check_binary_target_values(target, "binary_margin_loss_with_logits")
    kernel = _kernel(margin, softness)
    return sigmoid_loss(input, target, alpha, pos_weight, reduction, kernel)


# -- modules -----------------------------------------------------------------------------------


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

    _hyperparameters = ("margin", "softness")

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
        kernel = _kernel(self.margin, self.softness)
        return self._softmax(input, target, "MarginLoss", kernel)


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

    _hyperparameters = ("margin", "softness")

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
        kernel = _kernel(self.margin, self.softness)
        return self._sigmoid(input, target, "BinaryMarginLoss", kernel)


# -- inverse links -----------------------------------------------------------------------------


def soft_margin_log_abs_dloss(
    log_q: torch.Tensor, log_1mq: torch.Tensor, *, margin: float = 0.6, softness: float = 1.0
) -> torch.Tensor:
    r"""Log-derivative of the soft margin loss :math:`l(q) = -\lambda(q)\log q`.

    With :math:`\lambda(q) = \sigma(K(\operatorname{logit} m - \operatorname{logit} q))` (the
    gate of ``margin_loss(margin=m, softness=K)``) and :math:`r = -\log q / (1 - q)`:

    .. math::

        l'(q) = -\frac{\lambda}{q}\Bigl(1 + K\,(1-\lambda)\,r\Bigr), \qquad
        \log|l'(q)| = -\log q + \log\lambda + \operatorname{log1p}\bigl(K\,(1-\lambda)\,r\bigr)

    with :math:`\log\lambda = \log\sigma(K(\operatorname{logit} m - \operatorname{logit} q))`,
    :math:`1 - \lambda = \sigma(K(\operatorname{logit} q - \operatorname{logit} m))` and
    :math:`\operatorname{logit} q = \log q - \log(1 - q)`, all finite. With ``margin=0.5`` and
    ``softness=1`` this is :func:`focal_log_abs_dloss` with ``gamma=1``. It is an inverse link
    only where :math:`|l'|` is strictly decreasing, see :func:`soft_margin_link_is_invertible`.

    Parameters
    ----------
    log_q : Tensor
        :math:`\log q`, accurate also for :math:`q` near 1.
    log_1mq : Tensor
        :math:`\log(1 - q)`, accurate also for :math:`q` near 1.
    margin : float, default=0.6
        The margin :math:`m \in (0, 1)`.
    softness : float, default=1.0
        The softness :math:`K \ge 0`. ``None`` (the hard margin) is refused: the hard margin
        loss has no inverse link (its population optimum does not determine the posterior).

    Returns
    -------
    Tensor
        :math:`\log|l'(q)|`, shaped like ``log_q``.

    Raises
    ------
    ValueError
        If ``softness`` is ``None``.

    See Also
    --------
    soft_margin_link_is_invertible : Whether the link is a bijection for ``(margin, softness)``.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import focal_log_abs_dloss, soft_margin_log_abs_dloss
    >>> q = torch.tensor([1e-3, 0.3, 0.9], dtype=torch.float64)
    >>> a, b = q.log(), torch.log1p(-q)
    >>> torch.allclose(soft_margin_log_abs_dloss(a, b, margin=0.5, softness=1.0),
    ...                focal_log_abs_dloss(a, b, gamma=1.0))
    True
    """
    margin = check_margin(margin)
    if softness is None:
        raise ValueError(
            "softness must be a finite float >= 0 for an inverse link; the hard margin loss "
            "(softness=None) has none: its population optimum does not determine the "
            "posterior, got softness=None."
        )
    softness = check_softness(softness)
    return _soft_margin_h(log_q, log_1mq, margin, softness).sub_(log_q)


def _soft_margin_h(log_q, log_1mq, margin: float, softness: float) -> torch.Tensor:
    """``log(q |l'(q)|) = log lambda + log1p(K (1 - lambda) r)`` for the soft margin loss."""
    gate = (log_q - log_1mq).sub_(math.log(margin) - math.log1p(-margin)).mul_(softness)
    log_lam = F.logsigmoid(gate.neg())
    push = torch.sigmoid(gate) * _ratio(log_q) * softness  # not in place: sigmoid saves its output
    return torch.log1p(push).add_(log_lam)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _log_sigmoid(x: float) -> float:
    return -(max(-x, 0.0) + math.log1p(math.exp(-abs(x))))


def _soft_margin_slope(u: float, logit_m: float, k: float) -> float:
    """``D`` of ``soft_margin_link_is_invertible`` at ``u = K (t - logit m)``."""
    t = logit_m + u / k
    q, omq, s = _sigmoid(t), _sigmoid(-t), _sigmoid(u)
    a = _log_sigmoid(t)
    r = a / math.expm1(a) if a < 0 else 1.0
    return -2.0 * k * s - omq + k * s * r * (k * (1.0 - 2.0 * s) + 2.0 * q - 1.0)


def soft_margin_link_is_invertible(margin: float, softness: float | None) -> bool:
    r"""Whether the soft margin loss has a strictly decreasing :math:`|l'|` (an inverse link).

    The inverse link :math:`\eta_k \propto 1/(w_k|l'(q_k)|)` is a bijection, the population
    minimiser is unique and class order is kept iff :math:`|l'(q)|` is strictly decreasing on
    :math:`(0, 1)` (equivalently, :math:`l` is strictly convex). For the soft margin loss (see
    :func:`soft_margin_log_abs_dloss`) write :math:`t = \operatorname{logit} q`,
    :math:`c = \operatorname{logit} m`, :math:`s = 1 - \lambda = \sigma(K(t - c))` and
    :math:`r = -\log q/(1-q)`. Differentiating
    :math:`\log|l'| = \log\lambda - \log q + \log(1 + K s r)` in :math:`t` (with
    :math:`d\log\lambda/dt = -Ks`, :math:`ds/dt = Ks(1-s)`, :math:`dr/dt = qr - 1`) gives

    .. math::

        \frac{d\log|l'|}{dt} = \frac{D}{1 + K s r}, \qquad
        D = -2Ks - (1-q) + K s r\,\bigl(K(1 - 2s) + 2q - 1\bigr),

    so the link is invertible **iff** :math:`D < 0` for every :math:`t`.

    **Theorem (sufficient, for every margin):** :math:`K \le 1` implies :math:`D < 0`.
    Proof: :math:`K(1-2s) + 2q - 1 = 2(q - Ks) - (1 - K) \le 2(q - Ks)`. Where this bracket is
    non-positive, :math:`D \le -2Ks - (1-q) < 0`. Elsewhere
    :math:`Ksr\,(K(1-2s) + 2q - 1) \le 2Ks\,(qr) - 2K^2s^2r < 2Ks`, because
    :math:`q\,r = -q\log q/(1-q) < 1` (that is :math:`\log x < x - 1` for :math:`x = 1/q`),
    so :math:`D < -(1-q) < 0`. :math:`\square` At :math:`m = 1/2, K = 1`, :math:`s = q` and
    :math:`D = -(1 + q)`: focal loss with :math:`\gamma = 1`.

    The bound is tight uniformly in :math:`m`: the exact threshold :math:`K^*(m)` (the largest
    :math:`K` with :math:`\sup_t D < 0`) is about 2.26 at :math:`m = 10^{-3}`, 3.3 at
    :math:`m = 0.5`, 2.37 at :math:`m = 0.9`, 1.27 at :math:`m = 0.999`, and tends to 1 as
    :math:`m \to 1` (and, slowly, as :math:`m \to 0`). Large :math:`K` approaches the hard
    margin, whose loss :math:`-[q \le m]\log q` jumps to zero at :math:`m` and is flat
    beyond: it is not convex, and its population optimum does not determine the posterior
    (with :math:`m < 1/C` every output giving all classes more than :math:`m` has zero loss;
    with two classes and :math:`m \ge 1/2` a whole range of posteriors drives :math:`p` to
    just above :math:`m`), so no inverse link exists.

    This function returns ``True`` for ``softness <= 1`` by the theorem, ``False`` for
    ``softness=None`` (hard margin), and for ``softness > 1`` evaluates the exact criterion
    numerically: :math:`D` can only be non-negative where :math:`s < (K-1)/(2K)`
    (since :math:`D < -(1-q) + Ksr\,((K-1) - 2Ks)`), i.e. for
    :math:`u = K(t - c) < \log\frac{K-1}{K+1}`; its maximum over that range is located on a
    grid in :math:`u` (where :math:`D` varies on a scale of order one) and refined by
    golden-section search (checked against a 40-digit evaluation: the sign of the supremum is
    right for softness values :math:`10^{-12}` relatively away from :math:`K^*(m)`).

    Parameters
    ----------
    margin : float
        The margin :math:`m \in (0, 1)`.
    softness : None or float
        The softness :math:`K \ge 0`; ``None`` for the hard margin.

    Returns
    -------
    bool
        Whether :math:`|l'|` is strictly decreasing on :math:`(0, 1)`.

    Examples
    --------
    >>> from skfocal.losses import soft_margin_link_is_invertible
    >>> soft_margin_link_is_invertible(0.5, 1.0), soft_margin_link_is_invertible(0.6, 2.0)
    (True, True)
    >>> soft_margin_link_is_invertible(0.6, 4.0), soft_margin_link_is_invertible(0.6, None)
    (False, False)
    """
    margin = check_margin(margin)
    softness = check_softness(softness)
    if softness is None:
        return False
    if softness <= 1.0:
        return True
    k = softness
    logit_m = math.log(margin) - math.log1p(-margin)
    u_hi = math.log((k - 1.0) / (k + 1.0))
    # D >= 0 needs K (K - 1) s rho(q) > 1 with s < e^u and rho(q) = r / (1 - q), which is at
    # most max(rho(m), 4 (|t| + 1)) for q <= m: below u_lo that product is far below one
    rho_m = -math.log(margin) / (1.0 - margin) ** 2
    u_lo = -(2.0 * math.log(k) + math.log(8.0 * (abs(logit_m) + rho_m + 2.0)) + 30.0)
    n = 4096
    grid = [u_lo + (u_hi - u_lo) * i / n for i in range(n + 1)]
    values = [_soft_margin_slope(u, logit_m, k) for u in grid]
    best = max(range(n + 1), key=values.__getitem__)
    if values[best] >= 0:
        return False
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, n)]
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(80):  # golden-section search for the local maximum
        a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
        if _soft_margin_slope(a, logit_m, k) > _soft_margin_slope(b, logit_m, k):
            hi = b
        else:
            lo = a
    return max(values[best], _soft_margin_slope((lo + hi) / 2.0, logit_m, k)) < 0


# -- stacked form ------------------------------------------------------------------------------


class _StackedMargin(StackedForm):
    """The margin loss's stacked form: hard and soft gates in groups of their own, the margin
    (and softness) as columns."""

    softmax = staticmethod(margin_loss)
    sigmoid = staticmethod(binary_margin_loss_with_logits)

    def group(self, member):
        check_margin(member.margin)
        if check_softness(member.softness) is None:
            return "hard", (member.margin,)
        return "soft", (member.margin, member.softness)

    def kwargs(self, key, values):
        return {"margin": values[0], "softness": None if key == "hard" else values[1]}

    def kernel(self, key, params, shape, dtype):
        margin = params[:, 0]
        if key == "hard":
            return bind_margin(torch.log(margin).to(dtype).reshape(shape), None, None)
        logit_margin = (torch.log(margin) - torch.log1p(-margin)).to(dtype)
        softness = params.to(dtype)[:, 1]
        return bind_margin(None, logit_margin.reshape(shape), softness.reshape(shape))


STACKED = _StackedMargin()
