"""BatchedGridSearchCV: stacked members compute their single fits; GridSearchCV's answers."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
import torch
from _trainings import count_trainings
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfocal import BatchedGridSearchCV, FocalClassifier

BASE = {
    "hidden_layer_sizes": (8,),
    "batch_size": 16,
    "max_epochs": 3,
    "dtype": "float64",
    "random_state": 0,
}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks: one torch thread (see tests/conftest.py)."""


def _data(task, n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if task == "binary":
        y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.7).astype(int)
    elif task == "multiclass":
        y = np.digitize(X[:, 0] + 0.5 * rng.normal(size=n), [-0.5, 0.6])
    else:
        y = (X[:, :3] + 0.5 * rng.normal(size=(n, 3)) > 0.3).astype(int)
    return X, y


def _logit_scorers(n_rows=4):
    """Scorers that read a few raw logits: the members' outputs, compared through cv_results_."""

    def make(i, j):
        def logit(y_true, z, sample_weight=None):
            z = np.asarray(z)
            return float(z[i] if z.ndim == 1 else z[i, j])

        return make_scorer(logit, response_method="decision_function")

    return {f"z{i}_{j}": make(i, j) for i in range(n_rows) for j in range(2)}


def _compare(batched, reference, atol):
    for key, value in reference.cv_results_.items():
        if "time" in key or not key.startswith(("split", "mean_test", "std_test")):
            continue
        np.testing.assert_allclose(batched.cv_results_[key], value, atol=atol, rtol=0, err_msg=key)


GRIDS = {
    "binary": [
        {"loss": ["focal"], "gamma": [0.0, 2.0], "alpha": [None, 0.25, "balanced"]},
        {"loss": ["margin"], "softness": [None, 2.0], "class_weight": [None, "balanced"]},
        {"sampler": ["oversample", "sqrt"], "lr": [1e-2, 3e-3], "weight_decay": [0.0, 0.1]},
        {"loss": ["cross_entropy"], "bias_init": ["zero", "prior"], "class_prior": ["data"]},
    ],
    "multiclass": [
        {"gamma": [0.0, 1.0], "alpha": [None, [0.2, 0.3, 0.5]], "sampler": [None, "sqrt"]},
        {"loss": ["margin"], "margin": [0.6, 0.8], "class_weight": ["balanced"]},
    ],
    "multilabel": [
        {"gamma": [0.0, 2.0], "alpha": [None, 0.3], "class_weight": [None, "balanced"]},
    ],
}


@pytest.mark.parametrize(
    "task, grid",
    [(task, grid) for task, grids in GRIDS.items() for grid in grids],
)
def test_members_equal_single_fits(task, grid):
    """Every member's logits equal the same candidate fitted alone (float64, 1e-6)."""
    X, y = _data(task)
    est = FocalClassifier(**BASE)
    cv = 3 if task != "multilabel" else None
    kwargs = {"scoring": _logit_scorers(), "refit": False, "cv": cv}
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-6)


def test_sample_weight_and_adam_equal_single_fits():
    X, y = _data("binary")
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    est = FocalClassifier(**BASE, optimizer=torch.optim.Adam)
    grid = {"gamma": [0.0, 2.0], "class_weight": [None, "balanced"]}
    kwargs = {"scoring": _logit_scorers(), "refit": False, "cv": 3}
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y, sample_weight=sw)
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y, sample_weight=sw)
    _compare(batched, reference, atol=1e-6)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_best_params_and_scores_equal_grid_search(task):
    X, y = _data(task, n=150, seed=2)
    est = FocalClassifier(**{**BASE, "max_epochs": 5})
    grid = {"gamma": [0.0, 1.0, 2.0], "lr": [3e-3, 3e-2]}
    scoring = "neg_log_loss"
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    batched = BatchedGridSearchCV(est, grid, scoring=scoring, cv=cv).fit(X, y)
    reference = GridSearchCV(est, grid, scoring=scoring, cv=cv).fit(X, y)
    assert batched.best_params_ == reference.best_params_
    assert batched.best_index_ == reference.best_index_
    np.testing.assert_allclose(
        batched.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"], atol=1e-9
    )
    assert set(batched.cv_results_) == set(reference.cv_results_)
    np.testing.assert_array_equal(
        batched.cv_results_["rank_test_score"], reference.cv_results_["rank_test_score"]
    )
    np.testing.assert_allclose(batched.predict_proba(X), reference.predict_proba(X), atol=1e-12)
    assert batched.score(X, y) == pytest.approx(reference.score(X, y))
    assert batched.n_splits_ == 3 and batched.refit_time_ > 0
    assert not batched.multimetric_
    np.testing.assert_array_equal(batched.classes_, reference.classes_)


