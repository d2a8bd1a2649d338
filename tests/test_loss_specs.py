"""Loss specs: the registry behind FocalClassifier(loss=...) builds the right criteria."""

import pytest
import torch

from skfocal._loss_specs import LOSSES, loss_spec
from skfocal._targets import BINARY, MULTICLASS, MULTILABEL
from skfocal.losses import BinaryFocalLoss, BinaryMarginLoss, FocalLoss, MarginLoss

HYPER = {"gamma": 2.0, "margin": 0.7, "softness": 1.5}


@pytest.mark.parametrize(
    "name, kind, cls",
    [
        ("focal", MULTICLASS, FocalLoss),
        ("focal", BINARY, BinaryFocalLoss),
        ("cross_entropy", MULTILABEL, BinaryFocalLoss),
        ("margin", MULTICLASS, MarginLoss),
        ("margin", BINARY, BinaryMarginLoss),
    ],
)
def test_specs_build_per_sample_criteria(name, kind, cls):
    spec = loss_spec(name)
    criterion = spec.criterion(kind, {k: HYPER[k] for k in spec.params}, None, None)
    assert isinstance(criterion, cls) and criterion.reduction == "none"


def test_hyperparameters_read_from_the_estimator():
    from skfocal import FocalClassifier

    clf = FocalClassifier(gamma=0.5, margin=0.8)
    assert LOSSES["focal"].hyperparameters(clf) == {"gamma": 0.5}
    assert LOSSES["margin"].hyperparameters(clf) == {"margin": 0.8, "softness": None}
    assert LOSSES["cross_entropy"].hyperparameters(clf) == {}


def test_cross_entropy_is_focal_at_gamma_zero_with_alpha_and_pos_weight():
    ce = LOSSES["cross_entropy"].criterion(BINARY, {}, 0.25, None)
    assert ce.gamma == 0.0 and ce.alpha == 0.25
    ml = LOSSES["focal"].criterion(MULTILABEL, {"gamma": 1.0}, None, [1.0, 3.0])
    torch.testing.assert_close(ml.pos_weight, torch.tensor([1.0, 3.0]))
    mc = LOSSES["focal"].criterion(MULTICLASS, {"gamma": 1.0}, [1.0, 2.0, 3.0], None)
    torch.testing.assert_close(mc.alpha, torch.tensor([1.0, 2.0, 3.0]))
