"""StackedAdamW/StackedAdam: every member steps exactly like torch.optim.AdamW/Adam alone."""

import copy

import pytest
import torch
from _torch_support import CPU_FUSED_ADAM

from skfocal._engines._stacked import StackedAdam, StackedAdamW, StackedMLP

from ._reference import make_members, member_grads, member_params

VARIANTS = {
    "single-tensor": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}
OPTIMIZERS = {"AdamW": (torch.optim.AdamW, StackedAdamW), "Adam": (torch.optim.Adam, StackedAdam)}


def _set_grads(singles, stack, generator):
    """Random gradients for every single member, copied into the stack's flat_grads."""
    for m, mlp in enumerate(singles):
        for p in mlp.parameters():
            p.grad = torch.randn(p.shape, generator=generator, dtype=p.dtype)
        stack.flat_grads[m].copy_(member_grads(mlp))


def _tolerance(dtype, variant):
    if dtype == torch.float64:
        return {"rtol": 1e-12, "atol": 1e-15}
    if variant == "fused":  # torch's fused kernel rounds differently from the eager ops
        return {"rtol": 1e-5, "atol": 1e-6}
    return {"rtol": 2e-7, "atol": 1e-8}


def _run(optimizer, variant, dtype, lr, weight_decay, active_of_step, n_steps=50, n_members=5):
    if variant == "fused" and not CPU_FUSED_ADAM:
        pytest.skip("torch < 2.4 has no fused Adam(W) kernel for the CPU to compare with")
    torch_cls, stacked_cls = OPTIMIZERS[optimizer]
    singles = make_members(n_members, 6, 3, (7, 5), dtype=dtype)
    stack = StackedMLP(copy.deepcopy(singles))
    opts = [
        torch_cls(mlp.parameters(), lr=lr[m], weight_decay=weight_decay[m], **VARIANTS[variant])
        for m, mlp in enumerate(singles)
    ]
    shared = len(set(lr)) == 1 and len(set(weight_decay)) == 1
    stacked = stacked_cls(
        stack.flat_params,
        stack.flat_grads,
        lr=lr[0] if shared else lr,
        weight_decay=weight_decay[0] if shared else weight_decay,
    )
    generator = torch.Generator().manual_seed(0)
    for step in range(n_steps):
        _set_grads(singles, stack, generator)
        active = active_of_step(step)
        for m, opt in enumerate(opts):
            if active is None or active[m]:
                opt.step()
        stacked.step(active=active)
    return singles, stack, stacked


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("hyper", ["shared", "per-member"])
def test_matches_torch_optimizer_per_member(optimizer, variant, dtype, hyper):
    n = 5
    if hyper == "shared":  # the fused path of StackedAdamW
        lr, wd = [3e-3] * n, [1e-2] * n
    else:
        lr, wd = [1e-3 * (m + 1) for m in range(n)], [0.02 * m for m in range(n)]
    singles, stack, stacked = _run(optimizer, variant, dtype, lr, wd, lambda step: None)
    assert stacked.steps.tolist() == [50] * n
    for m, mlp in enumerate(singles):
        torch.testing.assert_close(
            stack.flat_params[m], member_params(mlp), **_tolerance(dtype, variant)
        )


def _contiguous_gap(step):
    """Members 1-2 (a contiguous run) skip every third step."""
    return None if step % 3 else torch.tensor([True, False, False, True, True])


def _scattered_gap(step):
    """Members 0, 2 and 4 (not contiguous) skip every fourth step; member 3 every fifth."""
    active = torch.ones(5, dtype=torch.bool)
    if step % 4 == 0:
        active[[0, 2, 4]] = False
    if step % 5 == 0:
        active[3] = False
    return active


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("active_of_step", [_contiguous_gap, _scattered_gap])
@pytest.mark.parametrize("hyper", ["shared", "per-member"])
def test_inactive_members_skip_steps_like_their_single_fit(optimizer, active_of_step, hyper):
    n = 5
    if hyper == "shared":
        lr, wd = [3e-3] * n, [1e-2] * n
    else:
        lr, wd = [1e-3 * (m + 1) for m in range(n)], [0.02 * m for m in range(n)]
    singles, stack, stacked = _run(
        optimizer, "single-tensor", torch.float64, lr, wd, active_of_step
    )
    expected_steps = [
        sum(1 for s in range(50) if active_of_step(s) is None or active_of_step(s)[m])
        for m in range(n)
    ]
    assert stacked.steps.tolist() == expected_steps
    for m, mlp in enumerate(singles):
        torch.testing.assert_close(stack.flat_params[m], member_params(mlp), rtol=1e-12, atol=1e-15)


