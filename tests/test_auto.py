"""early_stopping="auto" and max_epochs="auto": resolved once, in the plan, from the right count."""

import warnings

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skfocal import FocalClassifier
from skfocal._auto import (
    EARLY_STOPPING_ABOVE,
    MAX_EPOCHS,
    MAX_EPOCHS_STOPPING,
    auto_samples,
    resolve,
    samples_for_auto,
)
from skfocal._engines._stacked import group_key, why_not_stacked
from skfocal._plan import make_plan

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(hidden_layer_sizes=(4,), batch_size=512, random_state=0)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 1.0).astype(int)
    return X, y


@pytest.mark.parametrize(
    "n, on", [(EARLY_STOPPING_ABOVE - 1, False), (EARLY_STOPPING_ABOVE, False), (10_001, True)]
)
def test_auto_switches_exactly_at_the_threshold(n, on):
    X, y = _data(n)
    plan, _ = make_plan(FocalClassifier(**TINY), X, y)
    assert plan.params["early_stopping"] is on
    assert plan.params["max_epochs"] == (MAX_EPOCHS_STOPPING if on else MAX_EPOCHS)
    assert plan.auto_samples == n
    assert plan.n_valid == (int(np.ceil(0.1 * n)) if on else 0)
    assert plan.scorer is None  # the stop defaults to the validation loss


@pytest.mark.parametrize("n", [EARLY_STOPPING_ABOVE, EARLY_STOPPING_ABOVE + 1])
def test_fits_on_either_side_of_the_threshold(n):
    """The fitted estimator says what it resolved, and trains accordingly."""
    X, y = _data(n)
    clf = FocalClassifier(max_epochs=2, **TINY).fit(X, y)
    on = n > EARLY_STOPPING_ABOVE
    assert clf.early_stopping_ is on and clf.max_epochs_ == 2
    assert ("valid_loss" in clf.net_.history[-1]) is on
    assert clf.get_params()["early_stopping"] == "auto"  # the parameter is left as given


def test_max_epochs_auto_follows_the_early_stopping_in_force():
    small = FocalClassifier()
    assert resolve(small, 100) == {"early_stopping": False, "max_epochs": MAX_EPOCHS}
    assert resolve(FocalClassifier(early_stopping=True), 100) == {
        "early_stopping": True,
        "max_epochs": MAX_EPOCHS_STOPPING,
    }
    assert resolve(FocalClassifier(early_stopping=False), 10**6) == {
        "early_stopping": False,
        "max_epochs": MAX_EPOCHS,
    }
    assert resolve(FocalClassifier(max_epochs=7), 10**6) == {
        "early_stopping": True,
        "max_epochs": 7,
    }


def test_the_caller_gives_the_count_that_resolves_auto():
    X, y = _data(200)
    clf = FocalClassifier(**TINY)
    assert make_plan(clf, X, y)[0].params["early_stopping"] is False
    plan = make_plan(clf, X, y, auto_samples=20_000)[0]
    assert plan.params["early_stopping"] is True and plan.auto_samples == 20_000
    with samples_for_auto(20_000):
        assert auto_samples() == 20_000
        assert make_plan(clf, X, y)[0].params["early_stopping"] is True
        # an explicit count wins over the one the block sets
        assert make_plan(clf, X, y, auto_samples=200)[0].params["early_stopping"] is False
    assert auto_samples() is None
    with pytest.raises(ValueError), samples_for_auto(20_000):
        raise ValueError  # the count is reset when the block raises
    assert auto_samples() is None


def test_every_reader_sees_the_resolved_values():
    """The string "auto" is truthy: nothing after the plan may read it."""
    X, y = _data(300)
    for count in (300, 20_000):
        plan = make_plan(FocalClassifier(**TINY), X, y, auto_samples=count)[0]
        assert isinstance(plan.params["early_stopping"], bool)
        assert isinstance(plan.params["max_epochs"], int)
        assert why_not_stacked(plan) is None
        assert plan.params["max_epochs"] in group_key(plan)
        assert (plan.valid_idx is not None) is plan.params["early_stopping"]


def test_scoring_with_auto_off_warns_and_says_why():
    X, y = _data(300)
    clf = FocalClassifier(scoring="roc_auc", **TINY)
    match = (
        r"scoring='roc_auc' has no effect with early_stopping=False \(early_stopping='auto' on "
        r"300 samples; it is on above 10,000\)"
    )
    with pytest.warns(UserWarning, match=match):
        make_plan(clf, X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = make_plan(clf, X, y, auto_samples=20_000)[0]
    assert plan.scorer is not None and plan.scorer_name == "roc_auc"


def test_warmup_is_checked_against_the_resolved_budget():
    X, y = _data(300)
    clf = FocalClassifier(warmup_epochs=MAX_EPOCHS, **TINY)
    with pytest.warns(UserWarning, match=r"warmup_epochs=50 >= max_epochs=50"):
        make_plan(clf, X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_plan(clf, X, y, auto_samples=20_000)  # 200 epochs with early stopping


@pytest.mark.parametrize(
    "params, match",
    [
        ({"early_stopping": "yes"}, r"'early_stopping' parameter .*'auto'.* Got 'yes'"),
        ({"max_epochs": "many"}, r"'max_epochs' parameter .*'auto'.* Got 'many'"),
        ({"max_epochs": 0}, r"'max_epochs' parameter .* Got 0"),
    ],
)
def test_bad_values_name_the_parameter_and_the_choices(params, match):
    X, y = _data(50)
    with pytest.raises(InvalidParameterError, match=match):
        FocalClassifier(**params).fit(X, y)
