"""StackedMLP: every member computes, differentiates and stores what its own MLP does."""

import copy

import pytest
import torch

from skfocal._engines._stacked import StackedMLP
from skfocal._module import MLP

from ._reference import make_members, member_grads, member_params


@pytest.mark.parametrize("hidden", [(), (8,), (8, 5)])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_forward_equals_members(hidden, n_outputs, seed):
    members = make_members(4, 6, n_outputs, hidden)
    stack = StackedMLP(members)
    X = torch.randn(4, 9, 6, dtype=torch.float64)
    out = stack(X)
    assert out.shape == (4, 9, n_outputs)
    for m, mlp in enumerate(members):
        torch.testing.assert_close(out[m], mlp(X[m]), rtol=1e-13, atol=1e-14)
    data, rows = torch.randn(30, 6, dtype=torch.float64), torch.randint(0, 30, (4, 9))
    torch.testing.assert_close(stack(data, rows), stack(data[rows]), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("hidden", [(), (8,), (8, 5), (8, 1)])
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("shared_rows", [False, True])
def test_gradients_equal_members_gradients(hidden, n_outputs, shared_rows, seed):
    members = make_members(3, 4, n_outputs, hidden)
    stack = StackedMLP(copy.deepcopy(members))
    data = torch.randn(20, 4, dtype=torch.float64)
    rows = torch.randint(0, 20, (3, 7))
    X = data[rows]
    r = torch.randn(3, 7, n_outputs, dtype=torch.float64)
    out = stack(data, rows) if shared_rows else stack(X)
    (out * r).sum().backward()
    assert stack.flat_params.grad is stack.flat_grads
    assert list(stack.parameters()) == [stack.flat_params]
    for m, mlp in enumerate(members):
        (mlp(X[m]) * r[m]).sum().backward()
        torch.testing.assert_close(stack.flat_grads[m], member_grads(mlp), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("hidden", [(), (4,), (4, 3)])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_gradcheck(hidden, n_outputs, seed):
    members = make_members(2, 3, n_outputs, hidden)
    stack = StackedMLP(members)
    X = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: stack(x), (X, stack.flat_params))
    data, rows = torch.randn(6, 3, dtype=torch.float64), torch.randint(0, 6, (2, 4))
    assert torch.autograd.gradcheck(lambda w: stack(data, rows), (stack.flat_params,))


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_reused_buffers_give_the_same_results_and_guard_stale_graphs(n_outputs, seed):
    members = make_members(3, 4, n_outputs, (8,))
    stack = StackedMLP(members)
    data, rows = torch.randn(20, 4, dtype=torch.float64), torch.randint(0, 20, (3, 7))
    stack(data, rows).sum().backward()
    fresh = stack.flat_grads.clone()
    for _ in range(2):  # the second round writes into the first round's buffers
        stack.zero_grad()
        out = stack(data, rows, reuse_buffers=True)
        torch.testing.assert_close(out, stack(data, rows), rtol=0, atol=0)
        out.sum().backward()
        torch.testing.assert_close(stack.flat_grads, fresh, rtol=0, atol=0)
    stale = stack(data, rows, reuse_buffers=True)
    stack(data[:, :4], rows.flip(1), reuse_buffers=True)  # overwrites stale's saved inputs
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        stale.sum().backward()


def test_gradients_accumulate_and_zero_grad_keeps_the_buffer(seed):
    stack = StackedMLP(make_members(2, 3, 1))
    X = torch.randn(2, 5, 3, dtype=torch.float64)
    stack(X).sum().backward()
    once = stack.flat_grads.clone()
    stack(X).sum().backward()
    torch.testing.assert_close(stack.flat_grads, 2 * once)
    stack.zero_grad()
    assert not stack.flat_grads.any()
    stack.flat_params.grad = None  # e.g. a set_to_none from outside: relinked
    stack.zero_grad()
    stack(X).sum().backward()
    assert stack.flat_params.grad is stack.flat_grads
    torch.testing.assert_close(stack.flat_grads, once)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_member_is_an_mlp_with_current_weights(dropout, seed):
    members = [MLP(5, 3, (8, 4), dropout).double() for _ in range(3)]
    stack = StackedMLP(members, dropout_seeds=[1, 2, 3])
    with torch.no_grad():
        stack.flat_params.mul_(2.0)
    state = torch.get_rng_state()
    extracted = stack.member(1)
    assert torch.equal(state, torch.get_rng_state())  # built on the meta device
    assert type(extracted) is MLP
    assert [type(layer) for layer in extracted.layers] == [type(m) for m in members[1].layers]
    assert extracted.layers[0].weight.dtype == torch.float64
    torch.testing.assert_close(member_params(extracted), stack.flat_params[1], rtol=0, atol=0)
    for name, tensor in members[1].state_dict().items():
        torch.testing.assert_close(extracted.state_dict()[name], 2 * tensor, rtol=0, atol=0)
    extracted.eval()
    stack.eval()
    X = torch.randn(3, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(extracted(X[1]), stack(X)[1], rtol=1e-13, atol=1e-14)


def test_member_accepts_negative_index_and_rejects_out_of_range():
    stack = StackedMLP(make_members(2, 3, 1))
    torch.testing.assert_close(member_params(stack.member(-1)), stack.flat_params[1])
    with pytest.raises(IndexError, match=r"member must be in \[0, 2\), got 2"):
        stack.member(2)


@pytest.mark.parametrize("members", [[0, 2], torch.tensor([True, False, True, False])])
def test_snapshot_restore_subset(members, seed):
    stack = StackedMLP(make_members(4, 3, 2))
    best = stack.snapshot()
    before = stack.flat_params.clone()
    with torch.no_grad():
        stack.flat_params.add_(1.0)
    after = stack.flat_params.clone()
    stack.snapshot([1], out=best)  # member 1's newer weights become its best
    stack.restore(best, members)
    chosen = torch.zeros(4, dtype=torch.bool)
    chosen[torch.as_tensor(members)] = True
    for m in range(4):
        expected = before[m] if chosen[m] else after[m]
        torch.testing.assert_close(stack.flat_params[m], expected, rtol=0, atol=0)
    torch.testing.assert_close(best[1], after[1], rtol=0, atol=0)
    stack.restore(best)
    torch.testing.assert_close(stack.flat_params, best, rtol=0, atol=0)
    assert stack.snapshot(out=torch.empty_like(best)).equal(best)


def test_dropout_per_member_generators(seed):
    shared = MLP(4, 1, (64,), dropout=0.5)
    members = [MLP(4, 1, (64,)), shared, copy.deepcopy(shared)]
    X = torch.ones(3, 32, 4)
    runs = []
    for _ in range(2):
        stack = StackedMLP(copy.deepcopy(members), dropout_seeds=[7, 8, 8])
        runs.append(stack(X))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)  # same seeds, same masks
    torch.testing.assert_close(runs[0][1], runs[0][2], rtol=0, atol=0)  # same member, seed
    stack = StackedMLP(copy.deepcopy(members), dropout_seeds=[7, 8, 9])
    assert not torch.equal(stack(X)[1], stack(X)[1])  # the generator advances
    torch.testing.assert_close(stack(X)[0], members[0](X[0]))  # no dropout for p=0
    stack.eval()
    for m in range(3):
        members[m].eval()
        torch.testing.assert_close(stack(X)[m], members[m](X[m]))
    assert stack.member(1).layers[2].p == 0.5


def test_dropout_mask_scale(seed):
    stack = StackedMLP([MLP(2, 1, (4,), dropout=0.25) for _ in range(2)], dropout_seeds=[0, 1])
    mask = stack._dropout_mask(torch.ones(2, 20000, 4))
    values = set(mask.unique().tolist())
    assert values <= {0.0, float(torch.tensor(1 / 0.75))}
    assert abs(float(mask.mean()) - 1.0) < 0.02


def test_errors():
    with pytest.raises(ValueError, match="at least one MLP, got an empty sequence"):
        StackedMLP([])
    with pytest.raises(TypeError, match="stacks skfocal._module.MLP instances.*got Linear"):
        StackedMLP([torch.nn.Linear(2, 1)])
    with pytest.raises(ValueError, match=r"same layer sizes.*member 1 has \[\(3, 8\), \(8, 1\)\]"):
        StackedMLP([MLP(2, 1, (8,)), MLP(3, 1, (8,))])
    with pytest.raises(ValueError, match="share one dtype and device.*torch.float64"):
        StackedMLP([MLP(2, 1), MLP(2, 1).double()])
    with pytest.raises(ValueError, match=r"dropout_seeds must hold one seed per member \(2\)"):
        StackedMLP([MLP(2, 1, dropout=0.1)] * 2, dropout_seeds=[1])
    stack = StackedMLP([MLP(2, 1)] * 2)
    with pytest.raises(ValueError, match=r"X must have shape.*\(2, B, 2\), got \(3, 4, 2\)"):
        stack(torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match=r"with rows, X must be the shared data of shape \(N, 2\)"):
        stack(torch.zeros(3, 4, 2), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"rows must have shape \(n_members, batch\) = \(2, B\)"):
        stack(torch.zeros(5, 2), torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="cannot be moved or cast"):
        stack.double()
    with pytest.raises(
        ValueError, match=r"snapshot must have shape \(2, 257\) like flat_params, got \(1, 49\)"
    ):
        stack.restore(torch.zeros(1, 49))
    with pytest.raises(ValueError, match=r"boolean members mask must have shape \(2,\)"):
        stack.snapshot(torch.tensor([True]), out=stack.snapshot())
