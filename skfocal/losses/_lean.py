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
    _sigmoid_signed,
    _stacking,
    log_softmax,
    run,
    signed_constants,
    softmax_compute,
    stacks,
)
from ._kernels import make_kernel
from ._modules import BinaryFocalLoss, FocalLoss
from ._reduce import sigmoid_weights

# Timed inside a training step (256 rows, 2-core CPU): kernel / six operations 27 / 35 us at 4
# classes, 37 / 48 at 5, 38 / 42 at 6, 39 / 35 at 7, 45 / 37 at 8, 52 / 34 at 10.
_KERNEL_CLASSES = 7


def _softmax_mean(input, target, kernel, need_grad, factors=False):
    """Mean softmax focal loss and its logit gradient; ``gamma=2`` in fewer operations than
    ``_functions.softmax_compute`` (the mean's ``1 / n`` folded into the products).

    Written for a training step, where each small operation costs about twice what it costs
    in a loop that calls the loss alone (the step runs the network's forward, backward and
    update in between), while torch's CPU log-softmax kernel, which walks the rows (about
    5.5 us per class at 256 rows), costs the same in both: below ``_KERNEL_CLASSES`` classes
    the kernel's one dispatch is cheaper there than ``_functions.log_softmax``'s six
    vectorised operations. The per-sample terms are kept as ``(n, 1)`` columns, which
    broadcast against the ``(n, C)`` gradient without reshaping. ``factors``: for ``gamma=2``,
    return the loss as the pair ``(a, nq)`` of columns whose product sums to it (see
    :func:`batch_losses`).
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
        """``(loss, d loss / d input)``, detached, or None (see
        :meth:`SigmoidFocalMean.value_and_grad`; ``loss`` is a 0-dim tensor for ``gamma``
        other than 2, else a pair of factors)."""
        if self.kernel is None or not _plain_softmax(input, target):
            return None
        return _softmax_mean(input.detach(), target, self.kernel, True, True)


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


def batch_losses(losses):
    """The values of a list of batch losses as one tensor (float64 where any was a pair).

    The entries are 0-dim tensors, or the pairs ``(f, g)`` of ``value_and_grad`` whose loss
    is ``sum(f * g)``. Pairs are multiplied and summed for all batches at once -- a
    concatenation, one product and one ``index_add_`` in float64, instead of a ``vdot`` per
    batch -- which is what a training loop that reads its losses back once per epoch needs.
    """
    if not any(type(loss) is tuple for loss in losses):
        return torch.stack(losses)
    pairs = [loss for loss in losses if type(loss) is tuple]
    if len(pairs) != len(losses):  # mixed (not produced by one fit): one at a time
        return torch.stack(
            [
                torch.vdot(loss[0].reshape(-1), loss[1].reshape(-1)).double()
                if type(loss) is tuple
                else loss.double()
                for loss in losses
            ]
        )
    f, g = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
    device = f.device
    sizes = [p[0].numel() for p in pairs]
    lengths = torch.tensor(sizes, device=device)
    batch = torch.repeat_interleave(  # output_size: no device synchronisation for the sum
        torch.arange(len(pairs), device=device), lengths, output_size=sum(sizes)
    )
    products = torch.mul(f, g).view(-1).double()
    return torch.zeros(len(pairs), dtype=torch.float64, device=device).index_add_(
        0, batch, products
    )
