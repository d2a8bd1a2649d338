r"""Per-element loss kernels written in terms of :math:`\ell = \log p_t`.

Each loss in :mod:`skfocal.losses` is ``-w(p_t) * log p_t`` for some modulating factor
``w``. A kernel maps ``ell = log p_t``, ``p = p_t`` and ``q = 1 - p_t`` (each computed
accurately by the caller) to the unweighted loss and its derivative with respect to ``ell``.

The derivative of the focal factor contains :math:`(1 - p_t)^{\gamma - 1}`, which is infinite
at :math:`p_t = 1` for :math:`\gamma < 1`; autograd then multiplies it by zero and returns NaN.
Written with the ratio :math:`r = \log p_t / (1 - p_t)`, which tends to :math:`-1` as
:math:`p_t \to 1`, every expression below stays finite for every :math:`\gamma \ge 0`.
"""

from __future__ import annotations

import torch


def _ratio(ell: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``log p / (1 - p)``, with its limit ``-1`` where ``1 - p`` underflows to zero."""
    return torch.where(q > 0, ell / q, torch.full_like(ell, -1.0))


def power(base, gamma: float):
    """``base ** gamma`` (the focal factor): None for 0, ``base`` itself for 1 (never modify it
    in place), a fresh tensor otherwise."""
    if gamma == 0.0:
        return None
    if gamma == 1.0:
        return base
    return base * base if gamma == 2.0 else base.pow(gamma)


def focal_kernel(ell, p, q, gamma, need_grad: bool):
    r"""Focal term :math:`-(1-p)^\gamma \log p` and its derivative in :math:`\ell = \log p`.

    .. math::

        \frac{\partial}{\partial \ell}\left[-(1-p)^\gamma \ell\right]
        = -(1-p)^\gamma \left(1 - \gamma\, p\, \frac{\ell}{1-p}\right)

    ``gamma`` is a float, or a tensor broadcasting against ``ell`` (a stacked loss's
    per-member column).
    """
    if isinstance(gamma, torch.Tensor) or gamma not in (1.0, 2.0):
        mod = q.pow(gamma)
    elif gamma == 1.0:
        mod = q
    else:
        mod = q * q
    loss = -mod * ell
    if not need_grad:
        return loss, None
    grad = (p * _ratio(ell, q)).mul_(-gamma).add_(1.0).mul_(mod).neg_()
    return loss, grad


def margin_kernel(ell, p, q, log_margin, logit_margin, softness, need_grad: bool):
    r"""Truncated cross-entropy :math:`-\lambda(p)\log p` and its derivative in ``ell``.

    Hard truncation (``softness`` None) uses :math:`\lambda = [p \le m]` (treated as a
    constant), soft truncation :math:`\lambda = \sigma(K(\operatorname{logit} m -
    \operatorname{logit} p))` with

    .. math::

        \frac{\partial}{\partial \ell}\left[-\lambda \ell\right]
        = -\lambda\left(1 - K (1 - \lambda) \frac{\ell}{1 - p}\right).

    ``log_margin`` (:math:`\log m`), ``logit_margin`` (:math:`\operatorname{logit} m`, unused
    by the hard gate) and ``softness`` (:math:`K`) are floats, or tensors broadcasting against
    ``ell`` (a stacked loss's per-member columns).
    """
    if softness is None:
        lam = (ell <= log_margin).to(ell.dtype)
        loss = -lam * ell
        return loss, (lam.neg() if need_grad else None)
    # where 1 - p underflows to 0, logit p would be +inf and a tiny K would give 0 * inf = NaN;
    # clamping 1 - p at the smallest normal number keeps logit p finite (and huge)
    logit_p = ell - torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))
    lam = torch.sigmoid(softness * (logit_margin - logit_p))
    loss = -lam * ell
    if not need_grad:
        return loss, None
    grad = (1.0 - lam).mul_(_ratio(ell, q)).mul_(-softness).add_(1.0).mul_(lam).neg_()
    return loss, grad


def bind_focal(gamma):
    """The focal kernel ``kernel(ell, p, q, need_grad)`` of ``gamma`` (a float or a column)."""
    return lambda ell, p, q, need_grad: focal_kernel(ell, p, q, gamma, need_grad)


def bind_margin(log_margin, logit_margin, softness):
    """The margin kernel ``kernel(ell, p, q, need_grad)`` of its thresholds (floats or columns)."""
    return lambda ell, p, q, need_grad: margin_kernel(
        ell, p, q, log_margin, logit_margin, softness, need_grad
    )
