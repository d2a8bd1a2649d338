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
* **the thresholds in the loss code** (``--only thresholds``) -- the measurements behind each
  choice the code makes by size: the window of classes (4 to 15) where
  ``_softmax.log_softmax`` replaces torch's CPU kernel by four vectorised operations; the
  number of classes (``_focal._KERNEL_CLASSES``) below which the lean softmax mean keeps the
  kernel inside a training step; what keeping the gradient on ``ctx`` saves ``FusedLoss``
  against ``save_for_backward``; the block size of large CPU sigmoid losses
  (``_sigmoid._BLOCK``, elements per thread).

Run ``python benchmarks/bench_losses.py`` (``--quick`` for a smoke run, ``--device cuda`` on a
GPU, ``--only small``, ``--only large`` or ``--only thresholds`` for one regime). On a machine
shared with other jobs, wall-clock times of microsecond operations are dominated by
descheduling; ``--threads 1 --clock thread`` then times the CPU time of the (only) computing
thread instead, which other processes barely disturb. Targets on a 2-core CPU are printed
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


# -- the thresholds of the loss code ------------------------------------------------------------


def _vectorised_log_softmax(x):
    """``_softmax.log_softmax``'s four operations on the rows of ``x``."""
    z = x - x.amax(1, keepdim=True)
    return z.sub_(z.exp().sum(1, keepdim=True).log_())


def _time_one(fns, repeats, inner, warmup=20):
    """Median seconds per call of each zero-argument callable in ``fns``, interleaved."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples, strict=True):
            start = CLOCK()
            for _ in range(inner):
                fn()
            out.append((CLOCK() - start) / inner)
    return [statistics.median(out) for out in samples]


class _SavedFusedLoss(torch.autograd.Function):
    """``FusedLoss`` with the gradient packed by ``save_for_backward`` (the alternative)."""

    @staticmethod
    def forward(ctx, input, compute, args):
        loss, grad = compute(input, *args, True)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None


def _kernel_classes_row(c, gen, repeats, inner):
    """``((kernel, ops) alone, (kernel, ops) in a step)``: seconds of the lean softmax mean
    with torch's log-softmax kernel and with the four operations, at 256 rows of C classes."""
    from skfocal.losses import _focal

    x = torch.randn(256, 20, generator=gen)
    t = torch.randint(0, c, (256,), generator=gen)
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, c))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mean = _focal.SoftmaxFocalMean(2.0)
    logits = model(x).detach()

    def alone(threshold):
        _focal._KERNEL_CLASSES = threshold
        mean.value_and_grad(logits, t)

    def step(threshold):
        _focal._KERNEL_CLASSES = threshold
        opt.zero_grad(set_to_none=True)
        out = model(x)
        _, grad = mean.value_and_grad(out, t)
        out.backward(grad)
        opt.step()

    saved = _focal._KERNEL_CLASSES
    try:  # threshold 1,000: always the kernel; 0: the four operations (4 to 15 classes)
        alone_times = _time_one([lambda: alone(1_000), lambda: alone(0)], repeats, inner)
        step_times = _time_one([lambda: step(1_000), lambda: step(0)], repeats, inner)
    finally:
        _focal._KERNEL_CLASSES = saved
    return alone_times, step_times


def _fused_through(function, n, c, gen):
    """A call of focal_loss's compute function through the autograd Function ``function``."""
    from skfocal.losses import _softmax

    x = torch.randn(n, c, generator=gen).requires_grad_()
    args = (torch.randint(0, c, (n,), generator=gen), 2.0, None, "mean")

    def call():
        x.grad = None
        function.apply(x, _softmax.softmax_compute, args).backward()

    return call


