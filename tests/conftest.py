"""Shared fixtures: fixed seeds and small synthetic sequences."""

import os
import random

# what `import sklearn_tcssl` does when it comes first: idle OpenMP threads sleep instead of
# spinning against other processes (torch reads this once, when it loads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from _helpers import smooth_sequences  # noqa: E402


@pytest.fixture(autouse=True)
def _fixed_seeds():
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (code under test may use the legacy global RNG)
    torch.manual_seed(0)


@pytest.fixture
def sequences():
    """40 sequences of 18 time points and 30 features."""
    return smooth_sequences(40, 18, 30)
