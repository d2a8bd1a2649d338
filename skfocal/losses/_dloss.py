r"""Log-space derivatives of the per-probability losses, for inverse links.

The poly-1 loss (both forms) and the two sides of the asymmetric loss are, per element, a
function :math:`l(q)` of the predicted probability :math:`q` of the true class. Their
derivatives share one shape: with :math:`u` the "miss" (:math:`u = 1 - q`, or the shifted
probability of the negative side), a coefficient :math:`a \ge 0` and :math:`\gamma \ge 0`,

.. math::

    |l'| = u^{\gamma - 1}\left[a\,u + \frac{u^2}{1 - u} + \gamma\,c(u)\right],
    \qquad c(u) = -\log(1 - u) - u = \sum_{k \ge 2} \frac{u^k}{k} \ge 0,

a sum of non-negative terms, which is evaluated here in log space without cancellation.
"""

from __future__ import annotations

import math

import torch

# c(u) = u^2 * sum_{k>=2} u^(k-2) / k for u below this; its truncation error after
# _SERIES_TERMS terms is below u^_SERIES_TERMS, i.e. below float64 precision
_SERIES_BELOW = 0.05
_SERIES_TERMS = 13


def _log_c(log_u: torch.Tensor, log_1mu: torch.Tensor) -> torch.Tensor:
    """``log(-log(1 - u) - u)`` for ``u`` in (0, 1), accurate also for ``u`` -> 0 or 1."""
    u = log_u.exp()
    small = u < _SERIES_BELOW
    u_small = torch.where(small, u, torch.zeros_like(u))
    series = torch.full_like(u, 1.0 / (_SERIES_TERMS + 1))
    for k in range(_SERIES_TERMS, 1, -1):  # Horner: 1/2 + u/3 + u^2/4 + ...
        series = series.mul_(u_small).add_(1.0 / k)
    near_zero = 2.0 * log_u + series.log()
    direct = torch.log((-log_1mu - u).clamp_min(torch.finfo(u.dtype).tiny))
    return torch.where(small, near_zero, direct)


def log_abs_dfocal(log_u, log_1mu, gamma: float, lin: float) -> torch.Tensor:
    r"""``log(u^(gamma-1) [lin u + u^2 / (1 - u) + gamma c(u)])`` for ``u`` in (0, 1)."""
    terms = [(gamma + 1.0) * log_u - log_1mu]
    if lin > 0:
        terms.append(math.log(lin) + gamma * log_u)
    if gamma > 0:
        terms.append(math.log(gamma) + (gamma - 1.0) * log_u + _log_c(log_u, log_1mu))
    return torch.logsumexp(torch.stack(terms), dim=0)


def as_log_pair(log_q, log_1mq):
    """Broadcast ``log q`` and ``log(1 - q)`` to floating tensors of a common shape and dtype."""
    log_q = torch.as_tensor(log_q)
    log_1mq = torch.as_tensor(log_1mq, device=log_q.device)
    dtype = torch.promote_types(log_q.dtype, log_1mq.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return torch.broadcast_tensors(log_q.to(dtype), log_1mq.to(dtype))
