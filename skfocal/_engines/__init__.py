"""Engines: what trains the networks that fit plans describe.

An engine takes plans (one, or many: candidates x folds) and the training data, and returns
one :class:`Fitted` per plan (``fit(plans, X) -> [Fitted]``). It never decides anything a
plan decides; it only materialises plans on the training device and runs the training loop.

* :class:`SkorchEngine` (:mod:`._skorch`) -- one plan at a time through skfocal's skorch net
  (:mod:`._net`: the tensor data path, the lean epoch, callbacks; :mod:`._step`: the lean
  optimizer step);
* :class:`StackedEngine` (:mod:`._stacked`) -- plans of the default MLP that share a network
  shape, trained together as one stacked model, each member computing its single fit;
* :mod:`._members` -- what both share: members built and seeded alike
  (:func:`build_member`), the one constructor of fitted nets (:func:`make_net`), and
  :class:`Fitted`.
"""

from ._members import Fitted, build_member, fork_rng, make_net
from ._net import NonFiniteTrainingError
from ._skorch import SkorchEngine
from ._stacked import StackedEngine, group_key, why_not_stacked

__all__ = [
    "Fitted",
    "NonFiniteTrainingError",
    "SkorchEngine",
    "StackedEngine",
    "build_member",
    "fork_rng",
    "group_key",
    "make_net",
    "why_not_stacked",
]
