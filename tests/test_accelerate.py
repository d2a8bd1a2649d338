"""FocalClassifier trained through Hugging Face Accelerate (the "accelerate" extra), on CPU.

skorch's ``AccelerateMixin`` does the work; these tests check that FocalClassifier stays a
scikit-learn estimator with an ``accelerator`` set: it fits, predicts, clones, grid-searches
and pickles.
"""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

accelerate = pytest.importorskip("accelerate", reason='needs pip install "skfocal[accelerate]"')

from skfocal import FocalClassifier  # noqa: E402


@pytest.fixture
def data():
    X, y = make_classification(
        n_samples=200, n_features=5, n_informative=3, weights=[0.8], random_state=0
    )
    return X.astype(np.float32), y


def _classifier(**params):
    return FocalClassifier(
        accelerator=accelerate.Accelerator(cpu=True),
        hidden_layer_sizes=(16,),
        max_epochs=4,
        random_state=0,
        **params,
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fit_predict_on_cpu(n_classes, seed):
    X, y = make_classification(
        n_samples=150, n_features=6, n_informative=4, n_classes=n_classes, random_state=0
    )
    clf = _classifier().fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(y), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(np.unique(clf.predict(X))) <= set(clf.classes_)
    assert len(clf.net_.history) == 4


def test_matches_training_without_accelerator(data):
    X, y = data
    plain = FocalClassifier(hidden_layer_sizes=(16,), max_epochs=4, random_state=0).fit(X, y)
    accelerated = _classifier().fit(X, y)
    np.testing.assert_allclose(
        accelerated.predict_proba(X), plain.predict_proba(X), rtol=1e-4, atol=1e-5
    )


def test_clone_and_grid_search(data):
    X, y = data
    clf = _classifier()
    cloned = clone(clf)
    assert isinstance(cloned.get_params()["accelerator"], accelerate.Accelerator)
    search = GridSearchCV(clf, {"gamma": [0.0, 2.0]}, cv=2, scoring="average_precision")
    search.fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(X).shape == y.shape


def test_pickle_round_trip(data):
    X, y = data
    clf = _classifier().fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("verbose", [0, 1])
def test_verbose_is_respected(data, capsys, verbose):
    X, y = data
    _classifier(verbose=verbose).fit(X, y)
    printed = capsys.readouterr().out
    assert ("train_loss" in printed) is bool(verbose)


def test_bf16_mixed_precision_in_a_fresh_process(tmp_path):
    # Accelerate's state (mixed precision included) is global to a process: a fresh one
    script = tmp_path / "bf16.py"
    script.write_text(
        textwrap.dedent(
            """
            import accelerate
            import numpy as np
            from sklearn.datasets import make_classification
            from skfocal import FocalClassifier

            X, y = make_classification(n_samples=200, n_features=5, random_state=0)
            acc = accelerate.Accelerator(cpu=True, mixed_precision="bf16")
            clf = FocalClassifier(accelerator=acc, max_epochs=3, random_state=0)
            proba = clf.fit(X.astype(np.float32), y).predict_proba(X)
            losses = clf.net_.history[:, "train_loss"]
            assert acc.mixed_precision == "bf16"
            assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1, atol=1e-3)
            assert losses[-1] < losses[0], losses
            print("ok")
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
