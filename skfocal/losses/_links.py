r"""Inverse links: class-posterior probabilities from models trained with any of the losses.

A model trained with a per-class loss :math:`l(q)` of the probability :math:`q` it gives to the
true class, with class emphasis :math:`w_k` (``alpha``, class weights, a sampler's draw rate),
converges where the expected weighted loss is minimal. For the true posterior :math:`\eta`
that is the minimiser of

.. math::

    \sum_k \eta_k\, w_k\, l(q_k) \quad\text{subject to}\quad \sum_k q_k = 1,

whose stationarity conditions give :math:`\eta_k w_k\,|l'(q_k)| = \text{const}`, hence

.. math::

    \eta_k \;\propto\; \frac{1}{w_k\,|l'(q_k)|}.

For cross-entropy :math:`|l'(q)| = 1/q` and the link is the identity (up to :math:`w`). For any
other loss the softmax output :math:`q` is *not* the posterior; this module maps it back.

Every loss is described by one function ``log_abs_dloss(log_q, log_1mq) -> Tensor`` that
returns :math:`\log|l'(q)|` from :math:`\log q` and :math:`\log(1 - q)`, both supplied
accurately by the caller. Internally the links use :math:`h = \log(q\,|l'(q)|)`, which is
exactly zero for cross-entropy, so that cross-entropy's link returns ``log_softmax`` (or the
logits) bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._checks import (
    check_alpha,
    check_gamma,
    check_margin,
    check_softness,
    class_alpha,
    label_alpha,
)
from ._functions import _compute_dtype

LogAbsDLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- the per-loss derivatives -----------------------------------------------------------------


def _x_over_expm1(x: torch.Tensor) -> torch.Tensor:
    r""":math:`x / \operatorname{expm1}(x)`, with value *and* gradient finite for every finite x.

    Three branches, each evaluated on inputs safe for it: the series :math:`1 - x/2` for
    :math:`|x| < 10^{-8}` (the next term, :math:`x^2/12`, is below double precision), the
    plain quotient for :math:`x \le 1`, and :math:`x e^{-x} / (1 - e^{-x})` above, where
    ``expm1(x)`` would overflow.
    """
    small = x.abs() < 1e-8
    large = x > 1.0
    mid = torch.where(small | large, torch.full_like(x, -1.0), x)
    big = torch.where(large, x, torch.full_like(x, 2.0))
    value = torch.where(large, big * torch.exp(-big) / -torch.expm1(-big), mid / torch.expm1(mid))
    return torch.where(small, 1.0 - 0.5 * x, value)


def _q_times_ratio(log_q: torch.Tensor) -> torch.Tensor:
    r""":math:`q\,r = -q\log q / (1 - q) = -a / \operatorname{expm1}(-a) \in (0, 1]`, ``a = log q``.

    It tends to 1 as :math:`q \to 1` (also where ``log q`` underflows to zero) and to 0 as
    :math:`q \to 0`.
    """
    return _x_over_expm1(log_q.neg())


def _ratio(log_q: torch.Tensor) -> torch.Tensor:
    r""":math:`r = -\log q / (1 - q) = a / \operatorname{expm1}(a) \in [1, \infty)`."""
    return _x_over_expm1(log_q)


def cross_entropy_log_abs_dloss(log_q: torch.Tensor, log_1mq: torch.Tensor) -> torch.Tensor:
    r"""Log-derivative of cross-entropy :math:`l(q) = -\log q`: :math:`\log|l'(q)| = -\log q`.

    The identity link: a model trained with (weighted) cross-entropy estimates the (weighted)
    posterior directly.

    .. math::

        \log|l'(q)| = \log\frac{1}{q} = -\log q

    Parameters
    ----------
    log_q : Tensor
        :math:`\log q` for the probability :math:`q \in (0, 1)` of the true class.
    log_1mq : Tensor
        :math:`\log(1 - q)` (unused; kept for the common signature of these functions).

    Returns
    -------
    Tensor
        :math:`-\log q`, shaped like ``log_q``.

    See Also
    --------
    focal_log_abs_dloss : The same for focal loss; ``gamma=0`` is this function.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import cross_entropy_log_abs_dloss
    >>> log_q = torch.log(torch.tensor([0.25, 0.5]))
    >>> cross_entropy_log_abs_dloss(log_q, torch.log1p(-log_q.exp())).exp()
    tensor([4., 2.])
    """
    return log_q.neg()


def focal_log_abs_dloss(
    log_q: torch.Tensor, log_1mq: torch.Tensor, *, gamma: float = 2.0
) -> torch.Tensor:
    r"""Log-derivative of focal loss :math:`l(q) = -(1 - q)^\gamma \log q`, stable for all q.

    .. math::

        |l'(q)| = \frac{(1-q)^\gamma}{q} - \gamma\,(1-q)^{\gamma-1}\log q
                = (1-q)^\gamma\left(\frac{1}{q} + \gamma\,r\right),
        \qquad r = \frac{-\log q}{1-q},

    evaluated as

    .. math::

        \log|l'(q)| = -\log q + \gamma\log(1-q) + \operatorname{log1p}(\gamma\,q\,r),
        \qquad q\,r = \frac{-\log q}{\operatorname{expm1}(-\log q)} \in (0, 1).

    Both terms of :math:`|l'|` have the same sign, so nothing cancels; the factorisation
    avoids :math:`(1-q)^{\gamma-1}`, which overflows as :math:`q \to 1` for
    :math:`\gamma < 1`, and the ratio :math:`(1 - q)/q`, which overflows as :math:`q \to 0`.
    Near :math:`q = 1`, :math:`|l'(q)| \approx (1 + \gamma)(1-q)^\gamma`; near :math:`q = 0`,
    :math:`|l'(q)| \approx 1/q`. :math:`|l'|` is strictly decreasing on :math:`(0, 1)` for
    every :math:`\gamma \ge 0` (for :math:`\gamma \ge 1` both factors decrease; for
    :math:`\gamma < 1` its log-derivative in :math:`q` is negative because
    :math:`-q\log q < 1 - q`), so the inverse link is a bijection that keeps the order of
    the classes [1]_.

    Parameters
    ----------
    log_q : Tensor
        :math:`\log q`, accurate also for :math:`q` near 1 (e.g. ``-softplus(-x)``).
    log_1mq : Tensor
        :math:`\log(1 - q)`, accurate also for :math:`q` near 1 (e.g. ``-softplus(x)``).
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`; ``gamma=0`` is cross-entropy (:math:`-\log q`
        exactly).

    Returns
    -------
    Tensor
        :math:`\log|l'(q)|`, finite for every :math:`q \in (0, 1)` representable in the dtype
        (``-inf`` only at :math:`q = 1` exactly, where :math:`l'(1) = 0` for
        :math:`\gamma > 0`).

    See Also
    --------
    focal_posterior : The softmax link for models trained with ``focal_loss``.
    binary_focal_posterior : The sigmoid link for ``binary_focal_loss_with_logits``.

    References
    ----------
    .. [1] N. Charoenphakdee, J. Vongkulbhisal, N. Chairatanakul and M. Sugiyama, "On Focal
       Loss for Class-Posterior Probability Estimation: A Theoretical Perspective", CVPR 2021.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from skfocal.losses import focal_log_abs_dloss
    >>> q = torch.tensor([0.5], dtype=torch.float64)
    >>> focal_log_abs_dloss(q.log(), torch.log1p(-q), gamma=1.0).exp()  # 1 + log 2
    tensor([1.6931], dtype=torch.float64)
    >>> x = torch.tensor([40.0])  # q = sigmoid(40): 1 - q = 4e-18 is not representable
    >>> focal_log_abs_dloss(-F.softplus(-x), -F.softplus(x), gamma=2.0)  # ~ log 3 - 80
    tensor([-78.9014])
    """
    gamma = check_gamma(gamma)
    if gamma == 0.0:
        return log_q.neg()
    return _focal_h(log_q, log_1mq, gamma).sub_(log_q)


def _focal_h(log_q, log_1mq, gamma: float) -> torch.Tensor:
    """``log(q |l'(q)|) = gamma log(1 - q) + log1p(gamma q r)`` for focal loss."""
    return torch.log1p(_q_times_ratio(log_q).mul_(gamma)).add_(log_1mq, alpha=gamma)


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


# -- invertibility of the soft margin link -----------------------------------------------------


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


# -- the generic links ------------------------------------------------------------------------


def _check_logits(logits, name: str) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} expects a torch tensor of logits, got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"{name} expects floating-point logits, got dtype {logits.dtype}.")


