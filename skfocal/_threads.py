r"""How many intra-op threads torch uses for skfocal's fits and predictions.

torch runs every operation at its global intra-op thread count
(:func:`torch.get_num_threads`), whatever the size of the operation. A small network gains
nothing from several threads (its operations are too short to share), and loses a lot when
the cores are shared with other work -- a notebook server, CI, the workers of a search:
a thread waiting at the end of every parallel operation for a descheduled partner makes each
step many times slower. Each fit and prediction of skfocal therefore runs under
:func:`threads_for`, which lowers the count for the duration of the call to

.. math::

    n = \max\Bigl(1,\ \min\bigl(n_{\text{torch}},\
        \lfloor W / W_1 \rfloor,\ n_{\text{idle}}\bigr)\Bigr),

where :math:`n_{\text{torch}}` is :func:`torch.get_num_threads` when the call starts (the
ceiling: whatever set it -- ``torch.set_num_threads``, ``OMP_NUM_THREADS``, a
``threadpoolctl`` limit, joblib's limit in its workers -- is respected, never exceeded),
:math:`W` the multiply-adds of one step's forward pass (rows per step :math:`\times` the
network's multiply-adds per row, :math:`\times` the members of a stacked model),
:math:`W_1` = :data:`WORK_PER_THREAD` the work that pays for one more thread, and
:math:`n_{\text{idle}}` the CPUs this process may use (``joblib.cpu_count``: affinity and
cgroup quota) less the tasks other programs keep running on them (the larger of the tasks
runnable now, from ``/proc/loadavg``, and the one-minute load average less this process's
own CPU use). The count is restored when the
call returns or raises. :func:`torch_threads` overrides the choice for the calls in its
block: a fixed count, or None to leave torch's count alone.

Thread counts and results: the default network's fits are bit-identical at any count (its
matrix products are too small to be split along their inner dimension); a wide network's
float32 matrix products can be split differently at another count, which moves its weights
in the last digits (about 1e-5 after five epochs of a 512-unit layer at batch 1024).
"""

from __future__ import annotations

import collections
import contextvars
import functools
import math
import os
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from numbers import Integral

import torch
from torch import nn

#: forward multiply-adds of one step that pay for one more intra-op thread
WORK_PER_THREAD = 1 << 22

_SETTING = contextvars.ContextVar("skfocal_torch_threads", default="auto")


def check_n_threads(n_threads):
    """Raise for an ``n_threads`` that is not ``"auto"``, None or a positive int."""
    ok = n_threads is None or (isinstance(n_threads, str) and n_threads == "auto")
    ok = ok or (
        isinstance(n_threads, Integral) and not isinstance(n_threads, bool) and n_threads >= 1
    )
    if not ok:
        raise ValueError(
            "n_threads must be 'auto' (choose from the size of the work), None (leave torch's "
            f"count as it is) or a positive int, got {n_threads!r}."
        )
    return n_threads


@contextmanager
def torch_threads(n_threads="auto"):
    """Set how many intra-op threads skfocal's fits and predictions use in this block.

    A context manager (and decorator), like :func:`threadpoolctl.threadpool_limits`. Inside
    it, every :meth:`~skfocal.FocalClassifier.fit`, prediction and
    :class:`~skfocal.BatchedGridSearchCV` run in this thread (or asyncio task) uses
    ``n_threads`` torch threads, and the count is restored when each call ends. The setting is
    passed on to the workers of a batched search; other threads and processes keep their own.

    Parameters
    ----------
    n_threads : "auto", None or int, default="auto"
        ``"auto"``: chosen per call from the size of the work and the idle CPUs, at most
        :func:`torch.get_num_threads` (see :mod:`skfocal._threads`). None: torch's count as
        it is (``torch.set_num_threads``, ``OMP_NUM_THREADS``). An int: exactly that many,
        also above torch's count.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skfocal import FocalClassifier, torch_threads
    >>> X, y = np.array([[0.0], [1.0]] * 20), np.array([0, 1] * 20)
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     clf = FocalClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> torch.get_num_threads() == before
    True
    """
    token = _SETTING.set(check_n_threads(n_threads))
    try:
        yield
    finally:
        _SETTING.reset(token)


def current_setting():
    """The :func:`torch_threads` setting in force here (``"auto"`` unless set)."""
    return _SETTING.get()


# -- the size of the work ------------------------------------------------------------------------
def network_macs(n_features, hidden_layer_sizes, n_outputs):
    """Multiply-adds (and bias adds) of the default MLP's forward pass, per row."""
    widths = [int(n_features), *(int(h) for h in hidden_layer_sizes), int(n_outputs)]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=False))


def module_macs(module):
    """Multiply-adds of ``module``'s forward pass per row (or token), estimated.

    The parameter count, which is exact for linear layers and MLPs, with an embedding table
    counted as one row of it (a lookup reads one row per token, not the whole table).
    """
    embedded, macs = set(), 0
    for sub in module.modules():
        if isinstance(sub, (nn.Embedding, nn.EmbeddingBag)):
            macs += sub.embedding_dim
            embedded.add(id(sub.weight))
    return macs + sum(p.numel() for p in module.parameters() if id(p) not in embedded)


def tokens_per_row(X):
    """Positions per row of integer or dict input (a sequence's length); 1 for features."""
    values = X.values() if isinstance(X, Mapping) else [X]
    lengths = [
        int(v.shape[1])
        for v in values
        if getattr(v, "ndim", 0) == 2 and _is_integer(getattr(v, "dtype", None))
    ]
    return max(lengths, default=1)


