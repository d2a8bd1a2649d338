r"""Loss specs: what each ``FocalClassifier(loss=...)`` value means, in one registry.

A :class:`LossSpec` declares the estimator hyperparameters its loss reads (``gamma``,
``margin``, ``softness``, ...), checks them against the target kind before training, and
builds the criterion of a fit -- the softmax form for a multiclass target, the sigmoid form
for binary and multilabel targets -- from the values the fit plan resolved (``alpha``,
``pos_weight``). Criteria are :mod:`skfocal.losses` modules with ``reduction="none"``: the
engine weights and averages the per-sample losses itself.

:data:`LOSSES` is the one registry that answers "which loss is this": each spec names the
pieces of its loss, all from the loss's own file in :mod:`skfocal.losses` (``_focal``,
``_margin``, ...): the criterion (:meth:`LossSpec.criterion`), the inverse link
(:meth:`LossSpec.log_abs_dloss` / :meth:`LossSpec.log_posterior`) and the stacked form
(:attr:`LossSpec.stacked_form`); the lean batch mean is the criterion's own
(``_lean_mean``). The specs live outside :mod:`skfocal.losses` because they are
scikit-learn objects (a :class:`LossObject` is a ``BaseEstimator``: ``get_params``,
``clone``, searchable as ``loss__<name>``), while the losses need only torch.

Adding a loss is one file in :mod:`skfocal.losses` (its function and module, and its link,
lean mean and stacked form where it has them) plus one spec here, registered in
:data:`LOSSES`.
"""

from __future__ import annotations

import contextlib
import functools
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator

from .losses import (
    _asymmetric,
    _focal,
    _ldam,
    _logit_adjusted,
    _margin,
    _poly,
    class_balanced_weights,
    sigmoid_log_odds,
    softmax_log_posterior,
)
from .losses._checks import check_epsilon, check_nonnegative, check_positive, check_unit


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
    #: the default MLP's output layer this loss is meant for ("linear" or "cosine")
    output_layer = "linear"
    #: the loss's stacked form (a :class:`~skfocal.losses._stacked.StackedForm` of its loss
    #: file), or None: candidates with this loss are fitted one by one
    stacked_form = None

    def __repr__(self):
        return f"<loss spec {self.name}>"

    def check(self, kind, hyper):
        """Raise before training when ``hyper`` does not suit the target ``kind``."""

    def hyperparameters(self, estimator):
        """The values of :attr:`params` on ``estimator`` (and the loss object's own), a dict."""
        return {name: getattr(estimator, name) for name in self.params}

    def bind(self, kind, hyper, class_counts):
        """``hyper`` completed with what the loss needs from the training data (counts)."""
        return hyper

    def phases(self, hyper):
        """Deferred phases ``[(first_epoch, class_weight_vector_or_None)]`` (default: none)."""
        return []

    def criterion(self, kind, hyper, alpha, pos_weight):
        """The per-sample criterion (``reduction="none"``) for ``kind`` (``hyper`` bound)."""
        raise NotImplementedError

    def stacked_member(self, hyper, alpha, pos_weight):
        """This loss as one member of a stacked model, or None (no stacked form).

        A :class:`~skfocal._engines._stacked.MemberLoss`; candidates whose loss has none are
        fitted one by one.
        """
        return None

    @property
    def has_stacked_form(self):
        """Whether the loss has a stacked form (:meth:`stacked_member` gives a member)."""
        return self.stacked_form is not None

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
        return _focal.FocalLoss(gamma=gamma, alpha=alpha_t, reduction="none")
    return _focal.BinaryFocalLoss(gamma=gamma, alpha=alpha_t, pos_weight=pw, reduction="none")


class FocalSpec(LossSpec):
    r"""Focal loss :math:`-\alpha_t (1 - p_t)^\gamma \log p_t` (Lin et al., 2017)."""

    name = "focal"
    params = ("gamma",)
    stacked_form = _focal.STACKED

    def criterion(self, kind, hyper, alpha, pos_weight):
        return focal_criterion(kind, hyper["gamma"], alpha, pos_weight)

    def stacked_member(self, hyper, alpha, pos_weight):
        return _member_loss("focal", alpha, pos_weight, gamma=float(hyper["gamma"]))

    def log_abs_dloss(self, hyper):
        gamma = float(hyper["gamma"])
        return None if gamma == 0 else functools.partial(_focal.focal_log_abs_dloss, gamma=gamma)