def _check_callable(value, name: str) -> None:
    if not callable(value):
        raise TypeError(
            f"{name} must be a callable log_abs_dloss(log_q, log_1mq) -> Tensor, got {value!r}."
        )


def _as_float_tensor(value, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def _softmax_logs(x: torch.Tensor):
    r""":math:`\log q` and :math:`\log(1 - q)` for :math:`q = \operatorname{softmax}(x)` (last dim).

    Accurate for every class: a non-top class has :math:`q \le 1/2`, where
    ``log1p(-exp(log q))`` is accurate; for the top class both come from its log-odds against
    the others, ``gap = x_top - logsumexp(others)``, as ``-softplus(-gap)`` and
    ``-softplus(gap)``, so that :math:`1 - q` keeps its precision when it is far below the
    dtype's epsilon.
    """
    log_softmax = F.log_softmax(x, dim=-1)
    top = x.argmax(dim=-1, keepdim=True)
    is_top = torch.zeros_like(x, dtype=torch.bool).scatter_(-1, top, True)
    rest = torch.logsumexp(x.masked_fill(is_top, -math.inf), dim=-1, keepdim=True)
    gap = x.gather(-1, top) - rest
    log_q = torch.where(is_top, F.softplus(gap.neg()).neg(), log_softmax)
    log_1mq = torch.where(
        is_top,
        F.softplus(gap).neg(),
        torch.log1p(log_softmax.exp().masked_fill(is_top, 0.0).neg_()),
    )
    return log_q, log_1mq


def softmax_log_posterior(
    logits: torch.Tensor,
    log_abs_dloss: LogAbsDLoss,
    log_emphasis=None,
    *,
    dim: int = -1,
) -> torch.Tensor:
    r"""Log class posterior :math:`\log\eta` from the logits of a softmax model and its loss.

    For a model trained with a per-class loss :math:`l` and class emphasis :math:`w_k`, the
    population minimiser :math:`q` satisfies :math:`\eta_k w_k |l'(q_k)| = \text{const}`, so

    .. math::

        \log\eta_k = -\log w_k - \log|l'(q_k)| - \operatorname{logsumexp}_j
            \bigl(-\log w_j - \log|l'(q_j)|\bigr)
        = \operatorname{log\_softmax}_k\bigl(x_k - h_k - \log w_k\bigr),

    with :math:`h = \log(q\,|l'(q)|) = \log|l'(q)| + \log q`, zero for cross-entropy, so that
    cross-entropy without emphasis returns ``log_softmax(logits)`` exactly. :math:`\log q` and
    :math:`\log(1 - q)` are computed in log space (for the top class from its log-odds against
    the others), so the result is finite for logits of any finite size.

    Parameters
    ----------
    logits : Tensor of any shape (..., C, ...)
        Unnormalised logits, classes along ``dim``. float16/bfloat16 are computed in float32.
    log_abs_dloss : callable
        ``log_abs_dloss(log_q, log_1mq) -> Tensor``, :math:`\log|l'(q)|` of the training loss,
        e.g. ``functools.partial(focal_log_abs_dloss, gamma=2.0)``.
    log_emphasis : None or Tensor, default=None
        :math:`\log w_k` of the class emphasis used in training (``log(alpha)``, the log of a
        sampler's per-class draw rate, or their sum), broadcastable against ``logits`` with the
        class dimension moved last (e.g. shape ``(C,)``). It is divided out; ``None`` keeps the
        emphasis (returns the posterior of the emphasised training distribution).
    dim : int, default=-1
        The class dimension.

    Returns
    -------
    Tensor
        :math:`\log\eta`, shaped like ``logits``, normalised along ``dim``. For a loss with
        strictly decreasing :math:`|l'|` and no emphasis, its argmax equals that of ``logits``.

    See Also
    --------
    focal_posterior : This link for focal loss, as probabilities.
    sigmoid_log_odds : The link for sigmoid (binary and multilabel) models.

    Examples
    --------
    >>> import functools, torch
    >>> from skfocal.losses import (cross_entropy_log_abs_dloss, focal_log_abs_dloss,
    ...                             softmax_log_posterior)
    >>> logits = torch.tensor([[2.0, 0.0, -1.0]])
    >>> torch.equal(softmax_log_posterior(logits, cross_entropy_log_abs_dloss),
    ...             torch.log_softmax(logits, dim=-1))
    True
    >>> focal = functools.partial(focal_log_abs_dloss, gamma=2.0)
    >>> softmax_log_posterior(logits, focal).exp()  # sharper than softmax: 0.84, 0.11, 0.04
    tensor([[0.9895, 0.0076, 0.0029]])
    """
    _check_logits(logits, "softmax_log_posterior")
    _check_callable(log_abs_dloss, "log_abs_dloss")
    in_dtype = logits.dtype
    x = logits.movedim(dim, -1).to(_compute_dtype(in_dtype))
    if x.shape[-1] == 1:  # a single class has posterior one
        return torch.zeros_like(logits)
    log_q, log_1mq = _softmax_logs(x)
    z = x - (log_abs_dloss(log_q, log_1mq) + log_q)
    if log_emphasis is not None:
        z = z - _as_float_tensor(log_emphasis, z)
    return F.log_softmax(z, dim=-1).movedim(-1, dim).to(in_dtype)


def sigmoid_log_odds(
    logits: torch.Tensor,
    log_abs_dloss_pos: LogAbsDLoss,
    log_abs_dloss_neg: LogAbsDLoss | None = None,
    log_emphasis_ratio=None,
) -> torch.Tensor:
    r"""Log-odds of the positive class from the logits of a sigmoid model and its loss.

    For each element with :math:`p = \sigma(x)`, a positive-side loss :math:`l_+(p)` and a
    negative-side loss :math:`l_-(1 - p)` weighted by :math:`w_+` and :math:`w_-`, the
    population minimiser satisfies
    :math:`\eta\,w_+|l_+'(p)| = (1 - \eta)\,w_-|l_-'(1 - p)|`, so

    .. math::

        \log\frac{\eta}{1-\eta} = \log|l_-'(1-p)| - \log|l_+'(p)| - \log\frac{w_+}{w_-}
        = x + h_-(1 - p) - h_+(p) - \log\frac{w_+}{w_-},

    with :math:`h = \log(q|l'(q)|)`, zero for cross-entropy, so that binary cross-entropy
    without emphasis returns the logits exactly. This is the two-class softmax link with
    :math:`q_0 = 1 - p`, applied elementwise (per label for multilabel models).

    Parameters
    ----------
    logits : Tensor of any shape
        One logit per element. float16/bfloat16 are computed in float32.
    log_abs_dloss_pos : callable
        ``log_abs_dloss(log_q, log_1mq)`` of the positive-side loss, evaluated at
        :math:`q = p`.
    log_abs_dloss_neg : None or callable, default=None
        The same for the negative-side loss, evaluated at :math:`q = 1 - p`; ``None`` uses
        ``log_abs_dloss_pos`` (a symmetric loss such as focal loss).
    log_emphasis_ratio : None or Tensor, default=None
        :math:`\log(w_+/w_-)`, broadcastable to ``logits`` (e.g. one per label), divided out;
        ``None`` keeps the emphasis.

    Returns
    -------
    Tensor
        The log-odds :math:`\operatorname{logit}\eta`, shaped like ``logits``; increasing in
        the logits for losses with strictly decreasing :math:`|l'|`.

    See Also
    --------
    binary_focal_posterior : This link for sigmoid focal loss, as probabilities.
    softmax_log_posterior : The link for softmax models.

    Examples
    --------
    >>> import functools, torch
    >>> from skfocal.losses import focal_log_abs_dloss, sigmoid_log_odds
    >>> logits = torch.tensor([-2.0, 0.0, 1.0, 1e4])
    >>> sigmoid_log_odds(logits, functools.partial(focal_log_abs_dloss, gamma=0.0))
    tensor([-2.0000e+00,  0.0000e+00,  1.0000e+00,  1.0000e+04])
    >>> sigmoid_log_odds(logits, functools.partial(focal_log_abs_dloss, gamma=2.0))
    tensor([-5.3984e+00,  0.0000e+00,  2.6817e+00,  2.9999e+04])
    """
    _check_logits(logits, "sigmoid_log_odds")
    _check_callable(log_abs_dloss_pos, "log_abs_dloss_pos")
    if log_abs_dloss_neg is None:
        log_abs_dloss_neg = log_abs_dloss_pos
    _check_callable(log_abs_dloss_neg, "log_abs_dloss_neg")
    in_dtype = logits.dtype
    x = logits.to(_compute_dtype(in_dtype))
    log_p, log_1mp = F.softplus(x.neg()).neg_(), F.softplus(x).neg_()
    h_pos = log_abs_dloss_pos(log_p, log_1mp) + log_p
    h_neg = log_abs_dloss_neg(log_1mp, log_p) + log_1mp
    out = (x + h_neg) - h_pos
    if log_emphasis_ratio is not None:
        out = out - _as_float_tensor(log_emphasis_ratio, out)
    return out.to(in_dtype)


# -- convenience links for the focal losses ---------------------------------------------------


def _check_positive(name: str, weights: torch.Tensor, allowed: str) -> None:
    if weights.device.type == "cpu" and not bool((weights > 0).all()):
        raise ValueError(
            f"{name} must hold {allowed} to be divided out (a class with weight 0 is never "
            f"trained on, so its probability cannot be recovered), got {weights.tolist()}."
        )


def focal_posterior(input: torch.Tensor, *, gamma: float = 2.0, alpha=None, dim=None):
    r"""Class probabilities from the logits of a model trained with :func:`focal_loss`.

    .. math::

        \eta_k \propto \frac{1}{\alpha_k\,|l_\gamma'(q_k)|}, \qquad
        |l_\gamma'(q)| = \frac{(1-q)^\gamma}{q} - \gamma(1-q)^{\gamma-1}\log q,
        \qquad q = \operatorname{softmax}(x),

    computed in log space by :func:`softmax_log_posterior` with :func:`focal_log_abs_dloss`.
    The softmax outputs of a focal-loss model are under-confident (closer to uniform than the
    posterior); this link removes that distortion, and the class weights.

    Parameters
    ----------
    input : Tensor of shape (N, C), (N, C, d1, ...) or (C,)
        Logits, shaped like the input of :func:`focal_loss`.
    gamma : float, default=2.0
        The ``gamma`` the model was trained with; ``gamma=0`` is the softmax.
    alpha : None, float or sequence of float, default=None
        The ``alpha`` the model was trained with, divided out (every weight must be positive).
        ``None`` divides nothing: with a weighted model the result is then the posterior of
        the weighted training distribution.
    dim : None or int, default=None
        The class dimension; ``None`` is that of :func:`focal_loss` (1, or 0 for ``(C,)``).

    Returns
    -------
    Tensor
        Probabilities shaped like ``input``, summing to one along the class dimension.

    See Also
    --------
    softmax_log_posterior : The generic link, for any loss.
    binary_focal_posterior : The sigmoid version.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import focal_posterior
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.0, 0.3]])
    >>> torch.equal(focal_posterior(logits, gamma=0.0), torch.softmax(logits, dim=1))
    True
    >>> focal_posterior(logits, gamma=2.0)
    tensor([[0.9895, 0.0076, 0.0029],
            [0.3045, 0.2602, 0.4354]])
    >>> focal_posterior(logits, gamma=2.0, alpha=[0.5, 1.0, 1.0])  # class 0 was down-weighted
    tensor([[0.9947, 0.0038, 0.0015],
            [0.4668, 0.1995, 0.3338]])
    """
    gamma = check_gamma(gamma)
    alpha = check_alpha(alpha)
    _check_logits(input, "focal_posterior")
    if dim is None:
        dim = 0 if input.dim() <= 1 else 1
    log_emphasis = None
    if alpha is not None:
        like = input.new_empty((), dtype=_compute_dtype(input.dtype))
        weights = class_alpha(alpha, input.shape[dim], like)
        _check_positive("alpha", weights, "positive per-class weights")
        log_emphasis = weights.log()
    if gamma == 0.0 and log_emphasis is None:
        return torch.softmax(input, dim=dim)

    def dloss(log_q, log_1mq):
        return focal_log_abs_dloss(log_q, log_1mq, gamma=gamma)

    return softmax_log_posterior(input, dloss, log_emphasis, dim=dim).exp()


def binary_focal_posterior(input: torch.Tensor, *, gamma: float = 2.0, alpha=None, pos_weight=None):
    r"""Probability of the positive class for a model trained with
    :func:`binary_focal_loss_with_logits`.

    .. math::

        \operatorname{logit}\eta = \log|l_\gamma'(1-p)| - \log|l_\gamma'(p)|
            - \log\frac{\alpha\,w_+}{1 - \alpha}, \qquad p = \sigma(x),

    computed in log space by :func:`sigmoid_log_odds` with :func:`focal_log_abs_dloss`, per
    element (per label for multilabel models).

    Parameters
    ----------
    input : Tensor of any shape
        Logits, shaped like the input of :func:`binary_focal_loss_with_logits`.
    gamma : float, default=2.0
        The ``gamma`` the model was trained with; ``gamma=0`` is the sigmoid.
    alpha : None, float or sequence of float, default=None
        The ``alpha`` the model was trained with (positives weighted by ``alpha``, negatives by
        ``1 - alpha``; one per label if a sequence), divided out; it must lie in (0, 1).
    pos_weight : None, float or Tensor broadcastable to ``input``, default=None
        The ``pos_weight`` the model was trained with, divided out; it must be positive.

    Returns
    -------
    Tensor
        :math:`\eta = P(y = 1 \mid x)`, shaped like ``input``.

    See Also
    --------
    sigmoid_log_odds : The generic link, for any loss.
    focal_posterior : The softmax version.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_focal_posterior
    >>> logits = torch.tensor([-2.0, 0.0, 1.0])
    >>> torch.equal(binary_focal_posterior(logits, gamma=0.0), torch.sigmoid(logits))
    True
    >>> binary_focal_posterior(logits, gamma=2.0)
    tensor([0.0045, 0.5000, 0.9359])
    >>> binary_focal_posterior(logits, gamma=0.0, pos_weight=3.0)  # undoes BCE's pos_weight
    tensor([0.0432, 0.2500, 0.4754])
    """
    gamma = check_gamma(gamma)
    alpha = check_alpha(alpha)
    _check_logits(input, "binary_focal_posterior")
    like = input.new_empty((), dtype=_compute_dtype(input.dtype))
    log_ratio = None
    if alpha is not None:
        n_labels = input.shape[-1] if input.dim() else 1
        alpha_t = _as_float_tensor(label_alpha(alpha, n_labels, like), like)
        if alpha_t.device.type == "cpu" and not bool(((alpha_t > 0) & (alpha_t < 1)).all()):
            raise ValueError(
                "alpha must lie in the open interval (0, 1) to be divided out (alpha 0 or 1 "
                f"trains on one side only), got {alpha_t.tolist()}."
            )
        log_ratio = alpha_t.log() - torch.log1p(alpha_t.neg())
    if pos_weight is not None:
        pos_weight_t = _as_float_tensor(pos_weight, like)
        _check_positive("pos_weight", pos_weight_t, "positive weights")
        log_pw = pos_weight_t.log()
        log_ratio = log_pw if log_ratio is None else log_ratio + log_pw
    if gamma == 0.0 and log_ratio is None:
        return torch.sigmoid(input)

    def dloss(log_q, log_1mq):
        return focal_log_abs_dloss(log_q, log_1mq, gamma=gamma)

    return torch.sigmoid(sigmoid_log_odds(input, dloss, None, log_ratio))