def run_thresholds(args, device, gen, failed):
    """Print the measurements behind the size thresholds of the loss code (CPU)."""
    from skfocal.losses import _focal, _fused, _sigmoid

    if device.type != "cpu":
        print("\n-- thresholds: CPU choices, skipped on", device)
        return
    repeats, inner = (10, 5) if args.quick else (args.repeats_small // 2, 20)
    print(f"\n-- thresholds of the loss code: medians of {repeats} x {inner} calls, interleaved")

    print("\n_softmax.log_softmax: torch's CPU kernel against 4 vectorised ops (used for 4-15)")
    print(f"{'rows x classes':>16s} {'kernel us':>10s} {'4 ops us':>10s} {'ops/kernel':>11s}")
    for c in (2, 3, 4, 6, 8, 12, 15, 16, 24, 64):
        x = torch.randn(256, c, generator=gen)
        kernel, ops = _time_one(
            [lambda x=x: F.log_softmax(x, 1), lambda x=x: _vectorised_log_softmax(x)],
            repeats,
            inner,
        )
        print(f"{f'256 x {c}':>16s} {kernel * 1e6:10.1f} {ops * 1e6:10.1f} {ops / kernel:10.2f}x")

    print(
        f"\n_focal._KERNEL_CLASSES = {_focal._KERNEL_CLASSES}: the lean softmax mean "
        "(gamma=2), torch's kernel (k) against the 4 ops, alone and inside a training step"
    )
    print("(step: 20-64-C MLP, forward, value_and_grad, backward from the logits, Adam)")
    print(f"{'classes':>8s} {'alone k / ops us':>17s} {'ratio':>6s} {'step k / ops us':>17s} ratio")
    for c in (4, 5, 6, 7, 8, 10, 12):
        alone, step = _kernel_classes_row(c, gen, repeats, inner)
        print(
            f"{c:8d} {alone[0] * 1e6:7.1f} /{alone[1] * 1e6:7.1f} {alone[1] / alone[0]:6.2f}x "
            f"{step[0] * 1e6:7.1f} /{step[1] * 1e6:7.1f} {step[1] / step[0]:6.2f}x"
        )

    print("\nFusedLoss keeps the gradient on ctx (against save_for_backward): focal_loss")
    print(f"{'forward+backward':>16s} {'ctx us':>10s} {'saved us':>10s} {'saved - ctx':>12s}")
    for n, c in ((256, 8), (256, 100)):
        ctx, saved_t = _time_one(
            [_fused_through(fn, n, c, gen) for fn in (_fused.FusedLoss, _SavedFusedLoss)],
            repeats,
            inner,
        )
        print(
            f"{f'({n}, {c})':>16s} {ctx * 1e6:10.1f} {saved_t * 1e6:10.1f} "
            f"{(saved_t - ctx) * 1e6:9.1f} us"
        )

    n = 65536 if args.quick else 1_048_576
    print(
        f"\n_sigmoid._BLOCK = {_sigmoid._BLOCK} elements per thread: binary focal loss "
        f"(alpha=0.25, hard labels) forward+backward at {n:,} elements, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print(f"{'block per thread':>16s} {'ms':>10s} {'/ whole':>10s}")
    x = torch.randn(n, generator=gen).requires_grad_()
    y = (torch.rand(n, generator=gen) < 0.1).float()
    blocks = (8192, 32768, 131072, 2**40)
    saved = _sigmoid._BLOCK

    def loss_with(block):
        _sigmoid._BLOCK = block
        x.grad = None
        binary_focal_loss_with_logits(x, y, gamma=2.0, alpha=0.25).backward()

    try:
        times = _time_one(
            [lambda b=b: loss_with(b) for b in blocks], max(5, repeats // 10), 1, warmup=3
        )
    finally:
        _sigmoid._BLOCK = saved
    for block, seconds in zip(blocks, times, strict=True):
        name = "whole" if block == 2**40 else f"{block:,}"
        print(f"{name:>16s} {seconds * 1e3:10.2f} {seconds / times[-1]:9.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--repeats", type=int, default=50, help="samples, large inputs")
    parser.add_argument("--repeats-small", type=int, default=200, help="samples, small inputs")
    parser.add_argument(
        "--only", choices=["small", "large", "thresholds"], help="run one regime only"
    )
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
    if args.only in (None, "small"):
        run_small(args, device, gen, failed)
    if args.only in (None, "large"):
        run_large(args, device, gen, failed)
    if args.only in (None, "thresholds"):
        run_thresholds(args, device, gen, failed)
    print("\nall targets met" if not failed else f"\ntargets missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