class CrossEntropySpec(LossSpec):
    r"""Cross-entropy :math:`-\alpha_t \log p_t` (focal loss at :math:`\gamma = 0`)."""

    name = "cross_entropy"
    stacked_form = _focal.STACKED  # the focal loss's, at gamma = 0

    def criterion(self, kind, hyper, alpha, pos_weight):
        return focal_criterion(kind, 0.0, alpha, pos_weight)

    def stacked_member(self, hyper, alpha, pos_weight):
        return _member_loss("cross_entropy", alpha, pos_weight, gamma=0.0)


class MarginSpec(LossSpec):
    r"""Truncated cross-entropy :math:`-\alpha_t \lambda(p_t) \log p_t` (hard or soft gate).

    The soft gate has an inverse link wherever :math:`|l'|` is strictly decreasing
    (:func:`~skfocal.losses.soft_margin_link_is_invertible`: always for ``softness <= 1``);
    the hard gate has none (its minimiser is not unique), and neither has a soft gate past
    that bound: their raw probabilities are taken as the posterior (an approximation).
    """

    name = "margin"
    params = ("margin", "softness")
    stacked_form = _margin.STACKED

    def has_inverse_link(self, hyper):
        softness = hyper["softness"]
        return softness is not None and _margin.soft_margin_link_is_invertible(
            hyper["margin"], softness
        )

    def log_abs_dloss(self, hyper):
        if not self.has_inverse_link(hyper):
            return None
        return functools.partial(
            _margin.soft_margin_log_abs_dloss, margin=hyper["margin"], softness=hyper["softness"]
        )

    def criterion(self, kind, hyper, alpha, pos_weight):
        alpha_t, pw = _tensors(alpha, pos_weight)
        if kind.softmax:
            return _margin.MarginLoss(
                margin=hyper["margin"], softness=hyper["softness"], alpha=alpha_t, reduction="none"
            )
        return _margin.BinaryMarginLoss(
            margin=hyper["margin"],
            softness=hyper["softness"],
            alpha=alpha_t,
            pos_weight=pw,
            reduction="none",
        )

    def stacked_member(self, hyper, alpha, pos_weight):
        softness = hyper["softness"]
        return _member_loss(
            "margin",
            alpha,
            pos_weight,
            margin=float(hyper["margin"]),
            softness=None if softness is None else float(softness),
        )


def _as_criterion_stores(values):
    """Array ``alpha`` / ``pos_weight`` as a loss module stores them (torch's default dtype).

    The :mod:`skfocal.losses` modules keep tensor-valued ``alpha`` and ``pos_weight`` as
    buffers of torch's default dtype (float32), whatever the training dtype; a stacked member
    uses the same rounded values, so that a float64 member equals its single fit to rounding.
    """
    if values is None:
        return None
    stored = torch.as_tensor(np.asarray(values, dtype=np.float64)).to(torch.get_default_dtype())
    return stored.double().numpy()


def _member_loss(name, alpha, pos_weight, **hyper):
    from ._engines._stacked import MemberLoss

    if alpha is not None:
        alpha = float(alpha) if isinstance(alpha, numbers.Real) else _as_criterion_stores(alpha)
    return MemberLoss(name, alpha=alpha, pos_weight=_as_criterion_stores(pos_weight), **hyper)


class LossObject(BaseEstimator, LossSpec):
    """A loss given as an object (``FocalClassifier(loss=LDAM(max_margin=0.3))``).

    Its own hyperparameters are scikit-learn parameters: ``get_params``/``set_params``,
    ``clone``, and searchable as ``loss__<name>`` in ``GridSearchCV``; ``gamma`` and ``alpha``
    stay the estimator's for the losses that use them.
    """

    def __repr__(self, N_CHAR_MAX=700):
        return BaseEstimator.__repr__(self, N_CHAR_MAX)

    def hyperparameters(self, estimator):
        hyper = {name: getattr(estimator, name) for name in self.params}
        hyper.update(self.get_params(deep=False))
        return hyper


