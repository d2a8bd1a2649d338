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

Each member's loss is asked through its stacked form (``LossSpec.stacked_form`` of the loss
specs' registry: the focal loss's, which cross-entropy shares, and the margin loss's, each in
its loss's file), which groups the members (focal; hard margin; soft margin). A group whose
members share their ``gamma`` (or margin and softness) is one call of the public function of
:mod:`skfocal.losses` on the group's flattened logits (softmax losses: times each sample's
class factor; sigmoid losses: only without per-member weights, which cannot be factored out of
soft labels). Otherwise the group is one call of the form's kernel with the hyperparameters as
per-member columns (or the shared float ``gamma``) and the same closed-form gradient as
:mod:`skfocal.losses` (finite for every ``gamma >= 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..._loss_specs import LOSSES
from ..._targets import BINARY, KINDS, MULTILABEL, TargetKind
from ...losses._checks import check_alpha, class_alpha, label_alpha
from ...losses._stacked import _StackedSoftmaxLoss


def stacked_form(loss, name="loss"):
    """The stacked form of the loss named ``loss``, from the loss specs' registry."""
    _check_choice(name, loss, tuple(n for n, spec in LOSSES.items() if spec.has_stacked_form))
    return LOSSES[loss].stacked_form


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
        A loss with a stacked form (:func:`stacked_form`); ``"cross_entropy"`` is the focal
        loss with ``gamma=0``.
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
        form = stacked_form(self.loss)
        kwargs = form.kwargs(*form.group(self))
        alpha = self.alpha
        if alpha is not None and not isinstance(alpha, float):
            alpha = torch.as_tensor(alpha, dtype=input.dtype)
        if kind.softmax:
            return form.softmax(input, target, alpha=alpha, reduction="none", **kwargs)
        pos_weight = self.pos_weight
        if pos_weight is not None:
            pos_weight = torch.as_tensor(pos_weight, dtype=input.dtype)
        if kind is BINARY:
            input = kind.squeeze(input)
        loss = form.sigmoid(
            input, target, alpha=alpha, pos_weight=pos_weight, reduction="none", **kwargs
        )
        return kind.per_sample(loss)


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")


# -- the stacked loss ------------------------------------------------------------------------------


class _Group:
    """Members that share a kernel: their rows of the stack, their form and hyperparameters."""

    def __init__(self, form, key, members, values, n_members, device):
        self.form, self.key = form, key
        self.members = members
        if len(members) == n_members:
            self.rows = None
        elif members == list(range(members[0], members[-1] + 1)):
            self.rows = slice(members[0], members[-1] + 1)
        else:
            self.rows = torch.tensor(members, dtype=torch.long, device=device)
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
        """The form's kernel, the hyperparameters as columns broadcasting over ``ndim`` dims."""
        return self.form.kernel(self.key, self.params, (-1,) + (1,) * (ndim - 1), dtype)

    def shared_kwargs(self):
        return self.form.kwargs(self.key, self.values[0])


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
        grouped = {}  # (form, key) -> (members, their values), in order of first appearance
        for m, spec in enumerate(specs):
            if not isinstance(spec, MemberLoss):
                raise TypeError(f"members[{m}] must be a MemberLoss, got {type(spec).__name__}.")
            form = stacked_form(spec.loss, f"members[{m}].loss")
            key, values = form.group(spec)
            group_members, group_values = grouped.setdefault((form, key), ([], []))
            group_members.append(m)
            group_values.append(values)
        self.task = kind
        self._windows = {}  # value_and_grad's per-window hyperparameters and weights
        self.n_members = len(specs)
        self.n_outputs = n_outputs
        self.specs = specs
        self.groups = [
            _Group(form, key, group_members, group_values, len(specs), device)
            for (form, key), (group_members, group_values) in grouped.items()
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

    @property
    def has_value_and_grad(self):
        """Whether :meth:`value_and_grad` serves this stack: binary or multiclass members of
        one group."""
        return (self.task is BINARY or self.task.softmax) and len(self.groups) == 1

    def value_and_grad(self, input, target, members=slice(None)):
        r"""Per-sample losses of the members ``members`` and their gradients in the logits.

        The values :meth:`forward` computes (by the group's kernel, as a group with per-member
        weights or hyperparameters is computed there) and :math:`\partial \ell_{m,b} /
        \partial z_{m,b}`, without autograd: for a training step that backpropagates by hand.
        Only where :attr:`has_value_and_grad`.

        Parameters
        ----------
        input : Tensor of shape (k, B) or (k, B, C)
            Logits of the ``k`` members ``members`` (binary; multiclass).
        target : Tensor of shape (k, B)
            Their labels: exactly 0 or 1 (as the engine's are: the signed-logit form of the
            focal loss relies on it), or class indices.
        members : slice, default=slice(None)
            A contiguous run of the stack's members (a step that computes only those).

        Returns
        -------
        loss : Tensor of shape (k, B)
        grad : Tensor of ``input``'s shape
        """
        key = (members.start, members.stop, input.dtype)
        compute = self._windows.get(key)
        if compute is None:
            compute = self._windows[key] = self._window_compute(members, input.dtype)
        return compute(input, target)

    def _window_compute(self, members, dtype):
        """``f(input, target)`` of :meth:`value_and_grad` for the members ``members``."""
        group = self.groups[0]
        shared = group.values[0] if group.shared else None
        params = group.params[members]
        if self.task.softmax:
            compute = group.form.softmax_value_and_grad(group.key, params, shared, dtype)
            if not self.weighted:
                return lambda input, target: compute(input, target, None)
            alpha = self.alpha[members].to(dtype)  # (k, C): each sample's factor by its class
            return lambda input, target: compute(input, target, alpha.gather(1, target))
        pos_w = neg_w = None
        if self.weighted:
            pos_w = self.pos_w[members].to(dtype).reshape(-1, 1)
            neg_w = self.neg_w[members].to(dtype).reshape(-1, 1)
        compute = group.form.sigmoid_value_and_grad(group.key, params, shared, pos_w, neg_w, dtype)

        def binary(input, target):
            return compute(input, target if target.dtype == dtype else target.to(dtype))

        return binary

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
                n_rows, batch, n_classes = input.shape
                loss = group.form.softmax(
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
            loss = group.form.sigmoid(input, target, reduction="none", **group.shared_kwargs())
        else:  # per-term weights cannot be factored out of soft labels
            shared = group.values[0] if group.shared else None
            loss = group.form.sigmoid_loss(
                group.key, input, target, group.params, shared, pos_w, neg_w
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
