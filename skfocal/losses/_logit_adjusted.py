r"""Logit-adjusted cross-entropy (Menon et al., 2021), balanced softmax at ``tau=1`` (Ren et al.).

Its one home.

Cross-entropy on logits shifted by :math:`\tau \log \pi`: the network's own logits then
estimate the *balanced* (uniform-prior) posterior, while ``softmax(z + tau log pi)`` is the
posterior under the training distribution. Both forms delegate to torch's own stable
cross-entropy on the shifted logits.

* functions: :func:`logit_adjusted_loss`, :func:`binary_logit_adjusted_loss_with_logits`;
* modules: :class:`LogitAdjustedLoss`, :class:`BinaryLogitAdjustedLoss`;
* inverse link: :func:`logit_adjusted_log_posterior` (exact);
* lean batch mean: none; stacked form: none.
"""

from __future__ import annotations

import torch

from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_multiclass_shapes,
    check_nonnegative,
    check_prior,
    check_reduction,
    cpu_checked,
)
from ._criterion import _AlphaLoss
from ._reduce import sigmoid_loss, softmax_loss

# -- functions ---------------------------------------------------------------------------------


def _class_shape(n_classes: int, dim: int) -> tuple[int, ...]:
    """Shape broadcasting a length-C vector along dim 1 of an (N, C, d1, ...) tensor."""
    return (1, n_classes) + (1,) * (dim - 2)


def _log_odds(prior: torch.Tensor) -> torch.Tensor:
    """``log(pi / (1 - pi))`` for positive rates ``pi`` in (0, 1)."""
    return torch.log(prior) - torch.log1p(-prior)


def logit_adjusted_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    prior,
    tau: float = 1.0,
    alpha=None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""Logit-adjusted softmax cross-entropy: cross-entropy of :math:`z + \tau \log \pi`.

    .. math::

        \mathcal{L} = -\alpha_y \log
            \frac{e^{z_y + \tau \log \pi_y}}{\sum_j e^{z_j + \tau \log \pi_j}}

    Rare classes (small :math:`\pi_y`) get their logit lowered during training, so the
    network must raise it further; at ``tau=1`` this is the balanced softmax of Ren et al.

    Parameters
    ----------
    input : Tensor of shape (N, C), (N, C, d1, ...) or (C,)
        Unnormalised logits :math:`z`.
    target : Tensor of shape (N,), (N, d1, ...) or ()
        Integer class indices in ``[0, C)``; entries equal to ``ignore_index`` are ignored.
    prior : sequence of float or Tensor of shape (C,)
        Class prior :math:`\pi` (training class frequencies, > 0). Counts work as well: the
        softmax is invariant to a common factor, so ``prior`` is normalised to sum to 1.
        A class absent from training has no finite :math:`\log \pi`: give it a pseudo-count.
    tau : float, default=1.0
        Adjustment strength :math:`\tau \ge 0`; ``tau=0`` is plain cross-entropy.
    alpha : None, float or sequence of float, default=None
        Class weights, exactly like ``weight`` of ``F.cross_entropy`` (and ``alpha`` of
        :func:`focal_loss`).
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
    LogitAdjustedLoss : The same loss as an ``nn.Module``.
    binary_logit_adjusted_loss_with_logits : The one-logit binary form.
    logit_adjusted_log_posterior : Calibrated probabilities from a model trained with it.

    Notes
    -----
    The call is ``F.cross_entropy(input + tau * log(prior), target, weight=alpha, ...)``, so it
    equals cross-entropy at ``tau=0`` and is exactly as stable; :math:`\tau \log \pi` is finite
    because :math:`\pi > 0` is required.

    **Probabilities (inverse link).** The loss is cross-entropy of the adjusted logits, so at
    its minimiser (for ``tau=1``) ``softmax(z + log(prior))`` is the posterior under the
    training distribution, and ``softmax(z)`` the posterior under a uniform class prior
    (whose argmax minimises the balanced error). For general :math:`\tau`,
    ``softmax(z + tau log pi)`` is what the loss calibrates; see
    :func:`logit_adjusted_log_posterior`.

    References
    ----------
    .. [1] A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit and S. Kumar,
       "Long-tail learning via logit adjustment", ICLR 2021.
    .. [2] J. Ren, C. Yu, S. Sheng, X. Ma, H. Zhao, S. Yi and H. Li, "Balanced Meta-Softmax for
       Long-Tailed Visual Recognition", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from skfocal.losses import logit_adjusted_loss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> target = torch.tensor([0, 2])
    >>> logit_adjusted_loss(logits, target, prior=[0.7, 0.2, 0.1], reduction="none")
    tensor([0.0448, 2.5980])
    >>> torch.allclose(logit_adjusted_loss(logits, target, prior=[7, 2, 1], tau=0.0),
    ...                F.cross_entropy(logits, target))
    True
    """
    check_reduction(reduction)
    prior = check_prior(prior)
    tau = check_nonnegative("tau", tau)
    alpha = check_alpha(alpha)
    input, target, unbatched = check_multiclass_shapes(input, target, "logit_adjusted_loss")
    n_classes = input.shape[1]
    if prior.numel() != n_classes:
        raise ValueError(
            f"prior must have one entry per class: expected length {n_classes}, "
            f"got length {prior.numel()}."
        )
    if tau != 0.0:
        log_prior = torch.log(prior / prior.sum()) * tau
        shift = log_prior.to(device=input.device, dtype=input.dtype)
        input = input + shift.view(_class_shape(n_classes, input.dim()))
    loss = softmax_loss(input, target, alpha, reduction, ignore_index, None)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_logit_adjusted_loss_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    prior,
    tau: float = 1.0,
    alpha=None,
    pos_weight=None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""One-logit logit-adjusted binary cross-entropy for binary and multilabel targets.

    Derived from the two-logit form :func:`logit_adjusted_loss` with logits :math:`(0, z)`
    and prior :math:`(1 - \pi, \pi)`: only the difference of the adjusted logits matters, so

    .. math::

        \mathcal{L} = \operatorname{BCE}\!\left(z + \tau \log\frac{\pi}{1 - \pi},\; y\right)

    Parameters
    ----------
    input : Tensor of any shape, e.g. (N,) for binary or (N, L) for multilabel
        One logit per element.
    target : Tensor of the same shape as ``input``
        Labels in {0, 1} (soft labels in [0, 1] are accepted).
    prior : float or sequence of float
        Positive rate :math:`\pi \in (0, 1)` in training, or one per label (last dimension
        of ``input``).
    tau : float, default=1.0
        Adjustment strength :math:`\tau \ge 0`.
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
    BinaryLogitAdjustedLoss : The same loss as an ``nn.Module``.
    logit_adjusted_loss : The softmax form.

    Notes
    -----
    Equal to ``logit_adjusted_loss`` on the two-column logits ``stack([0, z])`` with
    ``prior=(1 - pi, pi)`` (value and gradient), and to
    ``F.binary_cross_entropy_with_logits`` at ``tau=0``. The posterior under the training
    distribution is :math:`\sigma(z + \tau \log(\pi / (1 - \pi)))`
    (``logit_adjusted_log_posterior(z, log(pi), tau, binary=True)``).

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_logit_adjusted_loss_with_logits
    >>> logits = torch.tensor([2.0, -1.0, 0.5])
    >>> target = torch.tensor([1.0, 0.0, 1.0])
    >>> binary_logit_adjusted_loss_with_logits(logits, target, prior=0.1, reduction="none")
    tensor([0.7966, 0.0401, 1.8654])
    """
    check_reduction(reduction)
    prior = check_prior(prior, binary=True)
    tau = check_nonnegative("tau", tau)
    alpha = check_alpha(alpha)
    input, target = check_binary_shapes(input, target, "binary_logit_adjusted_loss_with_logits")
    if prior.dim() == 1 and prior.numel() == 1:  # one positive rate for every element
        prior = prior.reshape(())
    if prior.dim() == 1 and (input.dim() == 0 or input.shape[-1] != prior.numel()):
        last = input.shape[-1] if input.dim() else None
        raise ValueError(
            "prior must be a float or have one entry per label (the last dimension of input): "
            f"expected length {last}, got length {prior.numel()}."
        )
    if tau != 0.0:
        shift = (_log_odds(prior) * tau).to(device=input.device, dtype=input.dtype)
        input = input + shift
    return sigmoid_loss(input, target, alpha, pos_weight, reduction, 0.0)