def test_float32_scores_close_to_grid_search():
    X, y = _data("binary", n=150, seed=3)
    est = FocalClassifier(**{**BASE, "dtype": "float32"})
    grid = {"gamma": [0.0, 2.0], "alpha": [None, 0.25]}
    batched = BatchedGridSearchCV(est, grid, scoring="neg_log_loss", cv=3).fit(X, y)
    reference = GridSearchCV(est, grid, scoring="neg_log_loss", cv=3).fit(X, y)
    np.testing.assert_allclose(
        batched.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"], atol=1e-3
    )


def test_clone_params_and_pickle():
    X, y = _data("binary")
    search = BatchedGridSearchCV(FocalClassifier(**BASE), {"gamma": [0.0, 2.0]}, cv=2, n_jobs=1)
    params = search.get_params()
    assert params["estimator__gamma"] == 2.0 and params["cv"] == 2
    other = clone(search).set_params(cv=3, estimator__lr=0.01)
    assert other.cv == 3 and other.estimator.lr == 0.01 and search.cv == 2
    search.fit(X, y)
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict_proba(X), search.predict_proba(X))
    assert restored.best_params_ == search.best_params_


def test_multimetric_with_refit_name_and_callable_refit():
    X, y = _data("binary", n=120)
    est = FocalClassifier(**BASE)
    grid = {"gamma": [0.0, 2.0], "alpha": [None, 0.5]}
    scoring = {"ll": "neg_log_loss", "ap": "average_precision"}
    kwargs = {"scoring": scoring, "refit": "ap", "cv": 3, "return_train_score": True}
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    assert batched.multimetric_ and batched.best_params_ == reference.best_params_
    assert set(batched.cv_results_) == set(reference.cv_results_)
    _compare(batched, reference, atol=1e-9)
    np.testing.assert_allclose(
        batched.cv_results_["mean_train_ll"], reference.cv_results_["mean_train_ll"], atol=1e-9
    )

    def lowest_ll_rank(results):
        return int(np.argmax(results["rank_test_ll"]))

    kwargs["refit"] = lowest_ll_rank
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    assert batched.best_index_ == lowest_ll_rank(batched.cv_results_)
    assert not hasattr(batched, "best_score_")


def test_diverging_member_gets_error_score_others_go_on():
    X, y = _data("binary")
    est = FocalClassifier(**BASE)
    grid = {"lr": [1e-2, 1e300]}
    kwargs = {"scoring": "neg_log_loss", "cv": 3, "refit": False, "error_score": -99.0}
    with pytest.warns(FitFailedWarning, match="fits failed"):
        batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    with pytest.warns(FitFailedWarning, match="fits failed"):
        reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    np.testing.assert_allclose(
        batched.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"], atol=1e-9
    )
    assert batched.cv_results_["mean_test_score"][1] == -99.0
    kwargs["error_score"] = "raise"
    with pytest.raises(FloatingPointError, match="non-finite"):
        BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)


class _Net(torch.nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X)


def test_user_module_falls_back_with_warning():
    X, y = _data("binary")
    est = FocalClassifier(**{**BASE, "module": _Net})
    grid = {"gamma": [0.0, 2.0]}
    with pytest.warns(UserWarning, match=r"one by one \(not stacked\) because module="):
        batched = BatchedGridSearchCV(est, grid, cv=2, scoring="neg_log_loss").fit(X, y)
    reference = GridSearchCV(est, grid, cv=2, scoring="neg_log_loss").fit(X, y)
    _compare(batched, reference, atol=1e-9)


