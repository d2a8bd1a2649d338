"""What every engine shares: members built and seeded alike, one constructor of fitted nets.

* :func:`build_member` -- a plan's network, seeded from the plan and initialised (the loss's
  output layer, the prior bias), the same for a single fit and a stacked member;
* :func:`make_net` -- the skorch net (:class:`~skfocal._engines._net.FocalNet`) of a plan
  around a module: a single fit trains it, the stacked engine wraps a trained member in it;
* :class:`Fitted` -- what an engine returns per plan.
"""

from __future__ import annotations

import copy
import functools
import inspect

import numpy as np
import torch
from skorch.callbacks import Callback

from .._early_stopping import EarlyStopping
from .._module import build_module, init_output_bias
from ._net import AccelerateFocalNet, CriterionSchedule, FocalNet, ValidScoring


class Engine:
    """Base of the engines: the training device and dtype; ``fit(plans, X) -> [Fitted]``.

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
        """Train ``plans`` on ``X``; one :class:`Fitted` per plan, in order."""
        raise NotImplementedError


class Fitted:
    """One trained plan: ``net`` (skorch, with ``net.module_`` and ``net.history``).

    ``posterior`` maps the trained logits to decision scores: the plan's posterior of the
    phase (loss) in force at the kept epoch -- the best epoch when early stopping restored
    one, else the last. ``outputs`` are the network's logits on rows the caller named (the
    stacked engine's ``predict_rows``), else None. ``error`` is the exception that stopped
    this plan's training when its engine trains others beside it (then ``net`` is None); a
    single fit raises it instead.
    """

    def __init__(self, net, posterior, outputs=None, error=None):
        self.net = net
        self.posterior = posterior
        self.outputs = outputs
        self.error = error


def build_member(plan, dtype):
    """The plan's network, seeded and initialised as every engine builds it.

    Inside a fork of torch's RNG (CPU and the plan's CUDA device): ``torch.manual_seed`` of the
    plan's seed, the module (the loss's output layer: cosine for LDAM), cast to ``dtype``,
    and its output bias set to the prior the loss sees. What a single fit and a stacked
    member of the same plan start from, bit for bit.
    """
    params = plan.params
    torch.manual_seed(plan.seeds["torch"])
    module = build_module(
        params["module"],
        plan.n_features,
        plan.n_outputs,
        params["hidden_layer_sizes"],
        params["dropout"],
        output_layer=plan.loss.output_layer,
    ).to(dtype)
    if params["module"] is not None or plan.loss.output_layer != "cosine":
        # a cosine output layer (LDAM) has no bias to hold a prior
        init_output_bias(module, params["bias_init"], plan.prior, plan.kind, plan.n_outputs)
    return module


def batch_size(plan):
    """The plan's training batch size (``batch_size`` capped at its training rows)."""
    return max(1, min(plan.params["batch_size"], plan.n_train))


def fork_rng(device):
    """Fork torch's global RNG (CPU and the training CUDA device) around a fit."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.random.fork_rng(devices=[index])
    return torch.random.fork_rng(devices=[])


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


def check_callbacks(callbacks):
    """Raise, before training, for ``callbacks`` that are not skorch callbacks."""
    for callback in callbacks or []:
        target = callback[1] if isinstance(callback, tuple) and len(callback) == 2 else callback
        if not (
            isinstance(target, Callback)
            or isinstance(target, type)
            and issubclass(target, Callback)
        ):
            raise ValueError(
                "callbacks must be a list of skorch callbacks (instances or classes of "
                "skorch.callbacks.Callback) or (name, callback) tuples, got "
                f"{callback!r} in callbacks={callbacks!r}."
            )


def criterion(plan, spec=None, extra=None):
    """The per-sample criterion of ``spec`` (default: the plan's loss) for the plan.

    ``extra`` class weights (deferred re-weighting) multiply ``alpha``.
    """
    spec = plan.loss if spec is None else spec
    hyper = plan.loss_params if spec is plan.loss else {}
    alpha = plan.alpha if extra is None else combined_alpha(plan.kind, plan.alpha, extra)
    return spec.criterion(plan.kind, hyper, alpha, plan.pos_weight)


def _callbacks(plan):
    """The callbacks of the plan's single fit: schedule, early stopping, progress, the user's."""
    from skorch.callbacks import ProgressBar

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
        stopper = EarlyStopping(monitor, params["n_iter_no_change"], lower_is_better=lower)
        callbacks.append(("early_stopping", stopper))
    if params["verbose"] >= 2:
        size = batch_size(plan)
        n_batches = -(-plan.n_train // size)
        if plan.n_valid:
            n_batches += -(-plan.n_valid // max(size, 4096))
        callbacks.append(("progress_bar", ProgressBar(batches_per_epoch=n_batches)))
    return callbacks


def make_net(plan, module, device, dtype):
    """The skorch net (:class:`~skfocal._engines._net.FocalNet`) of ``plan`` around ``module``.

    The one constructor of fitted nets: a single fit trains the net it returns; the stacked
    engine initialises it around a trained member and gives it that member's history.
    """
    params = plan.params
    optimizer = params["optimizer"]
    kwargs = {}
    if plan.inputs.batch_rows is not None:  # validation batches a transformer can hold
        kwargs["iterator_valid__batch_size"] = batch_size(plan)
    if "weight_decay" in inspect.signature(optimizer).parameters:
        kwargs["optimizer__weight_decay"] = params["weight_decay"]
    accelerator = params["accelerator"]
    optimizer_device = device if accelerator is None else accelerator.device
    for name, value in fused_optimizer_kwargs(optimizer, optimizer_device, dtype).items():
        kwargs[f"optimizer__{name}"] = value
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
            None if spec is plan.loss and extra is None else criterion(plan, spec, extra)
            for _, spec, extra in plan.schedule
        ]
    return net_cls(
        module=module,
        criterion=criterion(plan),
        optimizer=optimizer,
        lr=params["lr"],
        max_epochs=params["max_epochs"],
        batch_size=batch_size(plan),
        train_split=None,
        callbacks=_callbacks(plan),
        averaging=params["weight_averaging"],
        predict_nonlinearity=plan.kind.proba,
        verbose=int(params["verbose"]),
        device=device,
        kind=plan.kind,
        phase_criteria=schedule,
        **kwargs,
    )


def _discard(*args, **kwargs):
    """A print sink that prints nothing (module level, so fitted nets stay picklable)."""
