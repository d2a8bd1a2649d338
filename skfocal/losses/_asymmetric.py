r"""Asymmetric loss (ASL, Ridnik et al., 2021) for binary and multilabel targets.

Its one home:

* function: :func:`binary_asymmetric_loss_with_logits` (loss and gradient:
  :func:`asymmetric_compute`);
* module: :class:`BinaryAsymmetricLoss`;
* inverse link: :func:`asymmetric_pos_log_abs_dloss`, :func:`asymmetric_neg_log_abs_dloss`;
* lean batch mean: none; stacked form: none; softmax form: none.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_clip,
    check_nonnegative,
    check_reduction,
)
from ._criterion import _AlphaLoss
from ._dloss import as_log_pair, log_abs_dfocal
from ._fused import compute_dtype, run
from ._kernels import power
from ._reduce import reduce_elementwise, sigmoid_weights

# -- functions ---------------------------------------------------------------------------------


# for clip >= this, log(1 - s) = log1p(-s) with s = p - m is accurate to eps / m relatively
_LOG1P_CLIP = 1e-3


def asymmetric_compute(input, target, gamma_pos, gamma_neg, clip, pos_w, neg_w, need_grad):
    r"""Per-element weighted ASL and, with ``need_grad``, its logit gradient, formed together.

    The compute function of :func:`skfocal.losses._fused.run` (one thin autograd node).

    With :math:`p = \sigma(x)`, :math:`\ell_+ = \log p`, shifted probability
    :math:`s = \max(p - m, 0)` and :math:`\ell_m = \log(1 - s)`:

    .. math::

        L_+ &= -(1-p)^{\gamma_+} \ell_+, &
        \frac{\partial L_+}{\partial x} &= (1-p)^{\gamma_+}\,(\gamma_+ p\, \ell_+ - (1 - p)) \\
        L_- &= -s^{\gamma_-} \ell_m, &
        \frac{\partial L_-}{\partial x} &= s^{\gamma_-}\, p \left(\frac{1-p}{1-s}
              - \gamma_-\,(1-p)\,\frac{\ell_m}{s}\right) \quad (p > m;\ 0 \text{ otherwise})

    :math:`\ell_m / s \to -1` as :math:`s \to 0`, so no negative power appears: both are
    finite for all :math:`\gamma_\pm \ge 0` and any logit. :math:`\ell_m` is ``log1p(-s)``,
    accurate to :math:`\epsilon / m` since :math:`1 - s \ge m`; for :math:`m < 10^{-3}` it
    is taken in log space, :math:`\log((1 - p) + m)` by ``logaddexp``, where :math:`s` is large.
    """

    x = input.to(compute_dtype(input.dtype))
    y = target.to(x.dtype)
    log_p = F.softplus(-x).neg_()
    log_q = log_p - x
    p, q = log_p.exp(), log_q.exp()
    # positive side: focal loss with gamma_pos
    mod_pos = power(q, gamma_pos)
    loss_pos = log_p.neg() if mod_pos is None else (log_p * mod_pos).neg_()
    # negative side on the shifted probability s = max(p - m, 0), log_1ms = log(1 - s)
    if clip == 0.0:
        s, log_1ms = p, log_q
    else:
        s = (p - clip).clamp_min_(0.0)
        if clip >= _LOG1P_CLIP:  # 1 - s >= m: log1p(-s) loses at most eps / m relatively
            log_1ms = torch.log1p(-s)
        else:  # a tiny m: log(1 - s) = log((1 - p) + m) in log space where s is large
            log_m = log_q.new_tensor(math.log(clip))
            log_1ms = torch.where(s <= 0.5, torch.log1p(-s), torch.logaddexp(log_q, log_m))
    mod_neg = power(s, gamma_neg)
    loss_neg = log_1ms.neg() if mod_neg is None else (log_1ms * mod_neg).neg_()
    if pos_w is not None:
        loss_pos = loss_pos.mul_(pos_w)
    if neg_w is not None:
        loss_neg = loss_neg.mul_(neg_w)
    loss = torch.lerp(loss_neg, loss_pos, y)
    if need_grad:
        # dL+/dx = (1-p)^g+ (g+ p log p - (1-p))
        if mod_pos is None:
            grad_pos = q.neg()
        else:
            grad_pos = (p * log_p).mul_(gamma_pos).sub_(q).mul_(mod_pos)
        # dL-/dx = s^g- p (q / (1 - s) - g- q log(1 - s) / s), 0 where s = 0 (p <= m)
        if clip == 0.0:
            frac = None  # q / (1 - s) = 1
        elif clip >= _LOG1P_CLIP:
            frac = q / (1.0 - s)
        else:
            frac = (log_q - log_1ms).exp_()
        if mod_neg is None:
            grad_neg = p if frac is None else (frac * p).mul_(s > 0)
        else:
            # log(1 - s) / s -> -1 as s -> 0; at s = 0 the factor s^g- = 0 cancels it
            ratio = log_1ms / s.clamp_min(torch.finfo(s.dtype).tiny)
            inner = ratio.mul_(q).mul_(-gamma_neg)
            inner = inner.add_(1.0) if frac is None else inner.add_(frac)
            grad_neg = inner.mul_(p).mul_(mod_neg)
        if pos_w is not None:
            grad_pos = grad_pos.mul_(pos_w)
        if neg_w is not None:
            grad_neg = grad_neg * neg_w
        grad = torch.lerp(grad_neg, grad_pos, y).to(input.dtype)
    else:
        grad = None
    return loss.to(input.dtype), grad


def binary_asymmetric_loss_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma_pos: float = 1.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    alpha=None,
    pos_weight=None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Asymmetric loss (ASL) for binary and multilabel targets, computed from logits.

    For each element with :math:`p = \sigma(z)` and label :math:`y`:

    .. math::

        \mathcal{L} = -\,y\,a_+ (1 - p)^{\gamma_+} \log p
                      \;-\;(1 - y)\,a_-\, p_m^{\gamma_-} \log(1 - p_m),
        \qquad p_m = \max(p - m, 0)

    Negatives are focused harder (:math:`\gamma_- > \gamma_+`) and, through the probability
    margin ("clip") :math:`m`, easy negatives with :math:`p \le m` are discarded entirely.
    :math:`a_\pm` are the ``alpha``/``pos_weight`` weights of
    :func:`binary_focal_loss_with_logits`.

    Parameters
    ----------
    input : Tensor of any shape, e.g. (N, L) for multilabel or (N,) for binary
        One logit per element.
    target : Tensor of the same shape as ``input``
        Labels in {0, 1} (soft labels in [0, 1] mix the two terms linearly).
    gamma_pos : float, default=1.0
        Focusing parameter :math:`\gamma_+ \ge 0` of positives.
    gamma_neg : float, default=4.0
        Focusing parameter :math:`\gamma_- \ge 0` of negatives.
    clip : float, default=0.05
        Probability margin :math:`m \in [0, 1)` shifted off the negatives' probability.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha`` (per label if a sequence).
    pos_weight : None, float or Tensor broadcastable to ``input``, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` is the plain mean over elements. The reference implementation returns
        the *sum* (``reduction="sum"`` reproduces it).

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``input`` for ``reduction="none"``.

    See Also
    --------
    BinaryAsymmetricLoss : The same loss as an ``nn.Module``.
    binary_focal_loss_with_logits : The symmetric case :math:`\gamma_+ = \gamma_-`, ``clip=0``.
    asymmetric_pos_log_abs_dloss, asymmetric_neg_log_abs_dloss : Derivatives for the link.

    Notes
    -----
    Defaults are the reference's (``gamma_neg=4, gamma_pos=1, clip=0.05``). Unlike the
    reference, the loss is computed in log space (:math:`\log p` from ``logsigmoid``,
    :math:`\log(1 - p_m) = \log((1 - p) + m)` by ``logaddexp``) without an ``eps`` clamp,
    the gradient flows through the focusing weights (as in the reference's default
    ``disable_torch_grad_focal_loss=False``) and is written in closed form, finite for every
    :math:`\gamma_\pm \ge 0` and logit, and global grad mode is never touched. With
    ``gamma_pos = gamma_neg = 0`` and ``clip=0`` it equals
    ``F.binary_cross_entropy_with_logits``; with :math:`\gamma_+ = \gamma_-` and ``clip=0``
    it equals :func:`binary_focal_loss_with_logits`.

    **Probabilities (inverse link).** Per side the loss is a function of the probability
    :math:`q` of the true class: :math:`l_+(q) = -(1-q)^{\gamma_+}\log q` for positives and
    :math:`l_-(q) = -s^{\gamma_-}\log(1-s)`, :math:`s = \max(1 - q - m, 0)`, for negatives.
    :math:`|l_+'|` is strictly decreasing on :math:`(0, 1)`; :math:`|l_-'|` is strictly
    decreasing on :math:`(0, 1 - m)` and zero on :math:`[1 - m, 1)` (:math:`p \le m`: the
    negative term is flat). For a label with positive-class probability :math:`\eta`, the
    conditional risk is strictly decreasing in :math:`p` on :math:`(0, m]` and has a unique
    minimiser :math:`p^* \in (m, 1)` where

    .. math::

        \eta = \frac{a_- |l_-'(1 - p^*)|}{a_+ |l_+'(p^*)| + a_- |l_-'(1 - p^*)|},

    which maps :math:`(m, 1)` onto :math:`(0, 1)` when :math:`\gamma_- > 0` and
    (:math:`\gamma_+ > 0` or :math:`m = 0`). So predictions :math:`p \le m` carry no
    probability information (they are never optimal for :math:`\eta > 0`); with
    :math:`\gamma_- = 0 < m` the minimiser sticks at :math:`p^* = m` for all small
    :math:`\eta` (a kink). :func:`asymmetric_pos_log_abs_dloss` and
    :func:`asymmetric_neg_log_abs_dloss` give :math:`\log |l_\pm'|`.

    References
    ----------
    .. [1] T. Ridnik, E. Ben-Baruch, N. Zamir, A. Noy, I. Friedman, M. Protter and
       L. Zelnik-Manor, "Asymmetric Loss For Multi-Label Classification", ICCV 2021
       (code: Alibaba-MIIL/ASL).

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_asymmetric_loss_with_logits
    >>> logits = torch.tensor([[2.0, -3.0, 0.5]])
    >>> target = torch.tensor([[1.0, 0.0, 0.0]])
    >>> binary_asymmetric_loss_with_logits(logits, target, reduction="none")
    tensor([[0.0151, 0.0000, 0.0913]])
    """
    check_reduction(reduction)
    gamma_pos = check_nonnegative("gamma_pos", gamma_pos)
    gamma_neg = check_nonnegative("gamma_neg", gamma_neg)
    clip = check_clip(clip)
    alpha = check_alpha(alpha)
    input, target = check_binary_shapes(input, target, "binary_asymmetric_loss_with_logits")
    pos_w, neg_w = sigmoid_weights(alpha, pos_weight, input.to(compute_dtype(input.dtype)))
    loss = run(asymmetric_compute, input, target, gamma_pos, gamma_neg, clip, pos_w, neg_w)
    return reduce_elementwise(loss, reduction)