def test_weight_averaging_stays_stacked_and_agrees():
    X, y = _data("binary")
    est = FocalClassifier(**{**BASE, "weight_averaging": 2.0})
    grid = {"gamma": [0.0, 2.0], "weight_averaging": [None, 2.0]}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # stacked: no fallback warning
        batched = BatchedGridSearchCV(est, grid, cv=2, scoring="neg_log_loss").fit(X, y)
    reference = GridSearchCV(est, grid, cv=2, scoring="neg_log_loss").fit(X, y)
    _compare(batched, reference, atol=1e-9)


def test_pipeline_preprocessing_per_fold_equals_grid_search():
    """A Pipeline's preprocessing is fitted per fold, its final FocalClassifiers stacked."""
    X, y = _data("multiclass")
    X = X * [1.0, 10.0, 0.1, 3.0] + 2.0
    pipe = make_pipeline(StandardScaler(), FocalClassifier(**BASE))
    grid = {"standardscaler__with_mean": [True, False], "focalclassifier__gamma": [0.0, 2.0]}
    kwargs = {"scoring": _logit_scorers(2), "refit": "z0_0", "cv": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # stacked: no fallback warning
        batched = BatchedGridSearchCV(pipe, grid, **kwargs).fit(X, y)
    reference = GridSearchCV(pipe, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-6)
    assert batched.best_params_ == reference.best_params_
    np.testing.assert_allclose(batched.predict_proba(X), reference.predict_proba(X), atol=1e-12)


def test_cached_pipeline_falls_back_with_warning(tmp_path):
    X, y = _data("binary")
    pipe = make_pipeline(StandardScaler(), FocalClassifier(**BASE), memory=str(tmp_path))
    grid = {"focalclassifier__gamma": [0.0, 2.0]}
    with pytest.warns(UserWarning, match="caches its steps"):
        batched = BatchedGridSearchCV(pipe, grid, cv=2, scoring="neg_log_loss").fit(X, y)
    reference = GridSearchCV(pipe, grid, cv=2, scoring="neg_log_loss").fit(X, y)
    _compare(batched, reference, atol=1e-9)


def test_mixed_groups_keep_sklearn_order():
    """Candidates of different shapes train as separate stacks; results stay in grid order."""
    X, y = _data("multiclass")
    est = FocalClassifier(**BASE)
    grid = {"hidden_layer_sizes": [(4,), (8, 4)], "batch_size": [16, 40], "gamma": [0.0, 2.0]}
    kwargs = {"scoring": _logit_scorers(2), "refit": False, "cv": 2}
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-6)
    assert batched.cv_results_["params"] == reference.cv_results_["params"]
    assert np.all(batched.cv_results_["mean_fit_time"] > 0)


def test_parameters_validated_before_fitting():
    X, y = _data("binary")
    search = BatchedGridSearchCV(FocalClassifier(**BASE), {"gamma": [0.0]}, cv="three")
    with pytest.raises(ValueError, match="The 'cv' parameter of BatchedGridSearchCV must be"):
        search.fit(X, y)
    search = BatchedGridSearchCV(FocalClassifier(**BASE), {"gamma": [0.0]}, error_score="zero")
    with pytest.raises(ValueError, match="The 'error_score' parameter of BatchedGridSearchCV"):
        search.fit(X, y)


@pytest.mark.skipif(
    sklearn.__version__.startswith("1.6."),
    reason="scikit-learn 1.6's GridSearchCV cannot index a torch X (its _fit_and_score raises "
    "'Unsupported device for NumPy')",
)
def test_tensor_X_and_other_fit_params_fall_back_with_warning():
    X, y = _data("binary")
    est = FocalClassifier(**BASE)
    with pytest.warns(UserWarning, match="X is not a numeric 2-d array"):
        batched = BatchedGridSearchCV(est, {"gamma": [0.0, 2.0]}, cv=2).fit(torch.as_tensor(X), y)
    reference = GridSearchCV(est, {"gamma": [0.0, 2.0]}, cv=2).fit(torch.as_tensor(X), y)
    _compare(batched, reference, atol=1e-9)


