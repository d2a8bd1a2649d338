"""Forward+backward speed of skfocal's losses relative to torch's own losses.

Every ratio is measured against a baseline timed in the same run, in eager mode, with no
``torch.compile``: the time of one forward and backward of the loss divided by that of
``F.cross_entropy`` (multiclass) or ``F.binary_cross_entropy_with_logits`` (binary), each the
median of many repetitions with baseline and candidate interleaved after a warm-up, so that
machine noise hits both alike.

Two regimes are measured:

* **training batch sizes** -- (256, 2), (256, 8), (256, 100) logits and 256 or 4,096 binary
  logits, where a loss costs tens of microseconds and per-call overhead (argument checks,
  autograd nodes, the number of eager operations) decides. Rows for the functions, for the
  ``nn.Module`` criteria, and for FocalClassifier's two uses of them: ``[fit]``, an
  unweighted batch (the criterion's lean batch mean computes the loss and its closed-form
  logit gradient, which is handed to autograd at the logits: no autograd node for the loss;
  against the torch loss's forward and backward), and ``[fit, w]``, a weighted batch
  (``reduction="none"``, times per-sample weights, mean; the baseline used the same way).
  Each timing is of a batch of calls, to keep the timer's own cost out.
* **large inputs** -- (65536, 10), (8192, 1000) logits and 1,048,576 binary logits, where the
  passes over the data decide.

Run ``python benchmarks/bench_losses.py`` (``--quick`` for a smoke run, ``--device cuda`` on a
GPU, ``--only small`` or ``--only large`` for one regime). On a machine shared with other
jobs, wall-clock times of microsecond operations are dominated by descheduling; ``--threads 1
--clock thread`` then times the CPU time of the (only) computing thread instead, which other
processes barely disturb. Targets on a 2-core CPU are printed
beside each ratio (OK / MISSED): focal forward+backward <= 2.5x cross-entropy at (256, 8) (aim
1.5x), binary focal <= 2.0x BCE at 256 and at 1,048,576 elements, multiclass focal <= 1.25x
cross-entropy at (65536, 10) and (8192, 1000). Reference implementations (the torchvision
formula and the ``exp(-CE)`` one) are timed for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from skfocal.losses import (
    BinaryFocalLoss,
    FocalLoss,
    binary_focal_loss_with_logits,
    binary_margin_loss_with_logits,
    focal_loss,
    margin_loss,
)

# (row name, size) -> target ratio; rows without one are reported only
SMALL_TARGETS = {
    ("focal_loss", (256, 8)): 2.5,
    ("FocalLoss()", (256, 8)): 2.5,
    ("binary_focal_loss_with_logits", 256): 2.0,
    ("BinaryFocalLoss()", 256): 2.0,
}
LARGE_TARGETS = {"focal_loss": 1.25, "binary_focal_loss_with_logits": 2.0}


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


CLOCK = time.perf_counter  # --clock thread: time.thread_time


def time_pair(baseline, candidate, x, target, repeats, device, inner=1, warmup=3):
    """Median seconds per call of baseline and candidate, interleaved after warm-up.

    Each of the ``repeats`` samples times ``inner`` consecutive calls (forward and backward).
    """
    for _ in range(warmup):
        _step(baseline, x, target)
        _step(candidate, x, target)
    base, cand = [], []
    for _ in range(repeats):
        for fn, out in ((baseline, base), (candidate, cand)):
            _sync(device)
            start = CLOCK()
            for _ in range(inner):
                _step(fn, x, target)
            _sync(device)
            out.append((CLOCK() - start) / inner)
    return statistics.median(base), statistics.median(cand)


def _report(name, size, base, cand, unit, target, failed):
    ratio = cand / base
    mark = ""
    if target is not None:
        ok = ratio <= target
        mark = f"  target <= {target}: {'OK' if ok else 'MISSED'}"
        if not ok:
            failed.append(f"{name} {size}")
    scale = 1e6 if unit == "us" else 1e3
    print(
        f"{name:38s} {str(size):>12s} {base * scale:9.1f} {cand * scale:9.1f} {ratio:6.2f}x{mark}"
    )


class LeanFit:
    """FocalClassifier's use of an unweighted focal criterion: its lean batch mean's loss and
    closed-form logit gradient (``value_and_grad``), handed to autograd at the logits -- no
    autograd node for the loss (the criterion's ``_lean_mean()``, ``skfocal.losses._focal``).
    The loss comes as two factors, which the estimator multiplies and sums for a whole epoch
    at once (``skfocal.losses._lean.batch_losses``, a handful of operations per epoch); that
    per-epoch sum is not timed here."""

    def __init__(self, criterion):
        self.mean = criterion._lean_mean()

    def __call__(self, x, target):
        loss, grad = self.mean.value_and_grad(x, target)
        return _Backprop(x, grad)


class _Backprop:
    def __init__(self, x, grad):
        self.x, self.grad = x, grad

    def backward(self):
        self.x.backward(self.grad)


def weighted_mean(criterion, w):
    """FocalClassifier's use of a criterion: ``reduction="none"``, times weights ``w``, mean."""

    def loss(x, target):
        return (criterion(x, target) * w).mean()

    return loss


def run_small(args, device, gen, failed):
    repeats, inner = (20, 5) if args.quick else (args.repeats_small, 20)
    print(
        f"\n-- training batch sizes: median of {repeats} x {inner} calls, interleaved, "
        "after warm-up"
    )
    print(f"{'multiclass loss':38s} {'size':>12s} {'CE us':>9s} {'loss us':>9s} {'ratio':>7s}")
    for n, c in [(256, 2), (256, 8), (256, 100)]:
        x = torch.randn(n, c, generator=gen).to(device).requires_grad_()
        t = torch.randint(0, c, (n,), generator=gen).to(device)
        w = torch.rand(n, generator=gen).to(device)
        ce_none = torch.nn.CrossEntropyLoss(reduction="none")
        rows = [
            ("focal_loss", F.cross_entropy, lambda x, t: focal_loss(x, t, gamma=2.0)),
            ("FocalLoss()", F.cross_entropy, FocalLoss(gamma=2.0)),
            (
                "lean mean, gradient at logits [fit]",
                F.cross_entropy,
                LeanFit(FocalLoss(reduction="none")),
            ),
            (
                'FocalLoss("none") * w, mean [fit, w]',
                weighted_mean(ce_none, w),
                weighted_mean(FocalLoss(reduction="none"), w),
            ),
            ("naive exp(-CE) focal [ref]", F.cross_entropy, naive_softmax_focal),
        ]
        for name, baseline, fn in rows:
            base, cand = time_pair(baseline, fn, x, t, repeats, device, inner=inner, warmup=50)
            _report(name, (n, c), base, cand, "us", SMALL_TARGETS.get((name, (n, c))), failed)

    print(f"\n{'binary loss':38s} {'elements':>12s} {'BCE us':>9s} {'loss us':>9s} {'ratio':>7s}")
    for n in (256, 4096):
        x = torch.randn(n, generator=gen).to(device).requires_grad_()
        y = (torch.rand(n, generator=gen) < 0.1).float().to(device)
        w = torch.rand(n, generator=gen).to(device)
        pos_weight = torch.tensor([3.0]).to(device)
        bce_none = torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=pos_weight)
        fit_crit = BinaryFocalLoss(alpha=0.25, pos_weight=pos_weight, reduction="none")
        rows = [
            (
                "binary_focal_loss_with_logits",
                F.binary_cross_entropy_with_logits,
                lambda x, y: binary_focal_loss_with_logits(x, y, gamma=2.0),
            ),
            ("BinaryFocalLoss()", F.binary_cross_entropy_with_logits, BinaryFocalLoss(gamma=2.0)),
            (
                "lean mean, gradient at logits [fit]",
                F.binary_cross_entropy_with_logits,
                LeanFit(BinaryFocalLoss(reduction="none")),
            ),
            (
                "BinaryFocalLoss(a, pw, none)*w [fit, w]",
                weighted_mean(bce_none, w),
                weighted_mean(fit_crit, w),
            ),
            (
                "torchvision formula [ref]",
                F.binary_cross_entropy_with_logits,
                torchvision_sigmoid_focal,
            ),
        ]
        for name, baseline, fn in rows:
            base, cand = time_pair(baseline, fn, x, y, repeats, device, inner=inner, warmup=50)
            _report(name, n, base, cand, "us", SMALL_TARGETS.get((name, n)), failed)


