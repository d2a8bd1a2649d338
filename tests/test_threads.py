"""The thread policy: chosen per call from the work, only ever lowered, always restored."""

import threading

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

from skfocal import FocalClassifier, NonFiniteTrainingError, _threads, torch_threads
from skfocal._module import MLP


@pytest.fixture
def two_threads():
    """torch at two intra-op threads for the test (restored after), so a lowering shows."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def idle_machine(monkeypatch):
    """A machine of 8 idle CPUs, whatever runs beside the test."""
    monkeypatch.setattr(_threads, "usable_cpus", lambda: 8)
    monkeypatch.setattr(_threads, "busy_cpus", lambda: 0.0)


class _Recorder(nn.Module):
    """An MLP that records torch's thread count at every forward pass (fit and predict)."""

    seen = []

    def __init__(self, n_features, n_outputs, width=8):
        super().__init__()
        self.net = MLP(n_features, n_outputs, (width,))

    def forward(self, X):
        _Recorder.seen.append(torch.get_num_threads())
        return self.net(X)


class _Wide(_Recorder):
    def __init__(self, n_features, n_outputs):
        super().__init__(n_features, n_outputs, width=1024)


def _data(n=64, d=4):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=2, random_state=0)
    return X.astype(np.float32), y


# -- the choice --------------------------------------------------------------------------------
def test_network_and_module_work_agree():
    assert _threads.network_macs(20, (64,), 1) == 21 * 64 + 65 * 1
    assert _threads.module_macs(MLP(20, 1, (64,))) == _threads.network_macs(20, (64,), 1)
    bag = nn.Sequential(nn.EmbeddingBag(10_000, 32), nn.Linear(32, 4))
    assert _threads.module_macs(bag) == 32 + 33 * 4  # one row of the table per token


def test_tokens_per_row():
    ids = np.zeros((5, 12), dtype=np.int64)
    assert _threads.tokens_per_row(ids) == 12
    assert _threads.tokens_per_row({"input_ids": torch.as_tensor(ids), "mask": ids}) == 12
    assert _threads.tokens_per_row(np.zeros((5, 12), dtype=np.float32)) == 1


@pytest.mark.parametrize(
    "work, current, busy, expected",
    [
        (0, 8, 0.0, 1),
        (_threads.WORK_PER_THREAD, 8, 0.0, 1),  # one thread's worth
        (3 * _threads.WORK_PER_THREAD, 8, 0.0, 3),  # by size
        (100 * _threads.WORK_PER_THREAD, 8, 0.0, 8),  # at most torch's count
        (100 * _threads.WORK_PER_THREAD, 4, 0.0, 4),
        (100 * _threads.WORK_PER_THREAD, 8, 5.0, 3),  # the idle CPUs
        (100 * _threads.WORK_PER_THREAD, 8, 12.0, 1),  # oversubscribed: one
        (100 * _threads.WORK_PER_THREAD, 1, 0.0, 1),  # never raised
    ],
)
def test_choice_by_size_ceiling_and_idle_cpus(monkeypatch, work, current, busy, expected):
    monkeypatch.setattr(_threads, "usable_cpus", lambda: 8)
    monkeypatch.setattr(_threads, "busy_cpus", lambda: busy)
    assert _threads.choose_threads(work, current) == expected


def test_busy_cpus_reads_the_running_tasks(monkeypatch):
    busy = _threads.busy_cpus()
    assert 0 <= busy < 100_000 and _threads.usable_cpus() >= 1


@pytest.mark.parametrize("setting, expected", [(None, 6), (3, 3), (12, 12)])
def test_torch_threads_overrides_the_choice(setting, expected):
    with torch_threads(setting):
        assert _threads.choose_threads(10**12, current=6) == expected
    assert _threads.current_setting() == "auto"


@pytest.mark.parametrize("bad", [0, -1, 1.5, "all", True])
def test_torch_threads_refuses_bad_values(bad):
    with pytest.raises(ValueError, match=r"n_threads must be 'auto'.*got"):
        with torch_threads(bad):
            pass


# -- fits and predictions -----------------------------------------------------------------------
def test_fit_and_predict_lowered_then_restored(two_threads):
    X, y = _data()
    _Recorder.seen = []
    clf = FocalClassifier(module=_Recorder, max_epochs=2, random_state=0).fit(X, y)
    assert set(_Recorder.seen) == {1}  # a tiny network: one thread
    assert torch.get_num_threads() == 2
    _Recorder.seen = []
    clf.predict_proba(X)
    assert _Recorder.seen == [1] and torch.get_num_threads() == 2


def test_default_mlp_fit_is_lowered(two_threads, monkeypatch):
    seen = []
    original = _threads.threads_for

    def spy(work, device="cpu"):
        context = original(work, device)
        seen.append(work)
        return context

    monkeypatch.setattr("skfocal._engines._skorch.threads_for", spy)
    X, y = _data()
    FocalClassifier(max_epochs=1, random_state=0).fit(X, y)
    # batch (capped at the 64 rows) x the default MLP 4-64-1
    assert seen == [64 * _threads.network_macs(4, (64,), 1)]
    assert torch.get_num_threads() == 2


def test_large_work_uses_the_threads_there_are(two_threads, idle_machine):
    X, y = _data(n=2048, d=64)
    _Recorder.seen = []
    clf = FocalClassifier(module=_Wide, batch_size=2048, max_epochs=1, random_state=0)
    clf.fit(X, y)
    assert set(_Recorder.seen) == {2}
    _Recorder.seen = []
    clf.predict(X)
    assert _Recorder.seen == [2] and torch.get_num_threads() == 2


