"""Engines: what trains the networks that fit plans describe.

An engine takes plans (one, or many: candidates x folds) and the training data, and returns
one :class:`Fitted` per plan: the trained skorch net, its module and history. It never
decides anything a plan decides; it only materialises the plan on the training device and
runs the training loop.

:class:`SkorchEngine` trains one plan at a time through skfocal's skorch net
(:class:`~skfocal._net.FocalNet`): the data are moved to the device once
(:func:`device_data`), the module is built and its output bias set from the plan's prior,
the criteria come from the plan's loss spec, and a schedule (warm-up) is a callback that
switches the training criterion at an epoch without touching the optimizer.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch

from . import _inputs
from ._module import build_module, init_output_bias
from ._net import AccelerateFocalNet, CriterionSchedule, FitData, FocalNet, ValidScoring


class Fitted:
    """One trained plan: ``net`` (skorch), with ``net.module_`` and ``net.history``."""

    def __init__(self, net):
        self.net = net


def as_device_tensor(X, device, dtype):
    """``X`` as a tensor on ``device`` with ``dtype``: at most one copy, none if it matches."""
    return _inputs.to_device(X, device, dtype, cast_integers=True)


def training_X(plan, X):
    """``X`` as the plan trains on it: the sampler's synthesised rows replace the training part."""
    sampler = plan.sampler
    if not sampler.synthesises_rows:
        return X
    valid = sampler.valid_rows
    if isinstance(X, torch.Tensor):
        X_valid = X[torch.as_tensor(valid)]
        return torch.cat([torch.as_tensor(sampler.X_res, dtype=X.dtype).to(X.device), X_valid])
    return np.concatenate([np.asarray(sampler.X_res, dtype=X.dtype), X[valid]])


def device_data(plan, X, device, dtype):
    """The plan's tensors on ``device``, moved once: X, target, weights, positions, sampler."""
    device = torch.device(device)
    Xt = _inputs.to_device(training_X(plan, X), device, dtype, plan.inputs.cast_integers)
    yt = torch.as_tensor(plan.y_enc, dtype=plan.kind.y_dtype(dtype)).to(device)
    wt = None if plan.weights is None else torch.as_tensor(plan.weights, dtype=dtype).to(device)
    y_train = None if not plan.kind.balances_classes else plan.y_enc[plan.train_rows]
    sampler = plan.sampler.epoch_sampler(plan.n_train, y_train, len(plan.classes), device)
    train = None if plan.train_idx is None else torch.as_tensor(plan.train_idx, device=device)
    valid = None if plan.valid_idx is None else torch.as_tensor(plan.valid_idx, device=device)
    return FitData(Xt, yt, wt, train, valid, sampler)


def fork_rng(device):
    """Fork torch's global RNG (CPU and the training CUDA device) around a fit."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.random.fork_rng(devices=[index])
    return torch.random.fork_rng(devices=[])


class SkorchEngine:
    """Trains plans one at a time with skorch (:class:`~skfocal._net.FocalNet`).

    Parameters
    ----------
    device : torch.device
        Training device.
    dtype : torch.dtype
        Floating dtype of training.
    """

    def __init__(self, device, dtype):
        self.device = torch.device(device)
        self.dtype = dtype

    def fit(self, plans, X):
        """Train every plan on ``X``; returns one :class:`Fitted` per plan, in order."""
        return [self._fit_one(plan, X) for plan in plans]

    def _fit_one(self, plan, X):
        params = plan.params
        data = device_data(plan, X, self.device, self.dtype)
        with fork_rng(self.device):
            torch.manual_seed(plan.seeds["torch"])
            module = build_module(
                params["module"],
                plan.n_features,
                plan.n_outputs,
                params["hidden_layer_sizes"],
                params["dropout"],
            ).to(self.dtype)
            _inputs.check_forward(module, data.X, plan.inputs, plan.n_outputs, self.dtype)
            init_output_bias(module, params["bias_init"], plan.prior, plan.kind, plan.n_outputs)
            net = self._make_net(plan, module)
            net.fit(data, None)
        return Fitted(net)

    def criterion(self, plan, spec=None):
        """The per-sample criterion of ``spec`` (default: the plan's loss) for the plan."""
        spec = plan.loss if spec is None else spec
        return spec.criterion(plan.kind, plan.loss_params, plan.alpha, plan.pos_weight)

    def _callbacks(self, plan):
        from skorch.callbacks import EarlyStopping, ProgressBar

        params = plan.params
        callbacks = [copy.deepcopy(cb) for cb in (params["callbacks"] or [])]
        if plan.schedule is not None:
            callbacks.insert(
                0, ("criterion_schedule", CriterionSchedule([e for e, _ in plan.schedule]))
            )
        if params["early_stopping"]:
            monitor, lower = "valid_loss", True
            if plan.scorer is not None:
                monitor, lower = f"valid_{plan.scorer_name}", False
                scoring = ValidScoring(
                    plan.scorer, monitor, plan.y_valid, plan.classes, plan.kind, plan.sw_valid
                )
                callbacks.append((monitor, scoring))
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor=monitor,
                        lower_is_better=lower,
                        patience=params["n_iter_no_change"],
                        load_best=True,
                    ),
                )
            )
        if params["verbose"] >= 2:
            batch_size = self._batch_size(plan)
            n_batches = -(-plan.n_train // batch_size)
            if plan.n_valid:
                n_batches += -(-plan.n_valid // max(batch_size, 4096))
            callbacks.append(("progress_bar", ProgressBar(batches_per_epoch=n_batches)))
        return callbacks

    @staticmethod
    def _batch_size(plan):
        return max(1, min(plan.params["batch_size"], plan.n_train))

    def _make_net(self, plan, module):
        params = plan.params
        optimizer = params["optimizer"]
        kwargs = {}
        if plan.inputs.batch_rows is not None:  # validation batches a transformer can hold
            kwargs["iterator_valid__batch_size"] = self._batch_size(plan)
        if "weight_decay" in inspect.signature(optimizer).parameters:
            kwargs["optimizer__weight_decay"] = params["weight_decay"]
        device = self.device
        net_cls = FocalNet
        accelerator = params["accelerator"]
        if accelerator is not None:
            net_cls = AccelerateFocalNet
            kwargs["accelerator"] = accelerator
            # skorch's AccelerateMixin prints the epoch table through accelerator.print whatever
            # the verbosity; keep verbose=0 silent
            sink = accelerator.print if params["verbose"] else _discard
            kwargs["callbacks__print_log__sink"] = sink
            num = getattr(accelerator, "num_processes", 1)
            if num > 1:
                kwargs["shard"] = (accelerator.process_index, num)
            device = None
        schedule = None
        if plan.schedule is not None:  # None in a phase: the main criterion
            schedule = [
                None if spec is plan.loss else self.criterion(plan, spec)
                for _, spec in plan.schedule
            ]
        return net_cls(
            module=module,
            criterion=self.criterion(plan),
            optimizer=optimizer,
            lr=params["lr"],
            max_epochs=params["max_epochs"],
            batch_size=self._batch_size(plan),
            train_split=None,
            callbacks=self._callbacks(plan),
            predict_nonlinearity=plan.kind.proba,
            verbose=int(params["verbose"]),
            device=device,
            kind=plan.kind,
            phase_criteria=schedule,
            **kwargs,
        )


def _discard(*args, **kwargs):
    """A print sink that prints nothing (module level, so fitted nets stay picklable)."""
