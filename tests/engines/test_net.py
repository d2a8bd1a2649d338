"""The tensor data path of the internal skorch net: slicing iterator, weighted loss, streaming."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from skfocal._engines._net import (
    Batch,
    BatchIterator,
    FitData,
    FocalNet,
    TensorPart,
    predict_logits,
)
from skfocal._sampling import EpochSampler
from skfocal._targets import BINARY, MULTICLASS
from skfocal.losses import BinaryFocalLoss


def _data(n=10, weights=True):
    X = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    y = (torch.arange(n) % 2).float()
    w = torch.linspace(0.5, 1.5, n) if weights else None
    sampler = EpochSampler(n, torch.Generator().manual_seed(0))
    return FitData(X, y, w, None, None, sampler)


def test_iterator_slices_rows_and_passes_weights():
    data = _data()
    it = BatchIterator(TensorPart(data, None, data.sampler), 4, True)
    batches = list(it)
    assert len(it) == 3 and [len(xb) for xb, _ in batches] == [4, 4, 2]
    rows = torch.cat([xb[:, 0] / 2 for xb, _ in batches]).long()
    assert sorted(rows.tolist()) == list(range(10))  # a permutation: every row once
    for batch in batches:
        xb, yb = batch  # callbacks and the module see skorch's (X_batch, y_batch)
        r = (xb[:, 0] / 2).long()
        assert torch.equal(yb, data.y[r]) and torch.equal(batch.weights, data.w[r])


def test_validation_iterator_keeps_order_and_subset():
    data = _data()
    part = TensorPart(data, torch.tensor([1, 3, 8]))
    ((xb, yb),) = list(BatchIterator(part, 4, False))
    assert torch.equal(xb, data.X[[1, 3, 8]])


def test_contiguous_rows_are_views():
    data = _data()
    ((xb, _),) = list(BatchIterator(TensorPart(data, None), 16, False))
    assert xb.data_ptr() == data.X.data_ptr()


def test_sharded_iterator_splits_epoch():
    data = _data()
    parts = []
    for rank in (0, 1):
        data.sampler.generator.manual_seed(0)
        it = BatchIterator(TensorPart(data, None, data.sampler), 10, True, shard=(rank, 2))
        parts.append(torch.cat([xb for xb, _ in it]))
    assert len(parts[0]) == len(parts[1]) == 5
    assert not set(parts[0][:, 0].tolist()) & set(parts[1][:, 0].tolist())


def _net(**kwargs):
    return FocalNet(
        module=torch.nn.Linear(2, 1),
        criterion=BinaryFocalLoss(gamma=0.0, reduction="none"),
        kind=BINARY,
        train_split=None,
        **kwargs,
    ).initialize()


def test_weighted_loss_is_mean_of_weighted_elements():
    net = _net()
    z, y = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([1.0, 0.0, 0.0])
    w = torch.tensor([1.0, 2.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    torch.testing.assert_close(net.weighted_loss(z, y, w), (bce * w).mean())
    torch.testing.assert_close(net.get_loss(z, y), bce.mean())  # skorch's hook: unweighted


def test_training_step_reads_the_weights_of_the_batch():
    net = _net()
    X, y, w = torch.ones(3, 2), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 2.0, 0.0])
    step = net.train_step_single(Batch(X, y, w))
    with torch.no_grad():
        z = net.module_(X).squeeze(1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    torch.testing.assert_close(step["loss"].detach(), (bce * w).mean())


def test_criterion_schedule_switches_phases_and_keeps_the_optimizer(seed):
    from skfocal import FocalClassifier

    X = seed.normal(size=(64, 3)).astype(np.float32)
    y = np.array([0, 1] * 32)
    seen = []

    class Probe(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen.append((net.train_criterion_.gamma, id(net.optimizer_)))

    FocalClassifier(
        warmup_epochs=2, gamma=2.0, max_epochs=4, callbacks=[Probe()], random_state=0
    ).fit(X, y)
    assert [gamma for gamma, _ in seen] == [0.0, 0.0, 2.0, 2.0]
    assert len({opt for _, opt in seen}) == 1  # one optimizer (and its state) throughout


def test_predict_logits_streams_and_keeps_dtype(seed):
    module = torch.nn.Linear(3, 4)
    X = seed.normal(size=(11, 3))
    out = predict_logits(
        module, X, kind=MULTICLASS, device="cpu", dtype=torch.float32, batch_rows=4
    )
    assert out.dtype == np.float64 and out.shape == (11, 4)
    with torch.no_grad():
        ref = module(torch.from_numpy(X).float()).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    Xt = torch.from_numpy(X.astype(np.float32))
    out_t = predict_logits(
        module, Xt, kind=MULTICLASS, device="cpu", dtype=torch.float32, batch_rows=5
    )
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    assert module.training  # mode restored


class ModeRecorder(nn.Module):
    """Records the train/eval mode of every forward call."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.out = nn.Linear(n_features, n_outputs)
        self.modes = []

    def forward(self, X):
        self.modes.append(self.training)
        return self.out(X)


