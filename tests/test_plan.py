"""The fit plan, unit-tested without training: split, sampler rows, weights, alpha, seeds."""

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler

from skfocal import FocalClassifier
from skfocal._loss_specs import LOSSES
from skfocal._plan import make_plan, normalise_weights, split_positions
from skfocal._targets import BINARY, MULTICLASS, MULTILABEL
from skfocal._weights import balanced_class_weight


def _plan(y, X=None, sample_weight=None, kind=None, **params):
    y = np.asarray(y)
    X = np.arange(2 * len(y), dtype=np.float32).reshape(len(y), 2) if X is None else X
    kind = kind or (BINARY if len(np.unique(y)) == 2 else MULTICLASS)
    return make_plan(FocalClassifier(**params), X, y, sample_weight)[0]


Y_IMB = np.array([0] * 90 + [1] * 10)


@pytest.mark.parametrize("seed_value", [0, 1])
def test_split_positions_are_stratified_disjoint_and_seeded(seed_value):
    assert split_positions(BINARY, Y_IMB, False, 0.2, seed_value) == (None, None)
    train, valid = split_positions(BINARY, Y_IMB, True, 0.2, seed_value)
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == 100
    assert np.bincount(Y_IMB[valid]).tolist() == [18, 2]  # stratified
    np.testing.assert_array_equal(valid, split_positions(BINARY, Y_IMB, True, 0.2, seed_value)[1])
    with pytest.raises(ValueError, match=r"early_stopping=True .* needs at least 2 samples"):
        split_positions(BINARY, Y_IMB[:1], True, 0.2, seed_value)


@pytest.mark.parametrize("seed_value", [0, 1, 2, 3])
def test_split_positions_gives_every_class_a_validation_row(seed_value):
    """``every_class`` (a scorer monitors early stopping): a class the stratified split left
    out of the validation part lends it one of its training rows, seeded."""
    y = np.array([0] * 96 + [1] * 2 + [2] * 2)
    plain = split_positions(MULTICLASS, y, True, 0.1, seed_value)
    train, valid = split_positions(MULTICLASS, y, True, 0.1, seed_value, every_class=True)
    assert set(y[valid]) == {0, 1, 2} and set(y[train]) == {0, 1, 2}
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == 100
    moved = np.setdiff1d(valid, plain[1])
    assert set(y[moved]) <= {1, 2} and len(valid) == len(plain[1]) + len(moved)
    np.testing.assert_array_equal(
        valid, split_positions(MULTICLASS, y, True, 0.1, seed_value, every_class=True)[1]
    )
    with pytest.raises(ValueError, match=r"class index \[3\] has only 1"):
        split_positions(MULTICLASS, np.append(y, 3), True, 0.1, seed_value, every_class=True)


def test_plan_validation_split_is_stratified_and_labels_kept():
    y = np.array(["neg"] * 90 + ["pos"] * 10)
    plan = _plan(y, early_stopping=True, validation_fraction=0.2, random_state=0)
    assert plan.n_valid == 20 and plan.n_train == 80
    assert np.bincount(plan.y_enc[plan.valid_idx]).tolist() == [18, 2]
    assert plan.y_valid.tolist() == y[plan.valid_idx].tolist()  # original labels for scorers


def test_sampler_sees_only_the_training_part():
    # RandomOverSampler's sample_indices_ are positions *within the training part*
    plan = _plan(
        Y_IMB,
        early_stopping=True,
        validation_fraction=0.2,
        sampler=RandomOverSampler(random_state=0),
        random_state=0,
    )
    pool = plan.sampler.pool
    assert pool.max() < plan.n_train
    y_train = plan.y_enc[plan.train_idx]
    assert np.bincount(y_train[pool]).tolist() == [72, 72]  # balanced within training rows
    assert not np.isin(plan.train_idx[pool], plan.valid_idx).any()


def test_class_balanced_sampler_plan_and_prior():
    plan = _plan(Y_IMB, sampler="oversample", random_state=0)
    assert plan.sampler.power == 0.0 and plan.sampler.pool is None
    np.testing.assert_allclose(plan.prior, [0.5, 0.5])  # what the loss sees under the sampler
    plan = _plan(Y_IMB, sampler="sqrt", random_state=0)
    np.testing.assert_allclose(plan.prior, [3 / 4, 1 / 4])  # sqrt(90) : sqrt(10) = 3 : 1


def test_smote_rows_replace_the_training_part():
    X = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    plan = _plan(
        Y_IMB,
        X=X,
        sampler=SMOTE(k_neighbors=3, random_state=0),
        early_stopping=True,
        validation_fraction=0.2,
        random_state=0,
    )
    n_res = len(plan.sampler.y_res)
    assert np.bincount(plan.y_enc[:n_res]).tolist() == [72, 72]
    np.testing.assert_array_equal(plan.train_idx, np.arange(n_res))
    np.testing.assert_array_equal(plan.valid_idx, np.arange(n_res, n_res + 20))
    assert len(plan.sampler.valid_rows) == 20
    with pytest.raises(ValueError, match=r"sample_weight cannot be combined with a sampler"):
        _plan(Y_IMB, X=X, sampler=SMOTE(k_neighbors=3), sample_weight=np.ones(100))


