r"""StackedEngine: many fit plans of the default MLP trained as one stacked model.

The engine seam of :mod:`skfocal._engines` (``fit(plans, X) -> [Fitted]``) for plans that
share a network shape and a training schedule: candidates x folds of a grid search, the
fold members and the refit member of a tuned decision. Every member is built exactly as its
single fit builds it (:func:`~skfocal._engines.build_member`), draws its batches from its own
seeded sampler over its own rows of the one shared ``X`` (:class:`MemberBatches`), minimises
its own loss (:class:`StackedLoss`) with its own learning rate and weight decay
(:class:`StackedAdamW`), and, when its plan holds out a validation part, scores that part
every epoch, stops on its own and keeps its best epoch. A trained member becomes a
:class:`~skfocal._engines.Fitted` through the one net constructor
(:func:`~skfocal._engines.make_net`), with the history its training recorded.

Rows: ``rows[m]`` are the positions in ``X`` of the rows plan ``m`` was made on (a fold's
training rows; None: all of ``X``, e.g. a refit), so that the plan's own positions
(``train_idx``, ``valid_idx``) index into them. ``predict_rows[m]`` names rows of ``X`` on
which member ``m``'s logits are returned after training (out-of-fold outputs).

The run's torch threads are chosen for its work (:mod:`skfocal._threads`), and an
:class:`~skfocal._engines._stacked._progress.EpochProgress` reports its epochs.

Members are independent (own seed, own batches, own optimizer row), so any subset of a
group's plans trains to what those members compute in the whole group, as long as it takes
the same code paths: :func:`split_members` splits a group for several workers, keeping
each chunk large enough to stay efficient and like its group.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from skorch.history import History

from ... import _inputs
from ..._early_stopping import improves
from ..._loss_specs import LOSSES
from ..._scoring import FrozenPredictions
from ..._threads import network_macs, threads_for
from .._members import Engine, Fitted, batch_size, build_member, fork_rng, make_net
from .._net import NonFiniteTrainingError, averaging_weight
from ._average import StackedAverage
from ._batches import MemberBatches
from ._losses import StackedLoss
from ._mlp import StackedMLP
from ._optim import StackedAdam, StackedAdamW
from ._train import train_stacked

OPTIMIZERS = {torch.optim.AdamW: StackedAdamW, torch.optim.Adam: StackedAdam}

#: rows of the shared ``X`` per member in one prediction or validation step
PREDICT_COLUMNS = 4096

#: members per chunk that a group split over CPU workers aims at (see :func:`split_members`)
MIN_CHUNK_MEMBERS = 8


def why_not_stacked(plan):
    """Why ``plan`` cannot be a stacked member (a sentence), or None when it can."""
    params = plan.params
    if params["module"] is not None:
        return (
            f"module={params['module']!r} is a user module; only the default MLP "
            "(module=None) is trained stacked"
        )
    if plan.loss.stacked_member(plan.loss_params, plan.alpha, plan.pos_weight) is None:
        stacked = ", ".join(name for name, spec in LOSSES.items() if spec.has_stacked_form)
        return (
            f"loss={plan.loss.name!r} has no stacked implementation (the stacked losses are "
            f"{stacked})"
        )
    if plan.loss.output_layer != "linear":
        return "the loss needs another output layer"
    if params["accelerator"] is not None:
        return "an accelerator is set"
    if params["callbacks"]:
        return "callbacks are set"
    if plan.schedule is not None:
        return "its training has phases (warmup_epochs > 0 or deferred re-weighting)"
    if params["optimizer"] not in OPTIMIZERS:
        return f"optimizer={params['optimizer']!r} is not torch.optim.AdamW or torch.optim.Adam"
    if plan.sampler.synthesises_rows:
        return "its sampler synthesises rows (e.g. SMOTE)"
    if plan.inputs.form != _inputs.FLOAT:
        return "X is not a float feature matrix"
    return None


def group_key(plan):
    """What the members of one stacked model share (plans with equal keys stack together)."""
    params = plan.params
    return (
        tuple(params["hidden_layer_sizes"]),
        params["batch_size"],
        params["max_epochs"],
        params["optimizer"],
        params["dtype"],
        plan.kind.name,
        plan.n_features,
        plan.n_outputs,
        plan.classes.tobytes(),
        str(plan.classes.dtype),
    )


def step_work(plans):
    """Forward multiply-adds of one stacked step of ``plans``: members x batch x network."""
    first = plans[0]
    per_row = network_macs(first.n_features, first.params["hidden_layer_sizes"], first.n_outputs)
    return len(plans) * max(batch_size(plan) for plan in plans) * per_row


def run_cost(plans):
    """Relative cost of training ``plans`` as one run: each member's rows x epochs x network.

    Plus a fixed cost per step of about :data:`MIN_CHUNK_MEMBERS` members' arithmetic (the
    Python and dispatch of one stacked step), so that a small run is not counted as free.
    """
    first = plans[0]
    per_row = network_macs(first.n_features, first.params["hidden_layer_sizes"], first.n_outputs)
    rows = max(plan.n_train for plan in plans)
    epochs = first.params["max_epochs"]
    return (len(plans) + MIN_CHUNK_MEMBERS) * rows * epochs * per_row


def split_members(n_members, n_chunks, device):
    r"""The members of a group in each chunk, for ``n_chunks`` workers: lists of positions.

    On a CPU a stacked step costs a fixed part (Python and dispatch: about what ten members'
    own arithmetic costs for the default network on 20 features, 6 to 13 in the
    measurements here) plus a part per member, so a chunk of ``m`` members spends roughly
    ``m / (m + 10)`` of its time on its members' work, and every chunk added costs CPU time
    (45 members split in two took 1.6 times less CPU time per half, not 2). A group of
    :math:`M` members is split into

    .. math::

        k = \min\bigl(n_{\text{chunks}},\ \max(2, \lceil M / 8 \rceil),\ M\bigr)

    chunks (8 is :data:`MIN_CHUNK_MEMBERS`): one per worker, but no more than one per eight
    members, so that chunks keep about eight members (never fewer than four) -- two workers
    always get a half each. Members are dealt out in turn (member ``i`` to chunk
    ``i mod k``), so that with members ordered candidate by candidate and no more chunks than
    folds each chunk holds a fold of every candidate, and takes the code paths its whole
    group takes (the fused optimizer kernel when every member shares ``lr`` and
    ``weight_decay``, a loss's shared form when every member of that loss shares its
    hyperparameters and weights), which round in their own way. On a GPU a stacked step of
    tens of members takes the time of one (it is bound by kernel launches, not arithmetic),
    so a group is never split there.

    Examples
    --------
    >>> [len(c) for c in split_members(45, 2, "cpu")], split_members(5, 2, "cpu")
    ([23, 22], [[0, 2, 4], [1, 3]])
    >>> [len(c) for c in split_members(45, 16, "cpu")], len(split_members(45, 2, "cuda"))
    ([8, 8, 8, 7, 7, 7], 1)
    """
    if torch.device(device).type != "cpu" or n_chunks <= 1 or n_members <= 1:
        return [list(range(n_members))]
    k = min(n_chunks, max(-(-n_members // MIN_CHUNK_MEMBERS), 2), n_members)
    return [list(range(c, n_members, k)) for c in range(k)]


class _Stopping:
    """Per-member early stopping: validation every epoch, patience, the best weights kept.

    Members with a validation part are scored after each epoch on the validation loss (the
    weighted mean of their loss over their validation rows) or their plan's scorer; an epoch
    improves by the single fits' rule (:func:`skfocal._early_stopping.improves`: a score
    better by the relative threshold 1e-4, or an equal one with a lower validation loss),
    the best weights are snapshot, and a member whose patience runs out is frozen. Members
    without a validation part train to ``max_epochs``. (``<monitor>_best`` is recorded as
    before: the score beating the best by the threshold.) With ``average`` (a
    :class:`~skfocal._engines._stacked._average.StackedAverage`), the members that keep a
    moving average of their weights are validated and snapshot on it.
    """

    threshold = 1e-4

    def __init__(
        self, engine, plans, model, optimizer, loss, X, y, weights, valid_rows, average=None
    ):
        self.engine, self.plans, self.model = engine, plans, model
        self.optimizer, self.loss = optimizer, loss
        self.X, self.y, self.weights = X, y, weights
        self.valid_rows = valid_rows
        n_members = len(plans)
        self.watched = [rows is not None for rows in valid_rows]
        self.stopped = [False] * n_members
        self.misses = [0] * n_members
        self.best_epoch = [0] * n_members
        self.threshold_of = [np.inf if self._lower(m) else -np.inf for m in range(n_members)]
        self.best_score = [np.inf if self._lower(m) else -np.inf for m in range(n_members)]
        self.best_loss = [np.inf] * n_members
        self.best = model.snapshot() if any(self.watched) else None
        self.records = [[] for _ in range(n_members)]  # per member: dicts of one epoch
        self.average = average  # a StackedAverage when members average their weights
        self._last = time.perf_counter()

    def _lower(self, m):
        return self.plans[m].scorer is None  # the loss: lower is better; a score: higher

    def _monitor(self, m):
        plan = self.plans[m]
        return "valid_loss" if plan.scorer is None else f"valid_{plan.scorer_name}"

    def on_epoch_end(self, epoch, train_loss):
        """Record the epoch, validate, stop members; True when every member has stopped."""
        now = time.perf_counter()
        duration, self._last = now - self._last, now
        active = [m for m, done in enumerate(self.stopped) if not done]
        watched = [m for m in active if self.watched[m]]
        average = self.average
        if average is not None:  # validated and snapshot: the averages
            average.averaged_weights()
        values = self._validate(watched) if watched else {}
        for m in active:
            record = {
                "epoch": epoch + 1,
                "train_batch_count": self.engine.batch_counts[m],
                "train_loss": float(train_loss[m]),
                "dur": duration,
            }
            if m in values:
                record.update(values[m])
            self.records[m].append(record)
            if not np.isfinite(record["train_loss"]):
                self.stopped[m] = True
                continue
            if self.watched[m]:
                self._judge(m, epoch + 1, record)
        if average is not None:
            average.train_weights()
        if any(self.stopped):
            self.optimizer.freeze(torch.tensor(self.stopped))
        return all(self.stopped)

    def _judge(self, m, epoch, record):
        monitor = self._monitor(m)
        value = record[monitor]
        lower = self._lower(m)
        improved = value < self.threshold_of[m] if lower else value > self.threshold_of[m]
        record[monitor + "_best"] = bool(improved)
        if improved:
            change = self.threshold * value
            self.threshold_of[m] = value - change if lower else value + change
        loss = record["valid_loss"]
        if improves(value, loss, self.best_score[m], self.best_loss[m], lower_is_better=lower):
            self.best_score[m], self.best_loss[m] = value, loss
            self.misses[m] = 0
            self.best_epoch[m] = epoch
            self.model.snapshot([m], out=self.best)
        else:
            self.misses[m] += 1
            if self.misses[m] >= self.plans[m].params["n_iter_no_change"]:
                self.stopped[m] = True

    @torch.no_grad()
    def _validate(self, members):
        """``{m: {"valid_loss": ..., ["valid_<score>": ...]}}`` of the watched members."""
        logits = member_logits(self.model, self.X, [self.valid_rows[m] for m in members], members)
        values = {}
        for m, z in zip(members, logits, strict=True):
            rows = self.valid_rows[m]
            target = self.y.index_select(0, rows)
            per_sample = self.loss.specs[m].per_sample(self.loss.task, z, target)
            w = None if self.weights is None else self.weights[m].index_select(0, rows)
            if w is not None:
                per_sample = per_sample * w
            values[m] = {
                "valid_loss": float(per_sample.double().mean()),
                "valid_batch_count": -(-len(rows) // max(self.engine.batch_sizes[m], 4096)),
            }
            plan = self.plans[m]
            if plan.scorer is not None:
                frozen = FrozenPredictions(
                    plan.kind.squeeze(z).double().cpu().numpy(),
                    plan.classes,
                    plan.kind,
                    plan.posteriors[0],
                )
                kwargs = {} if plan.sw_valid is None else {"sample_weight": plan.sw_valid}
                score = plan.scorer(frozen, np.zeros((len(rows), 1)), plan.y_valid, **kwargs)
                values[m][self._monitor(m)] = float(score)
        return values

    def restore_best(self):
        """Load every early-stopped member's best weights (skorch's ``load_best=True``)."""
        kept = [m for m, watched in enumerate(self.watched) if watched and self.best_epoch[m]]
        if kept:
            self.model.restore(self.best, kept)


@torch.no_grad()
def member_logits(model, X, rows, members=None):
    """Logits of ``members`` (all if None) of ``model`` on their ``rows`` of ``X``.

    ``rows[i]`` is a 1-d LongTensor of positions in ``X`` for the i-th listed member; the
    members are evaluated together (eval mode: no dropout), ``PREDICT_COLUMNS`` rows each per
    step, rows of shorter members padded. Returns one ``(len(rows[i]), ...)`` tensor each.
    """
    members = list(range(model.n_members)) if members is None else list(members)
    was_training = model.training
    model.eval()
    device = model.flat_params.device
    try:
        longest = max((len(r) for r in rows), default=0)
        outputs = [[] for _ in members]
        for start in range(0, longest, PREDICT_COLUMNS):
            width = min(PREDICT_COLUMNS, longest - start)
            index = torch.zeros(model.n_members, width, dtype=torch.long, device=device)
            for m, r in zip(members, rows, strict=True):
                part = r[start : start + width]
                index[m, : len(part)] = part
            z = model(X, rows=index)
            for i, (m, r) in enumerate(zip(members, rows, strict=True)):
                n = max(0, min(width, len(r) - start))
                outputs[i].append(z[m, :n])
        shape = (0, model.n_outputs)
        return [
            torch.cat(parts) if parts else torch.zeros(shape, dtype=X.dtype, device=device)
            for parts in outputs
        ]
    finally:
        model.train(was_training)


class StackedEngine(Engine):
    """Trains plans of the default MLP together as one :class:`StackedMLP`."""

    def fit(self, plans, X, *, rows=None, predict_rows=None, progress=None):
        """Train ``plans`` as one stacked model on the shared ``X``; one :class:`Fitted` each.

        Parameters
        ----------
        plans : list of FitPlan
            Plans that stack (:func:`why_not_stacked` None, one :func:`group_key`).
        X : ndarray or Tensor of shape (N, n_features)
            The shared data (validated float features); moved to the device once.
        rows : list of (array-like of int or None), default=None
            Per plan, the positions in ``X`` of the rows it was made on (None: all of ``X``).
        predict_rows : list of (array-like of int or None), default=None
            Per plan, positions in ``X`` on which its trained member's logits are returned
            in ``Fitted.outputs`` (an ndarray of the training dtype).
        progress : EpochProgress or None, default=None
            Reports the run's epochs (members training, stopped, failed; time elapsed and
            remaining).

        Returns
        -------
        fitted : list of Fitted
            In the order of ``plans``; a member whose training went non-finite has ``net``
            None and ``error`` set.
        """
        plans = list(plans)
        if not plans:
            return []
        for m, plan in enumerate(plans):
            reason = why_not_stacked(plan)
            if reason is not None:
                raise ValueError(f"plan {m} cannot be trained stacked: {reason}.")
        if len({group_key(plan) for plan in plans}) != 1:
            raise ValueError(
                "plans trained as one stacked model must share the network's shape, batch size, "
                "max_epochs, optimizer, dtype and the target's classes (group them by "
                "group_key)."
            )
        n_members = len(plans)
        rows = [None] * n_members if rows is None else list(rows)
        predict_rows = [None] * n_members if predict_rows is None else list(predict_rows)
        for name, values in (("rows", rows), ("predict_rows", predict_rows)):
            if len(values) != n_members:
                raise ValueError(f"{name} must hold one entry per plan ({n_members}).")
        with threads_for(step_work(plans), self.device):
            return self._fit(plans, X, rows, predict_rows, progress)

    def _fit(self, plans, X, rows, predict_rows, progress):
        n_members = len(plans)
        device, dtype = self.device, self.dtype
        first = plans[0]
        kind = first.kind
        Xt = _inputs.to_device(X, device, dtype, cast_integers=True)
        n = len(Xt)
        positions = [
            np.arange(n) if r is None else np.asarray(r, dtype=np.int64).reshape(-1) for r in rows
        ]
        for m, (plan, r) in enumerate(zip(plans, positions, strict=True)):
            if len(r) != len(plan.y_enc):
                raise ValueError(
                    f"rows[{m}] has {len(r)} positions for a plan made on {len(plan.y_enc)} rows."
                )
        y = np.zeros((n,) + first.y_enc.shape[1:], dtype=first.y_enc.dtype)
        for plan, r in zip(plans, positions, strict=True):
            y[r] = plan.y_enc
        yt = torch.as_tensor(y).to(device=device, dtype=kind.y_dtype(dtype))
        weights = None
        if any(plan.weights is not None for plan in plans):
            weights = torch.zeros(n_members, n, dtype=dtype, device=device)
            for m, (plan, r) in enumerate(zip(plans, positions, strict=True)):
                index = torch.as_tensor(r, device=device)
                w = plan.weights
                weights[m, index] = 1.0 if w is None else torch.as_tensor(w, dtype=dtype).to(device)
        train_rows, valid_rows, samplers, losses = [], [], [], []
        with fork_rng(device):
            mlps = [build_member(plan, dtype).to(device) for plan in plans]
        for plan, r in zip(plans, positions, strict=True):
            train_rows.append(torch.as_tensor(r[plan.train_rows], device=device))
            valid = None if plan.valid_idx is None else r[plan.valid_idx]
            valid_rows.append(None if valid is None else torch.as_tensor(valid, device=device))
            samplers.append(plan.epoch_sampler(device))
            losses.append(plan.loss.stacked_member(plan.loss_params, plan.alpha, plan.pos_weight))
        model = StackedMLP(mlps, dropout_seeds=[plan.seeds["torch"] for plan in plans])
        del mlps
        optimizer = OPTIMIZERS[first.params["optimizer"]](
            model.flat_params,
            model.flat_grads,
            lr=[float(plan.params["lr"]) for plan in plans],
            weight_decay=[float(plan.params["weight_decay"]) for plan in plans],
        )
        loss = StackedLoss(kind, losses, first.n_outputs, dtype=dtype, device=device)
        batches = MemberBatches(
            samplers, train_rows, first.params["batch_size"], dtype=dtype, device=device
        )
        self.batch_counts = list(batches.n_batches)
        self.batch_sizes = [batch_size(plan) for plan in plans]
        step_weights = [
            None
            if plan.params["weight_averaging"] is None
            else averaging_weight(plan.params["weight_averaging"], plan.n_train, batch_size(plan))
            for plan in plans
        ]
        average = None
        if any(w is not None for w in step_weights):
            average = StackedAverage(model, step_weights)
        stopping = _Stopping(
            self, plans, model, optimizer, loss, Xt, yt, weights, valid_rows, average
        )
        listeners = [stopping.on_epoch_end]
        if progress is not None:
            params = first.params
            progress.begin(
                n_members,
                params["max_epochs"],
                f"MLP {tuple(params['hidden_layer_sizes'])}, batch {params['batch_size']}, "
                f"max_epochs {params['max_epochs']}",
            )
            listeners.append(lambda epoch, losses: progress.epoch(epoch, losses, stopping.stopped))
        train_stacked(
            model,
            optimizer,
            loss,
            batches,
            Xt,
            yt,
            max_epochs=first.params["max_epochs"],
            weights=weights,
            on_epoch_end=listeners,
            average=average,
        )
        if progress is not None:
            progress.end()
        if average is not None:  # the members' weights: their averages (or their best epochs')
            average.averaged_weights()
        stopping.restore_best()
        del batches, weights
        outputs = [None] * n_members
        wanted = [m for m, r in enumerate(predict_rows) if r is not None]
        if wanted:
            index = [torch.as_tensor(np.asarray(predict_rows[m]), device=device) for m in wanted]
            for m, z in zip(wanted, member_logits(model, Xt, index, wanted), strict=True):
                outputs[m] = kind.squeeze(z).cpu().numpy()
        finite = torch.isfinite(model.flat_params.detach()).all(1).cpu()
        return [
            self._fitted(plan, model, m, stopping.records[m], outputs[m], bool(finite[m]))
            for m, plan in enumerate(plans)
        ]

    def _fitted(self, plan, model, m, records, outputs, finite_weights):
        """Member ``m`` as a :class:`Fitted`: its net around its weights and its history."""
        if not finite_weights or not all(np.isfinite(r["train_loss"]) for r in records):
            bad = next((r for r in records if not np.isfinite(r["train_loss"])), None)
            where = (
                f"the training loss became non-finite ({bad['train_loss']}) at epoch {bad['epoch']}"
                if bad is not None
                else "the network's weights became non-finite"
            )
            error = NonFiniteTrainingError(
                f"Training stopped: {where} (lr={plan.params['lr']}). The optimisation "
                "diverged: lower lr, and check that X is scaled (e.g. with StandardScaler) and "
                "that class_weight, alpha and sample_weight are not extreme."
            )
            return Fitted(None, None, outputs, error)
        net = make_net(plan, model.member(m), self.device, self.dtype)
        net.initialize()
        net.history = History()
        for record in records:
            net.history.new_epoch()
            for key, value in record.items():
                net.history.record(key, value)
        posterior = plan.posteriors[0]
        net.predict_nonlinearity = posterior.proba
        return Fitted(net, posterior, outputs)