def test_dataframe_and_string_labels_equal_grid_search():
    pd = pytest.importorskip("pandas")
    X, y = _data("multiclass")
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    y = np.array(["low", "mid", "high"])[y]
    est = FocalClassifier(**BASE)
    grid = {"gamma": [0.0, 2.0], "class_weight": [None, "balanced"]}
    kwargs = {"scoring": _logit_scorers(2), "refit": "z0_0", "cv": 3}
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-6)
    np.testing.assert_array_equal(batched.feature_names_in_, reference.feature_names_in_)
    np.testing.assert_array_equal(batched.predict(X), reference.predict(X))


def test_losses_without_a_stacked_form_fall_back_and_agree():
    from skfocal import Poly1

    X, y = _data("binary")
    grid = {"loss": ["focal", "ldam", Poly1()]}
    est = FocalClassifier(max_epochs=2, random_state=0, dtype="float64")
    with pytest.warns(UserWarning, match=r"loss='ldam' has no stacked implementation"):
        batched = BatchedGridSearchCV(est, grid, cv=2).fit(X, y)
    reference = GridSearchCV(est, grid, cv=2).fit(X, y)
    assert batched.best_params_ == reference.best_params_
    np.testing.assert_allclose(
        batched.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"], atol=1e-9
    )


@pytest.mark.parametrize(
    "grid",
    [
        {"gamma": [0.0, 2.0], "alpha": [None, 0.25]},
        {"early_stopping": [True], "n_iter_no_change": [1, 2], "scoring": [None, "roc_auc"]},
    ],
)
def test_a_stackable_grid_trains_no_single_fit(monkeypatch, grid):
    """A silent fallback to one fit per candidate x fold fails here (both sides of the other
    comparisons would then run the same code)."""
    X, y = _data("binary", n=120)
    seen = count_trainings(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fallback warning either
        # roc_auc on folds of 120 rows sees about 2 validation positives: warned, rightly
        warnings.filterwarnings("ignore", message=".*too coarse to choose an epoch")
        search = BatchedGridSearchCV(FocalClassifier(**BASE), grid, cv=3, refit=False)
        search.fit(X, y)
    assert seen == {"single": [], "stacked": [12]}
    reference = GridSearchCV(FocalClassifier(**BASE), grid, cv=3, refit=False).fit(X, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"], atol=1e-9
    )
    fit_time = search.cv_results_["mean_fit_time"]
    assert np.all(fit_time > 0) and np.ptp(fit_time) < 1e-12  # one stacked run: equal shares


def test_unstackable_members_fit_in_workers_and_are_served(monkeypatch):
    X, y = _data("binary")
    est = FocalClassifier(**{**BASE, "module": _Net})
    grid = {"gamma": [0.0, 2.0]}
    with pytest.warns(UserWarning, match=r"one by one \(not stacked\) because module="):
        batched = BatchedGridSearchCV(est, grid, cv=2, scoring="neg_log_loss", n_jobs=2)
        batched.fit(X, y)
    assert batched.n_jobs == 2  # restored after the fit
    reference = GridSearchCV(est, grid, cv=2, scoring="neg_log_loss").fit(X, y)
    _compare(batched, reference, atol=1e-9)


def test_nothing_stays_offered_after_a_search():
    from skfocal import _serving

    X, y = _data("binary")
    BatchedGridSearchCV(FocalClassifier(**BASE), {"gamma": [0.0, 2.0]}, cv=2).fit(X, y)
    assert _serving._OFFERED == {}
    with pytest.raises(ValueError):  # a failing search withdraws what it offered too
        BatchedGridSearchCV(FocalClassifier(**BASE), {"gamma": [0.0]}, cv=2).fit(X, y[:10])
    assert _serving._OFFERED == {}


# -- workers and progress ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype, atol", [("float64", 0.0), ("float32", 1e-6)])
def test_workers_train_chunks_equal_to_one_process(monkeypatch, dtype, atol):
    """n_jobs=2 splits the group into two chunks trained in worker processes; the members
    (compared through their raw logits) are those of the in-process search: identical in
    float64, equal to rounding in float32 (one chunk shares lr, the whole group does not)."""
    X, y = _data("binary", n=120)
    est = FocalClassifier(**{**BASE, "dtype": dtype})
    grid = {"gamma": [0.0, 2.0], "lr": [3e-3, 1e-2], "alpha": [None, 0.25]}
    kwargs = {"scoring": _logit_scorers(), "refit": False, "cv": 3}
    one = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    from skfocal import _search

    chunks, dispatch = [], _search._Schedule._chunks

    def record(self, members):
        out = dispatch(self, members)
        chunks.extend(len(chunk) for _, chunk in out)
        return out

    monkeypatch.setattr(_search._Schedule, "_chunks", record)
    two = BatchedGridSearchCV(est, grid, n_jobs=2, **kwargs).fit(X, y)
    assert chunks == [12, 12]
    _compare(two, one, atol=atol)
    if dtype == "float64":
        for key, value in one.cv_results_.items():
            if key.startswith("split"):
                np.testing.assert_array_equal(two.cv_results_[key], value, err_msg=key)


def test_workers_take_chunks_and_single_fits_together():
    X, y = _data("binary")
    est = FocalClassifier(**BASE)
    grid = [{"gamma": [0.0, 2.0]}, {"module": [_Net]}]
    kwargs = {"scoring": "neg_log_loss", "cv": 2}
    with pytest.warns(UserWarning, match="one by one"):
        batched = BatchedGridSearchCV(est, grid, n_jobs=2, **kwargs).fit(X, y)
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-9)


