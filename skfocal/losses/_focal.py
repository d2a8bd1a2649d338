r"""Focal loss (Lin et al., 2017) for softmax and sigmoid outputs: its one home.

Cross-entropy is the focal loss at ``gamma=0`` (delegated to torch's fused kernels).

* functions: :func:`focal_loss`, :func:`binary_focal_loss_with_logits`;
* modules: :class:`FocalLoss`, :class:`BinaryFocalLoss`;
* lean batch means (value and gradient for a training loop): :class:`SoftmaxFocalMean`,
  :class:`SigmoidFocalMean`;
* inverse links: :func:`focal_log_abs_dloss`, :func:`cross_entropy_log_abs_dloss`,
  :func:`focal_posterior`, :func:`binary_focal_posterior`;
* stacked form (members' ``gamma`` as a column): :data:`STACKED`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_binary_target_values,
    check_gamma,
    check_multiclass_shapes,
    check_reduction,
    class_alpha,
    label_alpha,
)
from ._criterion import _AlphaLoss
from ._fused import PLAIN_DTYPES, compute_dtype, run
from ._kernels import bind_focal
from ._links import (
    _as_float_tensor,
    _check_logits,
    _check_positive,
    _q_times_ratio,
    sigmoid_log_odds,
    softmax_log_posterior,
)
from ._reduce import sigmoid_loss, sigmoid_weights, softmax_loss
from ._sigmoid import _sigmoid_signed, _stacking, signed_constants, stacks
from ._softmax import log_softmax, softmax_compute
from ._stacked import StackedForm

# -- functions ---------------------------------------------------------------------------------


def focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha=None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""Softmax focal loss from logits, shaped like :func:`torch.nn.functional.cross_entropy`.

    .. math::

        \mathrm{FL}(p_t) = -\alpha_t\,(1 - p_t)^{\gamma}\,\log p_t,
        \qquad p_t = \operatorname{softmax}(x)_{t}

    :math:`\log p_t` comes from ``log_softmax``, and the backward pass is written in closed form
    so that loss *and* gradient stay finite for every :math:`\gamma \ge 0` (including
    :math:`0 < \gamma < 1`, where the textbook formula's gradient is NaN at confident samples).

    Parameters
    ----------
    input : Tensor of shape (N, C), (N, C, d1, ...) or (C,)
        Unnormalised logits.
    target : Tensor of shape (N,), (N, d1, ...) or ()
        Integer class indices in ``[0, C)``; entries equal to ``ignore_index`` are ignored.
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`; ``gamma=0`` is (weighted) cross-entropy.
    alpha : None, float or sequence of float, default=None
        Class weights :math:`\alpha_c`. ``None`` weights every class 1. A float in [0, 1] is
        the two-class shorthand: ``alpha`` for class 1 and ``1 - alpha`` for class 0 (an
        error with more than two classes). A length-C sequence or tensor gives one
        non-negative weight per class, exactly like ``weight`` of ``F.cross_entropy``. A
        tensor that requires grad receives its exact gradient.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides the sum by :math:`\sum \alpha_t` over non-ignored targets (the
        convention of ``F.cross_entropy``), ``"sum"`` sums, ``"none"`` returns the per-element
        losses with the shape of ``target`` (0 where ignored). When that sum is zero (every
        target ignored, or only classes of weight 0) the mean is NaN, as in
        ``F.cross_entropy``, and the gradient is zero.
    ignore_index : int, default=-100
        Target value that contributes neither to the loss nor to the mean's denominator.

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``target`` for ``reduction="none"``.

    See Also
    --------
    FocalLoss : The same loss as an ``nn.Module``.
    binary_focal_loss_with_logits : Sigmoid focal loss for binary and multilabel targets.

    Notes
    -----
    With ``gamma=0`` this function *is* ``F.cross_entropy(input, target, weight=alpha,
    ignore_index=ignore_index, reduction=reduction)``: the call is delegated to it, so value
    and gradient are torch's bit for bit (with torch's float32 accuracy), and plain
    cross-entropy costs nothing extra (torch's gradient is NaN, not zero, when all targets
    have class weight 0). Class weights enter only as the factor :math:`\alpha_t`;
    :math:`p_t` is always the unweighted softmax probability (computing it as
    ``exp(-weighted CE)`` is a common bug).

    The gradient is formed in the forward pass from :math:`\log p_t`, :math:`p_t` and
    :math:`p_t - 1 = \operatorname{expm1}(\log p_t)` (exact as :math:`p_t \to 1`) in a few
    fused operations, so a forward and backward cost little more than ``F.cross_entropy``'s.
    Class indices outside ``[0, C)`` raise a ``ValueError`` for CPU tensors; on an accelerator
    the check would synchronise the device and is left to torch's indexing.

    References
    ----------
    .. [1] T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollár, "Focal Loss for Dense Object
       Detection", ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import focal_loss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> target = torch.tensor([0, 2])
    >>> focal_loss(logits, target, gamma=2.0)
    tensor(0.4838)
    >>> torch.allclose(focal_loss(logits, target, gamma=0.0),
    ...                torch.nn.functional.cross_entropy(logits, target))
    True
    """
    check_reduction(reduction)
    gamma = check_gamma(gamma)
    alpha = check_alpha(alpha)
    input, target, unbatched = check_multiclass_shapes(input, target, "focal_loss")
    kernel = None if gamma == 0 else gamma  # None: F.cross_entropy
    loss = softmax_loss(input, target, alpha, reduction, ignore_index, kernel)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_focal_loss_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha=None,
    pos_weight=None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Sigmoid focal loss for binary and multilabel targets, computed from logits.

    For each element with logit :math:`x`, probability :math:`p = \sigma(x)` and label
    :math:`y \in [0, 1]`:

    .. math::

        \mathrm{FL} = -\,y\,\alpha\,w_{+}\,(1 - p)^{\gamma}\log p
                      \;-\;(1 - y)\,(1 - \alpha)\,p^{\gamma}\log(1 - p)

    where :math:`w_{+}` is ``pos_weight``. Both logarithms come from ``logsigmoid``, and the
    gradient is written in closed form (no negative powers), so it is finite for every
    :math:`\gamma \ge 0` and any logit.

    Parameters
    ----------
    input : Tensor of any shape, e.g. (N,) for binary or (N, L) for multilabel
        One logit per element.
    target : Tensor of the same shape as ``input``
        Labels in {0, 1} (soft labels in [0, 1] are accepted: the formula above is linear in
        :math:`y`). Integer and boolean targets are converted to the logits' dtype. Values
        outside [0, 1], which would make the loss negative, raise a ``ValueError`` for CPU
        tensors (on an accelerator the check would synchronise the device and is skipped).
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`.
    alpha : None, float or sequence of float, default=None
        ``None`` weights positives and negatives equally. A float in [0, 1] weights positives
        by ``alpha`` and negatives by ``1 - alpha`` (the RetinaNet/torchvision convention, where
        ``alpha=0.25`` *down*-weights positives). A length-L sequence gives one alpha per label
        (last dimension of ``input``).
    pos_weight : None, float or Tensor broadcastable to ``input``, default=None
        Extra weight of positive elements, exactly as in :class:`torch.nn.BCEWithLogitsLoss`;
        ``n_neg / n_pos`` per label is the usual choice for rare positives.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` is the plain mean over elements (as in
        ``F.binary_cross_entropy_with_logits``).

    Returns
    -------
    loss : Tensor
        A scalar, or a tensor shaped like ``input`` for ``reduction="none"``.

    See Also
    --------
    BinaryFocalLoss : The same loss as an ``nn.Module``.
    focal_loss : Softmax focal loss for mutually exclusive classes.

    Notes
    -----
    With ``gamma=0`` and ``alpha=None`` this *is*
    ``F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight)``: the case is
    delegated to torch's fused function, so value and gradient are torch's bit for bit and
    plain binary cross-entropy costs nothing extra. With ``gamma=0`` and an ``alpha`` it is
    the ``alpha``-weighted binary cross-entropy (``weight=alpha * target + (1 - alpha) * (1 -
    target)`` of torch's function, mathematically) computed in the form below: each element
    of loss and gradient is within 2e-7 relative of a float64 reference at every logit,
    while torch's float32 function with that weight returns 0 for small values (the loss at
    :math:`x = -30, y = 0`, the gradient at :math:`x = 17, y = 1`).

    Otherwise both :math:`-\log p` and :math:`-\log(1 - p)` are softplus values, :math:`p`
    and :math:`1 - p` both sigmoids, and the positive and negative parts of loss and gradient
    are weighted by :math:`y` and :math:`1 - y` factors that are exactly 0 on the inactive side
    of a hard label :math:`y \in \{0, 1\}`: loss and gradient keep
    their relative precision at every logit (e.g. the loss at :math:`x = -15, y = 0`, or the
    gradient at :math:`x = 16, y = 1`, where ``softplus(-x) + x`` and
    ``g_- - y (g_- + g_+)`` cancel to 0). torch's own binary cross-entropy, used for
    ``gamma=0, alpha=None``, does cancel there.

    A ``target``, ``alpha`` or ``pos_weight`` that requires grad receives its exact gradient
    (the loss is then weighted by ordinary autograd operations; the logit gradient stays in
    closed form).

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import binary_focal_loss_with_logits
    >>> logits = torch.tensor([3.0, -1.0, 0.5])
    >>> target = torch.tensor([1.0, 0.0, 0.0])
    >>> binary_focal_loss_with_logits(logits, target, gamma=2.0, alpha=0.25)
    tensor(0.1000)
    """
    check_reduction(reduction)
    gamma = check_gamma(gamma)
    alpha = check_alpha(alpha)
    input, target = check_binary_shapes(input, target, "binary_focal_loss_with_logits")
    hard = check_binary_target_values(target, "binary_focal_loss_with_logits")
    return sigmoid_loss(input, target, alpha, pos_weight, reduction, gamma, hard)


# -- modules -----------------------------------------------------------------------------------


class FocalLoss(_AlphaLoss):
    r"""Softmax focal loss as an ``nn.Module``; see :func:`focal_loss` for the math.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`.
    alpha : None, float or sequence of float, default=None
        Class weights (float: two-class shorthand, ``alpha`` for class 1).
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.
    ignore_index : int, default=-100
        Target value to ignore.

    See Also
    --------
    focal_loss : The functional form, with the full description.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import FocalLoss
    >>> criterion = FocalLoss(gamma=2.0, alpha=[0.25, 0.75])
    >>> criterion
    FocalLoss(gamma=2.0, alpha=[0.25, 0.75], reduction='mean', ignore_index=-100)
    >>> logits = torch.zeros(4, 2, requires_grad=True)
    >>> loss = criterion(logits, torch.tensor([0, 1, 1, 1]))
    >>> loss.backward()
    >>> bool(torch.isfinite(logits.grad).all())
    True
    """

    _hyperparameters = ("gamma",)

    def __init__(
        self, gamma: float = 2.0, alpha=None, reduction: str = "mean", ignore_index: int = -100
    ):
        super().__init__(alpha, reduction)
        self.gamma = check_gamma(gamma)
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kernel = None if self.gamma == 0 else self.gamma  # None: F.cross_entropy
        return self._softmax(input, target, "FocalLoss", kernel)

    def _lean_mean(self):
        """:class:`SoftmaxFocalMean`, the batch mean of this ``reduction="none"`` criterion
        without ``alpha`` (with class weights the mean divides by their sum, like
        ``F.cross_entropy``: not the plain mean of the per-sample losses), else None. A
        subclass, which may compute another loss, has none."""
        if type(self) is FocalLoss and self.reduction == "none" and self.alpha is None:
            return SoftmaxFocalMean(self.gamma, self.ignore_index)
        return None


class BinaryFocalLoss(_AlphaLoss):
    r"""Sigmoid focal loss as an ``nn.Module``; see :func:`binary_focal_loss_with_logits`.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`.
    alpha : None, float or sequence of float, default=None
        Positives weighted by ``alpha``, negatives by ``1 - alpha`` (per label if a sequence).
    pos_weight : None, float or Tensor, default=None
        Extra weight of positives, as in :class:`torch.nn.BCEWithLogitsLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-element losses are combined.

    See Also
    --------
    binary_focal_loss_with_logits : The functional form, with the full description.

    Examples
    --------
    >>> import torch
    >>> from skfocal.losses import BinaryFocalLoss
    >>> criterion = BinaryFocalLoss(gamma=2.0, pos_weight=torch.tensor([3.0]))
    >>> criterion(torch.tensor([[2.0], [-1.0]]), torch.tensor([[1.0], [0.0]]))
    tensor(0.0140)
    """

    _hyperparameters = ("gamma",)

    def __init__(self, gamma: float = 2.0, alpha=None, pos_weight=None, reduction: str = "mean"):
        super().__init__(alpha, reduction, pos_weight)
        self.gamma = check_gamma(gamma)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._sigmoid(input, target, "BinaryFocalLoss", self.gamma)

    def _lean_mean(self):
        """:class:`SigmoidFocalMean`, the batch mean of this ``reduction="none"`` criterion
        (the plain mean over elements; a multilabel sample's loss is the mean over its
        labels), else None. A subclass, which may compute another loss, has none."""
        if type(self) is BinaryFocalLoss and self.reduction == "none":
            return SigmoidFocalMean(self.gamma, self.alpha, self.pos_weight)
        return None


# -- lean batch means --------------------------------------------------------------------------


# Batch means of the focal losses for targets validated beforehand: a training loop's path.
#
# :class:`~skfocal.FocalClassifier` validates its targets once per fit (class indices in
# ``[0, C)``, binary targets in ``{0, 1}`` of the logits' dtype) and calls its criterion on
# hundreds of minibatches. At batch 256 the loss's arithmetic costs a few tens of
# microseconds, comparable to what a module call spends on checking its arguments, on the
# target values (a reduction and, on the CPU, a read-back), on looking up its cached weight
# constants and on dispatching to the right form. The objects here compute exactly what
# :class:`~skfocal.losses.FocalLoss` / :class:`~skfocal.losses.BinaryFocalLoss` with
# ``reduction="mean"`` compute -- the same internal functions, the same closed-form gradient in
# one autograd node -- with the constants of each batch shape built once, and nothing else per
# call; ``value_and_grad`` returns that loss and gradient without the node, for a loop that
# backpropagates the gradient from the logits itself. Any input outside the plain case (another
# dtype or shape) goes to the module itself, checks included.
#
# They are not public: the public functions and modules keep every check.

# Inside a training step small operations cost more than in a loop that calls the loss alone,
# while torch's row-walking log-softmax kernel costs the same: below this many classes the
# kernel is the cheaper there (bench_losses.py --only thresholds times both, alone and in a
# step; the numbers are in benchmarks/README.md).
_KERNEL_CLASSES = 7


def _softmax_mean(input, target, kernel, need_grad, factors=False):
    """Mean softmax focal loss and its logit gradient; ``gamma=2`` in fewer operations than
    ``_softmax.softmax_compute`` (the mean's ``1 / n`` folded into the products).

    Written for a training step, where each small operation costs more than in a loop that
    calls the loss alone (the step runs the network's forward, backward and update in
    between), while torch's CPU log-softmax kernel, which walks the rows, costs the same in
    both: below ``_KERNEL_CLASSES`` classes the kernel's one dispatch is cheaper there than
    ``_softmax.log_softmax``'s vectorised operations. The per-sample terms are kept as
    ``(n, 1)`` columns, which broadcast against the ``(n, C)`` gradient without reshaping.
    ``factors``: for ``gamma=2``, return the loss as the pair ``(a, nq)`` of columns whose
    product sums to it (see ``_lean.batch_losses``).
    """
    if kernel != 2.0 or type(kernel) is not float:
        return softmax_compute(input, target, kernel, None, "mean", need_grad)
    n = len(target)
    zero = _stacking(1, input.dtype, input.device)[1]
    logp = (
        input.log_softmax(1)
        if input.shape[1] < _KERNEL_CLASSES
        else log_softmax(input, input.dtype)
    )
    index = target.unsqueeze(1)
    ell = logp.gather(1, index)  # log p_t, (n, 1)
    nq = ell.expm1()  # p_t - 1 = -q
    a = torch.addcmul(zero, nq, ell, value=-1.0 / n)  # -nq ell / n: q^2 (-ell) / n = a nq
    loss = (a, nq) if factors else torch.vdot(a.view(-1), nq.view(-1))
    if not need_grad:
        return loss, None
    # -d loss / d ell / n = nq (nq + 2 p ell) / n = nq^2 / n - 2 p a
    b = torch.addcmul(torch.addcmul(zero, nq, nq, value=1.0 / n), ell.exp(), a, value=-2.0)
    # d loss / d x = D (softmax - onehot) / n; the target column of softmax - onehot is nq
    grad = logp.exp_().scatter_(1, index, nq).mul_(b)
    return loss, grad


def _plain_sigmoid(input, target):
    """The case the lean sigmoid path computes: float32/64 logits, constant same-shape,
    same-dtype targets (anything else goes to the module, with its checks)."""
    return (
        type(input) is torch.Tensor
        and input.dtype in PLAIN_DTYPES
        and target.dtype is input.dtype
        and input.shape == target.shape
        and not target.requires_grad
    )


def _plain_softmax(input, target):
    """The case the lean softmax path computes: non-empty (N, C) float32/64 logits, int64
    class indices of shape (N,)."""
    return (
        type(input) is torch.Tensor
        and input.dim() == 2
        and input.dtype in PLAIN_DTYPES
        and target.dtype is torch.int64
        and target.shape == input.shape[:1]
        and len(target) > 0
    )


class SigmoidFocalMean:
    """``BinaryFocalLoss(gamma, alpha, pos_weight, reduction="mean")`` for validated targets.

    Parameters
    ----------
    gamma : float
        Focusing parameter (validated).
    alpha, pos_weight
        As in :class:`~skfocal.losses.BinaryFocalLoss` (validated; tensors or floats).
    """

    def __init__(self, gamma, alpha=None, pos_weight=None):
        self.module = BinaryFocalLoss(gamma=gamma, alpha=alpha, pos_weight=pos_weight)
        self.gamma = float(self.module.gamma)
        self._shapes = {}

    def to(self, *args, **kwargs):
        self.module = self.module.to(*args, **kwargs)
        self._shapes = {}
        return self

    def _constants(self, input):
        """``(pos_w, neg_w, consts)`` for this shape, dtype and device: the weights and the
        signed form's constants (None: the module computes)."""
        key = (input.shape, input.dtype, input.device)
        entry = self._shapes.get(key)
        if entry is None:
            n = input.numel()
            pos_w, neg_w = sigmoid_weights(self.module.alpha, self.module.pos_weight, input)
            consts = None
            if n and stacks(input):
                consts = signed_constants(pos_w, neg_w, input.dtype, input.device, 1 / n)
            entry = self._shapes[key] = (pos_w, neg_w, consts)
        return entry

    def __call__(self, input, target):
        if not _plain_sigmoid(input, target):
            return self.module(input, target)
        pos_w, neg_w, consts = self._constants(input)
        if self.gamma == 0.0 and neg_w is None:  # binary cross-entropy: torch's fused kernel
            return F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_w)
        if consts is None:  # empty, or large CPU input: the module's blocked computation
            return self.module(input, target)
        return run(_sigmoid_signed, input, target, self.gamma, consts, True)

    def value_and_grad(self, input, target):
        """``(loss, d loss / d input)``, detached, or None where torch's kernel or the module
        computes the loss (cross-entropy, other inputs): for a training loop that
        backpropagates the gradient itself, without an autograd node for the loss.

        ``loss`` is a pair of tensors whose elementwise product sums to the loss: a loop
        that only reads the values at the end of an epoch sums all its batches at once
        (:func:`batch_losses`), one ``vdot`` a step fewer.
        """
        if not _plain_sigmoid(input, target):
            return None
        _, neg_w, consts = self._constants(input)
        if consts is None or (self.gamma == 0.0 and neg_w is None):
            return None
        return _sigmoid_signed(input.detach(), target, self.gamma, consts, None, True)


class SoftmaxFocalMean:
    """``FocalLoss(gamma, reduction="mean")`` (no ``alpha``) for validated class indices.

    Parameters
    ----------
    gamma : float
        Focusing parameter (validated).
    ignore_index : int
        As in :class:`~skfocal.losses.FocalLoss` (targets must be class indices in
        ``[0, C)``: they are not checked).
    """

    def __init__(self, gamma, ignore_index=-100):
        self.module = FocalLoss(gamma=gamma, ignore_index=ignore_index)
        gamma = self.module.gamma
        if gamma == 0:
            self.kernel = None
        elif 0 < gamma < 1:  # the kernel's ratio form, built once instead of per call
            self.kernel = bind_focal(gamma)
        else:
            self.kernel = float(gamma)

    def to(self, *args, **kwargs):
        self.module = self.module.to(*args, **kwargs)
        return self

    def __call__(self, input, target):
        if not _plain_softmax(input, target):
            return self.module(input, target)
        if self.kernel is None:  # cross-entropy: torch's fused kernel
            return F.cross_entropy(input, target, ignore_index=self.module.ignore_index)
        return run(_softmax_mean, input, target, self.kernel)

    def value_and_grad(self, input, target):
        """``(loss, d loss / d input)``, detached, or None (see
        :meth:`SigmoidFocalMean.value_and_grad`; ``loss`` is a 0-dim tensor for ``gamma``
        other than 2, else a pair of factors)."""
        if self.kernel is None or not _plain_softmax(input, target):
            return None
        return _softmax_mean(input.detach(), target, self.kernel, True, True)


# -- inverse links -----------------------------------------------------------------------------


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
        like = input.new_empty((), dtype=compute_dtype(input.dtype))
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
    like = input.new_empty((), dtype=compute_dtype(input.dtype))
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


# -- stacked form ------------------------------------------------------------------------------


def _stacked_sigmoid(input, target, gamma, pos_w, neg_w, need_grad):
    r"""Sigmoid focal loss with a per-member ``gamma`` column, and its logit gradient.

    The compute function of :func:`~skfocal.losses._fused.run` for stacked members: the
    formulas of the fused sigmoid focal loss, with :math:`\gamma` a tensor: :math:`L_+ = a_+
    (1-p)^\gamma (-\log p)`, :math:`L_- = a_- p^\gamma (-\log(1-p))`, loss :math:`y L_+ + (1 -
    y) L_-` and gradient :math:`(1-y)(a_- p^{\gamma+1} + \gamma (1-p) L_-) - y(a_+
    (1-p)^{\gamma+1} + \gamma p L_+)`, finite for every :math:`\gamma \ge 0`. Both
    :math:`-\log p` and :math:`-\log(1-p)` come from their own ``softplus`` (no cancellation).
    """
    loss_pos = F.softplus(-input)  # -log p
    loss_neg = F.softplus(input)  # -log(1 - p)
    q = torch.sigmoid(-input)
    p = torch.sigmoid(input)
    mod_pos, mod_neg = q.pow(gamma), p.pow(gamma)
    loss_pos.mul_(mod_pos)
    loss_neg.mul_(mod_neg)
    if pos_w is not None:
        loss_pos.mul_(pos_w)
        mod_pos.mul_(pos_w)
    if neg_w is not None:
        loss_neg.mul_(neg_w)
        mod_neg.mul_(neg_w)
    loss = torch.lerp(loss_neg, loss_pos, target)
    if not need_grad:
        return loss, None
    grad_pos = mod_pos.mul_(q).add_(loss_pos.mul_(p).mul_(gamma))
    grad_neg = mod_neg.mul_(p).add_(loss_neg.mul_(q).mul_(gamma))
    # lerp gives either side exactly at a hard label (g- - y (g- + g+) would cancel a tiny g+
    # against g-, e.g. to 0 at x = 17, y = 1), and is linear for soft ones
    return loss, torch.lerp(grad_neg, grad_pos.neg_(), target)


class _StackedFocal(StackedForm):
    """The focal loss's stacked form (cross-entropy's too: ``gamma=0``), ``gamma`` a column."""

    softmax = staticmethod(focal_loss)
    sigmoid = staticmethod(binary_focal_loss_with_logits)

    def group(self, member):
        check_gamma(member.gamma)
        return "focal", (member.gamma if member.loss == "focal" else 0.0,)

    def kwargs(self, key, values):
        return {"gamma": values[0]}

    def kernel(self, key, params, shape, dtype):
        return bind_focal(params.to(dtype)[:, 0].reshape(shape))

    def sigmoid_loss(self, key, input, target, params, shared, pos_w, neg_w):
        if shared is not None:
            gamma = shared[0]
        else:
            gamma = params[:, 0].to(input.dtype).reshape((-1,) + (1,) * (input.dim() - 1))
        return run(_stacked_sigmoid, input, target, gamma, pos_w, neg_w)

    def sigmoid_value_and_grad(self, key, params, shared, pos_w, neg_w, dtype):
        # hard labels: the signed-logit form, half the operations of the two-sided one
        device = params.device
        consts = signed_constants(pos_w, neg_w, dtype, device)
        if shared is not None:
            gamma = float(shared[0])
            return lambda input, target: _sigmoid_signed(input, target, gamma, consts, False, True)
        gamma = params[:, :1].to(dtype)  # (k, 1): a column per member
        return lambda input, target: _stacked_signed(input, target, gamma, consts)


def _stacked_signed(x, y, gamma, consts):
    r""":func:`~skfocal.losses._sigmoid._sigmoid_signed` (per-element losses and their
    gradient, hard labels) with ``gamma`` a tensor: a ``(k, 1)`` column of the members' values.

    On :math:`-z = x - 2xy`, :math:`q = \sigma(-z)`, :math:`s = \operatorname{softplus}(-z)`:
    loss :math:`a_t q^\gamma s`, gradient :math:`(1 - 2y)\, a_t q^\gamma (q + \gamma (1 - q)
    s)`.
    """
    _, one, threshold, neg, pos, _ = consts
    nz = torch.addcmul(x, x, y, value=-2.0)  # -z, exactly -x or x
    q = torch.sigmoid(nz)
    s = F.softplus(nz) if threshold == 20.0 else F.softplus(nz, 1.0, threshold)
    u = q.pow(gamma)
    if neg is not None:
        u = u.mul_(torch.lerp(neg, pos, y))
    g = torch.sub(one, q).mul_(s).mul_(gamma).add_(q).mul_(u)
    return u * s, torch.addcmul(g, g, y, value=-2.0)


STACKED = _StackedFocal()