def _is_integer(dtype):
    if isinstance(dtype, torch.dtype):
        return not dtype.is_floating_point and not dtype.is_complex
    return getattr(dtype, "kind", "f") in "iub"


# -- the choice ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def usable_cpus():
    """CPUs this process may use: affinity and cgroup quota (``joblib.cpu_count``)."""
    from joblib import cpu_count

    return max(1, int(cpu_count()))


_LOAD_TTL = 0.1  # seconds a reading of the load serves (calls in a burst read it once)
_load = {"at": -math.inf, "busy": 0.0}
_own_cpu = collections.deque()  # (monotonic, process_time) of this process, every 5 s


def busy_cpus():
    """CPUs that other running tasks keep busy, of those this process may use.

    The larger of two readings, so that neither a lull of a second nor a burst of this
    process's own work misleads it: the tasks runnable right now but the caller (Linux:
    ``/proc/loadavg``), and the one-minute load average less this process's own share of it
    (the CPU seconds it used per second over about the last minute). Scaled from the
    machine's CPUs to this process's share; 0 where the system tells neither. Read at most
    every 0.1 s.
    """
    now = time.monotonic()
    if now - _load["at"] > _LOAD_TTL:
        _load["busy"], _load["at"] = _read_busy(now), now
    return _load["busy"]


def _read_busy(now):
    readings = []
    try:
        with open("/proc/loadavg") as fh:
            readings.append(int(fh.read().split()[3].split("/")[0]) - 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        readings.append(os.getloadavg()[0] - _own_cpu_rate(now))
    except (AttributeError, OSError):
        pass
    if not readings:
        return 0.0
    return max(0.0, *readings) * usable_cpus() / max(os.cpu_count() or 1, usable_cpus())


def _own_cpu_rate(now):
    """This process's CPU seconds per second over about the last minute (its lifetime if
    shorter): its share of the one-minute load average."""
    cpu = time.process_time()
    if not _own_cpu or now - _own_cpu[-1][0] >= 5.0:
        _own_cpu.append((now, cpu))
    while len(_own_cpu) > 1 and now - _own_cpu[1][0] >= 60.0:
        _own_cpu.popleft()
    start, start_cpu = _own_cpu[0]
    if now - start < 1.0:  # too recent to tell: count the caller's thread as busy here
        return 1.0
    return (cpu - start_cpu) / (now - start)


def choose_threads(work, current=None):
    """The intra-op thread count for a call of ``work`` forward multiply-adds per step.

    Parameters
    ----------
    work : int
        Multiply-adds of one step's forward pass.
    current : int, default=None
        torch's count now (default: :func:`torch.get_num_threads`).

    Returns
    -------
    n_threads : int
        The :func:`torch_threads` setting when it fixes one; else at most ``current``.
    """
    setting = _SETTING.get()
    if current is None:
        current = torch.get_num_threads()
    if setting is None:
        return current
    if setting != "auto":
        return int(setting)
    by_size = int(work // WORK_PER_THREAD)
    if current <= 1 or by_size <= 1:
        return 1
    idle = math.floor(usable_cpus() - busy_cpus() + 0.5)
    return max(1, min(current, by_size, idle))


@functools.lru_cache(maxsize=1)
def per_thread_counts():
    """Whether torch keeps the intra-op count per OS thread (its OpenMP backend, the one of
    the published builds) rather than one count for the whole process (a native pool)."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


_SHARED = threading.Lock()
_shared_calls = {"active": 0, "restore": None}  # a process-wide count: the calls inside it


@contextmanager
def threads_for(work, device="cpu"):
    """Run the block at :func:`choose_threads` ``(work)`` intra-op threads; restore after.

    Yields the count in force. Nothing changes when the work runs on another device than the
    CPU or the count is already the chosen one; otherwise torch's count is set for the block
    and set back to what it was when the block ends, returns or raises.

    Where torch keeps one count per OS thread (OpenMP, :func:`per_thread_counts`) each call
    sets and restores its own thread's. Where the count is the process's, concurrent calls
    share it: the first sets it, the others run at it, the last one out restores the count
    the first found.
    """
    if torch.device(device).type != "cpu":
        yield torch.get_num_threads()
        return
    if not per_thread_counts():
        with _process_wide(work) as n_threads:
            yield n_threads
        return
    previous = torch.get_num_threads()
    n_threads = choose_threads(work, previous)
    if n_threads == previous:
        yield previous
        return
    torch.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _process_wide(work):
    with _SHARED:
        if _shared_calls["active"] == 0:
            previous = torch.get_num_threads()
            n_threads = choose_threads(work, previous)
            if n_threads != previous:
                torch.set_num_threads(n_threads)
                _shared_calls["restore"] = previous
        _shared_calls["active"] += 1
        n_threads = torch.get_num_threads()
    try:
        yield n_threads
    finally:
        with _SHARED:
            _shared_calls["active"] -= 1
            if _shared_calls["active"] == 0 and _shared_calls["restore"] is not None:
                torch.set_num_threads(_shared_calls["restore"])
                _shared_calls["restore"] = None


def thread_policy(work_of):
    """Decorator: run a function under :func:`threads_for` of ``work_of(*args, **kwargs)``.

    ``work_of`` receives the call's arguments and returns the step's multiply-adds, or a pair
    ``(work, device)``; e.g. ``@thread_policy(lambda self, X, y=None: ...)`` on a method.
    """

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            work = work_of(*args, **kwargs)
            work, device = work if isinstance(work, tuple) else (work, "cpu")
            with threads_for(work, device):
                return function(*args, **kwargs)

        return wrapper

    return decorate