# -- module ------------------------------------------------------------------------------------


class BinaryAsymmetricLoss(_AlphaLoss):
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

    _function = staticmethod(binary_asymmetric_loss_with_logits)
    _hyperparameters = ("gamma_pos", "gamma_neg", "clip")

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


# -- inverse link ------------------------------------------------------------------------------


def asymmetric_pos_log_abs_dloss(log_q, log_1mq, *, gamma_pos: float = 1.0):
    r""":math:`\log|l_+'(q)|` of the positive side :math:`l_+(q) = -(1-q)^{\gamma_+} \log q`.

    .. math::

        |l_+'(q)| = (1-q)^{\gamma_+ - 1}\Big[(\gamma_+ + 1)(1-q) + \frac{(1-q)^2}{q}
                    + \gamma_+\big(-\log q - (1-q)\big)\Big]

    (the focal loss's, and :func:`poly1_log_abs_dloss` at ``epsilon=0``), strictly
    decreasing in :math:`q` on :math:`(0, 1)`; :math:`q = p` is the predicted probability of
    a positive label.

    Parameters
    ----------
    log_q, log_1mq : Tensor or float
        :math:`\log q` and :math:`\log(1 - q)` for :math:`q \in (0, 1)`.
    gamma_pos : float, default=1.0
        :math:`\gamma_+ \ge 0`.

    Returns
    -------
    Tensor
        :math:`\log|l_+'(q)|`, finite for :math:`q \in (0, 1)`.

    Examples
    --------
    >>> import math
    >>> from skfocal.losses import asymmetric_pos_log_abs_dloss
    >>> q = 0.5  # gamma_pos=0 is cross-entropy: |l'(q)| = 1 / q
    >>> asymmetric_pos_log_abs_dloss(math.log(q), math.log1p(-q), gamma_pos=0.0).exp()
    tensor(2.)
    """
    gamma_pos = check_nonnegative("gamma_pos", gamma_pos)
    log_q, log_1mq = as_log_pair(log_q, log_1mq)
    return log_abs_dfocal(log_1mq, log_q, gamma_pos, gamma_pos + 1.0)


