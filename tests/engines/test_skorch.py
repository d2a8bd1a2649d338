"""The skorch engine: the plan's tensors on the device, moved once, and a fit per plan."""

import functools

import numpy as np
import pytest
import torch
from _torch_support import CPU_FUSED_ADAM
from imblearn.over_sampling import SMOTE

from skfocal import FocalClassifier
from skfocal._engines._skorch import SkorchEngine, as_device_tensor, device_data
from skfocal._plan import make_plan

Y = np.array([0] * 45 + [1] * 5)


def _plan(X, **params):
    return make_plan(FocalClassifier(**params), X, Y)[0]


def test_as_device_tensor_copies_at_most_once(seed):
    X = seed.normal(size=(5, 3)).astype(np.float32)
    t = as_device_tensor(X, torch.device("cpu"), torch.float32)
    assert t.data_ptr() == X.ctypes.data  # shares the ndarray's memory
    assert as_device_tensor(t, torch.device("cpu"), torch.float32) is t
    assert as_device_tensor(X, torch.device("cpu"), torch.float64).dtype == torch.float64


def test_oversample_keeps_x_in_place(seed):
    X = torch.as_tensor(seed.normal(size=(50, 2)), dtype=torch.float32)
    data = device_data(_plan(X, sampler="oversample", random_state=0), X, "cpu", torch.float32)
    assert data.X is X  # no copy of X, the sampler only draws indices
    draws = data.sampler()
    share = float((torch.as_tensor(Y)[draws] == 1).float().mean())
    assert len(draws) == 50 and abs(share - 0.5) < 0.3


def test_smote_rows_are_stitched_before_the_validation_rows(seed):
    X = seed.normal(size=(50, 2)).astype(np.float32)
    plan = _plan(
        X, sampler=SMOTE(k_neighbors=3, random_state=0), early_stopping=True, random_state=0
    )
    data = device_data(plan, X, "cpu", torch.float32)
    n_res = len(plan.sampler.y_res)
    assert data.X.shape == (n_res + plan.n_valid, 2)
    np.testing.assert_array_equal(data.X[n_res:].numpy(), X[plan.sampler.valid_rows])
    assert torch.equal(data.valid_idx, torch.arange(n_res, n_res + plan.n_valid))


def test_engine_trains_each_plan_like_the_estimator(seed):
    X = seed.normal(size=(50, 2)).astype(np.float32)
    params = dict(max_epochs=3, random_state=0, alpha=0.5)
    plans = [_plan(X, **params), _plan(X, **{**params, "random_state": 1})]
    fitted = SkorchEngine("cpu", torch.float32).fit(plans, X)
    assert len(fitted) == 2
    clf = FocalClassifier(**params).fit(X, Y)
    for name, p in clf.net_.module_.named_parameters():
        torch.testing.assert_close(p, dict(fitted[0].net.module_.named_parameters())[name])
    assert not torch.equal(
        fitted[0].net.module_.layers[0].weight, fitted[1].net.module_.layers[0].weight
    )


def test_fused_step_by_default_unless_the_user_says_otherwise():
    from skfocal._engines._members import fused_optimizer_kwargs

    cpu = torch.device("cpu")
    for opt in (torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD):
        # torch 2.1-2.3: no fused kernel for the CPU, and then nothing is asked for
        expected = {"fused": True} if _steps_fused_on_cpu(opt) else {}
        assert fused_optimizer_kwargs(opt, cpu, torch.float32) == expected
        assert fused_optimizer_kwargs(opt, cpu, torch.float64) == expected
    assert fused_optimizer_kwargs(torch.optim.RMSprop, cpu, torch.float32) == {}  # no fused arg
    keep = functools.partial(torch.optim.AdamW, fused=False)
    assert fused_optimizer_kwargs(keep, cpu, torch.float32) == {}
    foreach = functools.partial(torch.optim.AdamW, foreach=True)
    assert fused_optimizer_kwargs(foreach, cpu, torch.float32) == {}
    betas = functools.partial(torch.optim.Adam, betas=(0.8, 0.9))
    expected = {"fused": True} if CPU_FUSED_ADAM else {}
    assert fused_optimizer_kwargs(betas, cpu, torch.float32) == expected


def _steps_fused_on_cpu(optimizer):
    """Whether torch's ``optimizer(fused=True)`` takes a step on a CPU (its public behaviour)."""
    p = torch.zeros(1, requires_grad=True)
    try:
        opt = optimizer([p], lr=0.1, fused=True)
        p.grad = torch.ones(1)
        opt.step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize(
    "optimizer, fused",
    [
        (torch.optim.AdamW, True),
        (functools.partial(torch.optim.AdamW, fused=False), False),
        (torch.optim.RMSprop, None),
    ],
)
def test_the_fitted_optimizer_uses_the_fused_step(seed, optimizer, fused):
    X = seed.normal(size=(50, 2)).astype(np.float32)
    clf = FocalClassifier(optimizer=optimizer, weight_decay=0.0, max_epochs=1).fit(X, Y)
    if fused and not CPU_FUSED_ADAM:  # torch 2.1-2.3: no fused kernel for the CPU to ask for
        fused = None
    assert clf.net_.optimizer_.defaults.get("fused") == fused


def test_kept_phase_follows_the_restored_epoch(seed):
    from types import SimpleNamespace

    from skfocal._engines._skorch import kept_phase

    X = seed.normal(size=(50, 2)).astype(np.float32)
    plan = _plan(X, warmup_epochs=3)
    assert [first for first, _, _ in plan.schedule] == [1, 4]

    def net(n_epochs, best=None):
        stopper = SimpleNamespace(best_epoch_=best)
        callbacks = [] if best is None else [("early_stopping", stopper)]
        return SimpleNamespace(history=[None] * n_epochs, callbacks_=callbacks)

    assert kept_phase(plan, net(10)) == 1  # trained to the end: the focal phase
    assert kept_phase(plan, net(10, best=2)) == 0  # restored a warm-up epoch: cross-entropy
    assert kept_phase(plan, net(10, best=4)) == 1
    assert plan.posteriors[0].spec.name == "cross_entropy"
    assert plan.posteriors[1].spec.name == "focal"
    assert kept_phase(_plan(X), net(10, best=2)) == 0  # no schedule: one phase
