"""Every bad argument fails fast with a message naming parameter, allowed values and value."""

import pytest
import torch

from skfocal.losses import (
    BinaryFocalLoss,
    BinaryMarginLoss,
    FocalLoss,
    MarginLoss,
    binary_asymmetric_loss_with_logits,
    binary_focal_loss_with_logits,
    binary_ldam_loss_with_logits,
    binary_margin_loss_with_logits,
    focal_loss,
    margin_loss,
)
from skfocal.losses._checks import check_binary_target_values

X = torch.randn(4, 3)
T = torch.tensor([0, 1, 2, 1])
XB = torch.randn(4)
YB = torch.tensor([0.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: focal_loss(X, T, gamma=-1),
            ValueError,
            r"gamma must be a finite float >= 0, got -1",
        ),
        (lambda: focal_loss(X, T, gamma=float("inf")), ValueError, r"gamma must be .* got inf"),
        (lambda: focal_loss(X, T, gamma="2"), TypeError, r"gamma must be a real number .* got '2'"),
        (
            lambda: focal_loss(X, T, reduction="avg"),
            ValueError,
            r"reduction must be one of \('none', 'mean', 'sum'\), got 'avg'",
        ),
        (
            lambda: focal_loss(X, T, alpha=1.5),
            ValueError,
            r"alpha must be None, a float in \[0, 1\].*got 1.5",
        ),
        (
            lambda: focal_loss(X, T, alpha=0.25),
            ValueError,
            r"scalar alpha is the two-class shorthand.*with 3 classes.*alpha=0.25",
        ),
        (
            lambda: focal_loss(X, T, alpha=[0.5, 0.5]),
            ValueError,
            r"one weight per class: expected length 3, got length 2",
        ),
        (
            lambda: focal_loss(X, T, alpha=[0.5, -0.1, 1.0]),
            ValueError,
            r"finite, non-negative per-class weights, got \[0.5, -0.1, 1.0\]",
        ),
        (
            lambda: focal_loss(X, T, alpha=[[0.5, 0.5, 1.0]]),
            ValueError,
            r"alpha must be one-dimensional.*got shape \(1, 3\)",
        ),
        (
            lambda: focal_loss(X, T, alpha="balanced"),
            TypeError,
            r"alpha must be None.*got 'balanced'",
        ),
        (
            lambda: focal_loss(X, T[:3]),
            ValueError,
            r"target must have shape \(N, d1, ...\) = \(4,\) .* got target of shape \(3,\)",
        ),
        (
            lambda: focal_loss(X, T.float()),
            TypeError,
            r"integer class indices .* got dtype torch.float32",
        ),
        (lambda: focal_loss(X.long(), T), TypeError, r"floating-point logits .* torch.int64"),
        (
            lambda: focal_loss(X, torch.tensor([0, 1, 3, 1])),
            ValueError,
            r"class indices in \[0, 2\] \(or ignore_index=-100\), got 3",
        ),
        (lambda: focal_loss(X.numpy(), T), TypeError, r"expects torch tensors .* got ndarray"),
        (
            lambda: margin_loss(X, T, margin=1.0),
            ValueError,
            r"margin must be a float in the open interval \(0, 1\), got 1.0",
        ),
        (lambda: margin_loss(X, T, margin=0.0), ValueError, r"margin must be .* got 0.0"),
        (
            lambda: margin_loss(X, T, softness=-2),
            ValueError,
            r"softness must be None or a finite float >= 0, got -2",
        ),
        (
            lambda: binary_focal_loss_with_logits(XB[:, None], YB),
            ValueError,
            r"same shape, got input of shape \(4, 1\) and target of shape \(4,\).*squeeze\(-1\)",
        ),
        (
            lambda: binary_focal_loss_with_logits(XB, YB, alpha=[0.1, 0.2]),
            ValueError,
            r"one entry per label .* expected length 4, got length 2",
        ),
        (
            lambda: binary_focal_loss_with_logits(
                XB[:, None].expand(4, 2), YB[:, None].expand(4, 2), alpha=[0.1, 2.0]
            ),
            ValueError,
            r"each entry must lie in \[0, 1\], got \[0.1, 2.0\]",
        ),
        (lambda: binary_margin_loss_with_logits(XB, YB, margin=2), ValueError, r"margin must be"),
        (
            lambda: binary_focal_loss_with_logits(XB, torch.tensor([0.0, 1.0, 2.0, 0.0])),
            ValueError,
            r"binary_focal_loss_with_logits: target must hold labels in \[0, 1\], got 2.0",
        ),
        (
            lambda: binary_focal_loss_with_logits(XB, torch.tensor([0, -1, 1, 0])),
            ValueError,
            r"target must hold labels in \[0, 1\], got -1.0",
        ),
        (
            lambda: binary_focal_loss_with_logits(XB, torch.tensor([0.0, float("nan"), 1, 0])),
            ValueError,
            r"target must hold labels in \[0, 1\], got nan",
        ),
        (
            lambda: binary_margin_loss_with_logits(XB, YB * 3),
            ValueError,
            r"binary_margin_loss_with_logits: target must hold labels in \[0, 1\], got 3.0",
        ),
        (
            lambda: BinaryFocalLoss()(XB, YB - 0.5),
            ValueError,
            r"BinaryFocalLoss: target must hold labels in \[0, 1\], got -0.5",
        ),
        (
            lambda: BinaryMarginLoss()(XB, YB + 1),
            ValueError,
            r"BinaryMarginLoss: target must hold labels in \[0, 1\], got 2.0",
        ),
        (
            lambda: FocalLoss()(X, torch.tensor([0, 1, 3, 1])),
            ValueError,
            r"class indices in \[0, 2\] \(or ignore_index=-100\), got 3",
        ),
        (
            lambda: MarginLoss()(X, torch.tensor([0, -2, 1, 1])),
            ValueError,
            r"class indices in \[0, 2\] \(or ignore_index=-100\), got -2",
        ),
        (
            lambda: FocalLoss(alpha=0.25)(X, T),
            ValueError,
            r"scalar alpha is the two-class shorthand.*with 3 classes.*alpha=0.25",
        ),
        (
            lambda: FocalLoss()(X, T[:3]),
            ValueError,
            r"FocalLoss: target must have shape \(N, d1, ...\) = \(4,\)",
        ),
        (
            lambda: BinaryFocalLoss()(XB[:, None], YB),
            ValueError,
            r"BinaryFocalLoss: input and target must have the same shape",
        ),
        (
            lambda: binary_focal_loss_with_logits(XB, YB, pos_weight=torch.ones(2, 1, 4)),
            ValueError,
            r"alpha and pos_weight must be broadcastable to input: got weights of shape "
            r"\(2, 1, 4\) for input with 1 dimension",
        ),
        *(
            (
                lambda fn=fn, kw=kw: fn(XB, YB, pos_weight=torch.ones(2, 1, 4), **kw),
                ValueError,
                r"alpha and pos_weight must be broadcastable to input",
            )
            for fn, kw in (
                (binary_ldam_loss_with_logits, {"margins": [0.1, 0.2]}),
                (binary_asymmetric_loss_with_logits, {}),
            )
        ),
        (lambda: FocalLoss(gamma=-0.5), ValueError, r"gamma must be a finite float >= 0, got -0.5"),
        (
            lambda: BinaryFocalLoss(reduction="mean_over_batch"),
            ValueError,
            r"reduction must be one of",
        ),
        (lambda: MarginLoss(margin=-0.2), ValueError, r"margin must be"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_labels_in_range_and_soft_labels_are_accepted():
    y = torch.tensor([0.0, 1.0, 0.25, 1.0])
    assert torch.isfinite(binary_focal_loss_with_logits(XB, y))
    assert torch.isfinite(BinaryFocalLoss()(XB, y.bool().float()))
    assert torch.isfinite(binary_focal_loss_with_logits(XB, y > 0))


@pytest.mark.parametrize(
    ("values", "hard"),
    [
        ([0.0, 1.0, 1.0, 0.0], True),
        ([-0.0, 1.0], True),
        ([0.0, 0.5, 1.0], False),
        ([1e-30, 1.0], False),
        ([], False),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binary_target_check_reports_hard_labels(values, hard, dtype):
    """Hard labels (exactly 0 or 1) take the signed-logit form; soft ones do not."""
    target = torch.tensor(values, dtype=dtype)
    assert check_binary_target_values(target, "f") is hard


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan"), 2.0, -1.0])
def test_binary_target_check_refuses_what_squares_to_itself_outside_0_1(bad):
    """inf * inf == inf: the hard-label test clamps first, so inf is refused, not taken hard."""
    with pytest.raises(ValueError, match=r"target must hold labels in \[0, 1\]"):
        check_binary_target_values(torch.tensor([0.0, bad, 1.0]), "f")
