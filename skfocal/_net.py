"""The internal skorch net of :class:`~skfocal.FocalClassifier` and its tensor data path.

The training tensors are moved to the training device once per ``fit``. skorch's dataset and
``DataLoader`` are bypassed through two narrow hooks: :meth:`FocalNet.get_split_datasets`
returns index views of those tensors and :meth:`FocalNet.get_iterator` returns
:class:`BatchIterator`, which yields minibatches as index slices (one ``index_select`` per
batch, no per-sample ``__getitem__`` and no ``default_collate``). Everything else -- the epoch
loop, callbacks, history, early stopping, printing -- is skorch's own.

A batch is skorch's usual ``(X_batch, y_batch)``, so skorch callbacks (e.g. a cached
``EpochScoring``) see what they expect. The per-sample weights of the batch travel beside it:
the iterator stores them on the net just before yielding the batch, and
:meth:`FocalNet.get_loss` calls the criterion with ``reduction="none"`` and returns the mean of
``w * loss`` over the batch (``w`` normalised to mean 1 over the training rows, or None).
"""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.hf import AccelerateMixin

PREDICT_BATCH_ROWS = 65536


class FitData:
    """Device tensors of one ``fit`` and the positions of its training and validation rows."""

    def __init__(self, X, y, w, train_idx, valid_idx, sampler):
        self.X, self.y, self.w = X, y, w
        self.train_idx, self.valid_idx = train_idx, valid_idx
        self.sampler = sampler

    def __len__(self):
        return len(self.X)


class TensorPart:
    """The rows ``idx`` (all rows if None) of the fit tensors: a 'dataset' that copies nothing."""

    def __init__(self, data, idx, sampler=None):
        self.X, self.y, self.w = data.X, data.y, data.w
        self.idx = idx
        self.sampler = sampler

    def __len__(self):
        return len(self.X) if self.idx is None else len(self.idx)


class BatchIterator:
    """Yields ``(X[b], y[b])`` for index batches ``b`` of a :class:`TensorPart`.

    In training every epoch draws its order from ``part.sampler`` (positions into the part)
    on the device; otherwise rows are visited in order. With ``shard=(rank, world)`` each
    process keeps every ``world``-th position of the epoch (data-parallel training).
    ``set_weights(w[b])`` is called before each batch is yielded.
    """

    def __init__(self, part, batch_size, training, shard=None, set_weights=None):
        self.part = part
        self.batch_size = batch_size
        self.training = training
        self.shard = shard
        self.set_weights = set_weights

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

    def __iter__(self):
        part = self.part
        idx = self._positions()
        n = len(part) if idx is None else len(idx)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if idx is None:  # contiguous rows: views, no copy
                Xb, yb = part.X[start:stop], part.y[start:stop]
                wb = None if part.w is None else part.w[start:stop]
            else:
                b = idx[start:stop]
                Xb, yb = part.X.index_select(0, b), part.y.index_select(0, b)
                wb = None if part.w is None else part.w.index_select(0, b)
            if self.set_weights is not None:
                self.set_weights(wb)
            yield Xb, yb


class FocalNet(NeuralNet):
    """skorch ``NeuralNet`` whose data path, loss and output nonlinearity suit FocalClassifier.

    Parameters beyond skorch's
    --------------------------
    task : {"binary", "multiclass", "multilabel"}
        Decides the output shape (one squeezed logit for binary) and the nonlinearity.
    warmup_criterion : nn.Module or None
        Criterion (``reduction="none"``) used in training for the first ``warmup_epochs``.
    warmup_epochs : int
        Number of epochs trained with ``warmup_criterion``.
    shard : tuple or None
        ``(rank, world_size)`` of data-parallel training.
    """

    def __init__(self, *args, task, warmup_criterion=None, warmup_epochs=0, shard=None, **kwargs):
        # set before skorch's __init__, which treats later nn.Module attributes as components
        self.task = task
        self.warmup_criterion = warmup_criterion
        self.warmup_epochs = warmup_epochs
        self.shard = shard
        super().__init__(*args, **kwargs)

    # -- data path ---------------------------------------------------------------------------
    def get_split_datasets(self, X, y=None, **fit_params):
        train = TensorPart(X, X.train_idx, X.sampler)
        valid = None if X.valid_idx is None else TensorPart(X, X.valid_idx)
        return train, valid

    def _set_batch_weights(self, weights):
        self.batch_weights_ = weights

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.batch_weights_ = None  # do not keep (or pickle) the last batch's weights
        return super().on_train_end(net, X=X, y=y, **kwargs)

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
        return BatchIterator(dataset, batch_size, training, shard, self._set_batch_weights)

    def _set_training(self, training=True):
        # skorch switches every module and criterion to train/eval mode at every batch, which
        # walks all submodules (about a tenth of a small model's fit); switch only when the
        # mode of one of them differs
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module) and module.training != training:
                return super()._set_training(training)
        return None

    # -- model output and loss ---------------------------------------------------------------
    def infer(self, x, **fit_params):
        out = self.module_(x, **fit_params)
        if self.task == "binary" and out.dim() == 2 and out.shape[1] == 1:
            out = out.squeeze(1)
        return out

    def _active_criterion(self, training):
        if training and self.warmup_criterion is not None:
            if len(self.history) <= self.warmup_epochs:  # history holds the current epoch
                return self.warmup_criterion_
        return self.criterion_

    def initialize_criterion(self):
        super().initialize_criterion()
        if self.warmup_criterion is not None:
            # registered by skorch as a second criterion: moved to the device with the first
            self.warmup_criterion_ = self.warmup_criterion
        return self

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = self._active_criterion(training)(y_pred, y_true)
        wb = getattr(self, "batch_weights_", None)
        if loss.dim() == 2:  # multilabel: mean over the labels of each sample
            loss = loss.mean(dim=1)
        if wb is not None:
            loss = loss * wb
        return loss.mean()