@contextlib.contextmanager
def _value_errors():
    """The checks of :mod:`skfocal.losses` (a value that is no number raises ``TypeError``
    there) with every invalid hyperparameter a ``ValueError``, as before training here."""
    try:
        yield
    except TypeError as exc:
        raise ValueError(str(exc)) from None


class LDAM(LossObject):
    r"""Label-distribution-aware margin loss (Cao et al., 2019), with deferred re-weighting.

    :math:`\mathrm{CE}(s\,(z - \Delta_y e_y), y)` with per-class margins
    :math:`\Delta_j \propto n_j^{-1/4}` scaled so that :math:`\max_j \Delta_j =`
    ``max_margin`` (:func:`~skfocal.losses.ldam_margins`, from the training part's class
    counts). Binary targets train one logit: the two-logit form with :math:`z_0 = 0`.

    Parameters
    ----------
    max_margin : float, default=0.5
        Largest margin (the rarest class's), the reference's ``max_m``.
    scale : float, default=30.0
        Logit scale :math:`s`. 30 (the reference's) belongs with the normalised (cosine)
        output layer, whose logits are cosine similarities in [-1, 1]; with ``cosine=False``
        use about 1 (a plain linear layer's logits are not bounded).
    cosine : bool, default=True
        Train the default MLP with a bias-free cosine output layer
        (:class:`~skfocal._module.CosineLinear`, the reference's ``NormedLinear``); its output
        bias cannot hold a class prior, so ``bias_init`` does not apply. Ignored for a user
        ``module``.
    drw_epoch : int or None, default=None
        Deferred re-weighting (LDAM-DRW): from this (1-based) epoch on, the loss weighs class
        :math:`c` by the class-balanced weight of Cui et al. (2019),
        :math:`\propto (1 - \beta) / (1 - \beta^{n_c})`
        (:func:`~skfocal.losses.class_balanced_weights`), on top of ``alpha``. The switch
        keeps the optimizer's state (the reference keeps SGD's momentum). None: no
        re-weighting. Binary targets fold the pair of weights into one ``alpha``.
    drw_beta : float, default=0.9999
        :math:`\beta` of the deferred weights (the reference's).

    Notes
    -----
    LDAM has no closed-form inverse link (the margins couple the classes); ``predict_proba``
    is :math:`\operatorname{softmax}(s z)` of the trained scores, taken as the posterior of
    the training distribution (an approximation) and shifted to ``class_prior`` like the
    other losses.
    """

    name = "ldam"

    def __init__(self, max_margin=0.5, scale=30.0, cosine=True, drw_epoch=None, drw_beta=0.9999):
        self.max_margin = max_margin
        self.scale = scale
        self.cosine = cosine
        self.drw_epoch = drw_epoch
        self.drw_beta = drw_beta

    @property
    def output_layer(self):
        return "cosine" if self.cosine else "linear"

    def check(self, kind, hyper):
        with _value_errors():
            check_nonnegative("max_margin", hyper["max_margin"])
            check_positive("scale", hyper["scale"])
            drw = hyper["drw_epoch"]
            if drw is not None and not (isinstance(drw, numbers.Integral) and drw >= 1):
                raise ValueError(f"drw_epoch must be None or an int >= 1, got {drw!r}.")
            check_unit("drw_beta", hyper["drw_beta"])
        if not kind.balances_classes:
            raise ValueError(
                "loss='ldam' needs a binary or multiclass target (its margins are per class); "
                f"got a {kind.name} target."
            )

    def bind(self, kind, hyper, class_counts):
        counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1.0)
        margins = _ldam.ldam_margins(torch.as_tensor(counts), hyper["max_margin"]).numpy()
        weights = class_balanced_weights(torch.as_tensor(counts), hyper["drw_beta"]).numpy()
        return {**hyper, "margins": margins, "drw_weights": weights}

    def phases(self, hyper):
        if hyper["drw_epoch"] is None or hyper["drw_epoch"] <= 1:
            return []
        return [(hyper["drw_epoch"], hyper["drw_weights"])]

    def criterion(self, kind, hyper, alpha, pos_weight):
        alpha_t, _ = _tensors(alpha, pos_weight)
        margins = torch.as_tensor(hyper["margins"])
        if kind.softmax:
            return _ldam.LDAMLoss(margins, scale=hyper["scale"], alpha=alpha_t, reduction="none")
        return _ldam.BinaryLDAMLoss(margins, scale=hyper["scale"], alpha=alpha_t, reduction="none")

    def log_posterior(self, kind, hyper, z):
        return super().log_posterior(kind, hyper, z * hyper["scale"])

    def has_inverse_link(self, hyper):
        return False


