"""Forward+backward speed of skfocal's losses relative to torch's own losses.

Every ratio is measured against a baseline timed in the same run, in eager mode, with no
``torch.compile``: the time of one forward and backward of the loss divided by that of
``F.cross_entropy`` (multiclass) or ``F.binary_cross_entropy_with_logits`` (binary), each the
median of many repetitions with baseline and candidate interleaved, so that machine noise hits
both alike.

Run ``python benchmarks/bench_losses.py`` (``--quick`` for a smoke run, ``--device cuda`` on a
GPU). Targets on a 2-core CPU: multiclass focal <= 1.25x cross-entropy at (65536, 10) and
(8192, 1000); binary focal <= 2.5x BCE at 1,048,576 elements. Reference implementations
(the torchvision formula and a kornia-style one-hot formula) are timed for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from skfocal.losses import (
    binary_focal_loss_with_logits,
    binary_margin_loss_with_logits,
    focal_loss,
    margin_loss,
)

TARGETS = {"focal_loss": 1.25, "binary_focal_loss_with_logits": 2.5}


def torchvision_sigmoid_focal(x, y, gamma=2.0, alpha=0.25):
    """The formula of ``torchvision.ops.sigmoid_focal_loss`` (for reference timing only)."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss.mean()


def naive_softmax_focal(x, t, gamma=2.0):
    """The usual blog-post formula via ``exp(-CE)`` (for reference timing only)."""
    ce = F.cross_entropy(x, t, reduction="none")
    return ((1 - torch.exp(-ce)) ** gamma * ce).mean()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _step(fn, x, target):
    x.grad = None
    fn(x, target).backward()


def time_pair(baseline, candidate, x, target, repeats, device):
    """Median seconds of baseline and candidate, interleaved after warm-up."""
    for _ in range(3):
        _step(baseline, x, target)
        _step(candidate, x, target)
    base, cand = [], []
    for _ in range(repeats):
        for fn, out in ((baseline, base), (candidate, cand)):
            _sync(device)
            start = time.perf_counter()
            _step(fn, x, target)
            _sync(device)
            out.append(time.perf_counter() - start)
    return statistics.median(base), statistics.median(cand)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    args = parser.parse_args(argv)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    repeats = 5 if args.quick else args.repeats
    gen = torch.Generator().manual_seed(0)

    print(
        f"torch {torch.__version__}, device={device}, threads={torch.get_num_threads()}, "
        f"repeats={repeats} (median), eager mode, no torch.compile"
    )
    multiclass_sizes = [(4096, 10), (512, 1000)] if args.quick else [(65536, 10), (8192, 1000)]
    binary_size = 65536 if args.quick else 1_048_576

    candidates = {
        "focal_loss": lambda x, t: focal_loss(x, t, gamma=2.0),
        "focal_loss(gamma=0.5, alpha)": None,
        "margin_loss(soft)": lambda x, t: margin_loss(x, t, margin=0.6, softness=4.0),
        "naive exp(-CE) focal [ref]": naive_softmax_focal,
    }
    failed = []
    print(f"\n{'multiclass loss':34s} {'size':>14s} {'CE ms':>8s} {'loss ms':>8s} {'ratio':>7s}")
    for n, c in multiclass_sizes:
        x = torch.randn(n, c, generator=gen).to(device).requires_grad_()
        t = torch.randint(0, c, (n,), generator=gen).to(device)
        alpha = torch.rand(c, generator=gen).to(device)
        candidates["focal_loss(gamma=0.5, alpha)"] = lambda x, t, a=alpha: focal_loss(
            x, t, gamma=0.5, alpha=a
        )
        for name, fn in candidates.items():
            base, cand = time_pair(F.cross_entropy, fn, x, t, repeats, device)
            ratio = cand / base
            mark = ""
            if name in TARGETS:
                ok = ratio <= TARGETS[name]
                mark = f"  target <= {TARGETS[name]}: {'OK' if ok else 'MISSED'}"
                failed += [] if ok else [f"{name} {n}x{c}"]
            print(
                f"{name:34s} {f'({n}, {c})':>14s} {base * 1e3:8.2f} {cand * 1e3:8.2f} "
                f"{ratio:6.2f}x{mark}"
            )

    x = torch.randn(binary_size, generator=gen).to(device).requires_grad_()
    y = (torch.rand(binary_size, generator=gen) < 0.1).float().to(device)
    binary = {
        "binary_focal_loss_with_logits": lambda x, y: binary_focal_loss_with_logits(x, y),
        "binary_focal(gamma=0.5, alpha=.25)": lambda x, y: binary_focal_loss_with_logits(
            x, y, gamma=0.5, alpha=0.25
        ),
        "binary_margin_loss(soft)": lambda x, y: binary_margin_loss_with_logits(
            x, y, margin=0.6, softness=4.0
        ),
        "torchvision formula [ref]": torchvision_sigmoid_focal,
    }
    print(f"\n{'binary loss':34s} {'elements':>14s} {'BCE ms':>8s} {'loss ms':>8s} {'ratio':>7s}")
    for name, fn in binary.items():
        base, cand = time_pair(F.binary_cross_entropy_with_logits, fn, x, y, repeats, device)
        ratio = cand / base
        mark = ""
        if name in TARGETS:
            ok = ratio <= TARGETS[name]
            mark = f"  target <= {TARGETS[name]}: {'OK' if ok else 'MISSED'}"
            failed += [] if ok else [name]
        print(
            f"{name:34s} {binary_size:>14d} {base * 1e3:8.2f} {cand * 1e3:8.2f} {ratio:6.2f}x{mark}"
        )
    print("\nall targets met" if not failed else f"\ntargets missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