def test_never_raised(idle_machine):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X, y = _data(n=2048, d=64)
        _Recorder.seen = []
        clf = FocalClassifier(module=_Wide, batch_size=2048, max_epochs=1, random_state=0)
        clf.fit(X, y).predict_proba(X)
        assert set(_Recorder.seen) == {1} and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_restored_after_a_failing_fit(two_threads):
    X, y = _data()
    X[0, 0] = 1e30  # the loss overflows: training stops with an error
    clf = FocalClassifier(lr=1e6, max_epochs=3, random_state=0)
    with pytest.raises(NonFiniteTrainingError):
        clf.fit(X, y)
    assert torch.get_num_threads() == 2


class _Failing(_Recorder):
    def forward(self, X):
        if self.training:
            _Recorder.seen.append(torch.get_num_threads())
            raise RuntimeError("boom")
        return super().forward(X)


def test_restored_after_a_module_raises(two_threads):
    X, y = _data()
    _Recorder.seen = []
    with pytest.raises(RuntimeError, match="boom"):
        FocalClassifier(module=_Failing, max_epochs=1, random_state=0).fit(X, y)
    assert set(_Recorder.seen) == {1} and torch.get_num_threads() == 2  # dry forward, step


def test_explicit_count_for_a_block(two_threads):
    X, y = _data()
    _Recorder.seen = []
    with torch_threads(3):
        clf = FocalClassifier(module=_Recorder, max_epochs=1, random_state=0).fit(X, y)
    assert set(_Recorder.seen) == {3} and torch.get_num_threads() == 2
    _Recorder.seen = []
    with torch_threads(None):  # torch's own count
        clf.predict(X)
    assert _Recorder.seen == [2]


def test_thread_count_does_not_change_the_default_fit(two_threads):
    """The default network's fit is bit-identical at one and two threads (torch_threads)."""
    X, y = make_classification(n_samples=2000, n_features=20, weights=[0.9], random_state=0)
    fits = {}
    for n in (1, 2):
        with torch_threads(n):
            fits[n] = FocalClassifier(max_epochs=5, random_state=0).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(fits[1], fits[2])


def test_policy_decorator(two_threads):
    calls = []

    @_threads.thread_policy(lambda work: (work, "cpu"))
    def run(work):
        calls.append(torch.get_num_threads())
        raise KeyError(work)

    with pytest.raises(KeyError):
        run(0)
    assert calls == [1] and torch.get_num_threads() == 2


def test_other_devices_are_left_alone(two_threads):
    with _threads.threads_for(0, device="meta") as n:
        assert n == 2 == torch.get_num_threads()


# -- several threads of one process ----------------------------------------------------------------
def test_concurrent_fits_and_predictions_restore_each_thread(two_threads):
    """Fits and predictions in four threads at once: each thread's count is its own again
    afterwards and was never raised; predictions equal the sequential ones."""
    X, y = _data(n=300, d=6)
    fitted = FocalClassifier(max_epochs=2, random_state=0).fit(X, y)
    expected = fitted.predict_proba(X)
    barrier = threading.Barrier(4)
    report, errors = {}, []

    def work(i):
        try:
            torch.set_num_threads(2 if i % 2 else 1)  # each thread's own ceiling
            before = torch.get_num_threads()
            barrier.wait()
            for _ in range(3):
                FocalClassifier(max_epochs=2, random_state=i).fit(X, y)
                np.testing.assert_array_equal(fitted.predict_proba(X), expected)
            report[i] = (before, torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001 -- re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(before == after for before, after in report.values()), report
    assert torch.get_num_threads() == 2


def test_a_thread_started_inside_a_lowered_call_starts_from_its_count(two_threads):
    """torch (OpenMP) keeps the count per thread once a thread has asked for it, and gives a
    thread's first call the last count set anywhere: a thread whose first torch call falls
    inside another thread's lowered fit starts at the lowered count (documented in the user
    guide, "CPU threads"); threads started before or after are unaffected."""
    seen = {}
    inside = threading.Event()
    done = threading.Event()

    def first_call(name):
        seen[name] = torch.get_num_threads()

    def lowered():
        with _threads.threads_for(0):
            inside.set()
            done.wait()

    early = threading.Thread(target=first_call, args=("before",))
    early.start()
    early.join()
    holder = threading.Thread(target=lowered)
    holder.start()
    inside.wait()
    during = threading.Thread(target=first_call, args=("during",))
    during.start()
    during.join()
    done.set()
    holder.join()
    late = threading.Thread(target=first_call, args=("after",))
    late.start()
    late.join()
    assert seen == {"before": 2, "during": 1, "after": 2}


def test_a_process_wide_count_is_restored_by_the_last_call_out(two_threads, monkeypatch):
    """torch builds with one count for the process (a native thread pool): overlapping calls
    share the first call's count, and the last one out restores the count found."""
    monkeypatch.setattr(_threads, "per_thread_counts", lambda: False)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with _threads.threads_for(0) as n:
            seen["first"] = n
            first_in.set()
            second_in.wait()
        first_out.set()

    def second():
        first_in.wait()
        with _threads.threads_for(0) as n:
            seen["second"] = n
            second_in.set()
            first_out.wait()
            seen["after first left"] = torch.get_num_threads()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"first": 1, "second": 1, "after first left": 1}
    assert torch.get_num_threads() == 2