# -- modules -----------------------------------------------------------------------------------


class LogitAdjustedLoss(_AlphaLoss):
    r"""Logit-adjusted cross-entropy as an ``nn.Module``; see :func:`logit_adjusted_loss`.

    Parameters
    ----------
    prior : sequence of float or Tensor of shape (C,)
        Class prior :math:`\pi` (frequencies or counts, all > 0).
    tau : float, default=1.0
        Adjustment strength :math:`\tau \ge 0`.
    alpha : None, float or sequence of float, default=None
        Class weights.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.
    ignore_index : int, default=-100
        Target value to ignore.

    See Also
    --------
    logit_adjusted_loss : The functional form.
    logit_adjusted_log_posterior : Calibrated probabilities of the trained model.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import LogitAdjustedLoss
    >>> criterion = LogitAdjustedLoss(prior=[900, 90, 10])
    >>> criterion
    LogitAdjustedLoss(prior=[900.0, 90.0, 10.0], tau=1.0, alpha=None, reduction='mean', ...)
    >>> criterion(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([2]))
    tensor(4.6052)
    """

    _function = staticmethod(logit_adjusted_loss)
    _hyperparameters = ("prior", "tau")

    def __init__(
        self,
        prior,
        tau: float = 1.0,
        alpha=None,
        reduction: str = "mean",
        ignore_index: int = -100,
    ):
        super().__init__(alpha, reduction)
        self._register_vector("prior", cpu_checked(check_prior, prior))
        self.tau = check_nonnegative("tau", tau)
        self.ignore_index = ignore_index