def test_training_and_validation_batches_run_in_the_right_mode(seed):
    from skfocal import FocalClassifier

    X = seed.normal(size=(80, 3)).astype(np.float32)
    y = np.array([0, 1] * 40)
    clf = FocalClassifier(
        module=ModeRecorder, max_epochs=3, batch_size=16, early_stopping=True, random_state=0
    ).fit(X, y)
    modes = clf.net_.module_.modes
    # one eval-mode call on 2 rows checks the module's output before training; then per
    # epoch ceil(72 / 16) = 5 training batches and one validation batch
    assert modes == [False] + ([True] * 5 + [False]) * 3


class EventRecorder(Callback):
    """Counts every hook skorch calls on a callback."""

    def initialize(self):
        self.events = []
        return self

    def on_train_begin(self, net, **kwargs):
        self.events.append("train_begin")

    def on_epoch_begin(self, net, **kwargs):
        self.events.append("epoch_begin")

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        assert len(batch) == 2  # (X_batch, y_batch), as skorch gives it
        self.events.append(("batch_begin", training))

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        assert all(p.grad is not None for _, p in named_parameters)
        self.events.append("grad")

    def on_batch_end(self, net, batch=None, training=False, loss=None, y_pred=None, **kwargs):
        assert loss is not None and y_pred is not None
        self.events.append(("batch_end", training))

    def on_epoch_end(self, net, **kwargs):
        self.events.append("epoch_end")

    def on_train_end(self, net, **kwargs):
        self.events.append("train_end")


def test_user_callback_still_sees_every_event(seed):
    from skfocal import FocalClassifier

    X = seed.normal(size=(80, 3)).astype(np.float32)
    y = np.array([0, 1] * 40)
    recorder = EventRecorder()
    clf = FocalClassifier(
        max_epochs=2, batch_size=16, early_stopping=True, callbacks=[recorder], random_state=0
    ).fit(X, y)
    events = dict(clf.net_.callbacks_)["EventRecorder"].events
    # per epoch: ceil(72 / 16) = 5 training batches (begin, grad, end), 1 validation batch
    train = [("batch_begin", True), "grad", ("batch_end", True)] * 5
    epoch = ["epoch_begin", *train, ("batch_begin", False), ("batch_end", False), "epoch_end"]
    assert events == ["train_begin", *epoch, *epoch, "train_end"]
    assert len(clf.net_.history[-1, "batches"]) == 6  # skorch's batch records are kept


class BatchEndListener(Callback):
    """Listens to ``on_batch_end`` only: the epoch then runs through skorch's per-batch path."""

    def on_batch_end(self, net, **kwargs):
        pass


def _fit_pair(X, y, **params):
    """The same fit through the lean epoch and through skorch's per-batch path."""
    from skfocal import FocalClassifier

    lean = FocalClassifier(random_state=0, **params).fit(X, y)
    skorch_path = FocalClassifier(random_state=0, callbacks=[BatchEndListener()], **params)
    return lean, skorch_path.fit(X, y)


