r"""Loss specs: what each ``FocalClassifier(loss=...)`` value means, in one registry.

A :class:`LossSpec` declares the estimator hyperparameters its loss reads (``gamma``,
``margin``, ``softness``, ...), checks them against the target kind before training, and
builds the criterion of a fit -- the softmax form for a multiclass target, the sigmoid form
for binary and multilabel targets -- from the values the fit plan resolved (``alpha``,
``pos_weight``). Criteria are :mod:`skfocal.losses` modules with ``reduction="none"``: the
engine weights and averages the per-sample losses itself.

Adding a loss is one spec here (registered in :data:`LOSSES`) plus its function/module pair
in :mod:`skfocal.losses`.
"""

from __future__ import annotations

import functools

import torch

from .losses import (
    BinaryFocalLoss,
    BinaryMarginLoss,
    FocalLoss,
    MarginLoss,
    focal_log_abs_dloss,
    sigmoid_log_odds,
    soft_margin_link_is_invertible,
    soft_margin_log_abs_dloss,
    softmax_log_posterior,
)


class LossSpec:
    """Base class of the loss specs.

    Attributes
    ----------
    name : str
        The value of ``FocalClassifier(loss=...)``.
    params : tuple of str
        The estimator hyperparameters the loss reads.
    """

    name = ""
    params: tuple = ()

    def __repr__(self):
        return f"<loss spec {self.name}>"

    def check(self, kind, hyper):
        """Raise before training when ``hyper`` does not suit the target ``kind``."""

    def hyperparameters(self, estimator):
        """The values of :attr:`params` on ``estimator``, as a dict."""
        return {name: getattr(estimator, name) for name in self.params}

    def criterion(self, kind, hyper, alpha, pos_weight):
        """The per-sample criterion (``reduction="none"``) for ``kind``."""
        raise NotImplementedError

    def log_abs_dloss(self, hyper):
        r""":math:`\log|l'(q)|` of the per-class loss; None: cross-entropy's identity link."""
        return None

    def has_inverse_link(self, hyper):
        """Whether :meth:`log_posterior` inverts the loss (else it returns the raw outputs)."""
        return True

    def log_posterior(self, kind, hyper, z):
        """The inverse link: logits -> log posterior of the emphasised training distribution.

        Softmax kinds: the normalised log posterior; sigmoid kinds: the log-odds. For
        cross-entropy (and a loss without an inverse link) these are ``log_softmax(z)`` and
        ``z`` themselves.
        """
        dloss = self.log_abs_dloss(hyper)
        if kind.softmax:
            if dloss is None:
                return torch.log_softmax(z, dim=-1)
            return softmax_log_posterior(z, dloss)
        return z if dloss is None else sigmoid_log_odds(z, dloss)


def _tensors(alpha, pos_weight):
    """``alpha`` (a float stays a float) and ``pos_weight`` as the loss modules take them."""
    alpha_t = alpha if alpha is None or isinstance(alpha, float) else torch.as_tensor(alpha)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight)
    return alpha_t, pw


def focal_criterion(kind, gamma, alpha, pos_weight):
    """Focal criterion of ``kind`` (``gamma=0``: cross-entropy through torch's fused kernels)."""
    alpha_t, pw = _tensors(alpha, pos_weight)
    if kind.softmax:
        return FocalLoss(gamma=gamma, alpha=alpha_t, reduction="none")
    return BinaryFocalLoss(gamma=gamma, alpha=alpha_t, pos_weight=pw, reduction="none")


class FocalSpec(LossSpec):
    r"""Focal loss :math:`-\alpha_t (1 - p_t)^\gamma \log p_t` (Lin et al., 2017)."""

    name = "focal"
    params = ("gamma",)

    def criterion(self, kind, hyper, alpha, pos_weight):
        return focal_criterion(kind, hyper["gamma"], alpha, pos_weight)

    def log_abs_dloss(self, hyper):
        gamma = float(hyper["gamma"])
        return None if gamma == 0 else functools.partial(focal_log_abs_dloss, gamma=gamma)


class CrossEntropySpec(LossSpec):
    r"""Cross-entropy :math:`-\alpha_t \log p_t` (focal loss at :math:`\gamma = 0`)."""

    name = "cross_entropy"

    def criterion(self, kind, hyper, alpha, pos_weight):
        return focal_criterion(kind, 0.0, alpha, pos_weight)


class MarginSpec(LossSpec):
    r"""Truncated cross-entropy :math:`-\alpha_t \lambda(p_t) \log p_t` (hard or soft gate).

    The soft gate has an inverse link wherever :math:`|l'|` is strictly decreasing
    (:func:`~skfocal.losses.soft_margin_link_is_invertible`: always for ``softness <= 1``);
    the hard gate has none (its minimiser is not unique), and neither has a soft gate past
    that bound: their raw probabilities are taken as the posterior (an approximation).
    """

    name = "margin"
    params = ("margin", "softness")

    def has_inverse_link(self, hyper):
        softness = hyper["softness"]
        return softness is not None and soft_margin_link_is_invertible(hyper["margin"], softness)

    def log_abs_dloss(self, hyper):
        if not self.has_inverse_link(hyper):
            return None
        return functools.partial(
            soft_margin_log_abs_dloss, margin=hyper["margin"], softness=hyper["softness"]
        )

    def criterion(self, kind, hyper, alpha, pos_weight):
        alpha_t, pw = _tensors(alpha, pos_weight)
        if kind.softmax:
            return MarginLoss(
                margin=hyper["margin"], softness=hyper["softness"], alpha=alpha_t, reduction="none"
            )
        return BinaryMarginLoss(
            margin=hyper["margin"],
            softness=hyper["softness"],
            alpha=alpha_t,
            pos_weight=pw,
            reduction="none",
        )


LOSSES = {spec.name: spec for spec in (FocalSpec(), CrossEntropySpec(), MarginSpec())}
CROSS_ENTROPY = LOSSES["cross_entropy"]


def loss_spec(loss):
    """The spec registered for ``loss``."""
    return LOSSES[loss]
