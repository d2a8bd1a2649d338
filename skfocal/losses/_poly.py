r"""Poly-1 loss (Leng et al., 2022): cross-entropy or focal loss plus a polynomial term.

Its one home:

* functions: :func:`poly1_loss`, :func:`binary_poly1_loss_with_logits` (per element:
  :func:`poly1_kernel`);
* modules: :class:`Poly1Loss`, :class:`BinaryPoly1Loss`;
* inverse link: :func:`poly1_log_abs_dloss`;
* lean batch mean: none; stacked form: none.
"""

from __future__ import annotations

import torch

from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_epsilon,
    check_gamma,
    check_multiclass_shapes,
    check_reduction,
)
from ._criterion import _AlphaLoss
from ._dloss import as_log_pair, log_abs_dfocal
from ._reduce import sigmoid_loss, softmax_loss

# -- functions ---------------------------------------------------------------------------------


def poly1_kernel(ell, p, q, epsilon: float, gamma: float, need_grad: bool):
    r"""Poly-1 term and its derivative in :math:`\ell = \log p` (the ``_kernels`` convention).

    .. math::

        l &= -(1-p)^\gamma \ell + \epsilon (1-p)^{\gamma+1} = (1-p)^\gamma (\epsilon (1-p) - \ell)
        \\
        \frac{\partial l}{\partial \ell} &= -(1-p)^\gamma \left[(1-p) + (1+\epsilon)(\gamma+1)\,p
            + \gamma\, p\, \frac{-\ell - (1-p)}{1-p}\right]

    The bracket is a sum of non-negative terms for :math:`\epsilon \ge -1` (because
    :math:`-\log p \ge 1 - p`), and :math:`(-\ell - (1-p))/(1-p) \to 0` as :math:`p \to 1`, so
    no negative power of :math:`1 - p` appears and the derivative is finite for all
    :math:`\gamma \ge 0`.
    """
    if gamma == 0.0:
        loss = (epsilon * q).sub_(ell)
        if not need_grad:
            return loss, None
        # -(1 + epsilon p), written as -((1 + epsilon) - epsilon q): no cancellation at eps = -1
        return loss, (q * epsilon).sub_(1.0 + epsilon)
    mod = q if gamma == 1.0 else q * q if gamma == 2.0 else q.pow(gamma)
    loss = (epsilon * q).sub_(ell).mul_(mod)
    if not need_grad:
        return loss, None
    excess = torch.where(q > 0, (-ell - q) / q, torch.zeros_like(q))  # -> 0 as p -> 1
    bracket = excess.mul_(p).mul_(gamma).add_(q).add_(p * ((1.0 + epsilon) * (gamma + 1.0)))
    return loss, bracket.mul_(mod).neg_()


def _kernel(epsilon: float, gamma: float):
    return lambda ell, p, q, need_grad: poly1_kernel(ell, p, q, epsilon, gamma, need_grad)