class LogitAdjusted(LossObject):
    r"""Logit-adjusted cross-entropy (Menon et al., 2021; balanced softmax at ``tau=1``).

    :math:`\mathrm{CE}(z + \tau \log \pi, y)` with :math:`\pi` the class frequencies of
    the training part (binary: the one logit is shifted by :math:`\tau\log(\pi_1/\pi_0)`).
    The network's own :math:`z` then scores classes as if they were balanced (at
    :math:`\tau = 1`), and its inverse link is exact: the posterior of the training
    distribution is :math:`\operatorname{softmax}(z + \tau\log\pi)`
    (:func:`~skfocal.losses.logit_adjusted_log_posterior`), so ``class_prior="training"``
    gives :math:`P(y \mid x)` and ``"balanced"`` gives :math:`\operatorname{softmax}(z)`
    at ``tau=1``.

    Parameters
    ----------
    tau : float, default=1.0
        Strength of the adjustment, :math:`\tau \ge 0` (0: cross-entropy).
    """

    name = "logit_adjusted"

    def __init__(self, tau=1.0):
        self.tau = tau

    def check(self, kind, hyper):
        with _value_errors():
            check_nonnegative("tau", hyper["tau"])
        if not kind.balances_classes:
            raise ValueError(
                "loss='logit_adjusted' needs a binary or multiclass target (it adjusts by the "
                f"class prior); got a {kind.name} target."
            )

    def bind(self, kind, hyper, class_counts):
        counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1e-12)
        return {**hyper, "prior": counts / counts.sum()}

    def _shift(self, kind, hyper, like):
        prior = torch.as_tensor(hyper["prior"], dtype=like.dtype, device=like.device)
        if kind.softmax:
            return hyper["tau"] * torch.log(prior)
        return hyper["tau"] * (torch.log(prior[1]) - torch.log(prior[0]))

    def criterion(self, kind, hyper, alpha, pos_weight):
        alpha_t, _ = _tensors(alpha, pos_weight)
        prior = torch.as_tensor(hyper["prior"])
        if kind.softmax:
            return _logit_adjusted.LogitAdjustedLoss(
                prior, tau=hyper["tau"], alpha=alpha_t, reduction="none"
            )
        return _logit_adjusted.BinaryLogitAdjustedLoss(
            prior[1:], tau=hyper["tau"], alpha=alpha_t, reduction="none"
        )

    def log_posterior(self, kind, hyper, z):
        return super().log_posterior(kind, hyper, z + self._shift(kind, hyper, z))