def asymmetric_neg_log_abs_dloss(
    log_q, log_1mq, *, gamma_neg: float = 4.0, clip: float = 0.05
) -> torch.Tensor:
    r""":math:`\log|l_-'(q)|` of the negative side, as a function of :math:`q = 1 - p`.

    With :math:`s = \max(1 - q - m, 0)` (the clipped probability :math:`p_m`),
    :math:`l_-(q) = -s^{\gamma_-} \log(1 - s)` and

    .. math::

        |l_-'(q)| = s^{\gamma_- - 1}\Big[(\gamma_- + 1)\,s + \frac{s^2}{1-s}
                    + \gamma_-\big(-\log(1-s) - s\big)\Big] \quad (s > 0),
        \qquad 0 \quad (q \ge 1 - m)

    strictly decreasing in :math:`q` on :math:`(0, 1 - m)`; the result is ``-inf`` exactly on
    the flat region :math:`q \ge 1 - m` (:math:`p \le m`), where :math:`l_-' = 0`. At
    :math:`q \to 1 - m` it tends to 0 for :math:`\gamma_- > 0` and jumps from 1 to 0 for
    :math:`\gamma_- = 0` (a kink).

    Parameters
    ----------
    log_q, log_1mq : Tensor or float
        :math:`\log q` and :math:`\log(1 - q)`, :math:`q = 1 - p` the predicted probability
        of the (true) negative class, :math:`q \in (0, 1)`.
    gamma_neg : float, default=4.0
        :math:`\gamma_- \ge 0`.
    clip : float, default=0.05
        :math:`m \in [0, 1)`.

    Returns
    -------
    Tensor
        :math:`\log|l_-'(q)|`: finite for :math:`q < 1 - m`, ``-inf`` for :math:`q \ge 1 - m`.

    Examples
    --------
    >>> import math
    >>> from skfocal.losses import asymmetric_neg_log_abs_dloss
    >>> q = 0.5  # gamma_neg=0, clip=0 is cross-entropy: |l'(q)| = 1 / q
    >>> asymmetric_neg_log_abs_dloss(math.log(q), math.log1p(-q), gamma_neg=0.0, clip=0.0).exp()
    tensor(2.)
    >>> asymmetric_neg_log_abs_dloss(math.log(0.97), math.log(0.03), clip=0.05)  # p <= m
    tensor(-inf)
    """
    gamma_neg = check_nonnegative("gamma_neg", gamma_neg)
    clip = check_clip(clip)
    log_q, log_1mq = as_log_pair(log_q, log_1mq)
    if clip == 0.0:
        return log_abs_dfocal(log_1mq, log_q, gamma_neg, gamma_neg + 1.0)
    # log s = log p + log1p(-m / p) for p = 1 - q > m; log(1 - s) = log(q + m)
    ratio = torch.exp(math.log(clip) - log_1mq)
    active = ratio < 1.0
    log_s = log_1mq + torch.log1p(-ratio.clamp(max=0.5))
    log_s = torch.where(ratio <= 0.5, log_s, torch.log((log_1mq.exp() - clip).clamp_min(0.0)))
    safe_log_s = torch.where(active, log_s, torch.full_like(log_s, -1.0))
    log_1ms = torch.logaddexp(log_q, log_q.new_tensor(math.log(clip))).clamp_max(0.0)
    value = log_abs_dfocal(safe_log_s, log_1ms, gamma_neg, gamma_neg + 1.0)
    return torch.where(active, value, torch.full_like(value, -math.inf))