def test_verbose_prints_epoch_progress_of_a_stacked_group(capsys):
    X, y = _data("binary")
    grid = {"gamma": [0.0, 2.0]}
    BatchedGridSearchCV(FocalClassifier(**BASE), grid, cv=2, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "training 4 members in 1 stacked run(s), 0 one by one, in this process" in out
    assert "[group 1/1] 4 members: MLP (8,), batch 16, max_epochs 3" in out
    for epoch in (1, 3):  # the first and the last epoch always
        assert f"[group 1/1] epoch {epoch}/3: 4/4 training, 0 stopped early, 0 failed |" in out
    assert "[group 1/1] done in " in out and "4 members trained to the end" in out
    assert "Fitting 2 folds for each of 2 candidates" in out  # scikit-learn's own line


def test_progress_counts_early_stopping_and_failures(capsys):
    X, y = _data("binary", n=120)
    est = FocalClassifier(**{**BASE, "max_epochs": 30, "early_stopping": True})
    grid = {"n_iter_no_change": [1], "lr": [0.3, 1e300]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        BatchedGridSearchCV(est, grid, cv=2, verbose=2, refit=False).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    epochs = [line for line in lines if "] epoch " in line]
    assert "2/4 training, 0 stopped early, 2 failed" in epochs[0]  # diverged at once
    assert "0/4 training, 2 stopped early, 2 failed" in epochs[-1]
    done = next(line for line in lines if "] done in " in line)
    assert "0 members trained to the end, 2 stopped early, 2 failed" in done


def test_verbose_zero_prints_nothing(capfd):
    X, y = _data("binary")
    for n_jobs in (1, 2):
        BatchedGridSearchCV(
            FocalClassifier(**BASE), {"gamma": [0.0, 2.0]}, cv=2, n_jobs=n_jobs
        ).fit(X, y)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_threads_restored_after_a_search(one_torch_thread):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        X, y = _data("binary")
        BatchedGridSearchCV(FocalClassifier(**BASE), {"gamma": [0.0, 2.0]}, cv=2).fit(X, y)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- "auto" resolved once, from the search's data ------------------------------------------------
AUTO = {"hidden_layer_sizes": (4,), "batch_size": 512, "max_epochs": 2, "random_state": 0}


def _resolved(estimator, X, y):
    """A scorer: whether the fitted classifier (a Pipeline's last step) stopped early."""
    return float(getattr(estimator, "steps", [[None, estimator]])[-1][1].early_stopping_)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_auto_is_resolved_from_the_data_given_to_the_search(n_jobs):
    """12,000 rows, 2 folds of 6,000: every member stops early, like the refit on 12,000 --
    stacked members, members fitted one by one (warmup_epochs: in workers with n_jobs=2, by
    scikit-learn's loop otherwise) and Pipelines alike; a plain GridSearchCV resolves "auto"
    in each fit, from the fold's own rows."""
    X, y = _data("binary", n=12_000)
    grid = {"warmup_epochs": [0, 1]}
    for estimator in (
        FocalClassifier(**AUTO),
        make_pipeline(StandardScaler(), FocalClassifier(**AUTO)),
    ):
        if not isinstance(estimator, FocalClassifier):
            grid = {f"focalclassifier__{k}": v for k, v in grid.items()}
        with pytest.warns(UserWarning, match=r"one by one \(not stacked\) because its training"):
            batched = BatchedGridSearchCV(estimator, grid, cv=2, scoring=_resolved, n_jobs=n_jobs)
            batched.fit(X, y)
        assert batched.cv_results_["mean_test_score"].tolist() == [1.0, 1.0]
        assert _resolved(batched.best_estimator_, X, y) == 1.0
        plain = GridSearchCV(estimator, grid, cv=2, scoring=_resolved).fit(X, y)
        assert plain.cv_results_["mean_test_score"].tolist() == [0.0, 0.0]
        assert _resolved(plain.best_estimator_, X, y) == 1.0


def test_large_search_with_the_default_stays_stacked_and_equals_single_fits(monkeypatch):
    """50,000 rows with early_stopping="auto": one stacked run (no fallback warning, no single
    fit), members that stop early on their own, each equal to its single fit to 1e-12."""
    X, y = _data("binary", n=50_000, seed=4)
    est = FocalClassifier(
        hidden_layer_sizes=(4,), max_epochs=8, n_iter_no_change=1, dtype="float64", random_state=0
    )
    grid = {"gamma": [0.0, 2.0], "lr": [3e-3, 0.1]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)

    def epochs(estimator, X_test, y_test):
        assert estimator.early_stopping_ and estimator.max_epochs_ == 8
        return float(estimator.n_iter_)

    def mean_score(estimator, X_test, y_test):
        return float(np.mean(estimator.decision_function(X_test)))

    scoring = {**_logit_scorers(), "epochs": epochs, "mean_score": mean_score}
    seen = count_trainings(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fallback warning
        batched = BatchedGridSearchCV(est, grid, cv=cv, scoring=scoring, refit=False).fit(X, y)
    assert seen == {"single": [], "stacked": [8]}
    reference = GridSearchCV(est, grid, cv=cv, scoring=scoring, refit=False).fit(X, y)
    assert len(seen["single"]) == 8  # the reference: one single fit per member
    _compare(batched, reference, atol=1e-12)
    trained = np.concatenate([batched.cv_results_[f"split{s}_test_epochs"] for s in range(2)])
    assert trained.min() < 8  # some members stopped on their own


# -- decision-only parameters: class_prior shares one trained member per fold ------------------
PRIORS = {
    "binary": ["training", "data", "balanced", [0.7, 0.3]],
    "multiclass": ["training", "data", "balanced", {0: 0.2, 1: 0.3, 2: 0.5}],
    "multilabel": ["training", "data", "balanced", [0.2, 0.3, 0.4]],
}


def _decisions(estimator, X_test, y_test):
    """A scorer: the mean predicted label (decisions under the candidate's class_prior)."""
    return float(np.mean(estimator.predict(X_test)))


@pytest.mark.parametrize("task", list(PRIORS))
def test_class_prior_candidates_share_one_training_per_fold(monkeypatch, task):
    """Candidates that differ only in class_prior train one member per fold (counted at the
    stacked engine: trained separately, 4x as many) and score as GridSearchCV, which trains
    every one of them, to 1e-12 in float64: logits under each prior, probabilities, labels."""
    X, y = _data(task, n=120)
    est = FocalClassifier(**BASE)
    grid = {"gamma": [0.0, 2.0], "alpha": [None, "balanced"], "class_prior": PRIORS[task]}
    scoring = {**_logit_scorers(), "decisions": _decisions}
    if task != "multilabel":
        scoring["log_loss"] = "neg_log_loss"
    kwargs = {"scoring": scoring, "refit": False, "cv": 3}
    seen = count_trainings(monkeypatch)
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    assert seen == {"single": [], "stacked": [4 * 3]}
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-12)
    by_prior = batched.cv_results_["mean_test_z0_0"].reshape(2, 4, 2)  # alpha, prior, gamma
    assert np.ptp(by_prior, axis=1).min() > 0  # every prior changes the decision scores
    fit_time = batched.cv_results_["mean_fit_time"]
    assert np.all(fit_time > 0) and np.ptp(fit_time) < 1e-12  # a quarter of a member's share


def test_class_prior_in_a_pipeline_shares_and_equals_grid_search(monkeypatch):
    X, y = _data("multiclass", n=120)
    pipe = make_pipeline(StandardScaler(), FocalClassifier(**BASE))
    grid = {
        "standardscaler__with_mean": [True, False],
        "focalclassifier__class_prior": PRIORS["multiclass"][:3],
    }
    kwargs = {"scoring": {**_logit_scorers(), "decisions": _decisions}, "cv": 3}
    seen = count_trainings(monkeypatch)
    batched = BatchedGridSearchCV(pipe, grid, **kwargs, refit="decisions").fit(X, y)
    assert seen["stacked"] == [2 * 3] and len(seen["single"]) == 1  # the refit
    reference = GridSearchCV(pipe, grid, **kwargs, refit="decisions").fit(X, y)
    _compare(batched, reference, atol=1e-12)
    assert batched.best_params_ == reference.best_params_


@pytest.mark.parametrize(
    "settings, trained",
    [
        ({"early_stopping": True, "n_iter_no_change": 1}, 3),  # on the validation loss
        ({"early_stopping": True, "n_iter_no_change": 1, "scoring": "balanced_accuracy"}, 9),
    ],
)
def test_early_stopping_on_a_scorer_keeps_class_prior_candidates_apart(
    monkeypatch, settings, trained
):
    """Early stopping on a scorer scores decisions under class_prior, so the epoch kept
    depends on it: those candidates train apart; on the validation loss they share."""
    X, y = _data("binary", n=150, seed=5)
    est = FocalClassifier(**{**BASE, "max_epochs": 8, **settings})
    grid = {"class_prior": ["training", "balanced", "data"]}
    kwargs = {"scoring": {**_logit_scorers(), "epochs": _epochs}, "refit": False, "cv": 3}
    seen = count_trainings(monkeypatch)
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    assert seen == {"single": [], "stacked": [trained]}
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-12)


def _epochs(estimator, X_test, y_test):
    return float(estimator.n_iter_)


def test_a_class_prior_that_fails_fails_alone():
    """class_prior='balanced' cannot undo alpha's zero weight: that candidate fails in the
    search (error_score) as in GridSearchCV; the other candidates sharing its folds do not."""
    X, y = _data("multiclass", n=120)
    est = FocalClassifier(**{**BASE, "alpha": [0.0, 0.5, 0.5]})
    grid = {"class_prior": ["training", "balanced", "data"]}
    kwargs = {"scoring": _logit_scorers(), "refit": False, "cv": 3}
    with pytest.warns(FitFailedWarning, match="undoes the training emphasis"):
        batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    with pytest.warns(FitFailedWarning, match="undoes the training emphasis"):
        reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-12)
    assert np.isnan(batched.cv_results_["mean_test_z0_0"][1:]).all()
    assert np.isfinite(batched.cv_results_["mean_test_z0_0"][0])


