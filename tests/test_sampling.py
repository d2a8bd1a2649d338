"""Epoch samplers: class frequencies, seeding, index pools and imbalanced-learn samplers."""

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler, TomekLinks

from skfocal._inputs import DICT, FLOAT, IDS, InputSpec
from skfocal._sampling import (
    EpochSampler,
    SamplerPlan,
    check_sampled,
    check_sampler_inputs,
    fit_imblearn_sampler,
    needs_only_labels,
)

Y = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)


def _sampler(power=None, pool=None, seed=0, n=100):
    g = torch.Generator().manual_seed(seed)
    return EpochSampler(n, g, y=Y, n_classes=3, power=power, pool=pool)


@pytest.mark.parametrize("power, expected", [(0.0, [1 / 3] * 3), (0.5, None)])
def test_class_balanced_draws(power, expected):
    sampler = _sampler(power=power)
    draws = torch.cat([sampler() for _ in range(300)])
    freq = torch.bincount(Y[draws], minlength=3).double() / len(draws)
    if expected is None:
        root = np.sqrt([90, 9, 1])
        expected = root / root.sum()
    np.testing.assert_allclose(freq.numpy(), expected, atol=0.01)
    np.testing.assert_allclose(sampler.class_prob.numpy(), expected)
    assert len(sampler()) == len(Y)  # epoch size = number of training rows


def test_shuffle_is_a_seeded_permutation():
    a, b, c = _sampler(seed=0)(), _sampler(seed=0)(), _sampler(seed=1)()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.sort(a).values, torch.arange(len(Y)))


def test_pool_cycles_through_indices():
    pool = torch.tensor([0, 95, 99, 99])
    draws = _sampler(pool=pool, n=10)()
    assert len(draws) == 10
    assert set(draws.tolist()) <= {0, 95, 99}
    # first len(pool) draws are one permutation of the pool
    assert sorted(draws[:4].tolist()) == sorted(pool.tolist())


def test_imblearn_index_sampler_returns_indices_without_copy(seed):
    X = seed.normal(size=(len(Y), 3))
    indices, X_res, y_res = fit_imblearn_sampler(RandomOverSampler(), X, Y.numpy(), seed=0)
    assert X_res is None and y_res is None
    assert np.bincount(Y.numpy()[indices]).tolist() == [90, 90, 90]
    again, _, _ = fit_imblearn_sampler(RandomOverSampler(), X, Y.numpy(), seed=0)
    np.testing.assert_array_equal(indices, again)  # seeded by random_state
    under, _, _ = fit_imblearn_sampler(RandomUnderSampler(), X, Y.numpy(), seed=0)
    assert np.bincount(Y.numpy()[under]).tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    "sampler, only_labels",
    [
        (RandomOverSampler(), True),
        (RandomUnderSampler(), True),
        (RandomOverSampler(shrinkage=0.5), False),
        (SMOTE(k_neighbors=3), False),
    ],
)
def test_label_only_samplers_pick_the_same_rows_from_a_placeholder(seed, sampler, only_labels):
    assert needs_only_labels(sampler) is only_labels
    if not only_labels:
        return
    X = seed.normal(size=(len(Y), 3))
    placeholder = np.zeros((len(Y), 1), dtype=np.float32)
    from_x, _, _ = fit_imblearn_sampler(sampler, X, Y.numpy(), seed=3)
    from_placeholder, _, _ = fit_imblearn_sampler(sampler, placeholder, Y.numpy(), seed=3)
    np.testing.assert_array_equal(from_x, from_placeholder)


def test_imblearn_synthetic_sampler_returns_data(seed):
    X = seed.normal(size=(40, 3))
    y = np.array([0] * 34 + [1] * 6)
    indices, X_res, y_res = fit_imblearn_sampler(SMOTE(k_neighbors=3), X, y, seed=0)
    assert indices is None and X_res.shape == (68, 3) and np.bincount(y_res).tolist() == [34, 34]


def test_check_sampler_against_the_target_kind():
    from skfocal._sampling import check_sampler
    from skfocal._targets import BINARY, MULTILABEL

    check_sampler("oversample", BINARY)
    check_sampler(RandomOverSampler(), MULTILABEL)  # imbalanced-learn decides for itself
    with pytest.raises(ValueError, match=r"sampler='sqrt' balances classes .* multilabel"):
        check_sampler("sqrt", MULTILABEL)


def test_double_weighting_warning():
    import warnings

    from skfocal._sampling import warn_double_weighting

    with pytest.warns(
        UserWarning,
        match=r"sampler='sqrt' already rebalances .* with "
        r"alpha='balanced' and class_weight='balanced'",
    ):
        warn_double_weighting("sqrt", "balanced", "balanced")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_double_weighting(None, "balanced", "balanced")
        warn_double_weighting("oversample", 0.25, None)


@pytest.mark.parametrize("power", [0.0, 0.5])
def test_plan_draw_frequencies_match_the_device_sampler(power):
    from skfocal._sampling import SamplerPlan

    y = np.array([0] * 30 + [1] * 6 + [2] * 4)
    plan = SamplerPlan(0, power=power)
    sampler = plan.epoch_sampler(len(y), y, 3, torch.device("cpu"))
    np.testing.assert_allclose(plan.draw_frequencies(y, 3), sampler.class_prob.numpy())
    pool_plan = SamplerPlan(0, pool=np.array([0, 30, 36, 37]))
    np.testing.assert_allclose(pool_plan.draw_frequencies(y, 3), [0.25, 0.25, 0.5])


def test_sampler_checks_for_dict_and_ids():
    dict_spec, ids_spec = InputSpec(DICT, keys=("a",)), InputSpec(IDS)
    for sampler in (None, "oversample", RandomOverSampler(), RandomUnderSampler()):
        check_sampler_inputs(sampler, dict_spec)
    check_sampler_inputs(TomekLinks(), ids_spec)  # reuses rows: allowed on ids
    with pytest.raises(ValueError, match=r"sampler=SMOTE\(\) needs the feature rows of X"):
        check_sampler_inputs(SMOTE(), dict_spec)
    with pytest.raises(ValueError, match="needs the feature rows of X, which a dict X"):
        check_sampler_inputs(RandomOverSampler(shrinkage=1.0), dict_spec)
    with pytest.raises(ValueError, match="adds noise to the feature values.*integer ids"):
        check_sampler_inputs(RandomOverSampler(shrinkage=1.0), ids_spec)
    check_sampler_inputs(SMOTE(), InputSpec(FLOAT))
    synthesised = SamplerPlan(0, X_res=np.zeros((2, 2)), y_res=np.zeros(2))
    check_sampled(synthesised, SMOTE(), InputSpec(FLOAT))
    with pytest.raises(ValueError, match=r"sampler=SMOTE\(\) synthesises new feature rows"):
        check_sampled(synthesised, SMOTE(), ids_spec)