def poly1_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    epsilon: float = 1.0,
    gamma: float = 0.0,
    alpha=None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""Poly-1 softmax loss: cross-entropy or focal loss plus :math:`\epsilon (1 - p_t)^{\gamma+1}`.

    .. math::

        \mathcal{L} = \alpha_t \left[-(1 - p_t)^{\gamma} \log p_t
                      + \epsilon\,(1 - p_t)^{\gamma + 1}\right],
        \qquad p_t = \operatorname{softmax}(z)_t

    With ``gamma=0`` this is Poly-1 cross-entropy, :math:`\mathrm{CE} + \epsilon (1 - p_t)`:
    the leading term of the expansion :math:`-\log p_t = \sum_{j \ge 1} (1 - p_t)^j / j` gets
    coefficient :math:`1 + \epsilon`. With ``gamma > 0`` it is the Poly-1 focal loss.

    Parameters
    ----------
    input : Tensor of shape (N, C), (N, C, d1, ...) or (C,)
        Unnormalised logits.
    target : Tensor of shape (N,), (N, d1, ...) or ()
        Integer class indices in ``[0, C)``; entries equal to ``ignore_index`` are ignored.
    epsilon : float, default=1.0
        Coefficient :math:`\epsilon \ge -1` of the added polynomial term (see Notes).
    gamma : float, default=0.0
        Focusing parameter :math:`\gamma \ge 0`; 0 for the cross-entropy form.
    alpha : None, float or sequence of float, default=None
        Class weights :math:`\alpha_t`, scaling each sample's whole loss exactly like
        ``weight`` of ``F.cross_entropy`` (and ``alpha`` of :func:`focal_loss`).
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides by :math:`\sum \alpha_t` over non-ignored targets.
    ignore_index : int, default=-100
        Target value that contributes neither to the loss nor to the mean's denominator.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``target`` for ``reduction="none"``.

    See Also
    --------
    Poly1Loss : The same loss as an ``nn.Module``.
    binary_poly1_loss_with_logits : The sigmoid form.
    poly1_log_abs_dloss : Derivative for the inverse link.

    Notes
    -----
    **Why** :math:`\epsilon \ge -1`. As a function of :math:`u = 1 - p_t`,

    .. math::

        l = (1 + \epsilon)\,u^{\gamma+1} + \sum_{k \ge 2} \frac{u^{\gamma+k}}{k},

    a power series with non-negative coefficients exactly when :math:`\epsilon \ge -1`. Then
    :math:`l` increases with :math:`u` (decreases with :math:`p_t`) and is convex in
    :math:`u`. For :math:`\epsilon < -1` the leading term is negative, so near
    :math:`p_t = 1` the loss *increases* with :math:`p_t` (for every :math:`\gamma`): training
    would push confident correct predictions back; such values raise an error.

    With ``epsilon=0`` this is :func:`focal_loss` (and ``F.cross_entropy`` at ``gamma=0``, to
    which that case is delegated), in value and gradient. The backward pass is closed-form
    (see ``poly1_kernel``), finite for every :math:`\gamma \ge 0` and :math:`\epsilon \ge -1`.
    ``alpha`` scales the whole per-sample loss; the reference sigmoid code weights only the
    focal term (``poly1 = alpha_t * FL + epsilon * (1 - pt)^(gamma + 1)``), which differs
    when ``alpha`` is given.

    **Probabilities (inverse link).** The loss is a function :math:`l(q)` of the probability
    :math:`q` of the true class, and :math:`|l'(q)| = (1-q)^{\gamma-1}[(1+\epsilon)(\gamma+1)
    (1-q) + (1-q)^2/q + \gamma c(1-q)]` (:math:`c(u) = -\log(1-u) - u`) is strictly
    decreasing on all of :math:`(0, 1)` for every :math:`\gamma \ge 0,\ \epsilon \ge -1`
    (the second derivative of the series above is positive). So the inverse link exists; it
    is built from :func:`poly1_log_abs_dloss` (as for the focal loss, :math:`\epsilon = 0`).

    References
    ----------
    .. [1] Z. Leng, M. Tan, C. Liu, E. D. Cubuk, X. Shi, S. Cheng and D. Anguelov,
       "PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions",
       ICLR 2022.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from skfocal.losses import poly1_loss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> target = torch.tensor([0, 2])
    >>> poly1_loss(logits, target, epsilon=1.0, reduction="none")
    tensor([0.3261, 2.3395])
    >>> torch.allclose(poly1_loss(logits, target, epsilon=0.0),
    ...                F.cross_entropy(logits, target))
    True
    """
    check_reduction(reduction)
    epsilon = check_epsilon(epsilon)
    gamma = check_gamma(gamma)
    alpha = check_alpha(alpha)
    input, target, unbatched = check_multiclass_shapes(input, target, "poly1_loss")
    plain_ce = epsilon == 0.0 and gamma == 0.0
    kernel = None if plain_ce else _kernel(epsilon, gamma)  # None: F.cross_entropy
    loss = softmax_loss(input, target, alpha, reduction, ignore_index, kernel)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_poly1_loss_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    epsilon: float = 1.0,
    gamma: float = 0.0,
    alpha=None,
    pos_weight=None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Poly-1 sigmoid loss for binary and multilabel targets, from logits.

    Each element, with :math:`p = \sigma(z)` and :math:`p_t = p` for positives and
    :math:`1 - p` for negatives, contributes

    .. math::

        a_t \left[-(1 - p_t)^{\gamma} \log p_t + \epsilon\,(1 - p_t)^{\gamma + 1}\right]

    weighted by ``alpha``/``pos_weight`` (:math:`a_t`) as in
    :func:`binary_focal_loss_with_logits`.

    Parameters
    ----------
    input : Tensor of any shape
        One logit per element.
    target : Tensor of the same shape as ``input``
        Labels in {0, 1} (soft labels in [0, 1] mix the two terms linearly).
    epsilon : float, default=1.0
        Coefficient :math:`\epsilon \ge -1` (see :func:`poly1_loss`).
    gamma : float, default=0.0
        Focusing parameter :math:`\gamma \ge 0`.
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
    BinaryPoly1Loss : The same loss as an ``nn.Module``.
    poly1_loss : The softmax form, with the notes on :math:`\epsilon \ge -1` and the link.

    Notes
    -----
    With ``epsilon=0`` this is :func:`binary_focal_loss_with_logits` (and, at ``gamma=0``
    without ``alpha``, ``F.binary_cross_entropy_with_logits``; both are delegated to).
    Each side is the same :math:`l(p_t)` as in :func:`poly1_loss`, so
    :func:`poly1_log_abs_dloss` serves both sides of the inverse link.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_poly1_loss_with_logits
    >>> logits = torch.tensor([3.0, -1.0, 0.5])
    >>> target = torch.tensor([1.0, 0.0, 0.0])
    >>> binary_poly1_loss_with_logits(logits, target, epsilon=1.0, reduction="none")
    tensor([0.0960, 0.5822, 1.5965])
    """
    check_reduction(reduction)
    epsilon = check_epsilon(epsilon)
    gamma = check_gamma(gamma)
    alpha = check_alpha(alpha)
    input, target = check_binary_shapes(input, target, "binary_poly1_loss_with_logits")
    kernel = gamma if epsilon == 0.0 else _kernel(epsilon, gamma)  # float: the focal path
    return sigmoid_loss(input, target, alpha, pos_weight, reduction, kernel)


