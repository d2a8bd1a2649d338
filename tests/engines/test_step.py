"""The lean training step: the same update as torch's optimizer step, bit for bit."""

import copy
import functools

import pytest
import torch
from _torch_support import CPU_FUSED_ADAM, requires_cpu_fused_adam
from torch import nn

from skfocal import _fastpaths
from skfocal._engines._step import LeanStep


def _lean_kernels(dtype=torch.float32):
    """Whether the lean step can call torch's fused kernels here (fast paths on, CPU kernel)."""
    cpu = torch.device("cpu")
    return all(
        _fastpaths.fused_adam_kernel(decoupled, cpu, dtype) is not None
        for decoupled in (False, True)
    ) and _fastpaths.no_step_hooks(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1))


def _model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2)).to(dtype)


def _batches(n, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 5, generator=g, dtype=dtype), torch.randint(0, 2, (16,), generator=g))
        for _ in range(n)
    ]


def _train_torch(model, opt, batches, lrs=None):
    for i, (X, y) in enumerate(batches):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[i]
        loss = nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _train_lean(model, opt, batches, lrs=None, epoch=4):
    stepper = LeanStep(opt)
    for i, (X, y) in enumerate(batches):
        if i % epoch == 0:
            stepper.prepare()
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[i]
        loss = nn.functional.cross_entropy(model(X), y)
        stepper.zero_grad()
        stepper.backward(loss)
        stepper.step()
    return stepper


def _assert_same(model_a, opt_a, model_b, opt_b):
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(pa, pb)
        sa, sb = opt_a.state[pa], opt_b.state[pb]
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key


OPTIMIZERS = {
    "adamw_fused": functools.partial(torch.optim.AdamW, lr=3e-3, weight_decay=1e-2, fused=True),
    "adam_fused": functools.partial(torch.optim.Adam, lr=1e-3, fused=True),
    "adam_fused_l2": functools.partial(torch.optim.Adam, lr=1e-3, weight_decay=0.1, fused=True),
    "adamw_fused_maximize": functools.partial(torch.optim.AdamW, maximize=True, fused=True),
    "adamw_fused_betas": functools.partial(
        torch.optim.AdamW, betas=(0.5, 0.9), eps=1e-6, fused=True
    ),
    # the rest go through optimizer.step(): still the same result
    "adamw_single_tensor": functools.partial(torch.optim.AdamW, lr=3e-3),
    "adamw_fused_amsgrad": functools.partial(torch.optim.AdamW, amsgrad=True, fused=True),
    "sgd_momentum": functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
}
LEAN = {"adamw_fused", "adam_fused", "adam_fused_l2", "adamw_fused_maximize", "adamw_fused_betas"}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lean_step_equals_torch_step_bit_for_bit(name, dtype):
    if "fused" in name and not CPU_FUSED_ADAM:
        pytest.skip("torch < 2.4 has no fused Adam(W) kernel for the CPU")
    make = OPTIMIZERS[name]
    batches = _batches(11, dtype=dtype)
    model_a, model_b = _model(dtype=dtype), _model(dtype=dtype)
    opt_a, opt_b = make(model_a.parameters()), make(model_b.parameters())
    _train_torch(model_a, opt_a, batches)
    stepper = _train_lean(model_b, opt_b, batches)
    _assert_same(model_a, opt_a, model_b, opt_b)
    # the fused call was used where it applies (and only where torch's kernel can be called)
    assert bool(stepper.calls) == (name in LEAN and _lean_kernels(dtype))


@requires_cpu_fused_adam
def test_lean_step_reads_a_changed_learning_rate_and_param_groups():
    batches = _batches(9)
    lrs = [1e-3 * (i + 1) for i in range(9)]
    models, opts = [], []
    for _ in range(2):
        model = _model()
        groups = [
            {"params": model[0].parameters(), "weight_decay": 0.0},
            {"params": model[2].parameters()},
        ]
        models.append(model)
        opts.append(torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.05, fused=True))
    _train_torch(models[0], opts[0], batches, lrs)
    stepper = _train_lean(models[1], opts[1], batches, lrs)
    assert not _lean_kernels() or (stepper.calls and len(stepper.calls) == 2)
    _assert_same(models[0], opts[0], models[1], opts[1])


