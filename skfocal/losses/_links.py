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

from ._fused import compute_dtype

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


# -- invertibility of the soft margin link -----------------------------------------------------


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
    x = logits.movedim(dim, -1).to(compute_dtype(in_dtype))
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
    x = logits.to(compute_dtype(in_dtype))
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