def test_members_sharing_a_training_share_no_state(monkeypatch):
    """Fitted classifiers served from one trained network each hold their own copy (module,
    optimizer, history): changing one's weights leaves the other's outputs as they were."""
    X, y = _data("binary")
    kept = []

    def keep(estimator, X_test, y_test):
        kept.append((estimator, X_test))
        return 0.0

    grid = {"class_prior": ["training", "balanced"]}
    BatchedGridSearchCV(FocalClassifier(**BASE), grid, cv=2, scoring=keep, refit=False).fit(X, y)
    (first, X_test), (second, _) = kept[0], kept[2]  # candidates 0 and 1 on split 0
    assert first.class_prior == "training" and second.class_prior == "balanced"
    a, b = first.net_, second.net_
    assert a.module_ is not b.module_ and a.history is not b.history
    assert a.history == b.history and a.history[0] is not b.history[0]
    b.history.record("extra", 1.0)  # one's history grows, the other's does not
    assert "extra" not in a.history[-1]
    assert b.optimizer_.param_groups[0]["params"][0] is next(b.module_.parameters())
    np.testing.assert_array_equal(first.predict_logits(X_test), second.predict_logits(X_test))
    before = second.predict_proba(X_test)
    with torch.no_grad():
        for parameter in a.module_.parameters():
            parameter.add_(1.0)
    np.testing.assert_array_equal(second.predict_proba(X_test), before)
    assert not np.array_equal(first.predict_logits(X_test), second.predict_logits(X_test))