@requires_cpu_fused_adam
def test_state_loaded_between_epochs_is_picked_up():
    batches = _batches(8)
    model_a, model_b = _model(), _model()
    opt_a = torch.optim.AdamW(model_a.parameters(), fused=True)
    opt_b = torch.optim.AdamW(model_b.parameters(), fused=True)
    _train_torch(model_a, opt_a, batches[:4])
    stepper = _train_lean(model_b, opt_b, batches[:4])
    _assert_same(model_a, opt_a, model_b, opt_b)
    # a callback replaces the optimizer's state (e.g. a checkpoint) between epochs
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    _train_torch(model_a, opt_a, batches[4:])
    stepper.prepare()
    for X, y in batches[4:]:
        loss = nn.functional.cross_entropy(model_b(X), y)
        stepper.zero_grad()
        stepper.backward(loss)
        stepper.step()
    _assert_same(model_a, opt_a, model_b, opt_b)


@requires_cpu_fused_adam
def test_hooks_and_missing_gradients_go_through_torch():
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), fused=True)
    calls = []
    opt.register_step_post_hook(lambda *args: calls.append(1))
    _train_lean(model, opt, _batches(5))
    assert len(calls) == 5  # every step ran torch's own, which calls the hook

    model_a, model_b = _model(), _model()
    for model in (model_a, model_b):
        model[0].bias.requires_grad_(False)  # a parameter that never gets a gradient
    opt_a = torch.optim.AdamW(model_a.parameters(), fused=True)
    opt_b = torch.optim.AdamW(model_b.parameters(), fused=True)
    batches = _batches(6)
    _train_torch(model_a, opt_a, batches)
    stepper = _train_lean(model_b, opt_b, batches)
    assert stepper.calls is False
    _assert_same(model_a, opt_a, model_b, opt_b)


@requires_cpu_fused_adam
def test_step_counts_share_one_tensor_and_keep_their_values():
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), fused=True)
    _train_lean(model, opt, _batches(7), epoch=3)
    steps = [opt.state[p]["step"] for p in model.parameters()]
    assert [float(s) for s in steps] == [7.0] * 4
    if _lean_kernels():  # one storage: one add per step counts all of them
        storages = {s.untyped_storage().data_ptr() for s in steps}
        assert len(storages) == 1
    # the state still round-trips through state_dict into a plain torch optimizer
    other = torch.optim.AdamW(_model().parameters(), fused=True)
    other.load_state_dict(opt.state_dict())
    assert [float(other.state[p]["step"]) for p in other.param_groups[0]["params"]] == [7.0] * 4


def test_backward_of_a_scalar_loss_equals_loss_backward():
    x1 = torch.randn(4, 3, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    weights = torch.randn(3)
    (x1 * weights).sum(0).pow(2).sum().backward()
    LeanStep(torch.optim.SGD([x2], lr=0.1)).backward((x2 * weights).sum(0).pow(2).sum())
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_from_the_logits_with_their_gradient(dtype):
    """``backward(output, grad)``: the lean epoch's call with a loss's closed-form logit grad."""
    model_a, model_b = _model(dtype=dtype), _model(dtype=dtype)
    X, y = _batches(1, dtype=dtype)[0]
    loss = nn.functional.cross_entropy(model_a(X), y)
    loss.backward()
    logits = model_b(X)
    grad = (logits.detach().softmax(1) - nn.functional.one_hot(y, 2).to(dtype)) / len(y)
    LeanStep(torch.optim.SGD(model_b.parameters(), lr=0.1)).backward(logits, grad)
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-6, atol=1e-7)
    # a non-scalar output without its gradient is refused by torch, as by Tensor.backward
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        LeanStep(torch.optim.SGD(model_b.parameters(), lr=0.1)).backward(model_b(X))


def test_zero_grad_sets_gradients_to_none():
    model = _model()
    stepper = LeanStep(torch.optim.AdamW(model.parameters()))
    stepper.prepare()
    X, y = _batches(1)[0]
    stepper.backward(nn.functional.cross_entropy(model(X), y))
    assert all(p.grad is not None for p in model.parameters())
    stepper.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    "make, expected",
    [
        (functools.partial(torch.optim.AdamW, fused=CPU_FUSED_ADAM), True),
        (functools.partial(torch.optim.SGD, lr=0.1), True),
        (torch.optim.RMSprop, True),
        (torch.optim.LBFGS, False),  # re-evaluates its closure
    ],
)
def test_which_optimizers_step_without_a_closure(make, expected):
    from skfocal._engines._step import steps_without_closure

    assert steps_without_closure(make(_model().parameters())) is expected

    class ThirdParty(torch.optim.SGD):  # defined elsewhere: it may rely on the closure
        pass

    assert not steps_without_closure(ThirdParty(_model().parameters(), lr=0.1))