def test_frozen_members_are_untouched_even_with_nan_gradients(seed):
    params = torch.randn(4, 10, dtype=torch.float64)
    grads = torch.randn(4, 10, dtype=torch.float64)
    opt = StackedAdamW(params, grads, lr=[1e-2, 2e-2, 3e-2, 4e-2])
    opt.step()
    opt.freeze(torch.tensor([False, True, False, True]))
    before = params.clone(), opt.exp_avg.clone(), opt.exp_avg_sq.clone()
    grads[1] = float("nan")
    grads[3] = float("inf")
    for _ in range(3):
        opt.step()
    assert opt.steps.tolist() == [4, 1, 4, 1]
    assert torch.isfinite(params).all()
    for now, then in zip((params, opt.exp_avg, opt.exp_avg_sq), before, strict=True):
        torch.testing.assert_close(now[[1, 3]], then[[1, 3]], rtol=0, atol=0)
        assert not torch.equal(now[[0, 2]], then[[0, 2]])
    opt.unfreeze([1])
    grads[1] = 1.0
    opt.step(active=torch.tensor([False, True, False, False]))
    assert opt.steps.tolist() == [4, 2, 4, 1]
    opt.freeze(range(4))
    opt.step()
    assert opt.steps.tolist() == [4, 2, 4, 1]


def test_set_hyperparameters_matches_changing_param_groups(seed):
    singles = make_members(3, 4, 2, (5,))
    stack = StackedMLP(copy.deepcopy(singles))
    opts = [torch.optim.AdamW(mlp.parameters(), lr=1e-2, weight_decay=0.1) for mlp in singles]
    stacked = StackedAdamW(stack.flat_params, stack.flat_grads, lr=1e-2, weight_decay=0.1)
    generator = torch.Generator().manual_seed(1)
    new_lr, new_wd = [3e-2, 1e-3, 5e-3], [0.0, 0.2, 0.05]
    for step in range(20):
        if step == 10:
            stacked.set_hyperparameters(lr=new_lr, weight_decay=new_wd)
            for m, opt in enumerate(opts):
                opt.param_groups[0].update(lr=new_lr[m], weight_decay=new_wd[m])
        _set_grads(singles, stack, generator)
        for opt in opts:
            opt.step()
        stacked.step()
    for m, mlp in enumerate(singles):
        torch.testing.assert_close(stack.flat_params[m], member_params(mlp), rtol=1e-12, atol=1e-15)


def test_zero_grad_zeroes_in_place():
    params, grads = torch.zeros(2, 3), torch.ones(2, 3)
    opt = StackedAdamW(params, grads)
    opt.zero_grad()
    assert opt.grads is grads and not grads.any()


def test_errors():
    params, grads = torch.zeros(2, 3), torch.zeros(2, 3)
    with pytest.raises(
        ValueError, match=r"params must be a tensor of shape \(n_members, n_params\)"
    ):
        StackedAdamW(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"grads must have the shape of params \(2, 3\)"):
        StackedAdamW(params, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="must be contiguous"):
        StackedAdamW(torch.zeros(3, 2).T, torch.zeros(2, 3))
    with pytest.raises(
        ValueError, match=r"lr must be a float > 0 or one per member, got \[0.0, 0.0\]"
    ):
        StackedAdamW(params, grads, lr=0.0)
    with pytest.raises(ValueError, match=r"weight_decay must be a float >= 0 or one per member"):
        StackedAdamW(params, grads, weight_decay=[0.1, -1.0])
    with pytest.raises(ValueError, match=r"lr must be a float or hold one value per member \(2\)"):
        StackedAdamW(params, grads, lr=[0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="lr must be a float > 0 or one per member, got True"):
        StackedAdamW(params, grads, lr=True)
    with pytest.raises(TypeError, match="lr must be a float > 0 or one per member, got 'fast'"):
        StackedAdamW(params, grads, lr="fast")
    with pytest.raises(ValueError, match=r"betas must be two floats in \[0, 1\), got \(0.9, 1.0\)"):
        StackedAdamW(params, grads, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps must be a finite float >= 0, got -1"):
        StackedAdamW(params, grads, eps=-1)
    opt = StackedAdamW(params, grads)
    with pytest.raises(IndexError, match=r"members must be indices in \[0, 2\), got \[5\]"):
        opt.freeze([5])
    with pytest.raises(ValueError, match=r"boolean members mask must have shape \(2,\)"):
        opt.freeze(torch.tensor([True]))
    with pytest.raises(ValueError, match="lr must be a float > 0 or one per member"):
        opt.set_hyperparameters(lr=-1.0)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("active_of_step", [_contiguous_gap, _scattered_gap])
def test_members_at_different_steps_take_torchs_fused_step(optimizer, active_of_step):
    """Shared lr and weight decay, members skipping steps (so at different step counts): one
    fused call over the members' rows, each with its own count -- torch's fused AdamW/Adam
    step of each member alone (where the fused kernel exists for the CPU), to a few ulps: the
    kernel's vector lanes and scalar tail round differently, and a member's layout (one flat
    row against a tensor per layer) puts elements in other lanes."""
    from skfocal import _fastpaths

    n = 5
    singles, stack, stacked = _run(
        optimizer, "fused", torch.float32, [3e-3] * n, [1e-2] * n, active_of_step
    )
    if stacked._fused is None:
        pytest.skip("no fused Adam kernel here (torch < 2.4 on a CPU, or fast paths off)")
    assert _fastpaths.enabled()
    assert len(set(stacked.steps.tolist())) > 1  # the counts did diverge
    for m, mlp in enumerate(singles):
        torch.testing.assert_close(stack.flat_params[m], member_params(mlp), rtol=2e-6, atol=1e-8)
