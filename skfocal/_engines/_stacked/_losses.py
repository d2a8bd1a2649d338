r"""Per-sample losses of ``M`` stacked members, each with its own loss and hyperparameters.

Member ``m`` computes, on its logits ``input[m]`` and targets ``target[m]``, the per-sample loss
of the criterion a single fit builds from its :class:`MemberLoss` (``reduction="none"``, and
for multilabel targets the mean over the labels of each sample):

.. math::

    \ell_{m,i} = -\,w_{m,i}\,\lambda_m(p_t)\,\log p_t, \qquad
    \lambda_m(p) =
    \begin{cases}
        (1 - p)^{\gamma_m} & \text{focal (cross-entropy: } \gamma_m = 0) \\
        \mathbb{1}[p \le m_m] & \text{hard margin} \\
        \sigma\!\left(K_m(\operatorname{logit} m_m - \operatorname{logit} p)\right)
            & \text{soft margin}
    \end{cases}

with :math:`w_{m,i}` the member's class factor :math:`\alpha_{m,t}` (softmax) or its
positive/negative weights :math:`\alpha_m w_{+,m}` and :math:`1 - \alpha_m` (sigmoid).

Members are grouped by kind (focal, hard margin, soft margin). A group whose members share
their ``gamma`` (or margin and softness) is one call of the public function of
:mod:`skfocal.losses` on the group's flattened logits (softmax losses: times each sample's
class factor; sigmoid losses: only without per-member weights, which cannot be factored out of
soft labels). Otherwise the group is one call of a stacked autograd function with the
hyperparameters as per-member columns (or the shared float ``gamma``) and the same
closed-form backward as :mod:`skfocal.losses` (finite for every ``gamma >= 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..._targets import BINARY, KINDS, MULTILABEL, TargetKind
from ...losses import (
    binary_focal_loss_with_logits,
    binary_margin_loss_with_logits,
    focal_loss,
    margin_loss,
)
from ...losses._checks import (
    check_alpha,
    check_gamma,
    check_margin,
    check_softness,
    class_alpha,
    label_alpha,
)
from ...losses._functions import log_softmax

LOSSES = ("focal", "cross_entropy", "margin")


def as_kind(task):
    """A target kind object (:mod:`skfocal._targets`) from a kind or its name."""
    if isinstance(task, TargetKind):
        return task
    _check_choice("task", task, tuple(KINDS))
    return KINDS[task]


@dataclass(frozen=True, eq=False)
class MemberLoss:
    """The loss hyperparameters of one member, as :class:`~skfocal.FocalClassifier` uses them.

    Parameters
    ----------
    loss : {"focal", "cross_entropy", "margin"}, default="focal"
        ``"cross_entropy"`` is the focal loss with ``gamma=0``.
    gamma : float, default=2.0
        Focusing parameter of ``"focal"``.
    alpha : None, float or array-like, default=None
        Resolved class factor (binary: positive weight in [0, 1]; multiclass: one weight per
        class; multilabel: a float or one positive weight in [0, 1] per label).
    pos_weight : None, float or array-like, default=None
        Positive weight of sigmoid losses (multilabel ``class_weight="balanced"``).
    margin : float, default=0.6
        Margin of ``"margin"``.
    softness : None or float, default=None
        Softness of ``"margin"`` (None: hard truncation).

    Examples
    --------
    >>> from skfocal._engines._stacked import MemberLoss
    >>> import torch
    >>> spec = MemberLoss(gamma=1.0, alpha=0.25)
    >>> from skfocal._targets import BINARY
    >>> spec.per_sample(BINARY, torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]))
    tensor([0.0866, 1.4050])
    """

    loss: str = "focal"
    gamma: float = 2.0
    alpha: Any = None
    pos_weight: Any = None
    margin: float = 0.6
    softness: float | None = None

    def per_sample(self, task, input, target):
        """This member's per-sample loss on ``(B, ...)`` logits, by the public loss functions.

        What a single fit computes with ``reduction="none"`` (multilabel: the mean over the
        labels of each sample); the reference that :class:`StackedLoss` reproduces.
        """
        kind = as_kind(task)
        _check_choice("loss", self.loss, LOSSES)
        alpha = self.alpha
        if alpha is not None and not isinstance(alpha, float):
            alpha = torch.as_tensor(alpha, dtype=input.dtype)
        if kind.softmax:
            if self.loss == "margin":
                kwargs = {"margin": self.margin, "softness": self.softness}
                return margin_loss(input, target, alpha=alpha, reduction="none", **kwargs)
            gamma = self.gamma if self.loss == "focal" else 0.0
            return focal_loss(input, target, gamma=gamma, alpha=alpha, reduction="none")
        pos_weight = self.pos_weight
        if pos_weight is not None:
            pos_weight = torch.as_tensor(pos_weight, dtype=input.dtype)
        if kind is BINARY:
            input = kind.squeeze(input)
        kwargs = {"alpha": alpha, "pos_weight": pos_weight, "reduction": "none"}
        if self.loss == "margin":
            loss = binary_margin_loss_with_logits(
                input, target, margin=self.margin, softness=self.softness, **kwargs
            )
        else:
            gamma = self.gamma if self.loss == "focal" else 0.0
            loss = binary_focal_loss_with_logits(input, target, gamma=gamma, **kwargs)
        return kind.per_sample(loss)


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")


# -- kernels: loss and d loss / d ell of ell = log p_t, hyperparameters as columns -----------------


def _ratio(ell, q):
    """``log p / (1 - p)``, with its limit ``-1`` where ``1 - p`` underflows to zero."""
    return torch.where(q > 0, ell / q, torch.full_like(ell, -1.0))


def _focal(gamma):
    def kernel(ell, p, q, need_grad):
        mod = q.pow(gamma)
        loss = -mod * ell
        if not need_grad:
            return loss, None
        return loss, (p * _ratio(ell, q)).mul_(-gamma).add_(1.0).mul_(mod).neg_()

    return kernel


def _hard_margin(log_margin):
    def kernel(ell, p, q, need_grad):
        lam = (ell <= log_margin).to(ell.dtype)
        return -lam * ell, (lam.neg() if need_grad else None)

    return kernel


def _soft_margin(logit_margin, softness):
    def kernel(ell, p, q, need_grad):
        logit_p = ell - torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))
        lam = torch.sigmoid(softness * (logit_margin - logit_p))
        loss = -lam * ell
        if not need_grad:
            return loss, None
        return loss, (1.0 - lam).mul_(_ratio(ell, q)).mul_(-softness).add_(1.0).mul_(lam).neg_()

    return kernel


class _StackedSoftmaxLoss(torch.autograd.Function):
    """``weight_t * kernel(log_softmax(input)[target])`` over (k, B, C) logits."""

    @staticmethod
    def forward(ctx, input, target, weight_t, kernel):
        need_grad = ctx.needs_input_grad[0]
        logp = log_softmax(input, input.dtype, dim=-1)  # the single fits' log-softmax
        ell = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        loss, grad = kernel(ell, ell.exp(), torch.expm1(ell).neg_(), need_grad)
        if weight_t is not None:
            loss = loss * weight_t
            if need_grad:
                grad = grad.mul_(weight_t)
        if need_grad:
            ctx.save_for_backward(logp, target, grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        logp, target, dloss_dell = ctx.saved_tensors
        g = (dloss_dell * grad_output).unsqueeze(-1)
        # d ell / d input = onehot(target) - softmax(input)
        grad_input = torch.exp(logp).mul_(g.neg())
        grad_input.scatter_add_(-1, target.unsqueeze(-1), g)
        return grad_input, None, None, None


class _StackedSigmoidLoss(torch.autograd.Function):
    """``pos_w y kernel(log p) + neg_w (1 - y) kernel(log(1 - p))`` for sigmoid ``p``."""

    @staticmethod
    def forward(ctx, input, target, pos_w, neg_w, kernel):
        need_grad = ctx.needs_input_grad[0]
        # log p and log(1 - p) each from its own softplus: log(1 - p) = log p - x would lose
        # all digits of a tiny -log(1 - p) to cancellation (e.g. x = -26, y = 0)
        log_p = F.softplus(-input).neg_()
        log_q = F.softplus(input).neg_()
        p, q = log_p.exp(), log_q.exp()
        loss_pos, d_pos = kernel(log_p, p, q, need_grad)
        loss_neg, d_neg = kernel(log_q, q, p, need_grad)
        w_pos = target if pos_w is None else target * pos_w
        w_neg = 1.0 - target
        if neg_w is not None:
            w_neg = w_neg * neg_w
        loss = loss_pos.mul_(w_pos).add_(loss_neg.mul_(w_neg))
        if need_grad:
            # d log p / dx = q and d log q / dx = -p
            ctx.save_for_backward(d_pos.mul_(q).mul_(w_pos).sub_(d_neg.mul_(p).mul_(w_neg)))
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None


class _StackedSigmoidFocalLoss(torch.autograd.Function):
    r"""Sigmoid focal loss with a per-member ``gamma`` column, loss and gradient fused.

    The formulas of :mod:`skfocal.losses`' fused sigmoid focal loss, with :math:`\gamma` a
    tensor: :math:`L_+ = a_+ (1-p)^\gamma (-\log p)`, :math:`L_- = a_- p^\gamma
    (-\log(1-p))`, loss :math:`y L_+ + (1 - y) L_-` and gradient
    :math:`(1-y)(a_- p^{\gamma+1} + \gamma (1-p) L_-) - y(a_+ (1-p)^{\gamma+1} + \gamma p L_+)`,
    finite for every :math:`\gamma \ge 0`. Both :math:`-\log p` and :math:`-\log(1-p)` come
    from their own ``softplus`` (no cancellation).
    """

    @staticmethod
    def forward(ctx, input, target, gamma, pos_w, neg_w):
        need_grad = ctx.needs_input_grad[0]
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
        if need_grad:
            grad_pos = mod_pos.mul_(q).add_(loss_pos.mul_(p).mul_(gamma))
            grad_neg = mod_neg.mul_(p).add_(loss_neg.mul_(q).mul_(gamma))
            # lerp gives either side exactly at a hard label (g- - y (g- + g+) would cancel a
            # tiny g+ against g-, e.g. to 0 at x = 17, y = 1), and is linear for soft ones
            ctx.save_for_backward(torch.lerp(grad_neg, grad_pos.neg_(), target))
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None


# -- the stacked loss ------------------------------------------------------------------------------


class _Group:
    """Members of one kind: their rows of the stack and their hyperparameters."""

    def __init__(self, kind, members, specs, n_members, device):
        self.kind = kind
        self.members = members
        if len(members) == n_members:
            self.rows = None
        elif members == list(range(members[0], members[-1] + 1)):
            self.rows = slice(members[0], members[-1] + 1)
        else:
            self.rows = torch.tensor(members, dtype=torch.long, device=device)
        if kind == "focal":
            values = [(specs[m].gamma if specs[m].loss == "focal" else 0.0,) for m in members]
        elif kind == "hard":
            values = [(specs[m].margin,) for m in members]
        else:
            values = [(specs[m].margin, specs[m].softness) for m in members]
        self.shared = all(v == values[0] for v in values)
        self.values = values
        self.params = torch.tensor(values, dtype=torch.float64, device=device)

    def take(self, tensor):
        if self.rows is None:
            return tensor
        if isinstance(self.rows, slice):
            return tensor[self.rows]
        return tensor.index_select(0, self.rows)

    def kernel(self, ndim, dtype):
        """The stacked kernel, its hyperparameters as columns broadcasting over ``ndim`` dims."""
        shape = (-1,) + (1,) * (ndim - 1)
        params = self.params.to(dtype)
        if self.kind == "focal":
            return _focal(params[:, 0].reshape(shape))
        margin = self.params[:, 0]
        if self.kind == "hard":
            return _hard_margin(torch.log(margin).to(dtype).reshape(shape))
        logit_margin = (torch.log(margin) - torch.log1p(-margin)).to(dtype)
        return _soft_margin(logit_margin.reshape(shape), params[:, 1].reshape(shape))

    def shared_kwargs(self):
        if self.kind == "focal":
            return {"gamma": self.values[0][0]}
        if self.kind == "hard":
            return {"margin": self.values[0][0], "softness": None}
        return {"margin": self.values[0][0], "softness": self.values[0][1]}


class StackedLoss(nn.Module):
    r"""Per-sample losses of ``M`` members, each with its own :class:`MemberLoss`.

    Parameters
    ----------
    task : TargetKind or its name
        The target kind (:mod:`skfocal._targets`): the shapes and the softmax or sigmoid
        losses.
    members : sequence of MemberLoss
        One loss specification per member (``loss``, ``gamma``, ``alpha``, ``pos_weight``,
        ``margin``, ``softness``); members may mix loss kinds.
    n_outputs : int
        Number of logits per sample (1 for binary, classes or labels otherwise).
    dtype : torch.dtype, default=torch.float32
        Dtype of the per-member weights (that of the logits).
    device : torch.device or str, default=None
        Device of the per-member weights and hyperparameters (that of the logits).

    Examples
    --------
    >>> import torch
    >>> from skfocal._engines._stacked import MemberLoss, StackedLoss
    >>> from skfocal.losses import binary_focal_loss_with_logits
    >>> specs = [MemberLoss(gamma=2.0, alpha=0.25), MemberLoss(loss="cross_entropy")]
    >>> from skfocal._targets import BINARY
    >>> loss = StackedLoss(BINARY, specs, n_outputs=1)
    >>> logits, target = torch.tensor([[2.0, -1.0], [0.5, 0.0]]), torch.tensor([[1.0, 0.0]] * 2)
    >>> per_sample = loss(logits, target)
    >>> per_sample.shape
    torch.Size([2, 2])
    >>> torch.allclose(per_sample[0], binary_focal_loss_with_logits(
    ...     logits[0], target[0], gamma=2.0, alpha=0.25, reduction="none"))
    True
    """

    def __init__(self, task, members, n_outputs, *, dtype=torch.float32, device=None):
        super().__init__()
        kind = as_kind(task)
        specs = list(members)
        if not specs:
            raise ValueError("members must hold at least one MemberLoss, got an empty sequence.")
        if not isinstance(n_outputs, int) or n_outputs < 1 or (kind is BINARY and n_outputs != 1):
            expected = "1" if kind is BINARY else "a positive int"
            raise ValueError(
                f"n_outputs must be {expected} for task={kind.name!r}, got {n_outputs!r}."
            )
        like = torch.empty(0, dtype=dtype, device=device)
        kinds = []
        for m, spec in enumerate(specs):
            if not isinstance(spec, MemberLoss):
                raise TypeError(f"members[{m}] must be a MemberLoss, got {type(spec).__name__}.")
            _check_choice(f"members[{m}].loss", spec.loss, LOSSES)
            if spec.loss == "margin":
                check_margin(spec.margin)
                kinds.append("hard" if check_softness(spec.softness) is None else "soft")
            else:
                check_gamma(spec.gamma)
                kinds.append("focal")
        self.task = kind
        self.n_members = len(specs)
        self.n_outputs = n_outputs
        self.specs = specs
        self.groups = [
            _Group(
                kind, [m for m in range(len(specs)) if kinds[m] == kind], specs, len(specs), device
            )
            for kind in ("focal", "hard", "soft")
            if kind in kinds
        ]
        if len(self.groups) > 1:
            order = torch.tensor([m for g in self.groups for m in g.members], device=device)
            self.register_buffer("inverse", torch.argsort(order))
        else:
            self.inverse = None
        if kind.softmax:
            alphas = []
            for m, spec in enumerate(specs):
                if spec.pos_weight is not None:
                    raise ValueError(
                        f"members[{m}].pos_weight must be None for a multiclass target (it "
                        f"weights the positives of sigmoid losses), got {spec.pos_weight!r}."
                    )
                alpha = class_alpha(check_alpha(spec.alpha), n_outputs, like)
                alphas.append(
                    torch.ones(n_outputs, dtype=dtype, device=device) if alpha is None else alpha
                )
            self.weighted = any(spec.alpha is not None for spec in specs)
            self.register_buffer("alpha", torch.stack(alphas))
        else:
            pos, neg = [], []
            for m, spec in enumerate(specs):
                alpha = label_alpha(check_alpha(spec.alpha), n_outputs, like)
                ones = torch.ones(n_outputs, dtype=dtype, device=device)
                a_pos = ones if alpha is None else ones * alpha
                a_neg = ones if alpha is None else ones * (1.0 - alpha)
                if spec.pos_weight is not None:
                    a_pos = a_pos * _pos_weight(spec.pos_weight, n_outputs, m, like)
                pos.append(a_pos)
                neg.append(a_neg)
            self.weighted = any(
                spec.alpha is not None or spec.pos_weight is not None for spec in specs
            )
            self.register_buffer("pos_w", torch.stack(pos))
            self.register_buffer("neg_w", torch.stack(neg))

    def forward(self, input, target):
        """Per-sample losses of shape ``(M, B)``.

        ``input``: logits of shape ``(M, B)`` or ``(M, B, 1)`` (binary), ``(M, B, C)``
        (multiclass) or ``(M, B, L)`` (multilabel); ``target``: ``(M, B)`` 0/1 labels, ``(M, B)``
        class indices or ``(M, B, L)`` 0/1 labels.
        """
        input, target = self._check_shapes(input, target)
        if len(self.groups) == 1:
            return self._group_loss(self.groups[0], input, target)
        parts = [self._group_loss(g, g.take(input), g.take(target)) for g in self.groups]
        return torch.cat(parts).index_select(0, self.inverse)

    def _check_shapes(self, input, target):
        if self.task is BINARY and input.dim() == 3 and input.shape[-1] == 1:
            input = input.squeeze(-1)
        ndim = 2 if self.task is BINARY else 3
        if (
            input.dim() != ndim
            or input.shape[0] != self.n_members
            or (ndim == 3 and input.shape[-1] != self.n_outputs)
        ):
            expected = "(M, B)" if ndim == 2 else f"(M, B, {self.n_outputs})"
            raise ValueError(
                f"input must have shape {expected} with M={self.n_members} members for "
                f"task={self.task.name!r}, got {tuple(input.shape)}."
            )
        expected_target = input.shape[:2] if self.task.softmax else input.shape
        if target.shape != expected_target:
            raise ValueError(
                f"target must have shape {tuple(expected_target)} for input of shape "
                f"{tuple(input.shape)}, got {tuple(target.shape)}."
            )
        if not self.task.softmax and target.dtype != input.dtype:
            target = target.to(input.dtype)
        return input, target

    def _group_loss(self, group, input, target):
        if self.task.softmax:
            weight_t = None
            if self.weighted:
                weight_t = group.take(self.alpha).to(input.dtype).gather(1, target)
            if group.shared:
                fn = focal_loss if group.kind == "focal" else margin_loss
                n_rows, batch, n_classes = input.shape
                loss = fn(
                    input.reshape(-1, n_classes),
                    target.reshape(-1),
                    reduction="none",
                    **group.shared_kwargs(),
                ).view(n_rows, batch)
                return loss if weight_t is None else loss * weight_t
            return _StackedSoftmaxLoss.apply(input, target, weight_t, group.kernel(2, input.dtype))
        pos_w = neg_w = None
        if self.weighted:
            shape = (-1, 1) if self.task is BINARY else (-1, 1, self.n_outputs)
            pos_w = group.take(self.pos_w).to(input.dtype).reshape(shape)
            neg_w = group.take(self.neg_w).to(input.dtype).reshape(shape)
        if group.shared and pos_w is None:  # one call of the public function
            if group.kind == "focal":
                fn = binary_focal_loss_with_logits
            else:
                fn = binary_margin_loss_with_logits
            loss = fn(input, target, reduction="none", **group.shared_kwargs())
        elif group.kind == "focal":  # per-term weights cannot be factored out of soft labels
            if group.shared:
                gamma = group.values[0][0]
            else:
                gamma = group.params[:, 0].to(input.dtype)
                gamma = gamma.reshape((-1,) + (1,) * (input.dim() - 1))
            loss = _StackedSigmoidFocalLoss.apply(input, target, gamma, pos_w, neg_w)
        else:
            loss = _StackedSigmoidLoss.apply(
                input, target, pos_w, neg_w, group.kernel(input.dim(), input.dtype)
            )
        return loss.mean(dim=-1) if self.task is MULTILABEL else loss  # mean over labels


def _pos_weight(value, n_outputs, m, like):
    weight = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if weight.numel() not in (1, n_outputs) or not bool(
        (torch.isfinite(weight) & (weight >= 0)).all()
    ):
        raise ValueError(
            f"members[{m}].pos_weight must be a float or {n_outputs} finite non-negative "
            f"weights (one per label), got {value!r}."
        )
    return weight.to(like.dtype).to(like.device).expand(n_outputs)
