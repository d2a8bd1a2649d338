"""Shared fixtures: a seeded RNG for every test, and clean skipping of GPU tests."""

import numpy as np
import pytest
import torch


@pytest.fixture
def seed():
    """Seed torch and return a seeded NumPy generator, so every test is reproducible."""
    torch.manual_seed(0)
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
