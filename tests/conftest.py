"""Shared fixtures: a seeded RNG for every test, and clean skipping of GPU tests."""

import os

# scipy reads SCIPY_ARRAY_API once, at import: set it before any test module imports scipy or
# scikit-learn, so that array-API checks (``array_api_dispatch=True``) can run in this process.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from skfocal._data import device_runs  # noqa: E402


@pytest.fixture
def seed():
    """Seed torch and return a seeded NumPy generator, so every test is reproducible."""
    torch.manual_seed(0)
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for the module (restored after it).

    Tiny networks train faster on one thread, and it is immune to oversubscription on a shared
    machine (two threads spinning against other processes were 15x slower here).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    # asked of the device (a tiny operation), not of the build: a CUDA build of torch on a
    # machine without a GPU must skip these, not fail them
    if device_runs("cuda"):
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
