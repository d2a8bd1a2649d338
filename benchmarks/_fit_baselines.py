"""Data, network and baselines of ``bench_fit.py``.

* :func:`make_data`: the throughput data set (``make_classification``, float32, imbalanced).
* :func:`make_large_data`: a large imbalanced float32 set built without a float64 temporary,
  so that a process's peak RSS is not set by the data generation (memory measurements).
* ``MLP``: FocalClassifier's own default network (``skfocal._module.MLP``, one hidden layer
  of 64), which every contender trains: ``n_features-64-n_outputs``.
* :func:`fit_minimal_loop`: the practical speed limit -- a hand-written loop that keeps ``X``
  and ``y`` as tensors on the device and slices each minibatch with ``index_select`` on a
  shuffled index; no Dataset, no DataLoader, no per-batch ``.item()``.
* :func:`make_skorch`: skorch's ``NeuralNetClassifier`` on the same module, data and epochs.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_classification
from torch import nn

from skfocal._module import MLP

LOSSES = ("cross_entropy", "bce", "focal")


def make_data(n_samples, n_features, *, minority=0.1, seed=0):
    """Binary ``make_classification`` data: float32 ``X``, int64 ``y``, ``minority`` positive."""
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=max(2, n_features // 2),
        weights=[1.0 - minority],
        flip_y=0.01,
        random_state=seed,
    )
    return X.astype(np.float32), y.astype(np.int64)


def make_large_data(n_samples, n_features, *, imbalance_ratio=100, seed=0):
    """Standard-normal float32 ``X`` with one positive per ``imbalance_ratio`` negatives.

    Generated directly in float32 (no float64 copy), positives shifted by +1 on the first five
    features so that the task is learnable.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    y = np.zeros(n_samples, dtype=np.int64)
    n_pos = max(2, round(n_samples / (imbalance_ratio + 1)))
    pos = rng.choice(n_samples, n_pos, replace=False)
    y[pos] = 1
    X[pos, : min(5, n_features)] += 1.0
    return X, y


def make_loss(name):
    """The criterion of a minimal loop: 2-logit cross-entropy, 1-logit BCE or binary focal."""
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(), 2
    if name == "bce":
        return nn.BCEWithLogitsLoss(), 1
    if name == "focal":
        from skfocal.losses import BinaryFocalLoss

        return BinaryFocalLoss(gamma=2.0), 1
    raise ValueError(f"loss must be one of {LOSSES}, got {name!r}.")


def fused_kwargs(device="cpu"):
    """``{"fused": True}`` where torch has a fused Adam(W) kernel for ``device``, else ``{}``.

    torch 2.1-2.3 accept ``fused=True`` only for CUDA parameters; there the baselines take
    torch's default step (foreach), and say so through :func:`adam_label`.
    """
    param = torch.zeros(2, device=device, requires_grad=True)
    try:
        opt = torch.optim.AdamW([param], lr=1e-3, fused=True)
        param.grad = torch.ones_like(param)
        opt.step()
    except (RuntimeError, NotImplementedError):
        return {}
    return {"fused": True}


def adam_label(name="Adam", device="cpu"):
    """``"Adam(fused=True)"`` or, where that is unavailable, ``"Adam (no fused kernel)"``."""
    return f"{name}(fused=True)" if fused_kwargs(device) else f"{name} (no fused kernel)"


def fit_minimal_loop(X, y, *, loss, optimizer, lr, epochs, batch_size, device, seed=0):
    """Train :class:`MLP` on ``X``, ``y`` with a hand-written loop; returns the module.

    The data is converted and moved to ``device`` once (inside the timed call, as a fit does);
    every epoch draws a permutation on the device and every minibatch is an ``index_select``.
    """
    torch.manual_seed(seed)
    criterion, n_outputs = make_loss(loss)
    Xt = torch.from_numpy(X).to(device)
    yt = torch.from_numpy(y).to(device, torch.long if n_outputs == 2 else torch.float32)
    module = MLP(X.shape[1], n_outputs).to(device)
    opt = optimizer(module.parameters(), lr=lr)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    n = len(Xt)
    module.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator, device=device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            out = module(Xt.index_select(0, idx))
            if n_outputs == 1:
                out = out.squeeze(1)
            batch_loss = criterion(out, yt.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
    return module


def make_skorch(*, n_features, optimizer, lr, epochs, batch_size, device, train_split="default"):
    """skorch ``NeuralNetClassifier`` on :class:`MLP` (2 logits, ``CrossEntropyLoss``).

    skorch's own default criterion is ``NLLLoss`` on probabilities; ``CrossEntropyLoss`` on the
    logits of the same module is the equivalent that lets every contender share one network.
    ``train_split="default"`` keeps skorch's 5-fold ``ValidSplit`` (20 % validation, scored
    every epoch); ``None`` trains on all rows.
    """
    from skorch import NeuralNetClassifier

    kwargs = {} if train_split == "default" else {"train_split": train_split}
    return NeuralNetClassifier(
        MLP,
        module__n_features=n_features,
        module__n_outputs=2,
        criterion=nn.CrossEntropyLoss,
        optimizer=optimizer,
        lr=lr,
        max_epochs=epochs,
        batch_size=batch_size,
        device=device,
        verbose=0,
        **kwargs,
    )