@pytest.mark.parametrize(
    "params",
    [
        {},  # binary focal: the mean twin of the criterion
        {"loss": "cross_entropy"},
        {"class_weight": "balanced", "sampler": "oversample"},  # weighted batches
        {"multiclass": True},  # softmax focal, mean twin
        {"multiclass": True, "alpha": "balanced"},  # softmax with alpha: no twin
        {"multiclass": True, "loss": "margin"},
        {"multilabel": True},
        {"warmup_epochs": 1},
    ],
    ids=str,
)
def test_lean_epoch_trains_like_skorchs_epoch(seed, params):
    params = dict(params)
    n = 150
    X = seed.normal(size=(n, 4)).astype(np.float32)
    if params.pop("multiclass", False):
        y = np.arange(n) % 3
    elif params.pop("multilabel", False):
        y = np.stack([np.arange(n) % 2, (np.arange(n) // 2) % 2], axis=1)
    else:
        y = (np.arange(n) % 5 == 0).astype(int)
    X[:, 0] += y if y.ndim == 1 else y[:, 0]
    lean, reference = _fit_pair(X, y, max_epochs=3, batch_size=32, **params)
    assert "lean_step_" in vars(lean.net_) and "lean_step_" not in vars(reference.net_)
    for a, b in zip(lean.net_.history, reference.net_.history, strict=True):
        assert len(a["batches"]) == len(b["batches"]) == a["train_batch_count"]
        for ra, rb in zip(a["batches"], b["batches"], strict=True):
            assert ra.keys() == rb.keys() == {"train_loss", "train_batch_size"}
            assert ra["train_batch_size"] == rb["train_batch_size"]
            assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(
        lean.decision_function(X), reference.decision_function(X), rtol=0, atol=1e-5
    )


def test_lean_epoch_stops_on_a_non_finite_loss_naming_the_batch():
    from skfocal import FocalClassifier, NonFiniteTrainingError

    X, y = np.array([[0.0], [1.0]] * 20), np.array([0, 1] * 20)
    with pytest.raises(NonFiniteTrainingError, match=r"loss became nan at epoch 1, batch 3 \(lr="):
        FocalClassifier(lr=1e12, max_epochs=20, batch_size=8, random_state=0).fit(X, y)


@pytest.mark.parametrize("weights", [True, False])
def test_iterator_gathers_chunks_of_batches_as_views(monkeypatch, weights):
    import skfocal._engines._net as net_module

    data = _data(n=50, weights=weights)
    sampler = EpochSampler(47, torch.Generator())
    order = []
    for chunk_bytes in (1 << 20, 2 * 8 * 4):  # one chunk; chunks of two batches of 4 rows
        monkeypatch.setattr(net_module, "CHUNK_BYTES", chunk_bytes)
        sampler.generator.manual_seed(0)
        it = BatchIterator(TensorPart(data, torch.arange(3, 50), sampler), 4, True)
        batches = list(it)
        assert len(batches) == len(it) == 12 and [len(b[0]) for b in batches][-1] == 3
        for batch in batches:
            xb, yb = batch
            r = (xb[:, 0] / 2).long()
            assert torch.equal(yb, data.y[r]) and r.min() >= 3
            assert batch.weights is None if not weights else torch.equal(batch.weights, data.w[r])
        order.append(torch.cat([b[0] for b in batches]))
        if chunk_bytes < 1 << 20:  # batches of a chunk are views of one gathered block
            assert batches[1][0].data_ptr() == batches[0][0].data_ptr() + 4 * 2 * 4
    assert torch.equal(order[0], order[1])  # chunking changes nothing in the batches


def test_non_finite_weights_stop_training_after_the_epoch():
    from skfocal import NonFiniteTrainingError

    net = _net()
    net.history.new_epoch()
    net._check_weights(3)  # finite: nothing happens
    with torch.no_grad():
        net.module_.weight[0, 1] = float("inf")
    with pytest.raises(NonFiniteTrainingError, match="weights became non-finite during epoch 1"):
        net._check_weights(3)


def test_pickled_net_leaves_the_lean_loop_caches_behind(seed):
    import pickle

    from skfocal import FocalClassifier

    X = seed.normal(size=(60, 3)).astype(np.float32)
    y = np.array([0, 1, 1] * 20)
    clf = FocalClassifier(max_epochs=2, batch_size=16, random_state=0).fit(X, y)
    assert {"lean_step_", "mean_criteria_"} <= set(vars(clf.net_))
    restored = pickle.loads(pickle.dumps(clf))
    assert not {"lean_step_", "mean_criteria_"} & set(vars(restored.net_))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize(
    "params, n_classes, twin",
    [
        ({}, 2, "SigmoidFocalMean"),
        ({"class_weight": "balanced"}, 2, "SigmoidFocalMean"),  # weights per sample: no twin use
        ({}, 3, "SoftmaxFocalMean"),
        ({"loss": "cross_entropy"}, 3, "SoftmaxFocalMean"),
        ({"alpha": "balanced"}, 3, None),  # softmax alpha: its mean divides by sum(alpha)
        ({"loss": "margin"}, 2, None),
    ],
)
def test_lean_epochs_train_with_the_criterions_own_lean_mean(seed, params, n_classes, twin):
    """The lean epoch asks the criterion for its lean batch mean (``_lean_mean()``): a focal
    criterion without softmax alpha has one, the others none; a change that lost it would
    still train (through the module), only slower."""
    from skfocal import FocalClassifier

    X = seed.normal(size=(60, 3)).astype(np.float32)
    y = np.arange(60) % n_classes
    clf = FocalClassifier(max_epochs=2, batch_size=16, random_state=0, **params).fit(X, y)
    twins = [entry[1] for entry in clf.net_.mean_criteria_.values()]
    assert [None if t is None else type(t).__name__ for t in twins] == [twin]


# -- the moving average of the weights (FocalClassifier(weight_averaging=...)) -----------------
class _RecordSteps(Callback):
    """The module's weights at the start and after every training step (per-batch path)."""

    def on_train_begin(self, net, **kwargs):
        self.initial_ = [p.detach().clone() for p in net.module_.parameters()]
        self.steps_ = []

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.steps_.append([p.detach().clone() for p in net.module_.parameters()])


def _averages(record, horizon_epochs, steps_per_epoch):
    """The moving average after each epoch, recomputed from the recorded weights."""
    weight = 1.0 / (horizon_epochs * steps_per_epoch)
    average = [t.clone() for t in record.initial_]
    per_epoch = []
    for k, weights in enumerate(record.steps_):
        for a, w in zip(average, weights, strict=True):
            a.lerp_(w, weight)
        if (k + 1) % steps_per_epoch == 0:
            per_epoch.append([a.clone() for a in average])
    return per_epoch


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("horizon", [0.5, 3.0])
def test_weight_averaging_keeps_the_average_of_the_kept_epoch(seed, early_stopping, horizon):
    from sklearn.datasets import make_classification

    from skfocal import FocalClassifier

    X, y = make_classification(2_000, n_features=8, weights=[0.8], random_state=0)
    params = dict(dtype="float64", max_epochs=12, random_state=0, weight_averaging=horizon)
    if early_stopping:  # patience 2 on a noisy small set: the kept epoch is not the last
        params.update(early_stopping=True, n_iter_no_change=2, lr=0.05)
    else:
        params.update(early_stopping=False)
    clf = FocalClassifier(callbacks=[("record", _RecordSteps())], **params).fit(X, y)
    record = dict(clf.net_.callbacks_)["record"]
    n_train = 1_800 if early_stopping else 2_000
    per_epoch = _averages(record, horizon, -(-n_train // 256))
    assert len(per_epoch) == clf.n_iter_
    kept = clf.n_iter_
    if early_stopping:
        kept = dict(clf.net_.callbacks_)["early_stopping"].best_epoch_
        assert kept < clf.n_iter_  # the restore is exercised
    fitted = list(clf.net_.module_.parameters())
    for got, want in zip(fitted, per_epoch[kept - 1], strict=True):
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=1e-12)
    # the lean loop (no per-batch listener) trains and averages the same
    lean = FocalClassifier(**params).fit(X, y)
    assert lean.n_iter_ == clf.n_iter_
    for got, want in zip(lean.net_.module_.parameters(), fitted, strict=True):
        torch.testing.assert_close(got.detach(), want.detach(), rtol=0, atol=1e-12)


def test_weight_averaging_validates_the_average(seed):
    from sklearn.datasets import make_classification

    from skfocal import FocalClassifier
    from skfocal._plan import make_plan

    X, y = make_classification(2_000, n_features=8, weights=[0.8], random_state=0)
    params = dict(dtype="float64", max_epochs=4, early_stopping=True, random_state=0)
    clf = FocalClassifier(weight_averaging=1.0, callbacks=[("record", _RecordSteps())], **params)
    clf.fit(X, y)
    record = dict(clf.net_.callbacks_)["record"]
    averages = _averages(record, 1.0, -(-1_800 // 256))
    plan, _ = make_plan(clf, X, y)  # the same seeded split as the fit's
    rows = torch.as_tensor(plan.valid_idx)
    X_valid = torch.as_tensor(X, dtype=torch.float64)[rows]
    y_valid = torch.as_tensor(plan.y_enc, dtype=torch.float64)[rows]
    net = clf.net_
    for epoch, average in enumerate(averages):
        with torch.no_grad():
            for p, a in zip(net.module_.parameters(), average, strict=True):
                p.copy_(a)
            loss = float(net.get_loss(net.module_(X_valid).squeeze(-1), y_valid))
        assert net.history[epoch, "valid_loss"] == pytest.approx(loss, rel=1e-10)


def test_weight_averaging_off_is_the_trained_network(seed):
    from sklearn.datasets import make_classification

    from skfocal import FocalClassifier

    X, y = make_classification(600, n_features=5, random_state=0)
    params = dict(dtype="float64", max_epochs=3, random_state=0)
    plain = FocalClassifier(**params).fit(X, y)
    recorded = FocalClassifier(callbacks=[("record", _RecordSteps())], **params).fit(X, y)
    last = dict(recorded.net_.callbacks_)["record"].steps_[-1]
    for got, want in zip(plain.net_.module_.parameters(), last, strict=True):
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=1e-12)
    assert "average_" not in plain.net_.__dict__ or plain.net_.average_ is None
