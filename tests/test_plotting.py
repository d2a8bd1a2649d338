"""Tests for skfocal._plotting: training curves read from a skorch fit history."""

import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring

from skfocal._plotting import plot_training_curves, training_curves

matplotlib.use("Agg")


@pytest.fixture
def fitted_net(seed):
    X = seed.normal(size=(120, 4)).astype(np.float32)
    y = (X[:, 0] + 0.3 * seed.normal(size=120) > 0).astype(np.int64)
    net = NeuralNetClassifier(
        torch.nn.Linear(4, 2),
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=4,
        lr=0.1,
        callbacks=[EpochScoring("roc_auc", lower_is_better=False, name="valid_roc_auc")],
        verbose=0,
    )
    return net.fit(X, y)


def test_training_curves_from_skorch_net(fitted_net):
    curves = training_curves(fitted_net)
    history = fitted_net.history
    assert isinstance(curves, pd.DataFrame)
    assert curves.index.name == "epoch"
    assert list(curves.index) == list(history[:, "epoch"])
    assert list(curves.columns[:2]) == ["train_loss", "valid_loss"]
    assert {"valid_acc", "valid_roc_auc"} <= set(curves.columns)
    np.testing.assert_allclose(curves["train_loss"], history[:, "train_loss"])
    np.testing.assert_allclose(curves["valid_roc_auc"], history[:, "valid_roc_auc"])
    # bookkeeping is not a curve
    assert not any(name.endswith("_best") for name in curves.columns)
    assert not {"dur", "batches", "train_batch_count"} & set(curves.columns)


def test_training_curves_history_and_list_agree(fitted_net):
    from_net = training_curves(fitted_net)
    pd.testing.assert_frame_equal(from_net, training_curves(fitted_net.history))
    pd.testing.assert_frame_equal(from_net, training_curves(list(fitted_net.history)))


def test_training_curves_missing_entries_are_nan():
    history = [
        {"epoch": 1, "train_loss": 1.0},
        {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.7, "valid_f1": 0.2, "valid_f1_best": True},
    ]
    curves = training_curves(history)
    assert list(curves.columns) == ["train_loss", "valid_loss", "valid_f1"]
    assert np.isnan(curves.loc[1, "valid_loss"])
    assert curves.loc[2, "valid_f1"] == pytest.approx(0.2)


def test_training_curves_from_wrapping_estimator(fitted_net):
    from sklearn.base import BaseEstimator

    class Wrapper(BaseEstimator):
        def fit(self):
            self.net_ = fitted_net
            return self

    pd.testing.assert_frame_equal(training_curves(Wrapper().fit()), training_curves(fitted_net))
    with pytest.raises(NotFittedError):
        training_curves(Wrapper())


@pytest.mark.parametrize("bad", [42, "history", [1, 2, 3], None])
def test_training_curves_rejects_other_types(bad):
    with pytest.raises(TypeError, match="estimator_or_history must be a fitted FocalClassifier"):
        training_curves(bad)


def test_training_curves_rejects_unfitted_skorch_net():
    net = NeuralNetClassifier(torch.nn.Linear(4, 2), criterion=torch.nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match="has not been initialized or fitted"):
        training_curves(net)


def test_plot_training_curves_draws_losses_scores_and_best(fitted_net):
    import matplotlib.pyplot as plt

    ax = plot_training_curves(fitted_net)
    try:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["train_loss", "valid_loss"]
        right = [line.get_label() for line in ax.right_ax.get_lines()]
        assert "valid_roc_auc" in right and "valid_acc" in right
        assert any(label.startswith("best valid_roc_auc (epoch ") for label in right)
        train_loss = fitted_net.history[:, "train_loss"]
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), train_loss)
        assert ax.get_xlabel() == "epoch"
    finally:
        plt.close(ax.figure)


def test_plot_training_curves_uses_given_axes_and_marks_warmup():
    import matplotlib.pyplot as plt

    class Fitted:
        warmup_epochs = 2
        history_ = [{"epoch": e, "train_loss": 1.0 / e} for e in range(1, 5)]

    fig, ax = plt.subplots()
    try:
        assert plot_training_curves(Fitted(), ax=ax) is ax
        assert not hasattr(ax, "right_ax")  # no scores recorded, no score axis
        legend = [text.get_text() for text in ax.get_legend().get_texts()]
        assert "end of cross-entropy warm-up (2 epochs)" in legend
        vertical = [line for line in ax.get_lines() if line.get_label().startswith("_")]
        assert any(np.allclose(line.get_xdata(), 2.5) for line in vertical)
    finally:
        plt.close(fig)


def test_importing_skfocal_does_not_import_matplotlib():
    code = "import sys, skfocal; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
