"""The internal skorch net of :class:`~skfocal.FocalClassifier` and its tensor data path.

The training tensors are moved to the training device once per ``fit`` (by the engine,
:mod:`skfocal._engines`). skorch's dataset and ``DataLoader`` are bypassed through two narrow
hooks: :meth:`FocalNet.get_split_datasets` returns index views of those tensors and
:meth:`FocalNet.get_iterator` returns :class:`BatchIterator`, which yields minibatches as
index slices (one ``index_select`` per batch, no per-sample ``__getitem__`` and no
``default_collate``). Everything else -- the epoch loop, callbacks, history, early stopping,
printing -- is skorch's own.

A batch is a :class:`Batch`: skorch's usual ``(X_batch, y_batch)`` pair, so skorch callbacks
(e.g. a cached ``EpochScoring``) and the module see what they expect, with the per-sample
weights of its rows travelling beside it as ``batch.weights``. :meth:`FocalNet.train_step_single`
and :meth:`FocalNet.validation_step` hand them to :meth:`FocalNet.weighted_loss`, which calls
the criterion with ``reduction="none"`` and returns the mean of ``w * loss`` over the batch
(``w`` normalised to mean 1 over the training rows, or None).

Training schedules (warm-up) are phases of criteria switched by the :class:`CriterionSchedule`
callback at the start of an epoch; the optimizer and its state are untouched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import get_len
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator

from .._inputs import forward, n_rows, output_like, take, to_device
from .._module import MLP
from .._scoring import FrozenPredictions
from ..losses._lean import batch_losses
from ._step import LeanStep, steps_without_closure

PREDICT_BATCH_ROWS = 65536
CHUNK_BYTES = 16 << 20  # training rows gathered per index_select, in bytes


class Batch(tuple):
    """A minibatch ``(X_batch, y_batch)`` whose per-sample ``weights`` travel beside it."""

    def __new__(cls, X, y, weights=None):
        batch = super().__new__(cls, (X, y))
        batch.weights = weights
        return batch


class FitData:
    """Device tensors of one ``fit`` and the positions of its training and validation rows."""

    def __init__(self, X, y, w, train_idx, valid_idx, sampler):
        self.X, self.y, self.w = X, y, w
        self.train_idx, self.valid_idx = train_idx, valid_idx
        self.sampler = sampler

    def __len__(self):
        return n_rows(self.X)


class TensorPart:
    """The rows ``idx`` (all rows if None) of the fit tensors: a 'dataset' that copies nothing."""

    def __init__(self, data, idx, sampler=None):
        self.X, self.y, self.w = data.X, data.y, data.w
        self.idx = idx
        self.sampler = sampler

    def __len__(self):
        return n_rows(self.X) if self.idx is None else len(self.idx)


class BatchIterator:
    """Yields ``(X[b], y[b])`` for index batches ``b`` of a :class:`TensorPart`.

    In training every epoch draws its order from ``part.sampler`` (positions into the part)
    on the device; otherwise rows are visited in order. With ``shard=(rank, world)`` each
    process keeps every ``world``-th position of the epoch (data-parallel training). Each
    batch is a :class:`Batch` carrying the weights ``w[b]`` of its rows.
    """

    def __init__(self, part, batch_size, training, shard=None):
        self.part = part
        self.batch_size = batch_size
        self.training = training
        self.shard = shard

    def __len__(self):
        return -(-len(self.part) // self.batch_size)

    def _positions(self):
        part = self.part
        if self.training and part.sampler is not None:
            pos = part.sampler()
            if self.shard is not None:
                rank, world = self.shard
                pos = pos[rank::world]
            return pos if part.idx is None else part.idx[pos]
        return part.idx

    def _chunk_rows(self):
        """Rows gathered at once: up to 64 batches, at most ``CHUNK_BYTES`` of ``X``."""
        X = self.part.X
        values = X.values() if isinstance(X, Mapping) else (X,)
        row_bytes = sum(v.element_size() * (v.numel() // max(1, len(v))) for v in values)
        batches = max(1, min(64, CHUNK_BYTES // max(1, row_bytes * self.batch_size)))
        return batches * self.batch_size

    def __iter__(self):
        part = self.part
        idx = self._positions()
        size = self.batch_size
        if idx is None:  # contiguous rows: views, no copy
            X, y, w = part.X, part.y, part.w
            chunks = [(0, len(part))]
        else:
            step = self._chunk_rows()
            chunks = range(0, len(idx), step)
        for chunk in chunks:
            if idx is not None:  # one gather for many batches, which are then views of it
                rows = idx[chunk : chunk + step]
                X, y = take(part.X, rows), part.y.index_select(0, rows)
                w = None if part.w is None else part.w.index_select(0, rows)
                start, end = 0, len(rows)
            else:
                start, end = chunk
            for first in range(start, end, size):
                b = slice(first, min(first + size, end))
                yield Batch(take(X, b), y[b], None if w is None else w[b])


class FocalNet(NeuralNet):
    """skorch ``NeuralNet`` whose data path, loss and output nonlinearity suit FocalClassifier.

    Parameters beyond skorch's
    --------------------------
    kind : TargetKind
        The target kind (:mod:`skfocal._targets`): the output shape (one squeezed logit for a
        binary target) and how per-element losses become per-sample losses.
    phase_criteria : list of (nn.Module or None) or None
        Criteria (``reduction="none"``) of the training phases that :class:`CriterionSchedule`
        switches between; None in the list stands for ``criterion``. Validation losses always
        use ``criterion``.
    shard : tuple or None
        ``(rank, world_size)`` of data-parallel training.
    averaging : float or None
        Horizon, in epochs, of the moving average of the weights that validation, early
        stopping and the fitted network use (:class:`WeightAverage`); None: the weights as
        trained.
    """

    def __init__(self, *args, kind, phase_criteria=None, shard=None, averaging=None, **kwargs):
        # set before skorch's __init__, which treats later nn.Module attributes as components
        self.kind = kind
        self.phase_criteria = phase_criteria
        self.shard = shard
        self.averaging = averaging
        super().__init__(*args, **kwargs)

    def __getstate__(self):
        # the lean loop's caches hold the parameters, the optimizer's state and criteria on
        # the training device: they are rebuilt when needed, and must not reach the plain
        # pickle, where skorch maps only its own device-dependent attributes to the loading
        # machine's device
        state = super().__getstate__()
        for key in ("lean_step_", "mean_criteria_", "average_"):
            state.pop(key, None)
        return state

    # -- data path ---------------------------------------------------------------------------
    def get_split_datasets(self, X, y=None, **fit_params):
        train = TensorPart(X, X.train_idx, X.sampler)
        valid = None if X.valid_idx is None else TensorPart(X, X.valid_idx)
        return train, valid

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, TensorPart):  # e.g. skorch's own predict on new data
            return super().get_iterator(dataset, training=training)
        if training:
            batch_size = self.batch_size
            shard = self.shard
        else:
            batch_size = getattr(self, "iterator_valid__batch_size", None) or max(
                self.batch_size, 4096
            )
            shard = None
        return BatchIterator(dataset, batch_size, training, shard)

    def _set_training(self, training=True):
        # skorch switches every module and criterion to train/eval mode at every batch, which
        # walks all submodules (about a tenth of a small model's fit); switch only when the
        # mode of one of them differs
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module) and module.training != training:
                return super()._set_training(training)
        return None

    # -- the per-batch path ------------------------------------------------------------------
    def _listeners(self, hook):
        """The callbacks that override ``hook`` (the others' are no-ops not worth a call)."""
        base = getattr(Callback, hook)
        return [cb for _, cb in self.callbacks_ if getattr(type(cb), hook, base) is not base]

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.batch_listeners_ = {
            hook: self._listeners(hook)
            for hook in ("on_batch_begin", "on_batch_end", "on_grad_computed")
        }
        self.average_ = None
        if self.averaging is not None:
            idx = X.train_idx if isinstance(X, FitData) else None
            rows = len(X) if idx is None else len(idx)
            weight = averaging_weight(self.averaging, rows, self.batch_size)
            self.average_ = WeightAverage(self.module_, weight)
        return super().on_train_begin(net, X=X, y=y, **kwargs)

    def on_epoch_begin(self, net, **kwargs):
        average = self.__dict__.get("average_")
        if average is not None:
            average.train_weights()
        return super().on_epoch_begin(net, **kwargs)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        average = self.__dict__.get("average_")
        if average is not None:
            average.averaged_weights()  # the fitted network (early stopping may restore another)
            self.average_ = None
        return super().on_train_end(net, X=X, y=y, **kwargs)

    def _averaged_step(self):
        average = self.__dict__.get("average_")
        if average is not None:
            average.update()

    def _notify_batch(self, hook, **kwargs):
        getattr(self, hook)(self, **kwargs)
        for cb in self.batch_listeners_[hook]:
            getattr(cb, hook)(self, **kwargs)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch, calling per-batch hooks only where a callback overrides them.

        skorch notifies every callback of every batch; most of them (timers, printing,
        scoring from the history) do nothing then, and the calls are a noticeable share of a
        small network's step. The net's own hooks and every callback that overrides
        ``on_batch_begin`` / ``on_batch_end`` / ``on_grad_computed`` are still called, with
        skorch's arguments, in skorch's order.
        """
        if not training and self.__dict__.get("average_") is not None:
            self.average_.averaged_weights()  # validated, snapshot and kept: the average
        if iterator is None:
            return
        if training and self._lean(fit_params):
            return self._run_lean_epoch(iterator, prefix)
        history = self.history
        batch_count = 0
        for batch in iterator:
            self._notify_batch("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].item()
            if not math.isfinite(loss):
                raise_non_finite(self, "training" if training else "validation", loss, batch_count)
            history.record_batch(prefix + "_loss", loss)
            history.record_batch(prefix + "_batch_size", get_len(batch[0]))
            self._notify_batch("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        history.record(prefix + "_batch_count", batch_count)
        if training:
            self._check_weights(batch_count)

    def _lean(self, fit_params):
        """Whether this epoch can train in :meth:`_run_lean_epoch`: nothing listens per batch,
        the net's own steps are FocalNet's, no fit parameters, and one optimizer that needs no
        closure (:func:`~skfocal._engines._step.steps_without_closure`)."""
        listeners = self.batch_listeners_
        return (
            not fit_params
            and type(self).train_step is FocalNet.train_step
            and type(self).train_step_single is FocalNet.train_step_single
            and type(self).on_batch_begin is NeuralNet.on_batch_begin
            and type(self).on_batch_end is NeuralNet.on_batch_end
            and not any(listeners.values())
            and list(self._optimizers) == ["optimizer"]
            and steps_without_closure(self.optimizer_)
        )

    def _run_lean_epoch(self, iterator, prefix):
        """One training epoch of plain steps: forward, loss, backward, update.

        What skorch's epoch does for a batch that no callback listens to, and no more: the
        gradients are set to None, the weighted loss is backpropagated and the optimizer
        steps (through :class:`~skfocal._engines._step.LeanStep`). An unweighted batch's loss is the
        lean batch mean of the criterion (its ``_lean_mean()``, :mod:`skfocal.losses._focal`, no
        per-call checks of the validated targets) where it has one: for the focal losses its
        closed-form logit gradient, backpropagated from the logits (no autograd node for the
        loss), and the loss as two factors. The batch losses stay on the device and are
        summed (:func:`~skfocal.losses._lean.batch_losses`) and read back once at the end of
        the epoch (one host synchronisation per epoch instead of one per batch), then written
        into the history as skorch writes them (``train_loss`` and ``train_batch_size`` per
        batch, the batch count) and checked finite: a non-finite loss stops training with the
        first bad batch named.
        """
        stepper = self.__dict__.get("lean_step_")
        if stepper is None or stepper.optimizer is not self.optimizer_:
            stepper = self.lean_step_ = LeanStep(self.optimizer_)
        stepper.prepare()
        self._set_training(True)
        average = self.__dict__.get("average_")
        module, kind, criterion = self.module_, self.kind, self.train_criterion_
        mean = self._mean_criterion(criterion)
        squeeze, per_sample = kind.squeeze, kind.per_sample
        losses, sizes = [], []
        for batch in iterator:
            Xb, yb = batch
            wb = getattr(batch, "weights", None)
            y_pred = squeeze(forward(module, Xb))
            lean = wb is None and mean is not None
            fused = mean.value_and_grad(y_pred, yb) if lean else None
            if fused is not None:  # the closed-form logit gradient, backpropagated from there
                (loss, grad), root = fused, y_pred
            else:
                if lean:
                    loss = mean(y_pred, yb)
                else:
                    loss = per_sample(criterion(y_pred, yb))
                    loss = (loss if wb is None else loss * wb).mean()
                root, grad = loss, None
            stepper.zero_grad()
            stepper.backward(root, grad)
            stepper.step()
            if average is not None:
                average.update()
            losses.append(loss if grad is not None else loss.detach())  # fused: no graph
            sizes.append(len(yb))
        values = batch_losses(losses).tolist() if losses else []
        batches = self.history[-1]["batches"]
        for batch, (value, size) in enumerate(zip(values, sizes, strict=True)):
            if not math.isfinite(value):
                raise_non_finite(self, "training", value, batch)
            batches.append({prefix + "_loss": value, prefix + "_batch_size": size})
        self.history.record(prefix + "_batch_count", len(values))
        self._check_weights(len(values))

    def _mean_criterion(self, criterion):
        cache = self.__dict__.setdefault("mean_criteria_", {})
        key = id(criterion)
        if key not in cache:
            lean_mean = getattr(criterion, "_lean_mean", None)  # the skfocal losses' own
            twin = None if lean_mean is None else lean_mean()
            if twin is not None and self.device is not None:
                twin = twin.to(self.device)
            cache[key] = (criterion, twin)  # the criterion is kept: its id stays its own
        return cache[key][1]

    def _check_weights(self, batch_count):
        """Raise if a weight is non-finite (one read-back for all parameters)."""
        flags = [torch.isfinite(p).all() for p in self.module_.parameters()]
        if flags and not bool(torch.stack(flags).all()):
            raise_non_finite(self, "weights", math.nan, batch_count)

    def train_step(self, batch, **fit_params):
        step_accumulator = self.get_train_step_accumulator()
        listeners = self.batch_listeners_["on_grad_computed"]

        def step_fn():
            self._zero_grad_optimizer()
            step = self.train_step_single(batch, **fit_params)
            step_accumulator.store_step(step)
            if listeners:
                self.notify(
                    "on_grad_computed",
                    named_parameters=TeeGenerator(self.get_all_learnable_params()),
                    batch=batch,
                    training=True,
                )
            return step["loss"]

        self._step_optimizer(step_fn)
        self._averaged_step()
        return step_accumulator.get_step()

    # -- criteria and their schedule ---------------------------------------------------------
    def initialize_criterion(self):
        super().initialize_criterion()
        for index, criterion in enumerate(self.phase_criteria or []):
            if criterion is not None:
                # registered by skorch as a further criterion: moved to the device with the first
                setattr(self, f"phase{index}_criterion_", criterion)
        self.train_criterion_ = self.criterion_
        self.phase_ = 0
        return self

    def set_phase(self, index):
        """Train with the criterion of phase ``index`` from now on (the optimizer is kept)."""
        criterion = self.phase_criteria[index]
        self.phase_ = index
        self.train_criterion_ = (
            self.criterion_ if criterion is None else getattr(self, f"phase{index}_criterion_")
        )

    # -- model output and loss ---------------------------------------------------------------
    def infer(self, x, **fit_params):
        return self.kind.squeeze(forward(self.module_, x, **fit_params))

    def weighted_loss(self, y_pred, y_true, weights=None, training=False):
        """Mean over the batch of ``weights * loss`` (per-sample losses; weights may be None)."""
        criterion = self.train_criterion_ if training else self.criterion_
        loss = self.kind.per_sample(criterion(y_pred, y_true))
        if weights is not None:
            loss = loss * weights
        return loss.mean()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.weighted_loss(y_pred, y_true, None, training)

    def _batch_loss(self, batch, training, **fit_params):
        Xi, yi = batch
        y_pred = self.infer(Xi, **fit_params)
        weights = getattr(batch, "weights", None)
        return y_pred, self.weighted_loss(y_pred, yi, weights, training)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        y_pred, loss = self._batch_loss(batch, True, **fit_params)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            y_pred, loss = self._batch_loss(batch, False, **fit_params)
        return {"loss": loss, "y_pred": y_pred}


def averaging_weight(epochs, rows, batch_size):
    r"""The weight :math:`1 / (hS)` of a step in the moving average of the weights, at most 1.

    :math:`h` = ``epochs`` (``weight_averaging``), :math:`S = \lceil \mathrm{rows} /
    \mathrm{batch\_size} \rceil` the steps of an epoch: what a single fit
    (:class:`WeightAverage`) and a stacked member
    (:class:`~skfocal._engines._stacked._average.StackedAverage`) move their averages by.

    Examples
    --------
    >>> from skfocal._engines._net import averaging_weight
    >>> averaging_weight(3.0, 1_000, 256), averaging_weight(0.1, 100, 256)
    (0.08333333333333333, 1.0)
    """
    return 1.0 / max(float(epochs * -(-rows // batch_size)), 1.0)


class WeightAverage:
    r"""An exponential moving average of a module's parameters, swapped in for validation.

    After every training step (:meth:`update`)

    .. math::

        \bar w \leftarrow \bar w + \lambda\,(w - \bar w)

    with :math:`\lambda` = ``weight`` (:func:`averaging_weight`), starting from the initial
    weights. :meth:`averaged_weights` puts the average in
    the module (keeping the trained weights aside) and :meth:`train_weights` puts the trained
    weights back: the net calls the first before each validation pass, the second when the
    next epoch starts, so validation scores, early stopping's snapshot of the best epoch and
    the network left after training are the average's, while training continues from the
    trained weights. The update uses ``Tensor.lerp_``, one call per parameter tensor.

    Parameters
    ----------
    module : torch.nn.Module
    weight : float
        :math:`\lambda` in (0, 1].
    """

    def __init__(self, module, weight):
        self.params = [p for p in module.parameters() if p.requires_grad]
        with torch.no_grad():
            self.average = [p.detach().clone() for p in self.params]
        self.weight = weight
        self.trained = None  # the trained weights while the average is in the module

    @torch.no_grad()
    def update(self):
        """Move the average towards the weights after a training step."""
        for a, p in zip(self.average, self.params, strict=True):
            a.lerp_(p, self.weight)

    @torch.no_grad()
    def averaged_weights(self):
        """Put the average in the module (no-op when it is there)."""
        if self.trained is None:
            self.trained = [p.detach().clone() for p in self.params]
            for p, a in zip(self.params, self.average, strict=True):
                p.copy_(a)

    @torch.no_grad()
    def train_weights(self):
        """Put the trained weights back in the module (no-op when they are there)."""
        if self.trained is not None:
            for p, t in zip(self.params, self.trained, strict=True):
                p.copy_(t)
            self.trained = None


class NonFiniteTrainingError(FloatingPointError):
    """Training produced a non-finite loss or non-finite weights and was stopped.

    :class:`~skfocal.FocalClassifier` checks the loss of every batch (already read back for
    skorch's history, so the check costs nothing) and the weights after every epoch, and
    raises this error naming the epoch, the batch and the learning rate, instead of returning
    NaN probabilities. It is a :class:`FloatingPointError`.

    Examples
    --------
    >>> import numpy as np
    >>> from skfocal import FocalClassifier, NonFiniteTrainingError
    >>> X, y = np.array([[0.0], [1.0]] * 20), np.array([0, 1] * 20)
    >>> try:
    ...     FocalClassifier(lr=1e12, max_epochs=20, random_state=0).fit(X, y)
    ... except NonFiniteTrainingError as exc:
    ...     print(str(exc)[:32])
    Training stopped: the training l...
    """


def raise_non_finite(net, part, value, batch):
    """Stop training with an error that says where it went non-finite and what to try."""
    epoch = len(net.history)
    if part == "weights":
        what = f"the network's weights became non-finite during epoch {epoch}"
    else:
        what = f"the {part} loss became {value} at epoch {epoch}, batch {batch + 1}"
    raise NonFiniteTrainingError(
        f"Training stopped: {what} (lr={getattr(net, 'lr', None)}). The optimisation diverged: "
        "lower lr, and check that X is scaled (e.g. with StandardScaler) and that "
        "class_weight, alpha and sample_weight are not extreme."
    )


class CriterionSchedule(Callback):
    """Switches the training criterion at given epochs, keeping the optimizer and its state.

    skorch's ``set_params(criterion__...)`` would re-initialise the optimizer (resetting
    Adam's moments); this only points :class:`FocalNet` at another already-built criterion.

    Parameters
    ----------
    first_epochs : list of int
        The 1-based epoch at which each phase of ``FocalNet.phase_criteria`` starts.
    """

    def __init__(self, first_epochs):
        self.first_epochs = first_epochs

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history)  # skorch has already opened the current epoch's row
        phase = max(i for i, first in enumerate(self.first_epochs) if first <= epoch)
        net.set_phase(phase)


@torch.inference_mode()
def predict_logits(
    module,
    X,
    *,
    kind,
    device,
    dtype,
    post=None,
    batch_rows=PREDICT_BATCH_ROWS,
    cast_integers=True,
):
    """Stream ``X`` (ndarray, tensor or dict of them) through ``module`` in ``batch_rows`` rows.

    Each batch is moved to ``device`` (floats cast to ``dtype``; integers too when
    ``cast_integers``, else kept as int64; a dict's values passed as keyword arguments) and
    evaluated; ``post`` (e.g. the softmax) is applied per batch, and the result is written
    into an output allocated once, on ``X``'s device (a tensor, or a dict of tensors) or as an
    ndarray, in ``X``'s floating dtype (``dtype`` for integer tensors, float64 for other
    ndarrays). The only full-size arrays are ``X`` and the result.

    Where the output is float64 (an ndarray ``X`` other than float32, a float64 tensor), the
    default :class:`~skfocal._module.MLP` trained in float32 is evaluated in float64
    (:meth:`~skfocal._module.MLP.forward_float64`, on a CPU or CUDA device): a row's outputs
    then do not depend on the rows batched with it, as scikit-learn's
    ``check_methods_subset_invariance`` asks (float32 matrix products choose their kernel by
    the number of rows, which moves a row's logits by up to about 1e-6). A float32 ``X``
    keeps the faster float32 forward pass (its outputs are float32 anyway), and other
    modules run in ``dtype``.
    """
    was_training = module.training
    module.eval()
    n = n_rows(X)
    is_tensor, out_device, out_dtype = output_like(X, dtype)
    wide = torch.float64 if out_dtype in (np.float64, torch.float64) else torch.float32
    run = _float64_forward(module, dtype, device) if wide == torch.float64 else None
    out = None
    try:
        for start in range(0, max(n, 1), batch_rows):
            chunk = take(X, slice(start, start + batch_rows))
            chunk = to_device(
                chunk, device, dtype, cast_integers, non_blocking=True, contiguous=True
            )
            z = kind.squeeze(forward(module, chunk) if run is None else run(chunk))
            z = z.to(dtype=torch.promote_types(z.dtype, wide))
            if is_tensor:
                z = z.to(device=out_device)
            if post is not None:
                z = post(z)
            if out is None:
                shape = (n,) + tuple(z.shape[1:])
                if is_tensor:
                    out = torch.empty(shape, dtype=out_dtype, device=out_device)
                else:
                    out = np.empty(shape, dtype=out_dtype)
            if is_tensor:
                out[start : start + len(z)] = z
            else:
                out[start : start + len(z)] = z.cpu().numpy()
    finally:
        module.train(was_training)
    return out


def _float64_forward(module, dtype, device):
    """``module.forward_float64`` for the default MLP trained in float32 on a CPU or CUDA
    device (devices without float64 excluded), else None."""
    if isinstance(module, MLP) and dtype == torch.float32:
        if torch.device(device).type in ("cpu", "cuda"):
            return module.forward_float64
    return None


class ValidScoring(Callback):
    """Scores the validation part once per epoch with a scikit-learn scorer.

    The logits of skorch's own validation pass are collected in ``on_batch_end`` (no second
    pass over the data) and handed to ``scorer`` through :class:`FrozenPredictions`, a
    stand-in estimator with the fitted ``classes_`` whose ``predict``/``predict_proba``/
    ``decision_function`` return those cached outputs, mapped like the fitted estimator's
    (the inverse link of the loss in force and ``class_prior``). The score is recorded in the
    history under ``name`` together with ``name + "_best"``, which ``PrintLog`` highlights.
    """

    def __init__(self, scorer, name, y_valid, classes, kind, sample_weight=None, posteriors=None):
        self.scorer = scorer
        self.name = name
        self.y_valid = y_valid
        self.classes = classes
        self.kind = kind
        self.posteriors = posteriors
        self.sample_weight = sample_weight

    def initialize(self):
        self.cache_ = []
        self.best_ = -np.inf
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.cache_ = []

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if not training and y_pred is not None:
            self.cache_.append(y_pred.detach())

    def on_epoch_end(self, net, **kwargs):
        if not self.cache_:
            return
        logits = torch.cat(self.cache_).double().cpu().numpy()
        self.cache_ = []
        posterior = None
        if self.posteriors:  # the outputs the estimator would give at this epoch
            posterior = self.posteriors[getattr(net, "phase_", 0)]
        frozen = FrozenPredictions(logits, self.classes, self.kind, posterior)
        placeholder = np.zeros((len(logits), 1))
        kwargs = {} if self.sample_weight is None else {"sample_weight": self.sample_weight}
        score = float(self.scorer(frozen, placeholder, self.y_valid, **kwargs))
        is_best = score > self.best_
        if is_best:
            self.best_ = score
        net.history.record(self.name, score)
        net.history.record(self.name + "_best", bool(is_best))


class AccelerateFocalNet(AccelerateMixin, FocalNet):
    """:class:`FocalNet` trained through Hugging Face ``accelerate`` (``accelerator=``)."""

    def train_step_single(self, batch, **fit_params):
        # AccelerateMixin's step with the batch weights of FocalNet's
        self._set_training(True)
        with self.accelerator.autocast():
            y_pred, loss = self._batch_loss(batch, True, **fit_params)
            self.accelerator.backward(loss)
        return {"loss": loss, "y_pred": y_pred}