def test_weights_are_normalised_over_the_training_rows(seed):
    sw = seed.uniform(0.5, 2.0, size=100)
    plan = _plan(
        Y_IMB,
        sample_weight=sw,
        class_weight="balanced",
        early_stopping=True,
        random_state=0,
    )
    cw = balanced_class_weight(Y_IMB, 2, sw)
    np.testing.assert_allclose(plan.class_weight, cw)
    raw = sw * cw[Y_IMB]
    np.testing.assert_allclose(plan.weights, raw / raw[plan.train_idx].mean())
    assert plan.weights[plan.train_idx].mean() == pytest.approx(1.0)
    assert _plan(Y_IMB).weights is None
    np.testing.assert_allclose(normalise_weights(np.zeros(3), slice(None)), np.zeros(3))


@pytest.mark.parametrize(
    "kind, y, alpha, expected",
    [
        (BINARY, Y_IMB, "balanced", 0.9),
        (BINARY, Y_IMB, 0.25, 0.25),
        (MULTICLASS, np.array([0, 0, 1, 2]), [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
        (MULTILABEL, np.array([[1, 0], [0, 0], [1, 1], [0, 0]]), "balanced", [0.5, 0.75]),
    ],
)
def test_alpha_resolved_per_kind(kind, y, alpha, expected):
    plan = _plan(y, kind=kind, alpha=alpha)
    np.testing.assert_allclose(plan.alpha, expected)


def test_multilabel_class_weight_becomes_pos_weight():
    y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    plan = _plan(y, kind=MULTILABEL, class_weight="balanced")
    assert plan.class_weight is None and plan.weights is None
    np.testing.assert_allclose(plan.pos_weight, [1.0, 3.0])
    np.testing.assert_allclose(plan.prior, [0.5, 0.25])
    with pytest.raises(ValueError, match=r"sampler='oversample' balances classes"):
        _plan(y, kind=MULTILABEL, sampler="oversample")


def test_seeds_come_from_random_state():
    a, b = _plan(Y_IMB, random_state=0), _plan(Y_IMB, random_state=0)
    assert a.seeds == b.seeds and len(set(a.seeds.values())) == 3
    assert _plan(Y_IMB, random_state=1).seeds != a.seeds
    rng = np.random.RandomState(0)
    assert _plan(Y_IMB, random_state=rng).seeds == a.seeds  # an instance is consumed alike


def test_loss_spec_schedule_and_training_params():
    plan = _plan(Y_IMB, loss="margin", softness=1.0, warmup_epochs=3, lr=0.1)
    assert plan.loss is LOSSES["margin"]
    assert plan.loss_params == {"margin": 0.6, "softness": 1.0}
    assert plan.schedule == [(1, LOSSES["cross_entropy"], None), (4, LOSSES["margin"], None)]
    assert plan.params["lr"] == 0.1 and plan.n_outputs == 1 and plan.n_features == 2
    assert _plan(Y_IMB, loss="cross_entropy", warmup_epochs=3).schedule is None


def test_plan_needs_no_torch_device():
    # the plan is host-side: numpy arrays and plain values, no tensors
    plan = _plan(Y_IMB, sampler="oversample", alpha=0.25, early_stopping=True)
    assert not any(isinstance(v, torch.Tensor) for v in vars(plan).values())


@pytest.mark.parametrize("class_prior", ["data", "balanced", [0.3, 0.7]])
@pytest.mark.parametrize("params", [{}, {"alpha": "balanced"}, {"warmup_epochs": 2}])
def test_with_class_prior_equals_the_plan_of_that_prior(class_prior, params):
    """A search plans a candidate that differs only in class_prior from the planned one: the
    training part is shared, the posteriors are those make_plan gives for its prior."""
    from skfocal._plan import with_class_prior

    y = np.array([0] * 30 + [1] * 10)
    base = _plan(y, **params)
    est = FocalClassifier(**params, class_prior=class_prior)
    derived = with_class_prior(base, est)
    direct = make_plan(est, np.zeros((len(y), 2)), y)[0]
    assert derived.params == direct.params and derived.weights is base.weights
    assert len(derived.posteriors) == len(direct.posteriors)
    for got, want in zip(derived.posteriors, direct.posteriors, strict=True):
        np.testing.assert_array_equal(got.shift, want.shift)
        np.testing.assert_array_equal(got.emphasis, want.emphasis)
    assert base.params["class_prior"] == "training"  # the planned one is left alone


def test_with_class_prior_raises_as_make_plan_does():
    from skfocal._plan import with_class_prior

    y = np.array([0] * 30 + [1] * 10)
    base = _plan(y, alpha=[0.0, 1.0])
    with pytest.raises(ValueError, match="undoes the training emphasis"):
        with_class_prior(base, FocalClassifier(alpha=[0.0, 1.0], class_prior="balanced"))
