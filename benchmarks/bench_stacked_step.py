"""Speed of M stacked fits (candidates x CV folds) against single fits, per epoch and per step.

1. **Epoch.** One training epoch of ``M = n_candidates x n_folds`` binary MLP-64 members
   trained as one stacked model (``skfocal._engines._stacked.train_stacked``) against one epoch of a
   single fit's plain loop (the same MLP, ``BinaryFocalLoss(reduction="none")`` mean,
   ``torch.optim.AdamW(fused=True)``, ``EpochSampler`` batches gathered with
   ``index_select``) on one fold. Default data: ``make_classification`` 20,000 x 20 float32,
   10 % positives, 5 folds of 16,000 training rows, 9 candidates (gamma in {0, 1, 2} x alpha
   in {None, 0.25, 0.75}), so ``M = 45``; batch 256. Two stacks are timed: all members
   sharing lr and weight decay (the optimizer is one fused kernel call) and every member with
   its own lr and weight decay. Target: the 45-member stack <= 5x one single epoch.
2. **Optimizer step.** ``StackedAdamW.step()`` on ``M`` members of MLP-64 on 20 features
   (shared and per-member lr) against one ``torch.optim.AdamW(fused=True).step()`` of one
   MLP-64, at ``M`` in {1, 9, 45}. Target: per member no slower than the single fused step.

Contenders are interleaved within every round and the medians are reported (the machine is
shared: expect noise). Run ``python benchmarks/bench_stacked_step.py`` (``--quick`` for a
smoke run); the script imports the ``skfocal`` of the checkout it lives in.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fit_baselines import adam_label, fused_kwargs  # noqa: E402

from skfocal._engines._stacked import (  # noqa: E402
    MemberBatches,
    MemberLoss,
    StackedAdamW,
    StackedLoss,
    StackedMLP,
    train_stacked,
)
from skfocal._module import MLP  # noqa: E402
from skfocal._sampling import EpochSampler  # noqa: E402
from skfocal.losses import BinaryFocalLoss  # noqa: E402

EPOCH_TARGET = 5.0


def make_data(n_rows, n_features, seed=0):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_rows, n_features=n_features, weights=[0.9], random_state=seed
    )
    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)


def folds_of(n_rows, n_folds, seed=0):
    """Training rows of each fold of a shuffled K-fold split."""
    perm = torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed))
    parts = perm.chunk(n_folds)
    return [
        torch.cat([p for j, p in enumerate(parts) if j != i]).sort().values for i in range(n_folds)
    ]


def make_sampler(n_rows, seed):
    return EpochSampler(n_rows, torch.Generator().manual_seed(seed))


def build_mlp(n_features, seed):
    torch.manual_seed(seed)
    return MLP(n_features, 1, (64,))


class SingleFit:
    """The plain loop of one fit (one fold, gamma=2), one epoch per call."""

    def __init__(self, X, y, rows, batch_size, seed):
        self.X, self.y, self.rows, self.batch_size = X, y, rows, batch_size
        self.mlp = build_mlp(X.shape[1], seed)
        self.criterion = BinaryFocalLoss(gamma=2.0, reduction="none")
        self.opt = torch.optim.AdamW(
            self.mlp.parameters(), lr=3e-3, weight_decay=1e-2, **fused_kwargs()
        )
        self.sampler = make_sampler(len(rows), seed)

    def epoch(self):
        order = self.rows[self.sampler()]
        for start in range(0, len(order), self.batch_size):
            b = order[start : start + self.batch_size]
            out = self.mlp(self.X.index_select(0, b)).squeeze(1)
            loss = self.criterion(out, self.y.index_select(0, b)).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()


class StackedFit:
    """``len(folds) x len(specs)`` members as one stacked model, one epoch per call."""

    def __init__(self, X, y, folds, specs, batch_size, per_member_lr):
        members, train_idx, samplers, member_specs = [], [], [], []
        for c, spec in enumerate(specs):
            for f, rows in enumerate(folds):
                seed = 1000 * c + f
                members.append(build_mlp(X.shape[1], seed))
                train_idx.append(rows)
                samplers.append(make_sampler(len(rows), seed))
                member_specs.append(spec)
        n = len(members)
        self.X, self.y = X, y
        self.model = StackedMLP(members)
        lr = [3e-3 * (1 + m / n) for m in range(n)] if per_member_lr else 3e-3
        wd = [1e-2 * (1 + m / n) for m in range(n)] if per_member_lr else 1e-2
        self.opt = StackedAdamW(
            self.model.flat_params, self.model.flat_grads, lr=lr, weight_decay=wd
        )
        self.loss = StackedLoss("binary", member_specs, 1)
        self.batches = MemberBatches(samplers, train_idx, batch_size)

    def epoch(self):
        train_stacked(self.model, self.opt, self.loss, self.batches, self.X, self.y, max_epochs=1)


def interleaved(contenders, repeats, warmup=1):
    """Median wall and CPU seconds of each contender, all run once per round, after warm-up."""
    wall = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    for r in range(warmup + repeats):
        for name, fn in contenders.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if r >= warmup:
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    median = statistics.median
    return {n: median(t) for n, t in wall.items()}, {n: median(t) for n, t in cpu.items()}


def bench_epoch(args):
    X, y = make_data(args.rows, args.features)
    folds = folds_of(args.rows, args.folds)
    gammas = (0.0, 1.0, 2.0)
    alphas = (None, 0.25, 0.75)
    specs = [MemberLoss(gamma=g, alpha=a) for g in gammas for a in alphas][: args.candidates]
    n = len(specs) * len(folds)
    single = SingleFit(X, y, folds[0], args.batch_size, seed=0)
    shared = StackedFit(X, y, folds, specs, args.batch_size, per_member_lr=False)
    own = StackedFit(X, y, folds, specs, args.batch_size, per_member_lr=True)
    wall, cpu = interleaved(
        {"single": single.epoch, "stack_shared": shared.epoch, "stack_own": own.epoch},
        args.repeats,
    )
    print(
        f"\n1. epoch: {n} members = {len(specs)} candidates x {len(folds)} folds of "
        f"{len(folds[0])} rows, MLP-{args.features}-64-1, batch {args.batch_size}, "
        f"{args.repeats} rounds (median wall time; process CPU time in brackets)"
    )
    print(f"{'contender':36s} {'ms/epoch':>16s} {'/ 1 single':>16s} {f'/ {n} singles':>16s}")
    rows = [
        ("single fit, plain loop (1 fold)", "single"),
        (f"stack of {n}, shared lr/wd", "stack_shared"),
        (f"stack of {n}, per-member lr/wd", "stack_own"),
    ]
    for label, key in rows:
        w, c = wall[key], cpu[key]
        rw, rc = w / wall["single"], c / cpu["single"]
        print(
            f"{label:36s} {w * 1e3:7.1f} ({c * 1e3:6.1f}) {rw:6.2f}x ({rc:5.2f}x) "
            f"{rw / n:6.3f}x ({rc / n:5.3f}x)"
        )
    worst = max(wall["stack_shared"], wall["stack_own"]) / wall["single"]
    verdict = "OK" if worst <= EPOCH_TARGET else "MISSED"
    print(f"stack / single epoch (wall) target <= {EPOCH_TARGET}x: {verdict} ({worst:.2f}x)")
    return verdict == "OK"


def bench_optimizer(args):
    sizes = (1, 9) if args.quick else (1, 9, 45)
    torch.manual_seed(0)
    single = MLP(args.features, 1, (64,))
    for p in single.parameters():
        p.grad = torch.randn_like(p)
    torch_opt = torch.optim.AdamW(single.parameters(), lr=3e-3, weight_decay=1e-2, **fused_kwargs())
    contenders = {"torch": torch_opt.step}
    for m in sizes:
        model = StackedMLP([build_mlp(args.features, s) for s in range(m)])
        model.flat_grads.copy_(torch.randn_like(model.flat_grads))
        lrs = [3e-3 * (1 + i / m) for i in range(m)]
        shared = StackedAdamW(model.flat_params, model.flat_grads, lr=3e-3, weight_decay=1e-2)
        model2 = StackedMLP([build_mlp(args.features, s) for s in range(m)])
        model2.flat_grads.copy_(model.flat_grads)
        own = StackedAdamW(model2.flat_params, model2.flat_grads, lr=lrs, weight_decay=1e-2)
        contenders[f"shared{m}"] = shared.step
        contenders[f"own{m}"] = own.step
    repeats = 50 if args.quick else 400
    med, _ = interleaved({name: _repeat(fn, 20) for name, fn in contenders.items()}, repeats)
    base = med["torch"] / 20
    print(
        f"\n2. optimizer step, MLP-{args.features}-64-1 ({single.layers[0].weight.numel() + 129} "
        f"params/member), {repeats} rounds of 20 steps (median)"
    )
    print(f"torch.optim.{adam_label('AdamW')}.step(), one model: {base * 1e6:.1f} us")
    print(
        f"{'StackedAdamW.step()':28s} {'M':>3s} {'us/step':>9s} {'us/member':>10s} {'/ torch':>8s}"
    )
    ok = True
    for m in sizes:
        for kind, label in (("shared", "shared lr/wd (fused)"), ("own", "per-member lr/wd")):
            t = med[f"{kind}{m}"] / 20
            ratio = t / m / base
            ok &= ratio <= 1.0
            print(f"{label:28s} {m:3d} {t * 1e6:9.1f} {t / m * 1e6:10.1f} {ratio:7.2f}x")
    print(f"per member <= one torch fused step: {'OK' if ok else 'MISSED'}")
    return ok


def _repeat(fn, n):
    def run():
        for _ in range(n):
            fn()

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--candidates", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.candidates = 2_000, 2, 3
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, float32, CPU")
    epoch_ok = bench_epoch(args)
    opt_ok = bench_optimizer(args)
    print("\nall targets met" if epoch_ok and opt_ok else "\nsome targets missed")


if __name__ == "__main__":
    main()