class Poly1(LossObject):
    r"""Poly-1 loss (Leng et al., 2022): :math:`\mathrm{FL}_\gamma + \epsilon(1-p_t)^{\gamma+1}`.

    With the estimator's ``gamma`` (its default 2 gives the focal form; ``gamma=0`` the
    cross-entropy form :math:`\mathrm{CE} + \epsilon(1 - p_t)`), and ``alpha`` weighting the
    whole per-sample loss. :math:`|l'(q)|` is strictly decreasing for every
    :math:`\epsilon \ge -1`, so the inverse link exists
    (:func:`~skfocal.losses.poly1_log_abs_dloss`).

    Parameters
    ----------
    epsilon : float, default=1.0
        Weight of the first polynomial term, :math:`\epsilon \ge -1` (below, the loss stops
        decreasing in :math:`p_t`).
    """

    name = "poly"
    params = ("gamma",)

    def __init__(self, epsilon=1.0):
        self.epsilon = epsilon

    def check(self, kind, hyper):
        with _value_errors():
            check_epsilon(hyper["epsilon"])

    def criterion(self, kind, hyper, alpha, pos_weight):
        alpha_t, pw = _tensors(alpha, pos_weight)
        eps, gamma = hyper["epsilon"], hyper["gamma"]
        if kind.softmax:
            return _poly.Poly1Loss(epsilon=eps, gamma=gamma, alpha=alpha_t, reduction="none")
        return _poly.BinaryPoly1Loss(
            epsilon=eps, gamma=gamma, alpha=alpha_t, pos_weight=pw, reduction="none"
        )

    def log_abs_dloss(self, hyper):
        return functools.partial(
            _poly.poly1_log_abs_dloss, epsilon=hyper["epsilon"], gamma=float(hyper["gamma"])
        )


class Asymmetric(LossObject):
    r"""Asymmetric loss (Ridnik et al., 2021) for binary and multilabel targets.

    Positives :math:`-(1-p)^{\gamma_+}\log p`, negatives :math:`-p_m^{\gamma_-}\log(1-p_m)`
    with the shifted probability :math:`p_m = \max(p - m, 0)`: easy negatives are
    down-weighted and the very easy ones (:math:`p \le m`) discarded. Mean reduction (the
    reference sums). Its inverse link (:func:`~skfocal.losses.asymmetric_pos_log_abs_dloss`,
    :func:`~skfocal.losses.asymmetric_neg_log_abs_dloss`) is unique for :math:`p > m`; below
    the clip the negative term is flat and the recovered posterior is 1 there -- with
    ``clip > 0``, read low probabilities with care.

    Parameters
    ----------
    gamma_pos : float, default=1.0
        Focusing parameter of the positives.
    gamma_neg : float, default=4.0
        Focusing parameter of the negatives.
    clip : float, default=0.05
        Probability margin :math:`m \in [0, 1)` of the negatives.
    """

    name = "asymmetric"

    def __init__(self, gamma_pos=1.0, gamma_neg=4.0, clip=0.05):
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.clip = clip

    def check(self, kind, hyper):
        with _value_errors():
            check_nonnegative("gamma_pos", hyper["gamma_pos"])
            check_nonnegative("gamma_neg", hyper["gamma_neg"])
            check_unit("clip", hyper["clip"])
        if kind.softmax:
            raise ValueError(
                "loss='asymmetric' is a sigmoid loss for binary and multilabel targets; got a "
                f"{kind.name} target (use 'focal', 'poly' or 'ldam')."
            )

    def criterion(self, kind, hyper, alpha, pos_weight):
        alpha_t, pw = _tensors(alpha, pos_weight)
        return _asymmetric.BinaryAsymmetricLoss(
            gamma_pos=hyper["gamma_pos"],
            gamma_neg=hyper["gamma_neg"],
            clip=hyper["clip"],
            alpha=alpha_t,
            pos_weight=pw,
            reduction="none",
        )

    def log_posterior(self, kind, hyper, z):
        pos = functools.partial(
            _asymmetric.asymmetric_pos_log_abs_dloss, gamma_pos=hyper["gamma_pos"]
        )
        neg = functools.partial(
            _asymmetric.asymmetric_neg_log_abs_dloss,
            gamma_neg=hyper["gamma_neg"],
            clip=hyper["clip"],
        )
        return sigmoid_log_odds(z, pos, neg)


LOSSES = {
    spec.name: spec
    for spec in (
        FocalSpec(),
        CrossEntropySpec(),
        MarginSpec(),
        LDAM(),
        LogitAdjusted(),
        Poly1(),
        Asymmetric(),
    )
}
CROSS_ENTROPY = LOSSES["cross_entropy"]
LOSS_OBJECTS = (LDAM, LogitAdjusted, Poly1, Asymmetric)


def loss_spec(loss):
    """The spec of ``loss``: a registered name, or a loss object used as it is."""
    return LOSSES[loss] if isinstance(loss, str) else loss
