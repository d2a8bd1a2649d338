"""Reference single fits for the stacked tests: a plain hand-written loop per member."""

import copy

import torch

from skfocal._module import MLP
from skfocal._sampling import EpochSampler


def make_members(n_members, n_features, n_outputs, hidden=(8,), dtype=torch.float64, seed=0):
    """``n_members`` MLPs, member ``m`` initialised under ``torch.manual_seed(seed + m)``."""
    members = []
    for m in range(n_members):
        torch.manual_seed(seed + m)
        members.append(MLP(n_features, n_outputs, hidden).to(dtype))
    return members


def member_params(mlp):
    """An MLP's parameters in StackedMLP's row layout (W.T then b, layer by layer)."""
    parts = []
    for layer in mlp.layers:
        if isinstance(layer, torch.nn.Linear):
            parts += [layer.weight.detach().T.reshape(-1), layer.bias.detach()]
    return torch.cat(parts)


def member_grads(mlp):
    """An MLP's gradients in StackedMLP's row layout."""
    parts = []
    for layer in mlp.layers:
        if isinstance(layer, torch.nn.Linear):
            parts += [layer.weight.grad.T.reshape(-1), layer.bias.grad]
    return torch.cat(parts)


def make_sampler(n_rows, seed, y_train=None, n_classes=None, power=None):
    generator = torch.Generator()
    generator.manual_seed(seed)
    return EpochSampler(n_rows, generator, y=y_train, n_classes=n_classes, power=power)


def reference_fit(
    mlp,
    X,
    y,
    rows,
    sampler,
    spec,
    task,
    *,
    lr,
    weight_decay,
    batch_size,
    max_epochs,
    weights=None,
    optimizer=torch.optim.AdamW,
):
    """Train a copy of ``mlp`` as a single fit does; return it and its epoch losses."""
    mlp = copy.deepcopy(mlp)
    opt = optimizer(mlp.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(rows)
    batch_size = max(1, min(batch_size, n))
    history = []
    for _ in range(max_epochs):
        order = rows[sampler()]
        total = 0.0
        for start in range(0, n, batch_size):
            b = order[start : start + batch_size]
            out = mlp(X[b])
            if task == "binary":
                out = out.squeeze(1)
            per_sample = spec.per_sample(task, out, y[b])
            if weights is not None:
                per_sample = per_sample * weights[b]
            loss = per_sample.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        history.append(total / n)
    return mlp, history
