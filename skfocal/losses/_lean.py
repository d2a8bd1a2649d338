r"""Batch means of the focal losses for targets validated beforehand: a training loop's path.

:class:`~skfocal.FocalClassifier` validates its targets once per fit (class indices in
``[0, C)``, binary targets in ``{0, 1}`` of the logits' dtype) and calls its criterion on
hundreds of minibatches. At batch 256 the loss's arithmetic costs a few tens of
microseconds, comparable to what a module call spends on checking its arguments, on the
target values (a reduction and, on the CPU, a read-back), on looking up its cached weight
constants and on dispatching to the right form. The objects here compute exactly what
:class:`~skfocal.losses.FocalLoss` / :class:`~skfocal.losses.BinaryFocalLoss` with
``reduction="mean"`` compute -- the same internal functions, the same closed-form gradient in
one autograd node -- with the constants of each batch shape built once, and nothing else per
call; ``value_and_grad`` returns that loss and gradient without the node, for a loop that
backpropagates the gradient from the logits itself. Any input outside the plain case (another
dtype or shape) goes to the module itself, checks included.

They are not public: the public functions and modules keep every check.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._functions import (
    PLAIN_DTYPES,
    _sigmoid_stacked,
    _stacking,
    log_softmax,
    pair_constants,
    run,
    softmax_compute,
    stacks,
)
from ._kernels import make_kernel
from ._modules import BinaryFocalLoss, FocalLoss
from ._reduce import sigmoid_weights


def _softmax_mean(input, target, kernel, need_grad):
    """Mean softmax focal loss and its logit gradient; ``gamma=2`` in fewer operations than
    ``_functions.softmax_compute`` (the mean's ``1 / n`` folded into the products)."""
    if kernel != 2.0 or type(kernel) is not float:
        return softmax_compute(input, target, kernel, None, "mean", need_grad)
    n = len(target)
    zero = _stacking(1, input.dtype, input.device)[1]
    logp = log_softmax(input, input.dtype)
    index = target.unsqueeze(1)
    ell = logp.gather(1, index).squeeze(1)  # log p_t
    nq = torch.expm1(ell)  # p_t - 1 = -q
    a = torch.addcmul(zero, nq, ell, value=-1.0 / n)  # -nq ell / n: q^2 (-ell) / n = a nq
    loss = torch.vdot(a, nq)
    if not need_grad:
        return loss, None
    # -d loss / d ell / n = nq (nq + 2 p ell) / n = nq^2 / n - 2 p a
    b = torch.addcmul(torch.addcmul(zero, nq, nq, value=1.0 / n), ell.exp(), a, value=-2.0)
    # d loss / d x = D (softmax - onehot) / n; the target column of softmax - onehot is nq
    grad = logp.exp_().scatter_(1, index, nq.unsqueeze(1)).mul_(b.unsqueeze(1))
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
        """``(pos_w, neg_w, consts)`` for this shape, dtype and device, or None: the module."""
        key = (input.shape, input.dtype, input.device)
        entry = self._shapes.get(key)
        if entry is None:
            n = input.numel()
            pos_w, neg_w = sigmoid_weights(self.module.alpha, self.module.pos_weight, input)
            consts = None
            if n and stacks(input):
                consts = pair_constants(pos_w, neg_w, input.dim(), input.dtype, input.device, 1 / n)
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
        return run(_sigmoid_stacked, input, target, self.gamma, consts, True)

    def value_and_grad(self, input, target):
        """``(loss, d loss / d input)``, both detached, or None where torch's kernel or the
        module computes the loss (cross-entropy, other inputs): for a training loop that
        backpropagates the gradient itself, without an autograd node for the loss."""
        if not _plain_sigmoid(input, target):
            return None
        _, neg_w, consts = self._constants(input)
        if consts is None or (self.gamma == 0.0 and neg_w is None):
            return None
        return _sigmoid_stacked(input.detach(), target, self.gamma, consts, True, True)


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
            self.kernel = make_kernel("focal", gamma=gamma)
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
        """``(loss, d loss / d input)``, both detached, or None (see
        :meth:`SigmoidFocalMean.value_and_grad`)."""
        if self.kernel is None or not _plain_softmax(input, target):
            return None
        return _softmax_mean(input.detach(), target, self.kernel, True)


def mean_loss(criterion):
    """The lean batch-mean twin of a ``reduction="none"`` focal criterion, or None.

    Only where the criterion's ``"mean"`` is the plain mean of its per-sample losses: the
    sigmoid focal loss (its mean divides by the element count; a multilabel sample's loss is
    the mean over its labels) and the softmax focal loss without ``alpha`` (with class
    weights its mean divides by their sum, like ``F.cross_entropy``).
    """
    if type(criterion) is BinaryFocalLoss and criterion.reduction == "none":
        return SigmoidFocalMean(criterion.gamma, criterion.alpha, criterion.pos_weight)
    if type(criterion) is FocalLoss and criterion.reduction == "none" and criterion.alpha is None:
        return SoftmaxFocalMean(criterion.gamma, criterion.ignore_index)
    return None
