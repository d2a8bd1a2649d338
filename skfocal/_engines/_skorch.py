"""SkorchEngine: one plan at a time, trained by skfocal's skorch net.

The data are moved to the device once (:func:`device_data`), the module is built and seeded
as every engine builds it (:func:`~skfocal._engines._members.build_member`) and checked by
a dry forward (:func:`~skfocal._inputs.check_forward`), and the net
(:func:`~skfocal._engines._members.make_net`) trains it: skorch's epoch loop or the lean
epoch, callbacks, early stopping, and a schedule (warm-up) as a callback that switches the
training criterion at an epoch without touching the optimizer.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _inputs
from .._threads import module_macs, threads_for, tokens_per_row
from ._members import (
    Engine,
    Fitted,
    batch_size,
    build_member,
    check_callbacks,
    fork_rng,
    make_net,
)
from ._net import FitData


def kept_phase(plan, net):
    """Index of the schedule phase whose weights the fitted network holds."""
    if plan.schedule is None:
        return 0
    epoch = len(net.history)
    stopper = dict(net.callbacks_).get("early_stopping")
    if stopper is not None and getattr(stopper, "best_epoch_", None):
        epoch = stopper.best_epoch_
    return max(i for i, (first, _, _) in enumerate(plan.schedule) if first <= epoch)


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
    sampler = plan.epoch_sampler(device)
    train = None if plan.train_idx is None else torch.as_tensor(plan.train_idx, device=device)
    valid = None if plan.valid_idx is None else torch.as_tensor(plan.valid_idx, device=device)
    return FitData(Xt, yt, wt, train, valid, sampler)


class SkorchEngine(Engine):
    """Trains plans one at a time with skorch (:class:`~skfocal._engines._net.FocalNet`)."""

    def fit(self, plans, X):
        """Train every plan on ``X``; returns one :class:`Fitted` per plan, in order."""
        return [self._fit_one(plan, X) for plan in plans]

    def _fit_one(self, plan, X):
        check_callbacks(plan.params["callbacks"])
        with fork_rng(self.device):
            module = build_member(plan, self.dtype)
            work = batch_size(plan) * module_macs(module) * tokens_per_row(X)
            with threads_for(work, self.device):  # chosen for the network (skfocal._threads)
                data = device_data(plan, X, self.device, self.dtype)
                _inputs.check_forward(
                    module, data.X, plan.inputs, plan.kind, plan.n_outputs, self.dtype
                )
                net = make_net(plan, module, self.device, self.dtype)
                net.fit(data, None)
        posterior = plan.posteriors[kept_phase(plan, net)]
        net.predict_nonlinearity = posterior.proba  # skorch's own predict_proba agrees
        return Fitted(net, posterior)