# -- modules -----------------------------------------------------------------------------------


class Poly1Loss(_AlphaLoss):
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

    _function = staticmethod(poly1_loss)
    _hyperparameters = ("epsilon", "gamma")

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


class BinaryPoly1Loss(_AlphaLoss):
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

    _function = staticmethod(binary_poly1_loss_with_logits)
    _hyperparameters = ("epsilon", "gamma")

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


# -- inverse link ------------------------------------------------------------------------------


def poly1_log_abs_dloss(log_q, log_1mq, *, epsilon: float = 1.0, gamma: float = 0.0):
    r""":math:`\log |l'(q)|` of the poly-1 loss as a function of the true class's probability.

    With :math:`l(q) = -(1-q)^\gamma \log q + \epsilon (1-q)^{\gamma+1}`,

    .. math::

        |l'(q)| = (1-q)^{\gamma-1}\Big[(1+\epsilon)(\gamma+1)(1-q) + \frac{(1-q)^2}{q}
                  + \gamma\big(-\log q - (1 - q)\big)\Big]

    a sum of non-negative terms (for :math:`\epsilon \ge -1`), evaluated in log space from
    :math:`\log q` and :math:`\log(1 - q)`, so it is accurate for :math:`q` within any
    distance of 0 or 1 (e.g. ``log_q=-1e4``). :math:`|l'|` is strictly decreasing in
    :math:`q` on :math:`(0, 1)` for every :math:`\gamma \ge 0` and :math:`\epsilon \ge -1`,
    so the inverse link that it defines is unique (see :func:`poly1_loss`).

    Parameters
    ----------
    log_q, log_1mq : Tensor or float
        :math:`\log q` and :math:`\log(1 - q)` of the predicted probability :math:`q \in (0, 1)`
        of the true class (broadcast together).
    epsilon : float, default=1.0
        :math:`\epsilon \ge -1`.
    gamma : float, default=0.0
        :math:`\gamma \ge 0`.

    Returns
    -------
    Tensor
        :math:`\log |l'(q)|`, finite for :math:`q \in (0, 1)`.

    Examples
    --------
    >>> import math
    >>> from skfocal.losses import poly1_log_abs_dloss
    >>> q = 0.25  # cross-entropy + (1 - q): |l'(q)| = 1 / q + 1 = 5
    >>> poly1_log_abs_dloss(math.log(q), math.log1p(-q), epsilon=1.0).exp()
    tensor(5.)
    """
    epsilon = check_epsilon(epsilon)
    gamma = check_gamma(gamma)
    log_q, log_1mq = as_log_pair(log_q, log_1mq)
    return log_abs_dfocal(log_1mq, log_q, gamma, (1.0 + epsilon) * (gamma + 1.0))
