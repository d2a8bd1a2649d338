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
import functools
import inspect

import numpy as np
import torch

from . import _inputs
from ._module import build_module, init_output_bias
from ._net import AccelerateFocalNet, CriterionSchedule, FitData, FocalNet, ValidScoring


class Fitted:
    """One trained plan: ``net`` (skorch, with ``net.module_`` and ``net.history``).

    ``posterior`` maps the trained logits to decision scores: the plan's posterior of the
    phase (loss) in force at the kept epoch -- the best epoch when early stopping restored
    one, else the last.
    """

    def __init__(self, net, posterior):
        self.net = net
        self.posterior = posterior


def combined_alpha(kind, alpha, weights):
    """``alpha`` times per-class ``weights``; the binary pair folds into one positive share.

    For a binary target ``alpha`` weighs positives by a and negatives by 1 - a; with class
    weights (w0, w1) that is (1 - a) w0 : a w1, i.e. the share a w1 / ((1 - a) w0 + a w1).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if kind.softmax:
        return weights if alpha is None else np.asarray(alpha) * weights
    a = 0.5 if alpha is None else float(alpha)
    pos, neg = a * weights[1], (1 - a) * weights[0]
    return float(pos / (pos + neg))


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
    y_train = None if not plan.kind.balances_classes else plan.y_enc[plan.train_rows]
    sampler = plan.sampler.epoch_sampler(plan.n_train, y_train, len(plan.classes), device)
    train = None if plan.train_idx is None else torch.as_tensor(plan.train_idx, device=device)
    valid = None if plan.valid_idx is None else torch.as_tensor(plan.valid_idx, device=device)
    return FitData(Xt, yt, wt, train, valid, sampler)


def check_module_output(module, X_few, kind, n_outputs):
    """Run ``module`` once on a few rows (eval mode, no gradient) and check its output.

    A module that returns something other than a tensor of logits, or the wrong number of
    them, is reported here, naming ``module``, rather than as a shape error deep inside the
    loss after the first batch.
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(X_few)
    except Exception as exc:
        raise ValueError(
            f"module failed on a batch of {len(X_few)} training rows of shape "
            f"{tuple(X_few.shape)}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        module.train(was_training)
    try:
        out = _inputs.logits_of(out)
    except TypeError:
        raise ValueError(
            f"module must return a tensor of logits of shape (N, {n_outputs}) (or a mapping "
            f"with a 'logits' entry), got a {type(out).__name__}."
        ) from None
    out = kind.squeeze(out)
    expected = (len(X_few),) if n_outputs == 1 and not kind.softmax else (len(X_few), n_outputs)
    if tuple(out.shape) != expected:
        accepted = f"(N, {n_outputs})" + (" or (N,)" if expected == (len(X_few),) else "")
        raise ValueError(
            f"module returned logits of shape {tuple(out.shape)} for {len(X_few)} rows; a "
            f"{kind.name} target with {n_outputs} output(s) needs {accepted}. Build the last "
            "layer with n_outputs outputs (a module class or factory receives n_outputs)."
        )


_FUSED_SUPPORT = {}


def fused_optimizer_kwargs(optimizer, device, dtype):
    """``{"fused": True}`` when ``optimizer`` has a fused step for ``device`` and ``dtype``.

    torch picks its fused (one kernel for all parameters) or multi-tensor step by default only
    on GPUs; on a CPU the default single-tensor AdamW step costs about 2.5x the fused one, a
    fifth of a small network's fit. The fused step is asked for when the optimizer takes a
    ``fused`` argument that the user did not set (nor ``foreach``: a ``functools.partial``
    with either is respected) and a one-element probe step succeeds on that device and dtype
    (cached per optimizer, device type and dtype). Otherwise nothing is added.
    """
    bound = {}
    target = optimizer
    while isinstance(target, functools.partial):
        bound.update(target.keywords)
        target = target.func
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    if "fused" not in params or "fused" in bound or "foreach" in bound:
        return {}
    key = (target, torch.device(device).type, dtype)
    if key not in _FUSED_SUPPORT:
        probe = torch.zeros(1, device=device, dtype=dtype, requires_grad=True)
        try:
            step = target([probe], lr=1e-3, fused=True)
            probe.grad = torch.zeros_like(probe)
            step.step()
            _FUSED_SUPPORT[key] = True
        except (RuntimeError, TypeError, ValueError):
            _FUSED_SUPPORT[key] = False
    return {"fused": True} if _FUSED_SUPPORT[key] else {}


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
                output_layer=plan.loss.output_layer,
            ).to(self.dtype)
            if params["module"] is not None or plan.loss.output_layer != "cosine":
                # a cosine output layer (LDAM) has no bias to hold a prior
                init_output_bias(module, params["bias_init"], plan.prior, plan.kind, plan.n_outputs)
            if plan.inputs.tabular:
                check_module_output(module, data.X[:2], plan.kind, plan.n_outputs)
            else:  # dict or id inputs: signature and dry forward of the first rows
                _inputs.check_forward(module, data.X, plan.inputs, plan.n_outputs, self.dtype)
            net = self._make_net(plan, module)
            net.fit(data, None)
        posterior = plan.posteriors[kept_phase(plan, net)]
        net.predict_nonlinearity = posterior.proba  # skorch's own predict_proba agrees
        return Fitted(net, posterior)

    def criterion(self, plan, spec=None, extra=None):
        """The per-sample criterion of ``spec`` (default: the plan's loss) for the plan.

        ``extra`` class weights (deferred re-weighting) multiply ``alpha``.
        """
        spec = plan.loss if spec is None else spec
        hyper = plan.loss_params if spec is plan.loss else {}
        alpha = plan.alpha if extra is None else combined_alpha(plan.kind, plan.alpha, extra)
        return spec.criterion(plan.kind, hyper, alpha, plan.pos_weight)

    def _callbacks(self, plan):
        from skorch.callbacks import EarlyStopping, ProgressBar

        params = plan.params
        callbacks = [copy.deepcopy(cb) for cb in (params["callbacks"] or [])]
        if plan.schedule is not None:
            callbacks.insert(
                0, ("criterion_schedule", CriterionSchedule([e for e, _, _ in plan.schedule]))
            )
        if params["early_stopping"]:
            monitor, lower = "valid_loss", True
            if plan.scorer is not None:
                monitor, lower = f"valid_{plan.scorer_name}", False
                scoring = ValidScoring(
                    plan.scorer,
                    monitor,
                    plan.y_valid,
                    plan.classes,
                    plan.kind,
                    plan.sw_valid,
                    plan.posteriors,
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
        accelerator = params["accelerator"]
        optimizer_device = self.device if accelerator is None else accelerator.device
        for name, value in fused_optimizer_kwargs(optimizer, optimizer_device, self.dtype).items():
            kwargs[f"optimizer__{name}"] = value
        device = self.device
        net_cls = FocalNet
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
                None if spec is plan.loss and extra is None else self.criterion(plan, spec, extra)
                for _, spec, extra in plan.schedule
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
