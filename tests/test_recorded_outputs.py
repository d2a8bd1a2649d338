"""Trained outputs of fixed configurations must not move (recorded in tests/data/).

A refactoring proves itself here: ``clf.net_.module_.eval()(X)`` of every configuration in
``tests/_recorded_configs.py`` equals the recorded logits to 1e-6 on the CPU. A change that
alters the numerics on purpose re-records the file (``python tests/_recorded_configs.py``) in
a commit of its own that says why.
"""

import numpy as np
import pytest
from _recorded_configs import CONFIGS, PATH, outputs


@pytest.fixture(scope="module")
def recorded():
    with np.load(PATH) as data:
        return dict(data)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_outputs_unchanged(name, recorded):
    z, n_iter = outputs(name)
    assert n_iter == int(recorded[name + "__n_iter"])
    np.testing.assert_allclose(z, recorded[name], rtol=0, atol=1e-6)
