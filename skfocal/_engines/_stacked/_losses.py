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
from torch import nn

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
from ...losses._focal import _stacked_sigmoid as _stacked_sigmoid_focal
from ...losses._fused import run
from ...losses._kernels import bind_focal
from ...losses._margin import _hard_margin, _soft_margin
from ...losses._stacked import _StackedSoftmaxLoss, stacked_sigmoid

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
            return bind_focal(params[:, 0].reshape(shape))
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
            loss = run(_stacked_sigmoid_focal, input, target, gamma, pos_w, neg_w)
        else:
            loss = run(
                stacked_sigmoid, input, target, pos_w, neg_w, group.kernel(input.dim(), input.dtype)
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