def run_large(args, device, gen, failed):
    repeats = 5 if args.quick else args.repeats
    multiclass_sizes = [(4096, 10), (512, 1000)] if args.quick else [(65536, 10), (8192, 1000)]
    binary_size = 65536 if args.quick else 1_048_576
    print(f"\n-- large inputs: median of {repeats} calls, interleaved, after warm-up")
    candidates = {
        "focal_loss": lambda x, t: focal_loss(x, t, gamma=2.0),
        "focal_loss(gamma=0.5, alpha)": None,
        "margin_loss(soft)": lambda x, t: margin_loss(x, t, margin=0.6, softness=4.0),
        "naive exp(-CE) focal [ref]": naive_softmax_focal,
    }
    print(f"{'multiclass loss':38s} {'size':>12s} {'CE ms':>9s} {'loss ms':>9s} {'ratio':>7s}")
    for n, c in multiclass_sizes:
        x = torch.randn(n, c, generator=gen).to(device).requires_grad_()
        t = torch.randint(0, c, (n,), generator=gen).to(device)
        alpha = torch.rand(c, generator=gen).to(device)
        candidates["focal_loss(gamma=0.5, alpha)"] = lambda x, t, a=alpha: focal_loss(
            x, t, gamma=0.5, alpha=a
        )
        for name, fn in candidates.items():
            base, cand = time_pair(F.cross_entropy, fn, x, t, repeats, device)
            _report(name, (n, c), base, cand, "ms", LARGE_TARGETS.get(name), failed)

    x = torch.randn(binary_size, generator=gen).to(device).requires_grad_()
    y = (torch.rand(binary_size, generator=gen) < 0.1).float().to(device)
    binary = {
        "binary_focal_loss_with_logits": lambda x, y: binary_focal_loss_with_logits(
            x, y, gamma=2.0, alpha=0.25
        ),
        "binary_focal(gamma=2, no alpha)": lambda x, y: binary_focal_loss_with_logits(x, y),
        "binary_focal(gamma=0.5, alpha=.25)": lambda x, y: binary_focal_loss_with_logits(
            x, y, gamma=0.5, alpha=0.25
        ),
        "binary_margin_loss(soft)": lambda x, y: binary_margin_loss_with_logits(
            x, y, margin=0.6, softness=4.0
        ),
        "torchvision formula [ref]": torchvision_sigmoid_focal,
    }
    print(f"\n{'binary loss':38s} {'elements':>12s} {'BCE ms':>9s} {'loss ms':>9s} {'ratio':>7s}")
    for name, fn in binary.items():
        base, cand = time_pair(F.binary_cross_entropy_with_logits, fn, x, y, repeats, device)
        _report(name, binary_size, base, cand, "ms", LARGE_TARGETS.get(name), failed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--repeats", type=int, default=50, help="samples, large inputs")
    parser.add_argument("--repeats-small", type=int, default=200, help="samples, small inputs")
    parser.add_argument("--only", choices=["small", "large"], help="run one regime only")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument(
        "--clock",
        choices=["wall", "thread"],
        default="wall",
        help="wall: perf_counter; thread: CPU time of this thread (needs --threads 1, CPU)",
    )
    args = parser.parse_args(argv)
    global CLOCK
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "thread":
        if torch.get_num_threads() != 1 or args.device != "cpu":
            parser.error("--clock thread measures one thread: use it with --threads 1 on cpu")
        CLOCK = time.thread_time
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    print(
        f"torch {torch.__version__}, device={device}, threads={torch.get_num_threads()}, "
        f"clock={args.clock}, eager mode, no torch.compile; ratio = skfocal / torch"
    )
    failed = []
    if args.only != "large":
        run_small(args, device, gen, failed)
    if args.only != "small":
        run_large(args, device, gen, failed)
    print("\nall targets met" if not failed else f"\ntargets missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
