"""Train ``M`` copies of the default MLP (hyperparameter candidates x CV folds) as one model.

Private building blocks of a vectorized grid search: every member computes exactly what the
same candidate fitted alone computes.

* :class:`StackedMLP`: the members' ``MLP`` s as one batched model (``torch.baddbmm``), with
  per-member extraction, snapshot and restore;
* :class:`StackedAdamW` / :class:`StackedAdam`: per-member learning rate and weight decay,
  frozen members;
* :class:`MemberLoss` / :class:`StackedLoss`: per-member loss kind and hyperparameters;
* :class:`MemberBatches`: per-member epoch orders as ``(M, B)`` index batches into one ``X``;
* :func:`train_stacked`: the epoch loop tying them together;
* :class:`StackedEngine`: the engine that trains fit plans as one stacked model (members
  built like single fits, per-member validation and early stopping, outputs on named rows).
"""

from ._batches import Batch, MemberBatches
from ._engine import (
    StackedEngine,
    group_key,
    member_logits,
    run_cost,
    split_members,
    why_not_stacked,
)
from ._losses import MemberLoss, StackedLoss
from ._mlp import StackedMLP
from ._optim import StackedAdam, StackedAdamW
from ._train import train_stacked

__all__ = [
    "Batch",
    "MemberBatches",
    "MemberLoss",
    "StackedAdam",
    "StackedAdamW",
    "StackedEngine",
    "StackedLoss",
    "StackedMLP",
    "group_key",
    "member_logits",
    "run_cost",
    "split_members",
    "train_stacked",
    "why_not_stacked",
]
