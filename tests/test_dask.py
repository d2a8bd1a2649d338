"""Hyperparameter search on a Dask cluster through joblib's Dask backend (the "dask" extra).

A two-process ``LocalCluster`` on loopback stands in for a real cluster: the search must run
its fits on the workers and find exactly what the sequential search finds.
"""

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold

distributed = pytest.importorskip("distributed", reason='needs pip install "skfocal[dask]"')

from skfocal import BatchedGridSearchCV, FocalClassifier  # noqa: E402

GRID = {"gamma": [0.0, 2.0], "alpha": [None, "balanced"]}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    )
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def _search(n_jobs):
    return GridSearchCV(
        FocalClassifier(hidden_layer_sizes=(16,), max_epochs=5, random_state=0),
        GRID,
        scoring="average_precision",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        n_jobs=n_jobs,
    )


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=240, n_features=6, weights=[0.85], flip_y=0.0, random_state=0
    )
    return X.astype(np.float32), y


def test_grid_search_on_dask_matches_sequential(client, data):
    X, y = data
    sequential = _search(n_jobs=1).fit(X, y)
    with distributed.get_task_stream(client) as tasks:
        with joblib.parallel_backend("dask"):
            on_dask = _search(n_jobs=-1).fit(X, y)
    workers = {task["worker"] for task in tasks.data}
    assert len(tasks.data) >= len(GRID["gamma"]) * len(GRID["alpha"]) * 3
    assert workers <= set(client.scheduler_info()["workers"]) and workers

    np.testing.assert_allclose(
        on_dask.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        rtol=1e-5,
    )
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_allclose(
        on_dask.predict_proba(X), sequential.predict_proba(X), rtol=1e-5, atol=1e-6
    )


def test_fitted_estimator_comes_back_from_a_worker(client, data):
    X, y = data
    estimator = FocalClassifier(hidden_layer_sizes=(16,), max_epochs=3, random_state=0)
    future = client.submit(estimator.fit, X, y, pure=False)
    remote = future.result()
    local = estimator.fit(X, y)
    np.testing.assert_array_equal(remote.classes_, local.classes_)
    np.testing.assert_allclose(remote.predict_proba(X), local.predict_proba(X), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batched_search_on_dask_equals_one_process(client, data, dtype):
    """The stacked members are trained on the cluster's workers, in chunks, and the search
    finds exactly what it finds in one process (float64: identical; float32: rounding)."""
    X, y = data
    grid = {"gamma": [0.0, 1.0, 2.0], "alpha": [None, "balanced"]}  # 6 x 3 folds: 18 members

    def search(n_jobs):
        return BatchedGridSearchCV(
            FocalClassifier(hidden_layer_sizes=(16,), max_epochs=5, random_state=0, dtype=dtype),
            grid,
            scoring="average_precision",
            cv=StratifiedKFold(3, shuffle=True, random_state=0),
            n_jobs=n_jobs,
        )

    in_process = search(1).fit(X, y)
    with distributed.get_task_stream(client) as tasks:
        with joblib.parallel_backend("dask"):
            on_dask = search(-1).fit(X, y)
    workers = {task["worker"] for task in tasks.data}
    assert len(tasks.data) >= 2 and len(workers) == 2  # two chunks of 9, one per worker
    tol = {"float64": 0.0, "float32": 1e-6}[dtype]
    for key, value in in_process.cv_results_.items():
        if key.startswith(("split", "mean_test", "rank_test")):
            np.testing.assert_allclose(on_dask.cv_results_[key], value, rtol=0, atol=tol)
    assert on_dask.best_params_ == in_process.best_params_
    np.testing.assert_allclose(on_dask.predict_proba(X), in_process.predict_proba(X), atol=tol)