class BinaryLogitAdjustedLoss(_AlphaLoss):
    r"""One-logit logit-adjusted BCE as an ``nn.Module``.

    See :func:`binary_logit_adjusted_loss_with_logits` for the math.

    Parameters
    ----------
    prior : float or sequence of float
        Positive rate :math:`\pi \in (0, 1)`, or one per label.
    tau : float, default=1.0
        Adjustment strength :math:`\tau \ge 0`.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha``.
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.

    See Also
    --------
    binary_logit_adjusted_loss_with_logits : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import BinaryLogitAdjustedLoss
    >>> criterion = BinaryLogitAdjustedLoss(prior=0.1)
    >>> criterion(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
    tensor(1.2040)
    """

    _function = staticmethod(binary_logit_adjusted_loss_with_logits)
    _hyperparameters = ("prior", "tau")

    def __init__(
        self,
        prior,
        tau: float = 1.0,
        alpha=None,
        pos_weight=None,
        reduction: str = "mean",
    ):
        super().__init__(alpha, reduction, pos_weight)
        self._check_label_alpha()
        self._register_vector("prior", cpu_checked(check_prior, prior, binary=True))
        self.tau = check_nonnegative("tau", tau)


# -- inverse link ------------------------------------------------------------------------------


def logit_adjusted_log_posterior(
    logits: torch.Tensor, log_prior, tau: float = 1.0, *, binary: bool = False
) -> torch.Tensor:
    r"""Log-posterior under the training distribution of a model trained with logit adjustment.

    .. math::

        \log P(y = c \mid x) = \log \operatorname{softmax}(z + \tau \log \pi)_c,
        \qquad
        \log P(y = 1 \mid x) = \log \sigma\!\left(z + \tau \log\frac{\pi}{1 - \pi}\right)
        \ \text{(binary)}

    This is the inverse link of :func:`logit_adjusted_loss` and
    :func:`binary_logit_adjusted_loss_with_logits`: the probabilities their minimiser
    calibrates (exactly the training posterior at ``tau=1``). For the balanced (uniform
    prior) posterior use ``tau=0``, i.e. ``log_softmax(z)`` or ``logsigmoid(z)``.

    Parameters
    ----------
    logits : Tensor
        Multiclass: shape (N, C), (N, C, d1, ...) or (C,). Binary (``binary=True``): one
        logit per element, any shape.
    log_prior : sequence of float or Tensor
        Multiclass: :math:`\log \pi`, shape (C,) (need not be normalised: the softmax does
        not see a common shift). Binary: :math:`\log \pi` of the positive rate, a float or
        one per label (last dimension of ``logits``).
    tau : float, default=1.0
        The :math:`\tau \ge 0` the model was trained with.
    binary : bool, default=False
        Whether ``logits`` are one-logit binary/multilabel outputs.

    Returns
    -------
    log_posterior : Tensor
        Multiclass: log-probabilities shaped like ``logits`` (summing to 1 over dim 1, or
        dim 0 for shape (C,)). Binary: :math:`\log P(y = 1 \mid x)` shaped like ``logits``;
        :math:`\log P(y = 0 \mid x)` is that minus the adjusted logit.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import logit_adjusted_log_posterior
    >>> z = torch.tensor([[0.0, 0.0]])
    >>> logit_adjusted_log_posterior(z, torch.log(torch.tensor([0.8, 0.2]))).exp()
    tensor([[0.8000, 0.2000]])
    >>> logit_adjusted_log_posterior(torch.tensor([0.0]), torch.log(torch.tensor(0.2)),
    ...                              binary=True).exp()
    tensor([0.2000])
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got {logits!r}.")
    tau = check_nonnegative("tau", tau)
    log_prior = torch.as_tensor(log_prior, device=logits.device)
    if not log_prior.is_floating_point():
        log_prior = log_prior.double()
    log_prior = log_prior.to(logits.dtype)
    if binary:
        if log_prior.dim() > 1 or (
            log_prior.dim() == 1 and (logits.dim() == 0 or log_prior.numel() != logits.shape[-1])
        ):
            raise ValueError(
                "log_prior must be a float or one log positive rate per label (the last "
                f"dimension of logits) when binary=True, got shape {tuple(log_prior.shape)} "
                f"for logits of shape {tuple(logits.shape)}."
            )
        # log(pi / (1 - pi)) from log(pi): log(1 - pi) = log(-expm1(log pi))
        log_odds = log_prior - torch.log(-torch.expm1(log_prior))
        return torch.nn.functional.logsigmoid(logits + tau * log_odds)
    dim = 0 if logits.dim() == 1 else 1
    if logits.dim() == 0 or log_prior.dim() != 1 or log_prior.numel() != logits.shape[dim]:
        raise ValueError(
            "log_prior must have one entry per class (dimension 1 of logits, or 0 for shape "
            f"(C,)), got shape {tuple(log_prior.shape)} for logits of shape "
            f"{tuple(logits.shape)}."
        )
    if logits.dim() > 1:
        log_prior = log_prior.view(_class_shape(logits.shape[1], logits.dim()))
    return torch.log_softmax(logits + tau * log_prior, dim=dim)