@pytest.mark.parametrize("class_prior", ["balanced", [0.3, 0.7]])
def test_early_stopping_on_a_label_metric_under_a_class_prior_equals_single_fits(class_prior):
    """A binary member's validation logits are one column: the prior's shift is the class
    pair's difference on it (as in its single fit), not one column per class."""
    X, y = _data("binary", n=150, seed=5)
    est = FocalClassifier(
        **BASE,
        early_stopping=True,
        n_iter_no_change=1,
        scoring="balanced_accuracy",
        class_prior=class_prior,
    )
    grid = {"gamma": [0.0, 2.0]}
    kwargs = {"scoring": {**_logit_scorers(), "epochs": _epochs}, "refit": False, "cv": 3}
    batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-12)


def test_tuned_decision_estimator_falls_back_with_warning_and_equals_grid_search():
    """A TunedDecisionClassifierCV(FocalClassifier()) candidate is not stacked across the
    outer folds (it stacks its own inner folds): the search says so once, fits each
    candidate x fold as GridSearchCV does and gives its answers."""
    from skfocal import TunedDecisionClassifierCV

    X, y = _data("binary", n=150, seed=6)
    est = TunedDecisionClassifierCV(FocalClassifier(**BASE), scoring="f1", cv=2)
    grid = {"estimator__gamma": [0.0, 2.0], "estimator__alpha": [None, 0.25]}
    kwargs = {"scoring": {"f1": "f1", "decisions": _decisions}, "refit": "f1", "cv": 3}
    match = r"one by one \(not stacked\) because the estimator is a TunedDecisionClassifierCV"
    with pytest.warns(UserWarning, match=match) as record:
        batched = BatchedGridSearchCV(est, grid, **kwargs).fit(X, y)
    assert sum("one by one" in str(w.message) for w in record) == 1
    reference = GridSearchCV(est, grid, **kwargs).fit(X, y)
    _compare(batched, reference, atol=1e-12)
    assert batched.best_params_ == reference.best_params_
    assert batched.best_estimator_.best_threshold_ == reference.best_estimator_.best_threshold_
    np.testing.assert_array_equal(batched.predict(X), reference.predict(X))