def binary_proba(z):
    """Probabilities ``[1 - sigmoid(z), sigmoid(z)]`` of a binary logit, shape (N, 2)."""
    return torch.stack([torch.sigmoid(-z), torch.sigmoid(z)], dim=-1)


def softmax_proba(z):
    """Softmax over the last dimension."""
    return torch.softmax(z, dim=-1)


def output_nonlinearity(task):
    """Logits -> probabilities: sigmoid pair for binary, softmax, or per-label sigmoid.

    Module-level functions, so that the fitted net stays picklable.
    """
    return {"binary": binary_proba, "multiclass": softmax_proba}.get(task, torch.sigmoid)


@torch.inference_mode()
def predict_logits(module, X, *, task, device, dtype, post=None, batch_rows=PREDICT_BATCH_ROWS):
    """Stream ``X`` (ndarray or tensor) through ``module`` in batches of ``batch_rows`` rows.

    Each batch is moved to ``device``, cast to ``dtype`` and evaluated; ``post`` (e.g. the
    softmax) is applied per batch, and the result is written into an output allocated once,
    on ``X``'s device (a tensor) or as an ndarray, in ``X``'s floating dtype (``dtype`` for
    integer tensors). The only full-size arrays are ``X`` and the result.
    """
    was_training = module.training
    module.eval()
    n = X.shape[0]
    is_tensor = isinstance(X, torch.Tensor)
    if is_tensor:
        out_dtype = X.dtype if X.is_floating_point() else dtype
    else:
        out_dtype = X.dtype if X.dtype.kind == "f" else np.float64
    out = None
    try:
        for start in range(0, max(n, 1), batch_rows):
            chunk = X[start : start + batch_rows]
            if not is_tensor:
                chunk = torch.from_numpy(np.ascontiguousarray(chunk))
            z = module(chunk.to(device=device, dtype=dtype, non_blocking=True))
            if task == "binary" and z.dim() == 2 and z.shape[1] == 1:
                z = z.squeeze(1)
            if is_tensor:
                z = z.to(device=X.device, dtype=out_dtype)
            else:
                z = z.to(dtype=torch.float64 if out_dtype == np.float64 else torch.float32)
            if post is not None:
                z = post(z)
            if out is None:
                shape = (n,) + tuple(z.shape[1:])
                if is_tensor:
                    out = torch.empty(shape, dtype=z.dtype, device=X.device)
                else:
                    out = np.empty(shape, dtype=out_dtype)
            if is_tensor:
                out[start : start + len(z)] = z
            else:
                out[start : start + len(z)] = z.cpu().numpy()
    finally:
        module.train(was_training)
    return out


class ValidScoring(Callback):
    """Scores the validation part once per epoch with a scikit-learn scorer.

    The logits of skorch's own validation pass are collected in ``on_batch_end`` (no second
    pass over the data) and handed to ``scorer`` through :class:`FrozenPredictions`, a
    stand-in estimator with the fitted ``classes_`` whose ``predict``/``predict_proba``/
    ``decision_function`` return those cached outputs. The score is recorded in the history
    under ``name`` together with ``name + "_best"``, which ``PrintLog`` highlights.
    """

    def __init__(self, scorer, name, y_valid, classes, task, sample_weight=None):
        self.scorer = scorer
        self.name = name
        self.y_valid = y_valid
        self.classes = classes
        self.task = task
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
        frozen = FrozenPredictions(logits, self.classes, self.task)
        placeholder = np.zeros((len(logits), 1))
        kwargs = {} if self.sample_weight is None else {"sample_weight": self.sample_weight}
        score = float(self.scorer(frozen, placeholder, self.y_valid, **kwargs))
        is_best = score > self.best_
        if is_best:
            self.best_ = score
        net.history.record(self.name, score)
        net.history.record(self.name + "_best", bool(is_best))


class FrozenPredictions:
    """Minimal fitted classifier returning precomputed outputs (for scikit-learn scorers)."""

    _estimator_type = "classifier"

    def __init__(self, logits, classes, task):
        self.logits = logits
        self.classes_ = classes
        self.task = task

    def __sklearn_tags__(self):
        from sklearn.base import BaseEstimator, ClassifierMixin

        class _Tagged(ClassifierMixin, BaseEstimator):
            pass

        return _Tagged().__sklearn_tags__()

    def decision_function(self, X):
        return self.logits

    def predict_proba(self, X):
        return output_nonlinearity(self.task)(torch.from_numpy(self.logits)).numpy()

    def predict(self, X):
        z = self.logits
        if self.task == "binary":
            return self.classes_[(z > 0).astype(int)]
        if self.task == "multilabel":
            return (z > 0).astype(int)
        return self.classes_[z.argmax(axis=1)]


class AccelerateFocalNet(AccelerateMixin, FocalNet):
    """:class:`FocalNet` trained through Hugging Face ``accelerate`` (``accelerator=``)."""
